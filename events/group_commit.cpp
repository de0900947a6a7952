#include "events/group_commit.h"

namespace chorus::events {

Result<AppendResult> GroupCommit::append(std::span<const StreamAppend> batch,
                                         const WriteGroup& write_group) {
  AppendRequest me{.batch = batch};
  std::unique_lock lock(mu_);
  queue_.push_back(&me);
  cv_.wait(lock, [&] { return me.done || (!writing_ && queue_.front() == &me); });
  if (me.done) return std::move(me.result);

  writing_ = true;
  std::vector<AppendRequest*> group(queue_.begin(), queue_.end());
  queue_.clear();
  lock.unlock();
  write_group(group);
  lock.lock();
  for (auto* r : group) r->done = true;
  writing_ = false;
  cv_.notify_all();
  return std::move(me.result);
}

void plan_group(std::vector<AppendRequest*>& group, const HeadLookup& lookup,
                std::uint32_t partition_count, std::vector<PlannedEvent>& planned,
                std::unordered_map<std::string, StreamHead>& staged) {
  std::vector<StreamHead> heads;
  for (auto* request : group) {
    heads.clear();
    bool ok = true;
    for (const auto& s : request->batch) {
      StreamHead head;
      if (auto it = staged.find(s.stream_id); it != staged.end()) {
        head = it->second;
      } else if (auto looked_up = lookup(s.stream_id); looked_up) {
        head = *looked_up;
      } else {
        request->result = std::unexpected(looked_up.error());
        ok = false;
        break;
      }
      if (head.version != s.expected_version) {
        request->result =
            fail(errc::version_conflict, "stream " + s.stream_id + " is at version " +
                                             std::to_string(head.version) + ", expected version " +
                                             std::to_string(s.expected_version));
        ok = false;
        break;
      }
      heads.push_back(head);
    }
    if (!ok) continue;

    request->planned = true;
    request->first = planned.size();
    for (std::size_t i = 0; i < request->batch.size(); ++i) {
      const auto& s = request->batch[i];
      StreamHead head = heads[i];
      const std::uint32_t partition = partition_of(s.stream_id, partition_count);
      for (const auto& event : s.events) {
        ++head.version;
        PlannedEvent p{&s.stream_id,
                       head.version,
                       partition,
                       encode(s.stream_id, head.version, head.hash, event),
                       {}};
        head.hash = p.encoded.hash;
        planned.push_back(std::move(p));
      }
      staged[s.stream_id] = head;
    }
    request->count = planned.size() - request->first;
  }
}

void complete_group(std::vector<AppendRequest*>& group, const std::vector<PlannedEvent>& planned) {
  for (auto* request : group) {
    if (!request->planned) continue;
    AppendResult r;
    r.addresses.reserve(request->count);
    for (std::size_t i = request->first; i < request->first + request->count; ++i) {
      r.addresses.push_back(planned[i].address);
      r.position.advance_past(planned[i].address);
    }
    request->result = std::move(r);
  }
}

void fail_group(std::vector<AppendRequest*>& group, const Error& error) {
  for (auto* request : group) {
    if (request->planned) request->result = std::unexpected(error);
  }
}

}  // namespace chorus::events
