#pragma once
// The embedded event log, on RocksDB: the default on one machine.
//
// Layout (column families of one RocksDB database under `dir`):
//   log      big-endian u64 offset                   -> StoredEvent bytes
//   streams  stream id, 0x00, big-endian u64 version -> big-endian u64 offset
//   heads    stream id                               -> big-endian u64 version, 32-byte hash
// One partition; offsets start at 0 with no gaps. An append is one WriteBatch written with a
// synced WAL, so it is durable when append() returns; concurrent appends are grouped by a
// leader into one WriteBatch and one sync (group commit).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event_log.h"

namespace chorus::events {

struct EmbeddedLogOptions {
  std::string dir;  // created if missing
  // false only for benchmarks of what the sync costs: appends then survive a process crash
  // but not a machine crash.
  bool sync = true;
  // Opens an existing log without its lock, for auditors: a running server may hold the
  // directory. Reads see the log as it stood when opened; append() fails with
  // invalid_argument.
  bool read_only = false;
  // Recovers a write-ahead log damaged before its last record by dropping that record and
  // every one after it (RocksDB's point-in-time recovery) instead of refusing to open: for an
  // operator who has copied the directory and accepts losing those events (RUNBOOK.md,
  // "chorusd refuses to start: the event log is corrupt"). Never by default.
  bool drop_damaged_wal_tail = false;
};

// Opens (creating if needed) the log in options.dir. Fails with io_error when RocksDB cannot
// open it (missing permissions, another process holds its lock), and with corruption when its
// last key is no event's offset (the end would be wrong, and a writer would write over
// acknowledged events); nothing is written either way. A gap in the offsets, found
// by a cursor, stops the process (events/invariant.h). One process at a time may open a
// directory.
[[nodiscard]] Result<std::unique_ptr<EventLog>> open_embedded_log(
    const EmbeddedLogOptions& options);

// --- Reading the whole log in place, for audits (replay verify) ---------------------------------
// A cursor's poll() hands out RecordedEvents: two strings allocated and freed per event, and a
// FlatBuffer check (peek) for the coordinates. A walk over tens of millions of events that checks
// every event itself anyway (events::view) needs neither: a scan copies the stored bytes into one
// reused, 8-aligned arena per batch and checks nothing but the offsets.

// One stored event of a scanned batch: its offset and its bytes, 8-aligned in the batch's arena
// (so events::view() reads them in place), unchecked.
struct StoredRecord {
  std::uint64_t offset = 0;
  std::string_view bytes;
};

// A batch of stored events; reused from batch to batch so that its memory is allocated once.
struct StoredBatch {
  std::vector<StoredRecord> records;
  std::vector<std::uint64_t> arena;  // the records' bytes; views into it last until the next fill
};

// A stream's head as the stream index (the `heads` column family) holds it.
struct IndexedHead {
  std::string_view stream_id;  // valid during the visit only
  std::uint64_t version = 0;
  Hash hash{};
  bool well_formed = true;  // false: the stored value is not a version and a hash (version 0)
};

// One entry of the stream index's placements (the `streams` column family): where a stream's
// version is stored in the log.
struct IndexedPlacement {
  std::string_view stream_id;  // valid during the visit only
  std::uint64_t version = 0;
  std::uint64_t offset = 0;
  // false: the key or the value is not of the index's shape. A bad key is given whole as the
  // stream id (version 0); a bad value keeps the key's stream and version (offset 0).
  bool well_formed = true;
  bool key_well_formed = true;
};

// A scan of the embedded log from offset 0 to its end when the scan was made. One thread at a
// time; it keeps the database open while it lives.
class LogScan {
 public:
  virtual ~LogScan() = default;

  // Replaces the contents of `batch` with the next events in offset order (at most `max`, and
  // about 8 MB of bytes unless one event is larger). Returns how many; 0 once the end is reached.
  // Fails with io_error when RocksDB cannot read, with corruption when an offset is missing (the
  // log has no gaps); the scan then stays failed, and `batch` holds no record.
  [[nodiscard]] virtual Result<std::size_t> next(StoredBatch& batch, std::size_t max) = 0;

  // Calls `visit` with every head of the stream index as it stands when called (a read-only
  // opening sees the log as it was opened), in the index's key order (bytewise by stream id). Fails
  // with io_error when RocksDB cannot read; heads visited before stay visited.
  [[nodiscard]] virtual Result<void> heads(
      const std::function<void(const IndexedHead&)>& visit) = 0;

  // Calls `visit` with every placement of the stream index as it stands when called, in the
  // index's key order (by stream id, then version). Fails with io_error when RocksDB cannot
  // read; placements visited before stay visited.
  [[nodiscard]] virtual Result<void> placements(
      const std::function<void(const IndexedPlacement&)>& visit) = 0;

  // The stored bytes of the event at `offset`, nullopt when the log has none there. Fails with
  // io_error when RocksDB cannot read. Changes nothing.
  [[nodiscard]] virtual Result<std::optional<std::string>> event_at(std::uint64_t offset) = 0;
};

// Starts a scan of `log`, or returns null when `log` is not an embedded log (a Kafka log is read
// through its cursors). Thread-safe; never fails (errors show on the scan's first read).
[[nodiscard]] std::unique_ptr<LogScan> scan_embedded_log(EventLog& log);

}  // namespace chorus::events
