#pragma once
// What both logs share on the write path: group commit (concurrent appends become one durable
// write) and planning (expected-version checks and encoding, chained to each stream's head).
// Internal to events/.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "events/codec.h"
#include "events/event_log.h"

namespace chorus::events {

struct StreamHead {
  std::uint64_t version = 0;  // 0: the stream does not exist
  Hash hash{};                // hash of the event at `version` (zeros when version is 0)
};

// One caller's append waiting in a group.
struct AppendRequest {
  std::span<const StreamAppend> batch;
  Result<AppendResult> result = fail(errc::io_error, "not written");
  bool done = false;
  // Filled by plan_group: this request's events are planned[first, first + count).
  bool planned = false;
  std::size_t first = 0;
  std::size_t count = 0;
};

struct PlannedEvent {
  const std::string* stream_id;  // points into the request's batch
  std::uint64_t version;
  std::uint32_t partition;
  EncodedEvent encoded;
  LogAddress address;  // set by the writer once written
};

// Leader/follower group commit. Callers queue; the first caller finding no write in progress
// becomes the leader, takes every queued request and calls write_group once for all of them;
// followers sleep until their request is done. Thread-safe.
class GroupCommit {
 public:
  using WriteGroup = std::function<void(std::vector<AppendRequest*>&)>;

  // Queues `batch` and returns its result once a leader (maybe this thread) wrote its group.
  // `write_group` must set every request's `result`.
  [[nodiscard]] Result<AppendResult> append(std::span<const StreamAppend> batch,
                                            const WriteGroup& write_group);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<AppendRequest*> queue_;
  bool writing_ = false;
};

// Looks up a stream's head in storage (the staged overlay of the group is handled by
// plan_group). An error fails only the request asking.
using HeadLookup = std::function<Result<StreamHead>(const std::string& stream_id)>;

// For each request, in order: checks every expected version against the stream's head (as
// left by earlier requests of the same group, else from `lookup`), then encodes its events,
// appends them to `planned` and records the new heads in `staged`. A request that fails a
// check gets its error as result and plans nothing; the others are unaffected.
void plan_group(std::vector<AppendRequest*>& group, const HeadLookup& lookup,
                std::uint32_t partition_count, std::vector<PlannedEvent>& planned,
                std::unordered_map<std::string, StreamHead>& staged);

// After a successful write: gives each planned request its addresses and position.
void complete_group(std::vector<AppendRequest*>& group, const std::vector<PlannedEvent>& planned);

// After a failed write: every planned request fails with `error`.
void fail_group(std::vector<AppendRequest*>& group, const Error& error);

}  // namespace chorus::events
