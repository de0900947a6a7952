// The workload generator: repeatable from its seed, accepted by the domain at every step (it
// fails otherwise), intact for the auditors' verify, and served by the real server.

#include "ops/workload/workload.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "events/embedded_log.h"
#include "replay/audit.h"
#include "tests/support/server_process.h"

namespace chorus {
namespace {

std::filesystem::path scratch(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("chorus-workload-" + std::to_string(getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  return dir;
}

ops::WorkloadOptions small() {
  ops::WorkloadOptions o;
  o.seed = 42;
  o.tickets = 3'000;
  o.users = 200;
  o.structures = 20;
  o.heavy_user_tickets = 500;
  o.in_flight = 300;
  return o;
}

// Every stored event of the log, in order.
std::vector<std::string> read_all(events::EventLog& log) {
  std::vector<std::string> out;
  auto cursor = log.follow({});
  EXPECT_TRUE(cursor.has_value());
  std::vector<events::RecordedEvent> batch;
  while (true) {
    batch.clear();
    auto n = (*cursor)->poll(batch, 10'000, std::chrono::milliseconds(0));
    if (!n || *n == 0) break;
    for (auto& e : batch) out.push_back(std::move(e.bytes));
  }
  return out;
}

TEST(Workload, SameSeedSameLogAndTheMixOfTheSeeds) {
  const auto a = scratch("a"), b = scratch("b");
  ops::WorkloadSummary first;
  for (const auto& dir : {a, b}) {
    auto log = events::open_embedded_log({.dir = dir.string()});
    ASSERT_TRUE(log.has_value());
    auto summary = ops::fill_log(**log, small());
    ASSERT_TRUE(summary.has_value()) << summary.error().message;
    if (dir == a) first = *summary;
  }
  EXPECT_EQ(first.tickets, 3'500u);
  // Most tickets answered and closed, some waiting for information, drafts left or deleted.
  EXPECT_GT(first.tickets_by_status["Fermé"], first.tickets / 2);
  EXPECT_GT(first.tickets_by_status["En attente d'informations"], 0u);
  EXPECT_GT(first.tickets_by_status["Résolu"], 0u);
  EXPECT_GT(first.tickets_by_status["Brouillon"], 0u);

  auto log_a = events::open_embedded_log({.dir = a.string(), .read_only = true});
  auto log_b = events::open_embedded_log({.dir = b.string(), .read_only = true});
  ASSERT_TRUE(log_a && log_b);
  const auto events_a = read_all(**log_a);
  EXPECT_EQ(events_a.size(), first.events);
  EXPECT_TRUE(events_a == read_all(**log_b)) << "the same seed must give the same bytes";

  // Every chain intact, every invariant held (structures with one GP, decisions entitled).
  auto report = replay::verify_log(**log_a);
  ASSERT_TRUE(report.has_value());
  EXPECT_TRUE(report->intact()) << (report->broken.empty() ? report->breaches.front().description
                                                           : report->broken.front().reason);
  log_a->reset();
  log_b->reset();
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
}

TEST(Workload, TheServerServesAFilledLog) {
  const auto dir = scratch("served");
  std::string end_of_log;  // the consistency token of the whole log: one partition
  {
    auto log = events::open_embedded_log({.dir = (dir / "log").string()});
    ASSERT_TRUE(log.has_value());
    // Smaller than the repeatability test's: the views catch up at start, under the
    // sanitizers too.
    auto o = small();
    o.tickets = 1'000;
    o.heavy_user_tickets = 300;
    auto summary = ops::fill_log(**log, o);
    ASSERT_TRUE(summary.has_value());
    end_of_log = std::to_string(summary->events);
  }
  testing::ServerProcess server({"--data-dir", dir.string(), "--consistency-wait-ms", "120000"});
  auto client = server.connect();
  // The views catch up from the log at start; the query waits for them to cover the whole
  // log, and user-0, the heavy user, sees their tickets.
  auto r = client->request("GET", "/v1/me/tickets/counts", "",
                           {{"Authorization", testing::ServerProcess::token("user-0")},
                            {"X-Consistency-Token", end_of_log}},
                           std::chrono::seconds(150));
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  const auto counts = nlohmann::json::parse(r->body);
  std::uint64_t total = 0;
  for (const char* tab : {"tous", "clotures", "brouillons"}) total += counts.value(tab, 0u);
  EXPECT_GE(total, 270u);  // 300 of theirs, less the deleted drafts
  server.stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chorus
