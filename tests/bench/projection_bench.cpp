// Projection benchmark: how fast the runner applies a long run of ticket events to the views,
// beside a raw RocksDB WriteBatch loop writing exactly the same keys (the runner's own
// WriteBatches, recorded and replayed into a fresh store with the same options), measured in
// the same run. The difference is what decoding, reading state and building rows cost.
//
// The log is written first, so the runner catches up: its batches grow up to
// Runner::catch_up_batch; --catch-up-batch 0 keeps them at max_batch, as when following a live
// log.
//
// Usage: projection_bench [--tickets N] [--dir DIR] [--catch-up-batch N]

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "events/embedded_log.h"
#include "projections/runner.h"
#include "projections/ticket_views.h"
#include "tests/events/test_events.h"

using Clock = std::chrono::steady_clock;
using namespace chorus;

int main(int argc, char** argv) {
  CLI::App app{"Projection apply rate beside a raw RocksDB WriteBatch loop"};
  int tickets = 100'000;
  std::string dir = (std::filesystem::temp_directory_path() / "chorus-projection-bench").string();
  app.add_option("--tickets", tickets, "tickets in the log (two events each)");
  app.add_option("--dir", dir, "scratch directory");
  std::optional<std::size_t> catch_up_batch;
  app.add_option("--catch-up-batch", catch_up_batch,
                 "largest batch while catching up (default: the runner's; 0: max_batch)");
  CLI11_PARSE(app, argc, argv);
  std::filesystem::remove_all(dir);

  auto log = events::open_embedded_log({dir + "/log", false});
  if (!log) return 1;
  std::vector<events::StreamAppend> batch;
  for (int i = 0; i < tickets; ++i) {
    const std::string id = "bench-" + std::to_string(i);
    const std::string user = "user-" + std::to_string(i % 1000);
    auto draft = events::testing::draft_event(id, 200);
    std::get<events::TicketDraftSaved>(draft.payload).emitter_user_id = user;
    draft.meta.occurred_at_us += i;
    auto submit = draft;
    submit.payload = events::TicketSubmitted{
        id, "SOL-" + id, user, "s", "Technique", "Connexion", "Titre", std::string(200, 'x')};
    batch.push_back({"ticket-" + id, 0, {draft, submit}});
    if (batch.size() == 1000) {
      if (!(*log)->append(batch)) return 1;
      batch.clear();
    }
  }
  const double events_total = 2.0 * tickets;

  projections::TicketViews views;
  auto runner = projections::Runner::open(**log, dir + "/views-run", {&views});
  if (!runner) return 1;
  if (catch_up_batch) (*runner)->catch_up_batch = *catch_up_batch;
  std::vector<std::string> recorded;
  (*runner)->batch_observer = [&](std::string_view rep) { recorded.emplace_back(rep); };
  const auto t0 = Clock::now();
  std::uint64_t batches = 0;
  while (true) {
    auto n = (*runner)->step(std::chrono::milliseconds(0));
    if (!n || *n == 0) break;
    ++batches;
  }
  const double ours_s = std::chrono::duration<double>(Clock::now() - t0).count();

  auto raw = projections::ViewStore::open(dir + "/raw");
  if (!raw) return 1;
  std::size_t operations = 0;
  const auto t1 = Clock::now();
  for (const auto& rep : recorded) {
    rocksdb::WriteBatch wb(rep);
    operations += wb.Count();
    rocksdb::WriteOptions wo;
    wo.sync = false;
    if (!(*raw)->db()->Write(wo, &wb).ok()) return 1;
  }
  const double raw_s = std::chrono::duration<double>(Clock::now() - t1).count();
  raw->reset();

  std::printf("projection apply: %.0f events/s (%.0f events in %.2f s, %llu batches)\n",
              events_total / ours_s, events_total, ours_s,
              static_cast<unsigned long long>(batches));
  std::printf("raw WriteBatch replay of the same %zu writes: %.2f s, i.e. %.0f events/s\n",
              operations, raw_s, events_total / raw_s);
  std::printf("ratio: %.1f%% of raw\n", 100.0 * raw_s / ours_s);
  runner->reset();
  log->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
