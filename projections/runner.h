#pragma once
// The projection runner: follows the log and applies each event to the views. The view
// changes of a batch of events and the runner's log position are one RocksDB WriteBatch, so a
// crash at any point neither applies an event twice nor skips one.
//
// Views live in data_dir/views/<generation>; data_dir/views/CURRENT names the live one.
// rebuild() fills a fresh generation from position zero while the live one keeps serving,
// then swaps it in.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "events/event_log.h"
#include "projections/projector.h"
#include "projections/view_store.h"

namespace chorus::projections {

struct RunnerStats {
  std::uint64_t events_applied = 0;
  std::uint64_t events_set_aside = 0;  // poison events
  std::uint64_t batches = 0;
  std::int64_t last_applied_at_us = 0;  // occurred-at time of the last event applied (live)
  // View rebuilds (reconstruction des vues), for operators watching one run.
  bool rebuilding = false;
  std::uint64_t rebuild_events_applied = 0;    // by the running rebuild, or the last one
  std::uint64_t rebuild_events_remaining = 0;  // between it and the live views; 0 when idle
  std::uint64_t rebuilds_completed = 0;
  std::uint64_t rebuilds_failed = 0;  // including those stopped by shutdown
};

class Runner {
 public:
  // Opens the live generation under data_dir/views (creating generation 1 when none). A live
  // generation written under another layout than kViewsLayout (view_store.h) is replaced by an
  // empty one, which catches up from position zero as the runner runs; see
  // replaced_stale_layout(). One whose position lies past the end of an embedded log (the log
  // lost acknowledged events: a damaged write-ahead log read as a torn tail, or recovered by
  // dropping its tail) fails the open with views_ahead_of_log, leaving everything as it was,
  // unless `replace_views_ahead_of_log` (the operator accepted the loss): then it is replaced as
  // well; see replaced_ahead_of_log(). `projectors` must outlive the runner. Fails with
  // io_error, log_error or views_ahead_of_log.
  [[nodiscard]] static Result<std::unique_ptr<Runner>> open(
      events::EventLog& log, std::string data_dir, std::vector<Projector*> projectors,
      bool replace_views_ahead_of_log = false);
  ~Runner();

  // Polls the log once (waiting up to `wait` when nothing is new), applies up to max_batch
  // events (more while catching up: see catch_up_batch) and commits them with the new
  // position. Returns how many events were consumed (applied or set aside: an event a projector
  // cannot apply, or whose projector throws). On failure (the store, the log, or a projector's
  // finish() failing or throwing) nothing of the batch is committed, and the next step reads the
  // same events again (at most max_batch of them). Never throws but bad_alloc. Thread-safe, but
  // meant for one runner thread.
  [[nodiscard]] Result<std::size_t> step(std::chrono::milliseconds wait);

  // Runs step() until `stop` is requested; failures are retried after a pause.
  void run(std::stop_token stop);

  // Waits until the views cover `position` (a consistency token). Fails with timeout.
  // Thread-safe.
  [[nodiscard]] Result<void> wait_for(const events::LogPosition& position,
                                      std::chrono::milliseconds timeout);

  // Rebuilds every view from position zero into a new generation while the live one serves,
  // then swaps it in and drops the old one. On success the live views are the fresh ones.
  // Fails with invalid_argument when a rebuild is already running, cancelled when `stop` is
  // requested first, io_error or log_error; on any failure the live views stay as they were
  // and keep being updated (the half-built generation is left on disk and overwritten by the
  // next rebuild). Thread-safe (runs beside run()).
  [[nodiscard]] Result<void> rebuild(std::stop_token stop = {});

  // Starts rebuild() on the runner's own background thread and returns at once; progress and
  // outcome are in stats(). Fails with invalid_argument, changing nothing, when a rebuild is
  // already running. The runner's destructor stops a running rebuild and waits for it.
  // Thread-safe.
  [[nodiscard]] Result<void> start_rebuild();

  // The live store; hold the pointer for the duration of one query. Thread-safe.
  [[nodiscard]] std::shared_ptr<const ViewStore> store() const;
  [[nodiscard]] events::LogPosition applied() const;
  [[nodiscard]] RunnerStats stats() const;
  // Whether open() replaced a live generation of another layout (the views are then catching
  // up from position zero), for the server to say so at start. Thread-safe.
  [[nodiscard]] bool replaced_stale_layout() const { return replaced_stale_layout_; }
  // Whether open() replaced a live generation that had applied events past the end of the
  // (embedded) log, for the server to say so at start. Thread-safe.
  [[nodiscard]] bool replaced_ahead_of_log() const { return replaced_ahead_of_log_; }

  // Events per batch: live, and while a rebuild catches up (no reader waits on its batches,
  // and the bigger a batch, the more of a ticket's events fold into one move between lists
  // and one write per row: the rebuild's last stretch, with the live runner paused, goes by
  // max_batch). A rebuild batch holds its rows in memory until it commits, twice at the commit
  // (the folded WriteBatch beside them): on replay_bench's 10M-event log, 100,000 events make
  // about 1.5M rows (a few hundred MB), and rebuild 1.7 times as fast as batches of 20,000
  // (which wrote 1.7 times as many rows). A stopped rebuild stops between two batches: up to
  // about 10 s at its rate there.
  std::size_t max_batch = 1000;
  std::size_t rebuild_batch = 100000;
  // Events per live batch while the live views are behind (after a start on a replaced
  // layout, or a long stop): each step that fills its batch doubles the next one, up to this;
  // a step that finds nothing new (the log's end reached) or fails goes back to max_batch; a
  // short one keeps the size (on Kafka a poll hands out what the client has fetched). A
  // catch-up then folds as a rebuild does, instead of going by max_batch. The views it serves
  // meanwhile move a batch (seconds) at a time instead of continuously; what a command just
  // appended waits behind the whole catch-up either way. A stop takes effect between two
  // batches, as a rebuild's does. At most max_batch means no growth.
  std::size_t catch_up_batch = 100000;

  // Called with the bytes of every WriteBatch the live runner commits (rocksdb::WriteBatch's
  // representation), so a benchmark can replay exactly the same writes as its raw baseline.
  // Set before stepping; not thread-safe.
  std::function<void(std::string_view)> batch_observer;

 private:
  Runner(events::EventLog& log, std::string data_dir, std::vector<Projector*> projectors);
  struct Generation;
  [[nodiscard]] static Result<std::unique_ptr<Generation>> open_generation(events::EventLog& log,
                                                                           const std::string& dir);
  [[nodiscard]] Result<std::size_t> step_generation(Generation& g, std::chrono::milliseconds wait,
                                                    std::size_t max_events);
  // The rebuild proper, once rebuilding_ has been claimed; clears it when done.
  [[nodiscard]] Result<void> run_claimed_rebuild(std::stop_token stop);
  [[nodiscard]] Result<void> rebuild_generation(std::stop_token stop);

  events::EventLog& log_;
  std::string data_dir_;
  std::vector<Projector*> projectors_;

  std::atomic<bool> rebuilding_{false};  // one rebuild at a time
  std::mutex mu_;                        // serializes steps and the swap of live_
  std::unique_ptr<Generation> live_;
  std::size_t live_batch_ = 0;   // the next live step's batch (0: max_batch); guarded by mu_
  mutable std::mutex store_mu_;  // guards live_store_; never held while polling the log
  std::shared_ptr<const ViewStore> live_store_;
  std::uint64_t generation_number_ = 0;
  bool replaced_stale_layout_ = false;  // set by open() only
  bool replaced_ahead_of_log_ = false;  // set by open() only

  mutable std::mutex applied_mu_;
  std::condition_variable applied_cv_;
  events::LogPosition applied_;

  std::atomic<std::uint64_t> applied_count_{0};
  std::atomic<std::uint64_t> set_aside_count_{0};
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::int64_t> last_applied_at_us_{0};

  events::LogPosition rebuild_position_;  // guarded by applied_mu_
  std::atomic<std::uint64_t> rebuild_applied_{0};
  std::atomic<std::uint64_t> rebuilds_completed_{0};
  std::atomic<std::uint64_t> rebuilds_failed_{0};
  std::mutex background_mu_;  // guards background_
  // Last member: destroyed (stopped and joined) before anything a rebuild uses.
  std::jthread background_;
};

}  // namespace chorus::projections
