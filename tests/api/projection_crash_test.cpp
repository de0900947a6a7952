// Kill the real server (SIGKILL) while its projection runner is applying a long run of events,
// restart it, and check that the views equal a fresh rebuild from the log: no event applied
// twice, none skipped.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "events/embedded_log.h"
#include "projections/runner.h"
#include "projections/standard_views.h"
#include "tests/events/test_events.h"
#include "tests/projections/view_compare.h"
#include "tests/support/server_process.h"

namespace chorus {
namespace {

using namespace std::chrono_literals;

// The projection runner's gauge chorus_view_<state>_events ("applied" or "lag"), from /metrics.
double view_events(testing::HttpClient& c, const std::string& state) {
  auto r = c.request("GET", "/metrics");
  if (!r) return -1;
  std::smatch m;
  const std::regex re("chorus_view_" + state + "_events ([0-9.e+]+)");
  return std::regex_search(r->body, m, re) ? std::stod(m[1]) : -1;
}

TEST(ProjectionCrash, KilledMidRunRestartsToViewsEqualToAFreshRebuild) {
  const auto root =
      std::filesystem::temp_directory_path() / ("chorus-crash-" + std::to_string(getpid()));
  const std::string data_dir = (root / "server").string();
#ifdef __SANITIZE_ADDRESS__
  constexpr int kTickets = 2'000;  // sanitizers apply about ten times slower
#else
  // 20,000 events: enough to kill the runner part-way (it applies a few thousand a second since
  // the sorted lists), small enough to keep the suite's time.
  constexpr int kTickets = 10'000;
#endif
  {
    auto log = events::open_embedded_log({data_dir + "/log", true});
    ASSERT_TRUE(log) << log.error().message;
    std::vector<events::StreamAppend> batch;
    for (int i = 0; i < kTickets; ++i) {
      const std::string id = "crash-" + std::to_string(i);
      const std::string user = "user-" + std::to_string(i % 100);
      auto draft = events::testing::draft_event(id);
      std::get<events::TicketDraftSaved>(draft.payload).emitter_user_id = user;
      draft.meta.occurred_at_us += i;
      auto submit = draft;
      submit.meta.event_id = events::testing::random_event_id();
      submit.payload = events::TicketSubmitted{id, "SOL-" + id, user, "s", "c", "d", "t", "x"};
      batch.push_back({"ticket-" + id, 0, {draft, submit}});
      if (batch.size() == 500) {
        ASSERT_TRUE((*log)->append(batch));
        batch.clear();
      }
    }
  }
  constexpr double kEvents = 2.0 * kTickets;

  double at_kill = 0;
  {
    testing::ServerProcess server({"--data-dir", data_dir});
    auto c = server.connect();
    // Kill as soon as the runner is visibly part-way.
    for (int i = 0; i < 2000; ++i) {
      at_kill = view_events(*c, "applied");
      if (at_kill > 0) break;
      std::this_thread::sleep_for(1ms);
    }
    server.kill_now();
  }
  std::printf("[ crash ] killed with %.0f of %.0f events applied\n", at_kill, kEvents);
  EXPECT_LT(at_kill, kEvents) << "the runner finished before the kill: the test proved nothing";

  {
    testing::ServerProcess server({"--data-dir", data_dir});
    auto c = server.connect();
    // Until the views have caught up with the log (generous: sanitizer builds are slow, and the
    // sorted ticket lists write about four times the rows per event they used to: 80,000 events
    // took over three minutes on a 2-core machine shared with two other builds).
    for (int i = 0; i < 12'000 && view_events(*c, "lag") != 0; ++i) {
      std::this_thread::sleep_for(50ms);
    }
    auto ready = c->request("GET", "/readyz");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 200);
    EXPECT_EQ(nlohmann::json::parse(ready->body)["view_lag_events"], 0) << ready->body;
    server.stop();
  }

  auto log = events::open_embedded_log({data_dir + "/log", true});
  ASSERT_TRUE(log);
  projections::StandardViews views;
  auto live = projections::Runner::open(**log, data_dir, views.list());
  ASSERT_TRUE(live);
  auto fresh = projections::Runner::open(**log, (root / "fresh").string(), views.list());
  ASSERT_TRUE(fresh);
  while (*(*fresh)->step(0ms) > 0) {
  }
  EXPECT_EQ((*live)->applied(), (*fresh)->applied());
  EXPECT_EQ(projections::testing::differences(*(*live)->store(), *(*fresh)->store()), "");
  auto page = projections::list_emitted_tickets(*(*live)->store(), "user-7", "en_cours", 1, 1000);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->total, static_cast<std::uint64_t>(kTickets / 100));
  EXPECT_EQ(page->rows.size(), static_cast<std::size_t>(kTickets / 100));
  live->reset();
  fresh->reset();
  log->reset();
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace chorus
