#include "events/event_log.h"

#include <charconv>
#include <unordered_set>

#include "events/chain.h"
#include "events/codec.h"

namespace chorus::events {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::version_conflict:
      return "version_conflict";
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::io_error:
      return "io_error";
    case errc::corruption:
      return "corruption";
    case errc::unavailable:
      return "unavailable";
    case errc::fenced:
      return "fenced";
    case errc::indeterminate:
      return "indeterminate";
  }
  return "unknown";
}

bool LogPosition::covers(const LogPosition& other) const noexcept {
  for (std::size_t p = 0; p < other.next.size(); ++p) {
    std::uint64_t mine = p < next.size() ? next[p] : 0;
    if (mine < other.next[p]) return false;
  }
  return true;
}

std::uint64_t LogPosition::distance_to(const LogPosition& later) const noexcept {
  std::uint64_t total = 0;
  for (std::size_t p = 0; p < later.next.size(); ++p) {
    const std::uint64_t mine = p < next.size() ? next[p] : 0;
    if (later.next[p] > mine) total += later.next[p] - mine;
  }
  return total;
}

void LogPosition::advance_past(const LogAddress& address) {
  if (next.size() <= address.partition) next.resize(address.partition + 1, 0);
  if (next[address.partition] <= address.offset) next[address.partition] = address.offset + 1;
}

std::string LogPosition::to_token() const {
  std::string out;
  for (std::size_t p = 0; p < next.size(); ++p) {
    if (p) out.push_back('.');
    out += std::to_string(next[p]);
  }
  return out;
}

Result<LogPosition> LogPosition::from_token(std::string_view token) {
  LogPosition pos;
  if (token.empty()) return fail(errc::invalid_argument, "empty position token");
  std::size_t start = 0;
  while (start <= token.size()) {
    std::size_t dot = token.find('.', start);
    if (dot == std::string_view::npos) dot = token.size();
    std::uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(token.data() + start, token.data() + dot, value);
    if (ec != std::errc{} || ptr != token.data() + dot || dot == start || pos.next.size() >= 4096) {
      return fail(errc::invalid_argument, "malformed position token");
    }
    pos.next.push_back(value);
    start = dot + 1;
  }
  return pos;
}

std::uint32_t partition_of(std::string_view stream_id, std::uint32_t partition_count) noexcept {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : stream_id) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return partition_count == 0 ? 0 : static_cast<std::uint32_t>(h % partition_count);
}

Result<void> check_stream_id(std::string_view stream_id) {
  if (stream_id.empty() || stream_id.size() > 200) {
    return fail(errc::invalid_argument, "stream id must have 1 to 200 characters");
  }
  for (unsigned char c : stream_id) {
    if (c <= 0x20 || c >= 0x7F) {
      return fail(errc::invalid_argument, "stream id must be printable ASCII without spaces");
    }
  }
  return {};
}

Result<void> check_batch(std::span<const StreamAppend> batch) {
  if (batch.empty()) return fail(errc::invalid_argument, "empty batch");
  std::unordered_set<std::string_view> seen;
  for (const auto& s : batch) {
    if (auto ok = check_stream_id(s.stream_id); !ok) return ok;
    if (s.events.empty()) {
      return fail(errc::invalid_argument, "no events for stream " + s.stream_id);
    }
    if (!seen.insert(s.stream_id).second) {
      return fail(errc::invalid_argument, "stream " + s.stream_id + " appears twice in one batch");
    }
  }
  return {};
}

Result<Hash> verify_chain(std::span<const RecordedEvent> events, const Hash& prev_hash) {
  Hash prev = prev_hash;
  std::uint64_t expected_version = 0;
  for (const auto& re : events) {
    auto where = [&] {
      return "stream " + re.stream_id + " version " + std::to_string(re.version) + " (partition " +
             std::to_string(re.address.partition) + ", offset " +
             std::to_string(re.address.offset) + ")";
    };
    auto ev = decode(re.bytes);
    if (!ev) return fail(errc::corruption, where() + ": " + ev.error().message);
    if (ev->stream_id != re.stream_id || ev->version != re.version) {
      return fail(errc::corruption, where() + ": stored coordinates say " + ev->stream_id + " v" +
                                        std::to_string(ev->version));
    }
    if (expected_version != 0 && ev->version != expected_version) {
      return fail(errc::corruption,
                  where() + ": expected version " + std::to_string(expected_version));
    }
    if (ev->prev_hash != prev) {
      return fail(errc::corruption, where() + ": previous-hash link broken");
    }
    prev = ev->hash;
    expected_version = ev->version + 1;
  }
  return prev;
}

}  // namespace chorus::events
