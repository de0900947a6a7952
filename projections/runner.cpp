#include "projections/runner.h"

#include <rocksdb/db.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "events/codec.h"

namespace chorus::projections {

struct Runner::Generation {
  std::shared_ptr<ViewStore> store;
  std::unique_ptr<events::LogCursor> cursor;
  std::vector<events::RecordedEvent> buffer;
  std::int64_t last_occurred_at_us = 0;  // of the last event its last step applied
  bool layout_matches = true;            // written under kViewsLayout
  // Where a batch that failed after its poll started: the cursor had moved past its events,
  // which the next step reads again from here.
  std::optional<events::LogPosition> rewind;
  // The lists' fences, read once and kept in step by every committed batch (a fence key is
  // about 1 in 64 list rows: a million keys cover lists of some 64 million rows).
  KeySetCache key_sets{1 << 20};
};

namespace {

std::string generation_dir(const std::string& data_dir, std::uint64_t n) {
  return data_dir + "/views/" + std::to_string(n);
}

Result<void> write_current(const std::string& data_dir, std::uint64_t n) {
  const std::string tmp = data_dir + "/views/CURRENT.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << n << "\n";
    out.flush();
    if (!out) return fail(errc::io_error, "writing " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, data_dir + "/views/CURRENT", ec);
  if (ec) return fail(errc::io_error, "renaming " + tmp + ": " + ec.message());
  return {};
}

}  // namespace

Runner::Runner(events::EventLog& log, std::string data_dir, std::vector<Projector*> projectors)
    : log_(log), data_dir_(std::move(data_dir)), projectors_(std::move(projectors)) {}

Runner::~Runner() = default;

Result<std::unique_ptr<Runner::Generation>> Runner::open_generation(events::EventLog& log,
                                                                    const std::string& dir) {
  auto store = ViewStore::open(dir);
  if (!store) return std::unexpected(store.error());
  auto token = (*store)->position();
  if (!token) return std::unexpected(token.error());
  auto layout = (*store)->get(kLayoutKey);
  if (!layout) return std::unexpected(layout.error());
  bool layout_matches = layout->has_value() && **layout == kViewsLayout;
  const bool created = token->empty() && !layout->has_value();
  if (created) {
    // A new store: it is written under this build's layout from its first row on.
    rocksdb::WriteOptions sync;
    sync.sync = true;
    auto s = (*store)->db()->Put(sync, rocksdb::Slice(kLayoutKey.data(), kLayoutKey.size()),
                                 rocksdb::Slice(kViewsLayout.data(), kViewsLayout.size()));
    if (!s.ok()) return fail(errc::io_error, "recording the views layout: " + s.ToString());
    layout_matches = true;
  }
  events::LogPosition from;
  if (!token->empty()) {
    auto parsed = events::LogPosition::from_token(*token);
    if (!parsed) return fail(errc::io_error, "stored view position is malformed: " + *token);
    from = *parsed;
  }
  auto cursor = log.follow(from);
  if (!cursor) return fail(errc::log_error, cursor.error().message);
  auto g = std::make_unique<Generation>();
  g->store = std::move(*store);
  g->cursor = std::move(*cursor);
  g->layout_matches = layout_matches;
  if (created) g->key_sets.assume_empty_store();
  return g;
}

Result<std::unique_ptr<Runner>> Runner::open(events::EventLog& log, std::string data_dir,
                                             std::vector<Projector*> projectors,
                                             bool replace_views_ahead_of_log) {
  std::unique_ptr<Runner> runner(new Runner(log, data_dir, std::move(projectors)));
  std::error_code ec;
  std::filesystem::create_directories(data_dir + "/views", ec);
  if (ec) return fail(errc::io_error, "creating " + data_dir + "/views: " + ec.message());
  std::uint64_t n = 1;
  if (std::ifstream in(data_dir + "/views/CURRENT"); in) {
    in >> n;
  } else if (auto ok = write_current(data_dir, n); !ok) {
    return std::unexpected(ok.error());
  }
  auto g = open_generation(log, generation_dir(data_dir, n));
  if (!g) return std::unexpected(g.error());
  // Views past the end of a log whose end is every write's (EventLog::end_covers_every_write):
  // the log lost events (a damaged write-ahead log recovered by dropping its tail, RUNBOOK.md),
  // and the events appended from now on would take offsets the views count as applied, and
  // never be applied. On Kafka another server may have written what this one has not read yet.
  // On Kafka, views past every write of the topic (its high watermarks) belong to another
  // topic, or to this one before it was deleted and created again: served, they would show
  // another log's tickets and take this log's consistency tokens for already applied.
  bool ahead_of_log = false;
  const events::LogPosition applied = (*g)->cursor->position();
  if (log.end_covers_every_write()) {
    auto end = log.end();
    if (!end) return fail(errc::log_error, end.error().message);
    ahead_of_log = !end->covers(applied);
    if (ahead_of_log && !replace_views_ahead_of_log) {
      return fail(errc::views_ahead_of_log, "the views have applied events up to position " +
                                                applied.to_token() +
                                                ", past the end of the log at " + end->to_token() +
                                                ": the log lost acknowledged events");
    }
  } else if (log.kind() == "kafka" &&
             std::ranges::any_of(applied.next, [](std::uint64_t next) { return next > 0; })) {
    // (A view of a log, such as the replay tool's prefix, cannot tell, and is only ever opened
    // with empty views.)
    auto covered = log.covered_by_writes(applied, std::chrono::seconds(30));
    if (!covered) return fail(errc::log_error, covered.error().message);
    ahead_of_log = !*covered;
    if (ahead_of_log && !replace_views_ahead_of_log) {
      return fail(errc::views_ahead_of_log,
                  "the views have applied events up to position " + applied.to_token() +
                      ", past every write of the log: they are another log's (another topic, "
                      "or this one deleted and created again), or the log lost acknowledged "
                      "events");
    }
  }
  if (!(*g)->layout_matches || ahead_of_log) {
    // Rows of another layout would be misread and extended wrongly, rows of events the log no
    // longer holds would stay: an empty generation takes over and catches up from position
    // zero, as after a first start.
    g->reset();
    const std::string stale = generation_dir(data_dir, n);
    ++n;
    std::filesystem::remove_all(generation_dir(data_dir, n), ec);
    g = open_generation(log, generation_dir(data_dir, n));
    if (!g) return std::unexpected(g.error());
    if (auto ok = write_current(data_dir, n); !ok) return std::unexpected(ok.error());
    std::filesystem::remove_all(stale, ec);
    (ahead_of_log ? runner->replaced_ahead_of_log_ : runner->replaced_stale_layout_) = true;
  }
  runner->generation_number_ = n;
  runner->applied_ = (*g)->cursor->position();
  runner->live_store_ = (*g)->store;
  runner->live_ = std::move(*g);
  return runner;
}

Result<std::size_t> Runner::step_generation(Generation& g, std::chrono::milliseconds wait,
                                            std::size_t max_events) {
  if (g.rewind) {
    auto cursor = log_.follow(*g.rewind);
    if (!cursor) return fail(errc::log_error, cursor.error().message);
    g.cursor = std::move(*cursor);
    g.rewind.reset();
  }
  const events::LogPosition from = g.cursor->position();
  g.buffer.clear();
  auto polled = g.cursor->poll(g.buffer, max_events, wait);
  if (!polled) return fail(errc::log_error, polled.error().message);
  if (g.buffer.empty()) return 0;
  // From here on, a failure leaves the batch's events to the next step: none is skipped.
  auto failed = [&](Error e) -> Result<std::size_t> {
    g.rewind = from;
    return std::unexpected(std::move(e));
  };

  ViewBatch batch(*g.store, &g.key_sets);
  events::LogPosition position = g.cursor->position();
  std::uint64_t set_aside = 0;
  for (const auto& recorded : g.buffer) {
    batch.set_save_point();
    auto event = events::decode(recorded.bytes);
    std::string reason;
    if (!event) {
      reason = event.error().message;
    } else {
      g.last_occurred_at_us = event->meta.occurred_at_us;
      for (auto* p : projectors_) {
        // A projector throws only on a bug or on data it did not foresee (a library's
        // exception). Either would throw again at the same event on every start: the event is
        // set aside like any other that cannot be applied, with what was thrown, and the log
        // goes on. Out of memory says nothing of the event: the batch fails and is retried.
        Result<void> ok;
        try {
          ok = p->apply(*event, recorded.address, batch);
        } catch (const std::bad_alloc&) {
          return failed(Error{errc::io_error, "out of memory applying an event"});
        } catch (const std::exception& e) {
          ok = fail(errc::poison, std::string("applying it threw: ") + e.what());
        }
        if (!ok) {
          // Only an event that cannot be applied is set aside: a store that failed to read
          // says nothing of the event, which the next step applies again.
          if (ok.error().code != errc::poison) return failed(ok.error());
          reason = ok.error().message;
          break;
        }
      }
    }
    if (!reason.empty()) {
      // A poison event: its changes go, a record of it stays; the log goes on.
      batch.rollback_to_save_point();
      const events::LogPosition at{{recorded.address.partition, recorded.address.offset}};
      batch.put(std::string(kSetAsidePrefix) + std::to_string(recorded.address.partition) + ":" +
                    std::to_string(recorded.address.offset),
                recorded.stream_id + " v" + std::to_string(recorded.version) + ": " + reason);
      ++set_aside;
    }
  }
  for (auto* p : projectors_) {
    // What finish() does belongs to no one event: a throw fails the batch, which is retried
    // (and keeps failing, with the views behind and saying so, rather than the process dying).
    Result<void> ok;
    try {
      ok = p->finish(batch);
    } catch (const std::exception& e) {
      ok = fail(errc::io_error, std::string("finishing a batch threw: ") + e.what());
    }
    if (!ok) return failed(ok.error());
  }
  batch.put(kPositionKey, position.to_token());
  rocksdb::WriteOptions wo;
  // The log is the durable truth: after a machine crash the views replay from their last
  // persisted position, so they need no sync of their own.
  wo.sync = false;
  auto folded = batch.folded();
  if (!folded) return failed(folded.error());
  auto s = g.store->db()->Write(wo, &*folded);
  if (!s.ok()) return failed(Error{errc::io_error, "writing views: " + s.ToString()});
  batch.commit_key_sets();
  if (batch_observer) batch_observer(folded->Data());
  set_aside_count_ += set_aside;
  return g.buffer.size();
}

Result<std::size_t> Runner::step(std::chrono::milliseconds wait) {
  std::lock_guard lock(mu_);
  const std::size_t batch = std::clamp(live_batch_, max_batch, std::max(max_batch, catch_up_batch));
  auto n = step_generation(*live_, wait, batch);
  // A short batch says nothing of the log's end on Kafka (a poll hands out what the client has
  // fetched): only an empty poll (or a failure) goes back to max_batch.
  if (!n || *n == 0) {
    live_batch_ = max_batch;
  } else if (*n == batch) {
    live_batch_ = batch * 2;
  }
  if (n && *n > 0) {
    // Only the live generation's: a rebuild's old events would fake a lag in seconds.
    last_applied_at_us_.store(live_->last_occurred_at_us, std::memory_order_relaxed);
    applied_count_ += *n;
    ++batches_;
    {
      std::lock_guard applied_lock(applied_mu_);
      applied_ = live_->cursor->position();
    }
    applied_cv_.notify_all();
  }
  return n;
}

void Runner::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    auto n = step(std::chrono::milliseconds(100));
    if (!n) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Result<void> Runner::wait_for(const events::LogPosition& position,
                              std::chrono::milliseconds timeout) {
  std::unique_lock lock(applied_mu_);
  if (applied_cv_.wait_for(lock, timeout, [&] { return applied_.covers(position); })) return {};
  return fail(errc::timeout, "views at " + applied_.to_token() + " have not reached " +
                                 position.to_token() + " yet");
}

Result<void> Runner::start_rebuild() {
  std::lock_guard lock(background_mu_);
  if (rebuilding_.exchange(true)) {
    return fail(errc::invalid_argument, "a rebuild is already running");
  }
  // The previous background rebuild has finished (the flag was clear): joining does not wait.
  if (background_.joinable()) background_.join();
  background_ = std::jthread([this](std::stop_token stop) { (void)run_claimed_rebuild(stop); });
  return {};
}

Result<void> Runner::rebuild(std::stop_token stop) {
  if (rebuilding_.exchange(true)) {
    return fail(errc::invalid_argument, "a rebuild is already running");
  }
  return run_claimed_rebuild(stop);
}

Result<void> Runner::run_claimed_rebuild(std::stop_token stop) {
  rebuild_applied_ = 0;
  {
    std::lock_guard lock(applied_mu_);
    rebuild_position_ = {};
  }
  auto outcome = rebuild_generation(stop);
  ++(outcome ? rebuilds_completed_ : rebuilds_failed_);
  rebuilding_ = false;
  return outcome;
}

Result<void> Runner::rebuild_generation(std::stop_token stop) {
  std::uint64_t next_number;
  {
    std::lock_guard lock(mu_);
    next_number = generation_number_ + 1;
  }
  const std::string dir = generation_dir(data_dir_, next_number);
  std::filesystem::remove_all(dir);
  auto fresh = open_generation(log_, dir);
  if (!fresh) return std::unexpected(fresh.error());
  // Catch up without the lock: the live generation keeps applying and serving meanwhile.
  while (!(*fresh)->cursor->position().covers(applied())) {
    if (stop.stop_requested()) return fail(errc::cancelled, "the rebuild was stopped");
    auto n = step_generation(**fresh, std::chrono::milliseconds(100), rebuild_batch);
    if (!n) return std::unexpected(n.error());
    rebuild_applied_ += *n;
    std::lock_guard lock(applied_mu_);
    rebuild_position_ = (*fresh)->cursor->position();
  }
  std::unique_ptr<Generation> old;
  {
    std::lock_guard lock(mu_);
    // The live runner is paused: finish the last stretch, then swap.
    while (!(*fresh)->cursor->position().covers(live_->cursor->position())) {
      auto n = step_generation(**fresh, std::chrono::milliseconds(0), max_batch);
      if (!n) return std::unexpected(n.error());
      rebuild_applied_ += *n;
    }
    if (auto ok = write_current(data_dir_, next_number); !ok) return ok;
    old = std::move(live_);
    live_ = std::move(*fresh);
    {
      std::lock_guard store_lock(store_mu_);
      live_store_ = live_->store;
    }
    generation_number_ = next_number;
    // The fresh generation may have read past the old one in its last stretch: what it applied
    // is what the views now cover, even if no event comes after.
    std::lock_guard applied_lock(applied_mu_);
    applied_ = live_->cursor->position();
  }
  applied_cv_.notify_all();
  const std::string old_dir = old->store->dir();
  old->cursor.reset();
  std::weak_ptr<ViewStore> old_store = old->store;
  old.reset();
  // Queries may still hold the old store for a moment; its files go once they let go.
  for (int i = 0; i < 100 && !old_store.expired(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (old_store.expired()) std::filesystem::remove_all(old_dir);
  return {};
}

std::shared_ptr<const ViewStore> Runner::store() const {
  std::lock_guard lock(store_mu_);
  return live_store_;
}

events::LogPosition Runner::applied() const {
  std::lock_guard lock(applied_mu_);
  return applied_;
}

RunnerStats Runner::stats() const {
  RunnerStats s;
  s.events_applied = applied_count_.load();
  s.events_set_aside = set_aside_count_.load();
  s.batches = batches_.load();
  s.last_applied_at_us = last_applied_at_us_.load();
  s.rebuilding = rebuilding_.load();
  s.rebuild_events_applied = rebuild_applied_.load();
  s.rebuilds_completed = rebuilds_completed_.load();
  s.rebuilds_failed = rebuilds_failed_.load();
  if (s.rebuilding) {
    std::lock_guard lock(applied_mu_);
    s.rebuild_events_remaining = rebuild_position_.distance_to(applied_);
  }
  return s;
}

}  // namespace chorus::projections
