#include "projections/folded_rebuild.h"

#include <rocksdb/db.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <new>

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
// the bottom level as they are).
class SstSink final : public SortedRowSink {
 public:
  SstSink(rocksdb::DB& db, std::string dir) : db_(db), dir_(std::move(dir)) {}

  Result<void> add(unsigned stream, std::string_view key, std::string_view value) override {
    if (stream >= writers_.size()) writers_.resize(stream + 1);
    auto& w = writers_[stream];
    if (!w) {
      w = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(), db_.GetOptions());
      const std::string path = dir_ + "/folded-" + std::to_string(stream) + ".sst";
      if (auto s = w->Open(path); !s.ok()) {
        return fail(errc::io_error, "opening " + path + ": " + s.ToString());
      }
      paths_.push_back(path);
    }
    if (auto s = w->Put(rocksdb::Slice(key.data(), key.size()),
                        rocksdb::Slice(value.data(), value.size()));
        !s.ok()) {
      return fail(errc::io_error, "writing a folded row: " + s.ToString());
    }
    ++rows_;
    return {};
  }

  // Closes the files and moves them into the store.
  Result<void> ingest() {
    for (auto& w : writers_) {
      if (!w) continue;
      if (auto s = w->Finish(); !s.ok()) {
        return fail(errc::io_error, "finishing folded rows: " + s.ToString());
      }
    }
    if (paths_.empty()) return {};
    rocksdb::IngestExternalFileOptions options;
    options.move_files = true;
    if (auto s = db_.IngestExternalFile(paths_, options); !s.ok()) {
      return fail(errc::io_error, "ingesting folded rows: " + s.ToString());
    }
    return {};
  }

  std::uint64_t rows() const { return rows_; }

 private:
  rocksdb::DB& db_;
  std::string dir_;
  std::vector<std::unique_ptr<rocksdb::SstFileWriter>> writers_;
  std::vector<std::string> paths_;
  std::uint64_t rows_ = 0;
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

  // The tickets are folded; every other standard view is applied as the runner applies it,
  // in the standard order (the outbox, after the tickets, asks the fold for emitters).
  StandardViews views;
  TicketFold fold;
  views.outbox.emitters =
      [&](const std::string& ticket_id) -> Result<std::optional<TicketEmitter>> {
    return fold.emitter(ticket_id);
  };
  std::vector<Projector*> others;
  for (Projector* p : views.list()) {
    if (p != &views.tickets) others.push_back(p);
  }

  FoldedRebuild out;
  KeySetCache key_sets(1 << 20);
  key_sets.assume_empty_store();
  std::vector<events::RecordedEvent> buffer;
  std::vector<DirectRow> direct;
  int idle = 0;
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point& t) {
    const auto now = Clock::now();
    const double s = std::chrono::duration<double>(now - t).count();
    t = now;
    return s;
  };
  auto& took = out.seconds;
  auto t = Clock::now();
  while (!(*cursor)->position().covers(*end) && idle < 10) {
    buffer.clear();
    auto polled = (*cursor)->poll(buffer, kBatchEvents, std::chrono::milliseconds(100));
    if (!polled) return fail(errc::log_error, polled.error().message);
    idle = buffer.empty() ? idle + 1 : 0;
    if (buffer.empty()) continue;
    ViewBatch batch(store, &key_sets);
    direct.clear();
    for (const auto& recorded : buffer) {
      batch.set_save_point();
      std::string reason;
      took.reading += since(t);
      auto event = events::decode(recorded.bytes);
      took.reading += since(t);
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
        Result<void> ok = guarded([&]() -> Result<void> {
          auto staged = fold.stage(*event);
          if (!staged) return std::unexpected(staged.error());
          return {};
        });
        took.tickets += since(t);
        for (auto p = others.begin(); ok && p != others.end(); ++p) {
          ok = guarded([&] { return (*p)->apply(*event, recorded.address, batch); });
        }
        took.other_views += since(t);
        if (!ok && ok.error().code != errc::poison) return std::unexpected(ok.error());
        if (!ok) reason = ok.error().message;
      }
      if (reason.empty()) {
        fold.commit(direct);
        took.tickets += since(t);
      } else {
        fold.drop();
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
    // In key order (a same key's rows kept in their order): the memtable then inserts each
    // row next to the one before, where the history entries of a batch come in log order,
    // scattered over its tickets (a third of the rebuild's time before).
    std::stable_sort(direct.begin(), direct.end(),
                     [](const DirectRow& a, const DirectRow& b) { return a.key < b.key; });
    rocksdb::WriteBatch rows;
    for (const auto& row : direct) {
      // WriteBatch refuses only keys and values beyond 4 GB.
      (void)(row.erase ? rows.Delete(row.key) : rows.Put(row.key, row.value));
    }
    if (auto r = write(rows); !r) return std::unexpected(r.error());
    batch.commit_key_sets();
    took.writing += since(t);
    out.events += buffer.size();
    if (progress) progress(out.events, total);
  }

  since(t);
  SstSink sink(db, dir);
  if (auto r = fold.write_rows(sink); !r) return std::unexpected(r.error());
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
