#include "api/command_handler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "domain/ticket.h"
#include "events/embedded_log.h"

namespace chorus::api {
namespace {

namespace ticket = domain::ticket;

class CommandHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("chorus-handler-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    auto log = events::open_embedded_log({dir_.string(), true});
    ASSERT_TRUE(log);
    log_ = std::move(*log);
  }
  void TearDown() override {
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  static Aggregate<ticket::State> draft(const std::string& title) {
    ticket::State initial;
    initial.ticket_id = "t1";
    return Aggregate<ticket::State>{
        initial, &ticket::evolve, [title](const ticket::State& s) {
          return ticket::decide(s, ticket::SaveDraft{{"s1", "Technique", "Connexion", title, ""}},
                                domain::Caller{"alice", {}}, ticket::Context{true});
        }};
  }
  static CommandMeta meta(std::string command_id) {
    return CommandMeta{domain::Caller{"alice", {}}, "emitter", std::move(command_id), "corr"};
  }

  std::filesystem::path dir_;
  std::unique_ptr<events::EventLog> log_;
};

TEST_F(CommandHandlerTest, SnapshotCatchesUpWithEventsWrittenElsewhere) {
  CommandHandler a(*log_), b(*log_);
  EXPECT_EQ(a.run("ticket-t1", meta("c1"), draft("one")).version, 1u);
  EXPECT_EQ(b.run("ticket-t1", meta("c2"), draft("two")).version, 2u);
  // `a` holds a snapshot at version 1: it reads version 2 after it, then appends version 3.
  EXPECT_EQ(a.run("ticket-t1", meta("c3"), draft("three")).version, 3u);
  EXPECT_EQ(*log_->stream_version("ticket-t1"), 3u);
}

TEST_F(CommandHandlerTest, SameCommandIdIsAnsweredFromItsFirstRun) {
  CommandHandler handler(*log_);
  auto first = handler.run("ticket-t1", meta("c1"), draft("one"));
  auto again = handler.run("ticket-t1", meta("c1"), draft("one"));
  EXPECT_FALSE(first.replayed);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.version, first.version);
  EXPECT_EQ(again.consistency_token, first.consistency_token);
  // A fresh handler (a restarted server) finds it in the log.
  CommandHandler restarted(*log_);
  EXPECT_TRUE(restarted.run("ticket-t1", meta("c1"), draft("one")).replayed);
  EXPECT_EQ(*log_->stream_version("ticket-t1"), 1u);
}

// However many commands came between: a retry is answered from its first run, remembered
// beyond the recent ones by a hash of its id and read back from the log, in this handler and in
// a fresh one.
TEST_F(CommandHandlerTest, AnOldCommandIdIsStillAnsweredFromItsFirstRun) {
  CommandHandler handler(*log_);
  auto first = handler.run("ticket-t1", meta("c0"), draft("zero"));
  ASSERT_FALSE(first.replayed);
  const std::size_t others = 3 * CommandHandler::kRecentCommands;
  for (std::size_t i = 1; i <= others; ++i) {
    ASSERT_FALSE(handler.run("ticket-t1", meta("c" + std::to_string(i)), draft("x")).replayed);
  }
  CommandHandler restarted(*log_);
  for (CommandHandler* h : {&handler, &restarted}) {
    auto again = h->run("ticket-t1", meta("c0"), draft("zero"));
    EXPECT_TRUE(again.replayed);
    EXPECT_EQ(again.version, first.version);
    EXPECT_EQ(again.consistency_token, first.consistency_token);
  }
  EXPECT_EQ(*log_->stream_version("ticket-t1"), 1 + others);
  // An id never run is decided, not taken for another whose hash it might share.
  EXPECT_FALSE(handler.run("ticket-t1", meta("c-new"), draft("new")).replayed);
}

TEST_F(CommandHandlerTest, RejectionWritesNothing) {
  CommandHandler handler(*log_);
  try {
    (void)handler.run("ticket-t1", meta("c1"), draft(std::string(500, 'x')));
    FAIL() << "a too long title must be rejected";
  } catch (const Problem& p) {
    EXPECT_EQ(p.status, 422);
    EXPECT_EQ(p.field, "title");
  }
  EXPECT_EQ(*log_->stream_version("ticket-t1"), 0u);
}

TEST_F(CommandHandlerTest, ConcurrentCommandsRetryOnConflictAndAllLand) {
  CommandHandler first(*log_), second(*log_);
  ASSERT_EQ(first.run("ticket-t1", meta("c0"), draft("zero")).version, 1u);
  std::atomic<int> landed{0}, gave_up{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      CommandHandler& h = t % 2 ? first : second;  // two "servers", stale snapshots included
      for (int i = 0; i < 10; ++i) {
        try {
          (void)h.run("ticket-t1", meta("c" + std::to_string(t) + "-" + std::to_string(i)),
                      draft("t"));
          ++landed;
        } catch (const Problem& p) {
          EXPECT_EQ(p.status, 409);
          ++gave_up;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(landed + gave_up, 40);
  EXPECT_EQ(*log_->stream_version("ticket-t1"), 1u + static_cast<std::uint64_t>(landed.load()));
}

}  // namespace
}  // namespace chorus::api
