#include "events/embedded_log.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>

#include "events/big_endian.h"
#include "events/codec.h"
#include "events/group_commit.h"
#include "events/invariant.h"

namespace chorus::events {
namespace {

std::string stream_key(std::string_view stream_id, std::uint64_t version) {
  std::string key(stream_id);
  key.push_back('\0');
  key += be64(version);
  return key;
}

Error io(const rocksdb::Status& s, std::string_view what) {
  return Error{errc::io_error, std::string(what) + ": " + s.ToString()};
}

// Shared by the log and its cursors, so that a cursor never outlives the database.
struct Core {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // default, log, streams, heads
  rocksdb::ColumnFamilyHandle* log_cf = nullptr;
  rocksdb::ColumnFamilyHandle* streams_cf = nullptr;
  rocksdb::ColumnFamilyHandle* heads_cf = nullptr;
  rocksdb::WriteOptions write_options;
  std::shared_ptr<rocksdb::Statistics> statistics;
  bool read_only = false;

  std::atomic<std::uint64_t> end{0};  // offset of the next event; everything before is durable
  std::mutex end_mu;
  std::condition_variable end_cv;  // signalled when `end` moves

  ~Core() {
    // Without a flush the next opening replays the whole WAL into memtables, and a read-only
    // opening (an auditor's) does so every time.
    if (db && !read_only) db->Flush(rocksdb::FlushOptions(), handles);
    for (auto* h : handles) {
      if (db) db->DestroyColumnFamilyHandle(h);
    }
    if (db) db->Close();
  }

  Result<std::string> read_event(std::uint64_t offset) const {
    std::string value;
    auto s = db->Get(rocksdb::ReadOptions(), log_cf, be64(offset), &value);
    if (!s.ok()) return std::unexpected(io(s, "reading event at offset " + std::to_string(offset)));
    return value;
  }
};

class EmbeddedCursor final : public LogCursor {
 public:
  EmbeddedCursor(std::shared_ptr<Core> core, std::uint64_t next)
      : core_(std::move(core)), position_{{next}} {}

  Result<std::size_t> poll(std::vector<RecordedEvent>& out, std::size_t max,
                           std::chrono::milliseconds wait) override {
    std::uint64_t next = position_.next[0];
    std::uint64_t end = core_->end.load(std::memory_order_acquire);
    if (end <= next && wait.count() > 0) {
      std::unique_lock lock(core_->end_mu);
      core_->end_cv.wait_for(lock, wait, [&] { return core_->end.load() > next; });
      end = core_->end.load(std::memory_order_acquire);
    }
    if (end <= next || max == 0) return 0;

    const std::string lower = be64(next);
    const std::uint64_t last = std::min<std::uint64_t>(end, next + max);
    const std::string upper = be64(last);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(core_->db->NewIterator(ro, core_->log_cf));
    const std::size_t before = out.size();
    std::uint64_t offset = next;
    for (it->Seek(lower); it->Valid(); it->Next(), ++offset) {
      CHORUS_INVARIANT(from_be64(it->key().ToStringView()) == offset, "gap in the embedded log");
      auto coords = peek(it->value().ToStringView());
      if (!coords) {
        out.resize(before);
        return fail(errc::corruption,
                    "event at offset " + std::to_string(offset) + ": " + coords.error().message);
      }
      out.push_back(RecordedEvent{
          {0, offset}, std::move(coords->stream_id), coords->version, it->value().ToString()});
    }
    if (!it->status().ok()) {
      out.resize(before);
      return std::unexpected(io(it->status(), "reading the log"));
    }
    CHORUS_INVARIANT(offset == last, "gap at the end of the embedded log");
    position_.next[0] = offset;
    return out.size() - before;
  }

  const LogPosition& position() const override { return position_; }

 private:
  std::shared_ptr<Core> core_;
  LogPosition position_;
};

// See LogScan. The iterator lives for the whole scan: one sequential pass, with a large
// read-ahead, and without filling the block cache with blocks read once.
class EmbeddedScan final : public LogScan {
 public:
  EmbeddedScan(std::shared_ptr<Core> core, std::uint64_t end)
      : core_(std::move(core)), end_(end), upper_(be64(end)), upper_slice_(upper_) {}

  Result<std::size_t> next(StoredBatch& batch, std::size_t max) override {
    batch.records.clear();
    if (failed_) return std::unexpected(*failed_);
    if (!it_) {
      rocksdb::ReadOptions ro = sequential();
      ro.iterate_upper_bound = &upper_slice_;
      it_.reset(core_->db->NewIterator(ro, core_->log_cf));
      it_->SeekToFirst();
    }
    // The arena is never reallocated while a batch fills (the records point into it): a batch
    // ends when the next event does not fit, unless it is the first, for which the arena grows.
    if (batch.arena.size() < kArenaWords) batch.arena.resize(kArenaWords);
    std::size_t used = 0;  // in words
    for (; it_->Valid() && batch.records.size() < max; it_->Next(), ++next_) {
      if (from_be64(it_->key().ToStringView()) != next_) {
        return fail_scan(Error{errc::corruption,
                               "the embedded log has no event at offset " + std::to_string(next_) +
                                   " (next key: offset " +
                                   std::to_string(from_be64(it_->key().ToStringView())) + ")"});
      }
      const rocksdb::Slice value = it_->value();
      const std::size_t words = (value.size() + 7) / 8;
      if (used + words > batch.arena.size()) {
        if (!batch.records.empty()) break;
        batch.arena.resize(words);
      }
      char* at = reinterpret_cast<char*>(batch.arena.data() + used);
      std::memcpy(at, value.data(), value.size());
      batch.records.push_back({next_, {at, value.size()}});
      used += words;
    }
    if (!it_->status().ok()) return fail_scan(io(it_->status(), "reading the log"));
    if (!it_->Valid() && next_ < end_) {
      return fail_scan(Error{errc::corruption, "the embedded log has no event at offset " +
                                                   std::to_string(next_) + " (it ends at " +
                                                   std::to_string(end_) + ")"});
    }
    return batch.records.size();
  }

  Result<void> heads(const std::function<void(const IndexedHead&)>& visit) override {
    std::unique_ptr<rocksdb::Iterator> it(core_->db->NewIterator(sequential(), core_->heads_cf));
    IndexedHead head;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string_view value = it->value().ToStringView();
      head.stream_id = it->key().ToStringView();
      head.well_formed = value.size() == 8 + 32;
      head.version = head.well_formed ? from_be64(value) : 0;
      if (head.well_formed) std::memcpy(head.hash.data(), value.data() + 8, head.hash.size());
      visit(head);
    }
    if (!it->status().ok()) return std::unexpected(io(it->status(), "reading the stream index"));
    return {};
  }

  Result<void> placements(const std::function<void(const IndexedPlacement&)>& visit) override {
    std::unique_ptr<rocksdb::Iterator> it(core_->db->NewIterator(sequential(), core_->streams_cf));
    IndexedPlacement placement;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string_view key = it->key().ToStringView();
      const std::string_view value = it->value().ToStringView();
      // stream_key: the id, a NUL, the version (8 bytes); the value: the offset (8 bytes). Each
      // judged apart, so that a bad value still names its stream and version.
      const bool key_shaped = key.size() > 9 && key[key.size() - 9] == '\0';
      const bool value_shaped = value.size() == 8;
      placement.well_formed = key_shaped && value_shaped;
      placement.key_well_formed = key_shaped;
      placement.stream_id = key_shaped ? key.substr(0, key.size() - 9) : key;
      placement.version = key_shaped ? from_be64(key.substr(key.size() - 8)) : 0;
      placement.offset = value_shaped ? from_be64(value) : 0;
      visit(placement);
    }
    if (!it->status().ok()) return std::unexpected(io(it->status(), "reading the stream index"));
    return {};
  }

  Result<std::optional<std::string>> event_at(std::uint64_t offset) override {
    std::string bytes;
    const auto s = core_->db->Get(rocksdb::ReadOptions(), core_->log_cf, be64(offset), &bytes);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) return std::unexpected(io(s, "reading an event"));
    return bytes;
  }

 private:
  static constexpr std::size_t kArenaWords = (8 << 20) / 8;

  static rocksdb::ReadOptions sequential() {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    ro.readahead_size = 4 << 20;
    return ro;
  }

  std::unexpected<Error> fail_scan(Error e) {
    failed_ = e;
    return std::unexpected(std::move(e));
  }

  std::shared_ptr<Core> core_;
  std::uint64_t end_ = 0;
  std::uint64_t next_ = 0;
  std::string upper_;
  rocksdb::Slice upper_slice_;  // points into upper_; read by the iterator
  std::unique_ptr<rocksdb::Iterator> it_;
  std::optional<Error> failed_;
};

class EmbeddedLog final : public EventLog {
 public:
  explicit EmbeddedLog(std::shared_ptr<Core> core) : core_(std::move(core)) {}

  // For scans (LogScan), which share the database.
  [[nodiscard]] const std::shared_ptr<Core>& core() const noexcept { return core_; }

  Result<AppendResult> append(std::span<const StreamAppend> batch) override {
    if (auto ok = check_batch(batch); !ok) return std::unexpected(ok.error());
    if (core_->read_only) return fail(errc::invalid_argument, "the log is open read-only");
    return group_commit_.append(batch,
                                [this](std::vector<AppendRequest*>& group) { write_group(group); });
  }

  Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id,
                                                 std::uint64_t from_version,
                                                 std::size_t max) override {
    std::vector<RecordedEvent> out;
    const std::string prefix = std::string(stream_id) + '\0';
    std::unique_ptr<rocksdb::Iterator> it(
        core_->db->NewIterator(rocksdb::ReadOptions(), core_->streams_cf));
    std::uint64_t version = std::max<std::uint64_t>(from_version, 1);
    for (it->Seek(stream_key(stream_id, version));
         it->Valid() && out.size() < max && it->key().starts_with(prefix); it->Next(), ++version) {
      CHORUS_INVARIANT(from_be64(it->key().ToStringView().substr(prefix.size())) == version,
                       "gap in a stream's versions");
      const std::uint64_t offset = from_be64(it->value().ToStringView());
      auto bytes = core_->read_event(offset);
      if (!bytes) return std::unexpected(bytes.error());
      out.push_back(RecordedEvent{{0, offset}, std::string(stream_id), version, std::move(*bytes)});
    }
    if (!it->status().ok()) return std::unexpected(io(it->status(), "reading a stream"));
    return out;
  }

  Result<std::uint64_t> stream_version(std::string_view stream_id) override {
    auto head = lookup_head(std::string(stream_id));
    if (!head) return std::unexpected(head.error());
    return head->version;
  }

  Result<std::unique_ptr<LogCursor>> follow(const LogPosition& from) override {
    if (from.next.size() > 1) {
      return fail(errc::invalid_argument, "the embedded log has one partition; position " +
                                              from.to_token() + " names " +
                                              std::to_string(from.next.size()));
    }
    const std::uint64_t start = from.next.empty() ? 0 : from.next[0];
    return std::make_unique<EmbeddedCursor>(core_, start);
  }

  Result<LogPosition> end() override { return LogPosition{{core_->end.load()}}; }
  std::uint32_t partition_count() const noexcept override { return 1; }
  std::string_view kind() const noexcept override { return "embedded"; }
  // One process holds the directory's lock, so this log is its only writer.
  bool end_covers_every_write() const noexcept override { return !core_->read_only; }

  LogStats stats() const override {
    StoreStats s;
    s.block_cache_hits = core_->statistics->getTickerCount(rocksdb::BLOCK_CACHE_HIT);
    s.block_cache_misses = core_->statistics->getTickerCount(rocksdb::BLOCK_CACHE_MISS);
    std::uint64_t value = 0;
    // Compaction debt is per column family; the stop is the database's.
    if (core_->db->GetAggregatedIntProperty(
            rocksdb::DB::Properties::kEstimatePendingCompactionBytes, &value)) {
      s.pending_compaction_bytes = value;
    }
    if (core_->db->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &value)) {
      s.write_stopped = value != 0;
    }
    return LogStats{s, std::nullopt};
  }

 private:
  Result<StreamHead> lookup_head(const std::string& stream_id) const {
    std::string value;
    auto s = core_->db->Get(rocksdb::ReadOptions(), core_->heads_cf, stream_id, &value);
    if (s.IsNotFound()) return StreamHead{};
    if (!s.ok()) return std::unexpected(io(s, "reading the head of stream " + stream_id));
    CHORUS_INVARIANT(value.size() == 8 + 32, "malformed stream head");
    StreamHead head{from_be64(value), {}};
    std::copy(value.begin() + 8, value.end(), head.hash.begin());
    return head;
  }

  // Runs on the group-commit leader only, one group at a time.
  void write_group(std::vector<AppendRequest*>& group) {
    std::vector<PlannedEvent> planned;
    std::unordered_map<std::string, StreamHead> staged;
    plan_group(
        group, [this](const std::string& id) { return lookup_head(id); }, 1, planned, staged);
    if (planned.empty()) return;

    rocksdb::WriteBatch wb;
    std::uint64_t offset = core_->end.load();
    for (auto& p : planned) {
      p.address = LogAddress{0, offset};
      const std::string key = be64(offset);
      wb.Put(core_->log_cf, key, p.encoded.bytes);
      wb.Put(core_->streams_cf, stream_key(*p.stream_id, p.version), key);
      ++offset;
    }
    for (const auto& [stream_id, head] : staged) {
      std::string value = be64(head.version);
      value.append(reinterpret_cast<const char*>(head.hash.data()), head.hash.size());
      wb.Put(core_->heads_cf, stream_id, value);
    }
    auto s = core_->db->Write(core_->write_options, &wb);
    if (!s.ok()) {
      fail_group(group, io(s, "writing a batch of " + std::to_string(planned.size()) + " events"));
      return;
    }
    complete_group(group, planned);
    {
      std::lock_guard lock(core_->end_mu);
      core_->end.store(offset, std::memory_order_release);
    }
    core_->end_cv.notify_all();
  }

  std::shared_ptr<Core> core_;
  GroupCommit group_commit_;
};

}  // namespace

std::unique_ptr<LogScan> scan_embedded_log(EventLog& log) {
  auto* embedded = dynamic_cast<EmbeddedLog*>(&log);
  if (embedded == nullptr) return nullptr;
  const auto& core = embedded->core();
  return std::make_unique<EmbeddedScan>(core, core->end.load(std::memory_order_acquire));
}

Result<std::unique_ptr<EventLog>> open_embedded_log(const EmbeddedLogOptions& options) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  // Tickers only (block cache hits for the metrics): histograms and timers would read the
  // clock on every operation of the write path.
  db_options.statistics = rocksdb::CreateDBStatistics();
  db_options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  // Every acknowledged append is synced: the write-ahead log may end in a torn record (a crash
  // while writing one nobody was told of), tolerated, but a record with a bad checksum is an
  // acknowledged event. RocksDB's default (point in time) drops it and every record after it
  // without a word, and the log would go on from an earlier position; here the open fails
  // instead, naming the corruption (the server does not start; the audit tool exits 4). This
  // does not catch everything: a damaged length in the last partial block of a WAL file reads
  // as a torn tail and is still dropped. A reader beside a running writer sees a prefix of its
  // WAL, whose unfinished last record is a torn tail: no false alarm.
  db_options.wal_recovery_mode = options.drop_damaged_wal_tail
                                     ? rocksdb::WALRecoveryMode::kPointInTimeRecovery
                                     : rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // Concurrent writers are grouped by GroupCommit already; RocksDB's own pipelining adds
  // nothing for one writer thread.
  rocksdb::ColumnFamilyOptions cf_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs{{rocksdb::kDefaultColumnFamilyName, cf_options},
                                                   {"log", cf_options},
                                                   {"streams", cf_options},
                                                   {"heads", cf_options}};
  std::error_code ec;
  if (options.read_only) {
    if (!std::filesystem::is_directory(options.dir, ec)) {
      return fail(errc::io_error, "no embedded log in " + options.dir);
    }
  } else {
    std::filesystem::create_directories(options.dir, ec);
    if (ec) return fail(errc::io_error, "creating " + options.dir + ": " + ec.message());
  }
  auto core = std::make_shared<Core>();
  core->read_only = options.read_only;
  rocksdb::DB* raw = nullptr;
  auto s = options.read_only
               ? rocksdb::DB::OpenForReadOnly(db_options, options.dir, cfs, &core->handles, &raw)
               : rocksdb::DB::Open(db_options, options.dir, cfs, &core->handles, &raw);
  if (!s.ok()) return std::unexpected(io(s, "opening the embedded log in " + options.dir));
  core->db.reset(raw);
  core->log_cf = core->handles[1];
  core->streams_cf = core->handles[2];
  core->heads_cf = core->handles[3];
  core->write_options.sync = options.sync;
  core->statistics = db_options.statistics;

  std::unique_ptr<rocksdb::Iterator> it(
      core->db->NewIterator(rocksdb::ReadOptions(), core->log_cf));
  it->SeekToLast();
  if (it->Valid()) {
    // The last key names the end. One that is no event's offset (not 8 bytes, or the largest
    // offset, past which there is no end) is damage: read as it stands it would put the end
    // anywhere, at 0 included, and a writer would then write over acknowledged events.
    const std::string_view last = it->key().ToStringView();
    if (last.size() != 8 || from_be64(last) == std::numeric_limits<std::uint64_t>::max()) {
      return fail(
          errc::corruption,
          "the log's last key (" +
              to_hex(std::span(reinterpret_cast<const std::uint8_t*>(last.data()), last.size())) +
              ") is no event's offset: the log in " + options.dir + " is damaged");
    }
    core->end = from_be64(last) + 1;
  }
  if (!it->status().ok()) return std::unexpected(io(it->status(), "finding the end of the log"));
  return std::make_unique<EmbeddedLog>(std::move(core));
}

}  // namespace chorus::events
