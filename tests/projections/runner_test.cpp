#include "projections/runner.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <thread>

#include "events/embedded_log.h"
#include "projections/json_text.h"
#include "projections/standard_views.h"
#include "projections/ticket_views.h"
#include "tests/events/test_events.h"
#include "tests/projections/view_compare.h"

namespace chorus::projections {
namespace {

using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() /
              ("chorus-runner-" + std::to_string(getpid()) + "-" + std::to_string(counter_++))) {}
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

events::NewEvent submitted(const std::string& ticket_id, const std::string& user) {
  auto e = events::testing::draft_event(ticket_id);
  e.meta.occurred_at_us += static_cast<std::int64_t>(std::hash<std::string>{}(ticket_id) % 1000000);
  e.payload =
      events::TicketSubmitted{ticket_id,   "SOL-" + ticket_id,   user,         "s1", "Technique",
                              "Connexion", "Titre " + ticket_id, "Description"};
  return e;
}

void fill(events::EventLog& log, int tickets, int first = 0) {
  for (int i = first; i < first + tickets; ++i) {
    const std::string id = "t" + std::to_string(i);
    auto draft = events::testing::draft_event(id);
    std::get<events::TicketDraftSaved>(draft.payload).emitter_user_id =
        "user-" + std::to_string(i % 7);
    std::vector<events::StreamAppend> batch{
        {"ticket-" + id, 0, {draft, submitted(id, "user-" + std::to_string(i % 7))}}};
    ASSERT_TRUE(log.append(batch));
  }
}

// Fails on one chosen ticket, as a projector meeting an event it cannot apply would; or, when
// `throws`, throws there, as one with a bug (or a library's exception) would.
class FailingOn final : public Projector {
 public:
  explicit FailingOn(std::string ticket, bool throws = false)
      : ticket_(std::move(ticket)), throws_(throws) {}
  Result<void> apply(const events::Event& e, const events::LogAddress&, ViewBatch& batch) override {
    batch.put(std::string("probe\0", 6) + e.stream_id, "seen");
    if (e.stream_id != "ticket-" + ticket_) return {};
    if (throws_) throw std::runtime_error("cannot apply " + e.stream_id);
    return fail(errc::poison, "cannot apply " + e.stream_id);
  }

 private:
  std::string ticket_;
  bool throws_;
};

TEST(Runner, AppliesEveryEventOnceAndRestartsFromItsPosition) {
  TempDir dir;
  auto log = events::open_embedded_log({dir.str() + "/log", true});
  ASSERT_TRUE(log);
  fill(**log, 50);
  TicketViews views;
  {
    auto runner = Runner::open(**log, dir.str(), {&views});
    ASSERT_TRUE(runner);
    (*runner)->max_batch = 7;  // several batches, each committed with its position
    while (*(*runner)->step(0ms) > 0) {
    }
    EXPECT_EQ((*runner)->stats().events_applied, 100u);
    auto page = list_emitted_tickets(*(*runner)->store(), "user-1", "en_cours", 1, 100);
    ASSERT_TRUE(page);
    EXPECT_EQ(page->total, 7u);
    EXPECT_EQ(page->rows.size(), 7u);
  }
  fill(**log, 10, 50);
  auto reopened = Runner::open(**log, dir.str(), {&views});
  ASSERT_TRUE(reopened);
  std::size_t more = 0;
  while (auto n = (*reopened)->step(0ms)) {
    if (*n == 0) break;
    more += *n;
  }
  EXPECT_EQ(more, 20u) << "a restarted runner goes on from its stored position";
  EXPECT_EQ(list_emitted_tickets(*(*reopened)->store(), "user-1", "tous", 1, 100)->total, 9u);
}

// Fails once, as a view store failing a read (in apply(), at the batch's third event) or
// refusing a batch's write (in finish()) would: the batch is dropped after its events were
// polled.
class FailsOnce final : public Projector {
 public:
  enum class In { apply, finish };
  explicit FailsOnce(In in) : in_(in) {}
  Result<void> apply(const events::Event& e, const events::LogAddress&, ViewBatch& batch) override {
    if (in_ == In::apply && !failed_ && ++applied_ == 3) {
      failed_ = true;
      return fail(errc::io_error, "the store failed a read");
    }
    batch.put(std::string("probe\0", 6) + e.stream_id + " v" + std::to_string(e.version), "");
    return {};
  }
  Result<void> finish(ViewBatch&) override {
    if (in_ != In::finish || failed_) return {};
    failed_ = true;
    return fail(errc::io_error, "the store is full");
  }

 private:
  In in_;
  bool failed_ = false;
  int applied_ = 0;
};

TEST(Runner, AFailedBatchIsReadAgainNotSkipped) {
  for (const auto in : {FailsOnce::In::apply, FailsOnce::In::finish}) {
    SCOPED_TRACE(in == FailsOnce::In::apply ? "failing in apply" : "failing in finish");
    TempDir dir;
    auto log = events::open_embedded_log({dir.str() + "/log", true});
    ASSERT_TRUE(log);
    fill(**log, 5);  // 10 events
    FailsOnce failing(in);
    auto runner = Runner::open(**log, dir.str(), {&failing});
    ASSERT_TRUE(runner);
    (*runner)->max_batch = 4;
    auto first = (*runner)->step(0ms);
    ASSERT_FALSE(first);
    EXPECT_EQ(first.error().code, errc::io_error);
    EXPECT_EQ(*(*runner)->store()->position(), "") << "nothing of the failed batch is committed";
    std::vector<std::size_t> sizes;
    while (true) {
      auto n = (*runner)->step(0ms);
      ASSERT_TRUE(n);
      if (*n == 0) break;
      sizes.push_back(*n);
    }
    EXPECT_EQ(sizes, (std::vector<std::size_t>{4, 6})) << "the failed batch's 4 events come first";
    EXPECT_EQ((*runner)->stats().events_applied, 10u);
    EXPECT_EQ((*runner)->stats().events_set_aside, 0u) << "a store's failure is no poison";
    for (int i = 0; i < 5; ++i) {
      for (int v : {1, 2}) {
        const std::string key =
            std::string("probe\0", 6) + "ticket-t" + std::to_string(i) + " v" + std::to_string(v);
        auto row = (*runner)->store()->get(key);
        ASSERT_TRUE(row);
        EXPECT_TRUE(row->has_value()) << "ticket-t" << i << " v" << v << " was skipped";
      }
    }
  }
}

// The ticket detail stays JSON whatever bytes an event's text holds (a log written by another
// producer): its history entry is written by hand, a byte that is not UTF-8 as U+FFFD. The
// detail's status, level and version come from the state row and the history.
TEST(Runner, ATicketDetailIsJsonWhateverBytesItsEventsHold) {
  TempDir dir;
  auto log = events::open_embedded_log({dir.str() + "/log", true});
  ASSERT_TRUE(log);
  fill(**log, 1);
  auto comment = events::testing::draft_event("t0");
  comment.payload = events::CommentAdded{"t0", "ok \xC3\xA9 then \xFF\xC3( \"quoted\"\n"};
  ASSERT_TRUE((*log)->append(std::vector<events::StreamAppend>{{"ticket-t0", 2, {comment}}}));
  TicketViews views;
  auto runner = Runner::open(**log, dir.str(), {&views});
  ASSERT_TRUE(runner);
  while (*(*runner)->step(0ms) > 0) {
  }
  auto detail = ticket_detail(*(*runner)->store(), "t0");
  ASSERT_TRUE(detail);
  ASSERT_TRUE(detail->has_value());
  const auto row = nlohmann::json::parse(**detail, nullptr, false);
  ASSERT_FALSE(row.is_discarded()) << **detail;
  EXPECT_EQ(row["version"], 3);
  EXPECT_EQ(row["status"], "Ouvert");
  EXPECT_EQ(row["support_level"], 1);
  ASSERT_EQ(row["history"].size(), 3u);
  EXPECT_EQ(row["history"][2]["text"], "ok \xC3\xA9 then \xEF\xBF\xBD\xEF\xBF\xBD( \"quoted\"\n");
  EXPECT_EQ(row["updated_at_us"], comment.meta.occurred_at_us);
}

// Every standard view takes text that is not UTF-8 (a log written before the API checked every
// field, or by another producer) without failing: a file name, an account's names, a reference
// object's number. Their rows are JSON, such bytes as U+FFFD, and no event is set aside. (An
// attachment named so once stopped the server at start, on every start.)
TEST(Runner, EveryViewTakesTextThatIsNotUtf8) {
  TempDir dir;
  auto log = events::open_embedded_log({dir.str() + "/log", true});
  ASSERT_TRUE(log);
  fill(**log, 1);
  auto attached = events::testing::draft_event("t0");
  attached.payload = events::FileAttached{"t0",
                                          "a1",
                                          "a\xFF"
                                          "b.txt",
                                          "text/plain",
                                          1,
                                          std::string(64, 'a')};
  auto account = events::testing::draft_event("t0");
  account.payload =
      events::AccountCreated{"u-bad", "x\xC3@example.test", "\xED\xA0\x80", "Nom", "portal", false};
  auto object = events::testing::draft_event("t0");
  object.payload = events::ReferenceObjectImported{"facture", "F\xFE", "s1", "s2", ""};
  ASSERT_TRUE((*log)->append(
      std::vector<events::StreamAppend>{{"ticket-t0", 2, {attached}},
                                        {"account-u-bad", 0, {account}},
                                        {"reference-object-facture-F", 0, {object}}}));
  StandardViews views;
  auto runner = Runner::open(**log, dir.str(), views.list());
  ASSERT_TRUE(runner);
  while (*(*runner)->step(0ms) > 0) {
  }
  EXPECT_EQ((*runner)->stats().events_set_aside, 0u);
  EXPECT_EQ((*runner)->stats().events_applied, 5u);
  auto detail = ticket_detail(*(*runner)->store(), "t0");
  ASSERT_TRUE(detail && detail->has_value());
  const auto row = nlohmann::json::parse(**detail, nullptr, false);
  ASSERT_FALSE(row.is_discarded()) << **detail;
  ASSERT_EQ(row["attachments"].size(), 1u) << **detail;
  EXPECT_EQ(row["attachments"][0]["name"],
            "a\xEF\xBF\xBD"
            "b.txt");
  // Every row a view wrote is JSON where it looks like JSON.
  int json_rows = 0;
  ASSERT_TRUE((*runner)->store()->scan("", "", false, [&](std::string_view, std::string_view v) {
    if (v.starts_with("{")) {
      EXPECT_FALSE(nlohmann::json::parse(v, nullptr, false).is_discarded()) << v;
      ++json_rows;
    }
    return true;
  }));
  EXPECT_GT(json_rows, 3);
  EXPECT_EQ(testing::folded_differences(**log, *(*runner)->store(), dir.str() + "/folded"), "");
}

// The folded rebuild (folded_rebuild.h) leaves what the runner leaves, events it cannot apply
// included: the same set-aside rows, nothing of those events in any view; and deleted drafts,
// notifications sent, files and priorities.
TEST(Runner, AFoldedRebuildLeavesWhatTheRunnerLeaves) {
  TempDir dir;
  auto log = events::open_embedded_log({dir.str() + "/log", true});
  ASSERT_TRUE(log);
  fill(**log, 5);
  auto on = [](const std::string& ticket, events::Payload payload) {
    auto e = events::testing::draft_event(ticket);
    e.payload = std::move(payload);
    return e;
  };
  auto ghost = on("ghost", events::CommentAdded{"ghost", "never submitted"});
  auto info = on("t1", events::InformationRequested{"t1", "which invoice?"});
  auto file = on("t2", events::FileAttached{"t2", "a1", "facture.pdf", "application/pdf", 10,
                                            std::string(64, 'b')});
  auto priority = on("t2", events::PrioritySet{"t2", "major", "minor", 2, 1, "client waiting"});
  auto deleted = on("t3", events::TicketDraftDeleted{"t3"});
  // Signed out, bound to an object, sent to a structure's service, text with line breaks and
  // quotes: every field of a new ticket's detail row.
  auto full = on("t9", events::TicketSubmitted{"t9", "SOL-9", "", "", "Métier", "M-Facture",
                                               "Titre \"cité\"", "ligne 1\nligne 2\t\x01", "s-dest",
                                               "svc", "x@example.test", "facture", "F-1"});
  ASSERT_TRUE((*log)->append(std::vector<events::StreamAppend>{{"ticket-ghost", 0, {ghost}},
                                                               {"ticket-t1", 2, {info}},
                                                               {"ticket-t2", 2, {file, priority}},
                                                               {"ticket-t3", 2, {deleted}},
                                                               {"ticket-t9", 0, {full}}}));
  StandardViews views;
  auto runner = Runner::open(**log, dir.str(), views.list());
  ASSERT_TRUE(runner);
  while (*(*runner)->step(0ms) > 0) {
  }
  EXPECT_EQ((*runner)->stats().events_set_aside, 1u);
  auto pending = pending_notifications(*(*runner)->store(), 100);
  ASSERT_TRUE(pending && !pending->empty());
  const auto first = nlohmann::json::parse(pending->front());
  auto sent = on("t0", events::NotificationSent{first["notification_id"].get<std::string>()});
  ASSERT_TRUE((*log)->append(std::vector<events::StreamAppend>{{"notification-x", 0, {sent}}}));
  while (*(*runner)->step(0ms) > 0) {
  }
  EXPECT_EQ(pending_notifications(*(*runner)->store(), 100)->size(), pending->size() - 1);
  // Detail rows, new tickets' written by hand included, are what a tree dumps.
  int details = 0;
  ASSERT_TRUE((*runner)->store()->scan(std::string("t\0", 2), "", false,
                                       [&](std::string_view, std::string_view v) {
                                         EXPECT_EQ(v, json_text(nlohmann::json::parse(v)));
                                         ++details;
                                         return true;
                                       }));
  EXPECT_EQ(details, 5);  // t0, t1, t2, t4, t9
  int notices = 0;
  ASSERT_TRUE((*runner)->store()->scan(std::string("o\0", 2), "", false,
                                       [&](std::string_view, std::string_view v) {
                                         EXPECT_EQ(v, json_text(nlohmann::json::parse(v)));
                                         ++notices;
                                         return true;
                                       }));
  EXPECT_GT(notices, 5);
  EXPECT_EQ(testing::folded_differences(**log, *(*runner)->store(), dir.str() + "/folded"), "");
}

// Views past the end of the embedded log (the log lost events: a damaged write-ahead log
// recovered by dropping its tail) stop the open; once the loss is accepted, they are replaced
// by empty ones that catch up, and end equal to a
// fresh build of what the log holds; else the events appended next would take offsets the views
// count as applied.
TEST(Runner, ViewsPastTheEndOfTheLogAreReplacedThenCaughtUp) {
  TempDir dir, shorter;
  TicketViews views;
  {
    auto log = events::open_embedded_log({dir.str() + "/log", true});
    ASSERT_TRUE(log);
    fill(**log, 10);
    auto runner = Runner::open(**log, dir.str(), {&views});
    ASSERT_TRUE(runner);
    while (*(*runner)->step(0ms) > 0) {
    }
    EXPECT_FALSE((*runner)->replaced_ahead_of_log());
  }
  // The same views over a log holding fewer events.
  auto log = events::open_embedded_log({shorter.str() + "/log", true});
  ASSERT_TRUE(log);
  fill(**log, 3);
  std::filesystem::rename(dir.str() + "/views", shorter.str() + "/views");
  // Unless the operator accepted the loss, it is a stop, and the views stay as they were.
  auto refused = Runner::open(**log, shorter.str(), {&views});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, errc::views_ahead_of_log) << refused.error().message;
  auto runner = Runner::open(**log, shorter.str(), {&views}, /*replace_views_ahead_of_log=*/true);
  ASSERT_TRUE(runner);
  EXPECT_TRUE((*runner)->replaced_ahead_of_log());
  EXPECT_FALSE((*runner)->replaced_stale_layout());
  std::size_t applied = 0;
  while (auto n = (*runner)->step(0ms)) {
    if (*n == 0) break;
    applied += *n;
  }
  EXPECT_EQ(applied, 6u) << "the new generation starts from position zero";
  TempDir other;
  auto fresh = Runner::open(**log, other.str(), {&views});
  ASSERT_TRUE(fresh);
  while (*(*fresh)->step(0ms) > 0) {
  }
  EXPECT_EQ(testing::differences(*(*runner)->store(), *(*fresh)->store()), "");
}

// A store written under another key layout (or before layouts were recorded) is not served:
// an empty generation replaces it and catches up, and ends equal to a fresh build.
TEST(Runner, AStoreOfAnotherLayoutIsReplacedThenCaughtUp) {
  TempDir dir;
  auto log = events::open_embedded_log({dir.str() + "/log", true});
  ASSERT_TRUE(log);
  fill(**log, 30);
  TicketViews views;
  auto drain = [](Runner& r) {
    std::size_t applied = 0;
    while (auto n = r.step(0ms)) {
      if (*n == 0) break;
      applied += *n;
    }
    return applied;
  };
  // Another layout's mark, then no mark at all (a store from before marks were written).
  const std::optional<std::string> stales[] = {"2020-01-01.0", std::nullopt};
  for (const auto& stale : stales) {
    {
      auto runner = Runner::open(**log, dir.str(), {&views});
      ASSERT_TRUE(runner);
      drain(**runner);
      EXPECT_FALSE((*runner)->replaced_stale_layout());
    }
    std::uint64_t live = 0;
    std::ifstream(dir.str() + "/views/CURRENT") >> live;
    {
      auto store = ViewStore::open(dir.str() + "/views/" + std::to_string(live));
      ASSERT_TRUE(store);
      const rocksdb::Slice key(kLayoutKey.data(), kLayoutKey.size());
      auto s = stale ? (*store)->db()->Put(rocksdb::WriteOptions(), key, *stale)
                     : (*store)->db()->Delete(rocksdb::WriteOptions(), key);
      ASSERT_TRUE(s.ok());
    }
    auto runner = Runner::open(**log, dir.str(), {&views});
    ASSERT_TRUE(runner);
    EXPECT_TRUE((*runner)->replaced_stale_layout());
    EXPECT_FALSE(std::filesystem::exists(dir.str() + "/views/" + std::to_string(live)));
    EXPECT_EQ(drain(**runner), 60u) << "the new generation starts from position zero";
    TempDir other;
    auto fresh = Runner::open(**log, other.str(), {&views});
    ASSERT_TRUE(fresh);
    drain(**fresh);
    EXPECT_EQ(testing::differences(*(*runner)->store(), *(*fresh)->store()), "");
  }
}

void set_aside_and_go_on(bool throws);

// An event a projector cannot apply is set aside, and so is one whose projector throws: the
// process does not die at that event, on every start.
TEST(Runner, PoisonEventIsSetAsideAndTheRestGoesOn) {
  for (const bool throws : {false, true}) {
    SCOPED_TRACE(throws ? "throws" : "poison");
    set_aside_and_go_on(throws);
  }
}

void set_aside_and_go_on(bool throws) {
  TempDir dir;
  auto log = events::open_embedded_log({dir.str() + "/log", true});
  ASSERT_TRUE(log);
  fill(**log, 5);
  FailingOn failing("t2", throws);
  auto runner = Runner::open(**log, dir.str(), {&failing});
  ASSERT_TRUE(runner);
  while (*(*runner)->step(0ms) > 0) {
  }
  EXPECT_EQ((*runner)->stats().events_set_aside, 2u);  // both events of ticket t2
  auto store = (*runner)->store();
  EXPECT_FALSE(store->get(std::string("probe\0ticket-t2", 15))->has_value()) << "rolled back";
  EXPECT_TRUE(store->get(std::string("probe\0ticket-t3", 15))->has_value());
  int set_aside_rows = 0;
  ASSERT_TRUE(store->scan(kSetAsidePrefix, "", false, [&](std::string_view, std::string_view v) {
    EXPECT_NE(v.find("cannot apply ticket-t2"), std::string_view::npos);
    EXPECT_EQ(v.find("threw") != std::string_view::npos, throws) << v;
    ++set_aside_rows;
    return true;
  }));
  EXPECT_EQ(set_aside_rows, 2);
}

TEST(Runner, WaitForAConsistencyTokenAndTimeOut) {
  TempDir dir;
  auto log = events::open_embedded_log({dir.str() + "/log", true});
  TicketViews views;
  auto runner = Runner::open(**log, dir.str(), {&views});
  std::vector<events::StreamAppend> batch{{"ticket-x", 0, {submitted("x", "u")}}};
  auto appended = (*log)->append(batch);
  ASSERT_TRUE(appended);
  auto timed_out = (*runner)->wait_for(appended->position, 20ms);
  ASSERT_FALSE(timed_out);
  EXPECT_EQ(timed_out.error().code, errc::timeout);
  std::jthread thread([&](std::stop_token stop) { (*runner)->run(stop); });
  EXPECT_TRUE((*runner)->wait_for(appended->position, 5s));
}

TEST(Runner, RebuildWhileServingGivesTheSameViews) {
  TempDir dir, fresh_dir;
  auto log = events::open_embedded_log({dir.str() + "/log", true});
  fill(**log, 300);
  TicketViews views;
  auto runner = Runner::open(**log, dir.str(), {&views});
  std::jthread thread([&](std::stop_token stop) { (*runner)->run(stop); });
  // Writes keep coming during the rebuild.
  std::jthread writer([&] { fill(**log, 100, 300); });
  auto old_store = (*runner)->store();
  ASSERT_TRUE((*runner)->rebuild());
  writer.join();
  auto end = (*log)->end();
  ASSERT_TRUE((*runner)->wait_for(*end, 10s));
  EXPECT_NE((*runner)->store()->dir(), old_store->dir());
  // The old generation still answers whoever holds it.
  EXPECT_TRUE(list_emitted_tickets(*old_store, "user-1", "tous", 1, 10));
  old_store.reset();

  auto reference = Runner::open(**log, fresh_dir.str(), {&views});
  while (*(*reference)->step(0ms) > 0) {
  }
  thread.request_stop();
  thread.join();
  EXPECT_EQ(testing::differences(*(*runner)->store(), *(*reference)->store()), "");
}

// Holds every apply while `hold` is set, so a test can look at a rebuild in the middle.
class Gate final : public Projector {
 public:
  Result<void> apply(const events::Event&, const events::LogAddress&, ViewBatch&) override {
    std::unique_lock lock(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !hold_; });
    return {};
  }
  void hold() {
    std::lock_guard lock(mu_);
    hold_ = true;
    entered_ = false;
  }
  void wait_entered() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return entered_; });
  }
  void release() {
    std::lock_guard lock(mu_);
    hold_ = false;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false, entered_ = false;
};

TEST(Runner, BackgroundRebuildReportsProgressAndRefusesASecondOne) {
  TempDir dir;
  auto log = events::open_embedded_log({dir.str() + "/log", true});
  fill(**log, 5);  // 10 events
  Gate gate;
  auto runner = Runner::open(**log, dir.str(), {&gate});
  while (*(*runner)->step(0ms) > 0) {
  }
  EXPECT_FALSE((*runner)->stats().rebuilding);

  gate.hold();
  ASSERT_TRUE((*runner)->start_rebuild());
  gate.wait_entered();  // the rebuild is inside its first batch
  auto during = (*runner)->stats();
  EXPECT_TRUE(during.rebuilding);
  EXPECT_EQ(during.rebuild_events_remaining, 10u);
  EXPECT_EQ(during.rebuild_events_applied, 0u);
  auto second = (*runner)->start_rebuild();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, errc::invalid_argument);
  ASSERT_FALSE((*runner)->rebuild());
  gate.release();

  RunnerStats after;
  for (int i = 0; i < 500 && (after = (*runner)->stats()).rebuilding; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(after.rebuilding);
  EXPECT_EQ(after.rebuilds_completed, 1u);
  EXPECT_EQ(after.rebuilds_failed, 0u);
  EXPECT_EQ(after.rebuild_events_applied, 10u);
  EXPECT_EQ(after.rebuild_events_remaining, 0u);
  // The live count is the live generation's only.
  EXPECT_EQ(after.events_applied, 10u);
}

TEST(Runner, CatchingUpDoublesItsBatchesUntilTheLogsEnd) {
  TempDir dir;
  auto log = events::open_embedded_log({dir.str() + "/log", true});
  ASSERT_TRUE(log);
  fill(**log, 50);  // 100 events
  TicketViews views;
  auto runner = Runner::open(**log, dir.str(), {&views});
  ASSERT_TRUE(runner);
  (*runner)->max_batch = 2;
  (*runner)->catch_up_batch = 16;
  auto steps = [&] {
    std::vector<std::size_t> sizes;
    while (true) {
      auto n = (*runner)->step(0ms);
      EXPECT_TRUE(n);
      if (!n || *n == 0) return sizes;
      sizes.push_back(*n);
    }
  };
  EXPECT_EQ(steps(), (std::vector<std::size_t>{2, 4, 8, 16, 16, 16, 16, 16, 6}));
  // Having met the log's end, the runner is back to max_batch.
  fill(**log, 2, 50);
  EXPECT_EQ(steps(), (std::vector<std::size_t>{2, 2}));
  EXPECT_EQ((*runner)->stats().events_applied, 104u);
  auto page = list_emitted_tickets(*(*runner)->store(), "user-1", "en_cours", 1, 100);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->total, 8u);

  (*runner)->catch_up_batch = 0;  // no growth
  fill(**log, 3, 52);
  EXPECT_EQ(steps(), (std::vector<std::size_t>{2, 2, 2}));
}

TEST(Runner, ShutdownStopsARunningRebuild) {
  TempDir dir;
  auto log = events::open_embedded_log({dir.str() + "/log", true});
  fill(**log, 5);
  Gate gate;
  auto runner = Runner::open(**log, dir.str(), {&gate});
  while (*(*runner)->step(0ms) > 0) {
  }
  (*runner)->max_batch = 1;  // ten batches: room to stop between two
  gate.hold();
  ASSERT_TRUE((*runner)->start_rebuild());
  gate.wait_entered();
  std::jthread releaser([&] {
    std::this_thread::sleep_for(50ms);
    gate.release();
  });
  // The destructor asks the rebuild to stop and waits for it: no thread outlives the runner
  // (the sanitizer build would see one touch freed memory).
  runner->reset();
}

}  // namespace
}  // namespace chorus::projections
