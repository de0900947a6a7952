#include "projections/folded_rebuild.h"

#include <rocksdb/db.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <utility>

#include "events/codec.h"
#include "projections/standard_views.h"
#include "projections/ticket_fold.h"
#include "projections/view_store.h"

namespace chorus::projections {
namespace {

// Events per batch of the other views, as a runner's rebuild batches (Runner::rebuild_batch).
constexpr std::size_t kBatchEvents = 100000;

// The fold's final rows as one SST file per stream, ingested at the end: no memtable, no
// write-ahead log, no compaction (the streams' key ranges overlap nothing, so the files go to
// the bottom level as they are). Streams are independent: two threads may write two.
class SstSink final : public SortedRowSink {
 public:
  SstSink(rocksdb::DB& db, std::string dir)
      : db_(db), dir_(std::move(dir)), streams_(TicketFold::kStreams + OutboxFold::kStreams) {}

  Result<void> add(unsigned stream, std::string_view key, std::string_view value) override {
    if (stream >= streams_.size()) return fail(errc::invalid_argument, "no such stream");
    auto& st = streams_[stream];
    if (!st.writer) {
      st.writer = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(), db_.GetOptions());
      st.path = dir_ + "/folded-" + std::to_string(stream) + ".sst";
      if (auto s = st.writer->Open(st.path); !s.ok()) {
        return fail(errc::io_error, "opening " + st.path + ": " + s.ToString());
      }
    }
    if (auto s = st.writer->Put(rocksdb::Slice(key.data(), key.size()),
                                rocksdb::Slice(value.data(), value.size()));
        !s.ok()) {
      return fail(errc::io_error, "writing a folded row: " + s.ToString());
    }
    ++st.rows;
    return {};
  }

  // Closes the files and moves them into the store.
  Result<void> ingest() {
    std::vector<std::string> paths;
    for (auto& st : streams_) {
      if (!st.writer) continue;
      if (auto s = st.writer->Finish(); !s.ok()) {
        return fail(errc::io_error, "finishing folded rows: " + s.ToString());
      }
      paths.push_back(st.path);
    }
    if (paths.empty()) return {};
    rocksdb::IngestExternalFileOptions options;
    options.move_files = true;
    if (auto s = db_.IngestExternalFile(paths, options); !s.ok()) {
      return fail(errc::io_error, "ingesting folded rows: " + s.ToString());
    }
    return {};
  }

  std::uint64_t rows() const {
    std::uint64_t n = 0;
    for (const auto& st : streams_) n += st.rows;
    return n;
  }

 private:
  struct Stream {
    std::unique_ptr<rocksdb::SstFileWriter> writer;
    std::string path;
    std::uint64_t rows = 0;
  };
  rocksdb::DB& db_;
  std::string dir_;
  std::vector<Stream> streams_;
};

// Reads and decodes the log a batch ahead, on a thread of its own, while the caller applies
// the batch before (reading and decoding were a fifth of the rebuild's time). As replay's
// walk_log, two slots go round and the reader empties each before filling it again: the
// events' memory is freed by the thread that allocated it, where glibc's malloc is fast.
class ReadAhead {
 public:
  struct Slot {
    std::vector<events::RecordedEvent> recorded;
    std::vector<events::Result<events::Event>> decoded;  // one per recorded event
    Result<void> status;                                 // a failed read: the log's error
  };

  // Reads `cursor` until it covers `end`, or nothing new comes for a second.
  ReadAhead(events::LogCursor& cursor, events::LogPosition end)
      : cursor_(cursor), end_(std::move(end)), slots_(2) {
    for (auto& s : slots_) spare_.push_back(&s);
    reader_ = std::thread([this] { run(); });
  }
  ~ReadAhead() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    reader_.join();
  }
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // The next batch, valid until the next call; null at the end. A slot whose status failed
  // ends the reading.
  Slot* next() {
    std::unique_lock lock(mu_);
    if (held_ != nullptr) spare_.push_back(std::exchange(held_, nullptr));
    cv_.notify_all();
    cv_.wait(lock, [&] { return !full_.empty() || done_; });
    if (full_.empty()) return nullptr;
    held_ = full_.front();
    full_.pop_front();
    return held_;
  }

 private:
  void run() {
    int idle = 0;
    for (;;) {
      Slot* slot;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !spare_.empty(); });
        if (stop_) break;
        slot = spare_.front();
        spare_.pop_front();
      }
      slot->recorded.clear();
      slot->decoded.clear();
      slot->status = {};
      if (cursor_.position().covers(end_) || idle >= 10) break;
      try {
        auto polled = cursor_.poll(slot->recorded, kBatchEvents, std::chrono::milliseconds(100));
        if (!polled) {
          slot->status = fail(errc::log_error, polled.error().message);
        } else {
          slot->decoded.reserve(slot->recorded.size());
          for (const auto& r : slot->recorded) slot->decoded.push_back(events::decode(r.bytes));
        }
      } catch (const std::bad_alloc&) {
        slot->recorded.clear();
        slot->decoded.clear();
        slot->status = fail(errc::io_error, "out of memory reading the log");
      } catch (const std::exception& e) {  // a library's: fails the rebuild, not the process
        slot->recorded.clear();
        slot->decoded.clear();
        slot->status = fail(errc::log_error, std::string("reading the log threw: ") + e.what());
      }
      const bool failed = !slot->status;
      const bool empty = slot->recorded.empty();
      idle = empty ? idle + 1 : 0;
      std::lock_guard lock(mu_);
      (empty && !failed ? spare_ : full_).push_back(slot);
      cv_.notify_all();
      if (failed) break;
    }
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_all();
  }

  events::LogCursor& cursor_;
  const events::LogPosition end_;
  std::vector<Slot> slots_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Slot*> spare_, full_;
  Slot* held_ = nullptr;
  bool stop_ = false, done_ = false;
  std::thread reader_;
};

std::string set_aside_key(const events::LogAddress& at) {
  return std::string(kSetAsidePrefix) + std::to_string(at.partition) + ":" +
         std::to_string(at.offset);
}

}  // namespace

Result<FoldedRebuild> rebuild_folded(
    events::EventLog& log, const std::string& dir,
    const std::function<void(std::uint64_t done, std::uint64_t total)>& progress) {
  std::error_code ec;
  if (std::filesystem::exists(dir + "/CURRENT", ec)) {
    return fail(errc::invalid_argument, dir + " holds a store already");
  }
  auto opened = ViewStore::open(dir);
  if (!opened) return std::unexpected(opened.error());
  ViewStore& store = **opened;
  rocksdb::DB& db = *store.db();
  // Nobody reads the store before the end, and a rebuild that stops is thrown away: no
  // write-ahead log, a flush at the end instead.
  rocksdb::WriteOptions unlogged;
  unlogged.disableWAL = true;
  auto write = [&](rocksdb::WriteBatch& b) -> Result<void> {
    if (b.Count() == 0) return {};
    if (auto s = db.Write(unlogged, &b); !s.ok()) {
      return fail(errc::io_error, "writing views: " + s.ToString());
    }
    return {};
  };
  {
    rocksdb::WriteBatch layout;
    (void)layout.Put(rocksdb::Slice(kLayoutKey.data(), kLayoutKey.size()),
                     rocksdb::Slice(kViewsLayout.data(), kViewsLayout.size()));
    if (auto r = write(layout); !r) return std::unexpected(r.error());
  }

  auto end = log.end();
  if (!end) return fail(errc::log_error, end.error().message);
  std::uint64_t total = 0;
  for (auto n : end->next) total += n;
  auto cursor = log.follow({});
  if (!cursor) return fail(errc::log_error, cursor.error().message);

  // The tickets and the outbox are folded; every other standard view is applied as the runner
  // applies it, all in the standard order (the outbox, after the tickets, asks the ticket fold
  // for emitters).
  StandardViews views;
  const std::vector<Projector*> standard = views.list();
  TicketFold fold;
  OutboxFold outbox;
  const OutboxFold::Emitters emitters =
      [&](const std::string& ticket_id) -> Result<std::optional<TicketEmitter>> {
    return fold.emitter(ticket_id);
  };
  std::vector<Projector*> others;
  for (Projector* p : standard) {
    if (p != &views.tickets && p != &views.outbox) others.push_back(p);
  }

  FoldedRebuild out;
  KeySetCache key_sets(1 << 20);
  key_sets.assume_empty_store();
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point& t) {
    const auto now = Clock::now();
    const double s = std::chrono::duration<double>(now - t).count();
    t = now;
    return s;
  };
  auto& took = out.seconds;
  auto t = Clock::now();
  {
    ReadAhead reader(**cursor, *end);
    for (;;) {
      ReadAhead::Slot* next = reader.next();
      took.reading += since(t);
      if (next == nullptr) break;
      if (!next->status) return std::unexpected(next->status.error());
      const auto& buffer = next->recorded;
      ViewBatch batch(store, &key_sets);
      for (std::size_t i = 0; i < buffer.size(); ++i) {
        const auto& recorded = buffer[i];
        auto& event = next->decoded[i];
        batch.set_save_point();
        std::string reason;
        if (!event) {
          reason = event.error().message;
        } else {
          // As Runner::step_generation: a throw sets the event aside, out of memory fails.
          auto guarded = [&](auto&& apply) -> Result<void> {
            try {
              return apply();
            } catch (const std::bad_alloc&) {
              return fail(errc::io_error, "out of memory applying an event");
            } catch (const std::exception& e) {
              return fail(errc::poison, std::string("applying it threw: ") + e.what());
            }
          };
          Result<void> ok;
          for (auto p = standard.begin(); ok && p != standard.end(); ++p) {
            if (*p == &views.tickets) {
              ok = guarded([&]() -> Result<void> {
                auto staged = fold.stage(*event);
                if (!staged) return std::unexpected(staged.error());
                return {};
              });
              took.tickets += since(t);
            } else if (*p == &views.outbox) {
              ok = guarded([&] { return outbox.stage(*event, emitters); });
              took.other_views += since(t);
            } else {
              ok = guarded([&] { return (*p)->apply(*event, recorded.address, batch); });
              took.other_views += since(t);
            }
          }
          if (!ok && ok.error().code != errc::poison) return std::unexpected(ok.error());
          if (!ok) reason = ok.error().message;
        }
        if (reason.empty()) {
          fold.commit();
          outbox.commit();
          took.tickets += since(t);
        } else {
          fold.drop();
          outbox.drop();
          batch.rollback_to_save_point();
          batch.put(set_aside_key(recorded.address),
                    recorded.stream_id + " v" + std::to_string(recorded.version) + ": " + reason);
          ++out.set_aside;
        }
      }
      for (auto* p : others) {
        Result<void> ok;
        try {
          ok = p->finish(batch);
        } catch (const std::exception& e) {
          ok = fail(errc::io_error, std::string("finishing a batch threw: ") + e.what());
        }
        if (!ok) return std::unexpected(ok.error());
      }
      auto folded = batch.folded();
      if (!folded) return std::unexpected(folded.error());
      took.other_views += since(t);
      if (auto r = write(*folded); !r) return std::unexpected(r.error());
      batch.commit_key_sets();
      took.writing += since(t);
      out.events += buffer.size();
      if (progress) progress(out.events, total);
    }
  }  // the reader is joined: the cursor is this thread's again

  since(t);
  // The two halves of the final rows write different streams: one on another thread.
  SstSink sink(db, dir);
  auto ticket_rows = std::async(std::launch::async, [&] {
    try {
      auto half = Clock::now();
      auto done = fold.write_ticket_rows(sink);
      if (done) done = fold.write_term_bitmaps(sink);
      if (done) done = outbox.write_rows(sink, TicketFold::kStreams);
      took.final_rows_tickets = since(half);
      return done;
    } catch (const std::bad_alloc&) {
      return Result<void>(fail(errc::io_error, "out of memory writing the views"));
    } catch (const std::exception& e) {
      return Result<void>(
          fail(errc::io_error, std::string("writing the views threw: ") + e.what()));
    }
  });
  Result<void> list_rows;
  try {
    auto half = Clock::now();
    // The lists alone on this thread: the halves then take about as long (replay_bench, whole
    // log: tickets' rows 29.3 s with their bitmaps, lists 33.7 s, the outbox 24 s).
    list_rows = fold.write_list_rows(sink);
    took.final_rows_lists = since(half);
  } catch (const std::bad_alloc&) {
    list_rows = fail(errc::io_error, "out of memory writing the views");
  } catch (const std::exception& e) {
    list_rows = fail(errc::io_error, std::string("writing the views threw: ") + e.what());
  }
  auto ticket_rows_done = ticket_rows.get();
  if (!list_rows) return std::unexpected(list_rows.error());
  if (!ticket_rows_done) return std::unexpected(ticket_rows_done.error());
  took.final_rows = since(t);
  if (auto r = sink.ingest(); !r) return std::unexpected(r.error());
  out.reached = (*cursor)->position();
  if (out.events > 0) {  // as a runner, which records a position with its first batch
    rocksdb::WriteBatch position;
    const std::string token = out.reached.to_token();
    (void)position.Put(rocksdb::Slice(kPositionKey.data(), kPositionKey.size()), token);
    if (auto r = write(position); !r) return std::unexpected(r.error());
  }
  if (auto s = db.Flush(rocksdb::FlushOptions()); !s.ok()) {
    return fail(errc::io_error, "flushing views: " + s.ToString());
  }
  took.ingesting = since(t);
  out.tickets = fold.tickets();
  out.final_rows = sink.rows();
  return out;
}

}  // namespace chorus::projections
