#pragma once
// The EventLog contract: the one interface both logs (embedded RocksDB, Kafka) implement and
// that tests/events/event_log_conformance_test.cpp checks, unchanged, against both.
//
// Model. The log is divided into partitions (the embedded log has one). Every event belongs to
// a stream (an aggregate) and every stream lives in exactly one partition, where its events are
// in version order. An event's address is (partition, offset); offsets grow within a partition
// but may have gaps (Kafka's transaction markers). A LogPosition is a cut of the log: for each
// partition, the offset of the next event to read.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "events/errc.h"
#include "events/event.h"

namespace chorus::events {

struct LogAddress {
  std::uint32_t partition = 0;
  std::uint64_t offset = 0;
  bool operator==(const LogAddress&) const = default;
};

// A cut of the log: next[p] is the offset of the next event to read in partition p.
struct LogPosition {
  std::vector<std::uint64_t> next;

  // True when every event before `other` is also before this position.
  [[nodiscard]] bool covers(const LogPosition& other) const noexcept;
  // How many offsets lie between this position and `later`, summed over partitions (0 where
  // this one is ahead). Kafka's commit markers count too, so it is an upper bound of events.
  [[nodiscard]] std::uint64_t distance_to(const LogPosition& later) const noexcept;
  // Moves this position past `address` (no-op if already past it).
  void advance_past(const LogAddress& address);
  // "12" or "3.0.17": one offset per partition, dot-separated. Used as the consistency token.
  [[nodiscard]] std::string to_token() const;
  // Parses to_token()'s output; fails with invalid_argument on anything else.
  [[nodiscard]] static Result<LogPosition> from_token(std::string_view token);
  bool operator==(const LogPosition&) const = default;
};

// An event as read from the log: its address, its stream coordinates and its stored bytes
// (a StoredEvent FlatBuffer). Decode with codec.h when the payload is needed.
struct RecordedEvent {
  LogAddress address;
  std::string stream_id;
  std::uint64_t version = 0;
  std::string bytes;
};

// Appends to one stream inside a batch. expected_version is the stream's current version
// (0: the stream must not exist yet). The events get versions expected_version+1, +2, ...
struct StreamAppend {
  std::string stream_id;
  std::uint64_t expected_version = 0;
  std::vector<NewEvent> events;
};

struct AppendResult {
  // One address per appended event, in the order of the batch.
  std::vector<LogAddress> addresses;
  // A position just past every appended event: the consistency token of this append.
  LogPosition position;
};

// RocksDB figures of one database, for metrics. Counters start at 0 when the database opens.
struct StoreStats {
  std::uint64_t block_cache_hits = 0;
  std::uint64_t block_cache_misses = 0;
  std::uint64_t pending_compaction_bytes = 0;  // RocksDB's estimate, all column families
  bool write_stopped = false;                  // writes wait until compaction catches up
};

// The Kafka log's clients as librdkafka last reported them (statistics.interval.ms).
struct KafkaStats {
  std::uint64_t producer_queue_messages = 0;  // produced, not yet acknowledged by a broker
  std::uint64_t producer_queue_bytes = 0;
  // Requests that failed to be sent or whose answer could not be read, summed over brokers
  // and clients, since the log opened (clients replaced since then included).
  std::uint64_t tx_errors = 0;
  std::uint64_t rx_errors = 0;
  // Round trip of the slowest broker over the last statistics window (0 with no request).
  double rtt_avg_seconds = 0;
  double rtt_p99_seconds = 0;
  // Events committed to the log that the cursors (follow()) have not returned yet, summed
  // over their partitions.
  std::uint64_t consumer_lag_messages = 0;
};

// What a log tells its operators; each part is absent when it does not apply (or, for Kafka,
// until librdkafka's first report).
struct LogStats {
  std::optional<StoreStats> store;  // the embedded log's RocksDB
  std::optional<KafkaStats> kafka;
};

// Follows the log from a position. Not thread-safe: one reader thread per cursor.
class LogCursor {
 public:
  virtual ~LogCursor() = default;

  // Appends up to `max` events in log order (per partition) to `out`, waiting up to `wait`
  // when none is available yet: the caller pulls, so a slow caller is never flooded.
  // On success returns how many events were added (0 when `wait` elapsed) and position()
  // has moved past them. On failure `out` and position() are unchanged.
  [[nodiscard]] virtual Result<std::size_t> poll(std::vector<RecordedEvent>& out, std::size_t max,
                                                 std::chrono::milliseconds wait) = 0;

  // The position just past the last event returned (or the start position).
  [[nodiscard]] virtual const LogPosition& position() const = 0;
};

class EventLog {
 public:
  virtual ~EventLog() = default;

  // Appends every StreamAppend of `batch` atomically: all events are written or none is.
  // Each stream's expected_version must equal its current version.
  // On success the events are durable (embedded: synced WAL; Kafka: committed transaction,
  // acks=all) and readable, and the result gives their addresses.
  // Fails, writing nothing, with: version_conflict (names the stream, expected and actual
  // version), invalid_argument (empty batch, empty or duplicated stream, bad stream id),
  // io_error / unavailable (storage or broker failed), fenced (Kafka: another writer owns the
  // partitions now; every later append fails too).
  // Fails with indeterminate when the outcome could not be established (Kafka only, see
  // events/KAFKA_MODEL.md): the caller must re-read before deciding anything.
  // Thread-safe; concurrent appends are grouped into one durable write.
  [[nodiscard]] virtual Result<AppendResult> append(std::span<const StreamAppend> batch) = 0;

  // Reads up to `max` events of `stream_id` with version >= from_version, in version order.
  // An unknown stream gives an empty vector. Fails with io_error/unavailable. Thread-safe.
  [[nodiscard]] virtual Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id,
                                                                       std::uint64_t from_version,
                                                                       std::size_t max) = 0;

  // The current version of a stream (0 when it does not exist). Thread-safe.
  [[nodiscard]] virtual Result<std::uint64_t> stream_version(std::string_view stream_id) = 0;

  // Opens a cursor at `from`; partitions that `from` does not name start at offset 0 (an empty
  // position is the beginning of the log, and an append's position works as is). The cursor
  // sees events appended later too. Fails with invalid_argument when `from` names more
  // partitions than the log has. Thread-safe.
  [[nodiscard]] virtual Result<std::unique_ptr<LogCursor>> follow(const LogPosition& from) = 0;

  // The position just past the last durable event this log knows of (Kafka: every event this
  // writer committed or read; commit markers may sit beyond it). Thread-safe.
  [[nodiscard]] virtual Result<LogPosition> end() = 0;

  [[nodiscard]] virtual std::uint32_t partition_count() const noexcept = 0;

  // Figures for metrics, read at scrape time from what the log already keeps (no I/O, no
  // broker request). Never fails: what cannot be read is left out. A log with nothing to
  // report answers an empty LogStats. Thread-safe.
  [[nodiscard]] virtual LogStats stats() const { return {}; }

  // Whether another writer is known to have taken the log over (Kafka: a newer owner of the
  // partitions fenced this one): this writer appends nothing more, answering fenced, and what
  // it knows of the streams stops at the takeover. Learnt as soon as one of this log's cursors
  // (the views') reads an event of the other writer, or at this writer's next append, whichever
  // comes first (the brokers tell a fenced producer no sooner); before that a command may still
  // be decided on stale knowledge, and its append is refused. For readiness and to refuse
  // commands without deciding them. False for a log no one can take over. Thread-safe.
  [[nodiscard]] virtual bool fenced() const noexcept { return false; }

  // "embedded" or "kafka", for logs, metrics and test names.
  [[nodiscard]] virtual std::string_view kind() const noexcept = 0;

  // Whether end() covers every write of every writer, this process being the log's only one
  // (the embedded log): a position past it was never written. False where other writers may
  // have written what this one has not read (Kafka), and for views of a log (a prefix).
  // Thread-safe.
  [[nodiscard]] virtual bool end_covers_every_write() const noexcept { return false; }

  // Whether some writer, this process or another, has written up to `position`: false means
  // the position lies beyond every write, so that nothing will ever cover it but later writes
  // (a forged or mistyped consistency token). Where end() covers every write
  // (end_covers_every_write), end() tells. Kafka: the brokers' high watermarks (read
  // uncommitted: past every acknowledged transaction, and past open ones) are asked, within
  // `timeout`, unless a higher answer seen before covers the position already; callers asking at
  // once wait for one another's round trips. Fails with unavailable when the brokers do not
  // answer in time, and for a log that cannot know (a view of a log, such as a prefix). Changes
  // nothing. Thread-safe.
  [[nodiscard]] virtual Result<bool> covered_by_writes(const LogPosition& position,
                                                       std::chrono::milliseconds timeout) {
    (void)timeout;
    if (!end_covers_every_write()) {
      return fail(errc::unavailable, "this log cannot tell every writer's end");
    }
    auto end = this->end();
    if (!end) return std::unexpected(end.error());
    return end->covers(position);
  }
};

// Where each stream lives: a stable hash of the stream id (FNV-1a 64) modulo the partition
// count. Both logs and every reader must agree, hence one function.
[[nodiscard]] std::uint32_t partition_of(std::string_view stream_id,
                                         std::uint32_t partition_count) noexcept;

// Checks a stream id: non-empty, at most 200 bytes, printable ASCII without spaces.
[[nodiscard]] Result<void> check_stream_id(std::string_view stream_id);

// Checks a batch before any write: non-empty, no stream twice, each stream id valid,
// each StreamAppend non-empty.
[[nodiscard]] Result<void> check_batch(std::span<const StreamAppend> batch);

}  // namespace chorus::events
