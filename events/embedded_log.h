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

#include <memory>
#include <string>

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
};

// Opens (creating if needed) the log in options.dir. Fails with io_error when RocksDB cannot
// open it (missing permissions, another process holds its lock). A gap in the offsets, found
// by a cursor, stops the process (events/invariant.h). One process at a time may open a
// directory.
[[nodiscard]] Result<std::unique_ptr<EventLog>> open_embedded_log(
    const EmbeddedLogOptions& options);

}  // namespace chorus::events
