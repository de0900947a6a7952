#include "replay/timeline.h"

#include <cctype>
#include <charconv>
#include <ctime>
#include <nlohmann/json.hpp>

#include "domain/ticket.h"
#include "events/chain.h"
#include "events/codec.h"

// The payloads' JSON forms, field by field as in schema/event.fbs. A payload without one (a
// type added since) shows its type with no fields rather than failing: see payload_fields().
namespace chorus::events {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TicketDraftSaved, ticket_id, emitter_user_id,
                                   emitting_structure_id, category, sub_category, title,
                                   description)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TicketSubmitted, ticket_id, number, emitter_user_id,
                                   emitting_structure_id, category, sub_category, title,
                                   description)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TicketDraftDeleted, ticket_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InformationRequested, ticket_id, text)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InformationProvided, ticket_id, text)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SolutionProposed, ticket_id, text)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SolutionAccepted, ticket_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SolutionRefused, ticket_id, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TicketClosed, ticket_id, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CommentAdded, ticket_id, text)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TicketAssigned, ticket_id, agent_user_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TicketEscalated, ticket_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PrioritySet, ticket_id, impact, severity, recommended, priority,
                                   reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NotificationSent, notification_id)
}  // namespace chorus::events

namespace chorus::replay {

using nlohmann::json;

namespace {

bool all_digits_and_dots(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') return false;
  }
  return true;
}

// "YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z]" (a space may stand for the T), in UTC.
std::optional<std::int64_t> parse_time(std::string_view text) {
  std::string s(text);
  if (!s.empty() && (s.back() == 'Z' || s.back() == 'z')) s.pop_back();
  std::tm tm{};
  int sec = 0, consumed = 0;
  char sep = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &sep,
                  &tm.tm_hour, &tm.tm_min, &consumed) != 6 ||
      (sep != 'T' && sep != ' ')) {
    return std::nullopt;
  }
  std::string_view rest = std::string_view(s).substr(static_cast<std::size_t>(consumed));
  std::int64_t micros = 0;
  if (!rest.empty()) {
    if (rest.size() < 3 || rest[0] != ':') return std::nullopt;
    auto [p, ec] = std::from_chars(rest.data() + 1, rest.data() + 3, sec);
    if (ec != std::errc() || p != rest.data() + 3 || sec > 60) return std::nullopt;
    rest.remove_prefix(3);
    if (!rest.empty()) {
      if (rest[0] != '.' || rest.size() < 2 || rest.size() > 7) return std::nullopt;
      std::int64_t scale = 100'000;
      for (char c : rest.substr(1)) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
        micros += (c - '0') * scale;
        scale /= 10;
      }
    }
  }
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_sec = sec;
  const std::time_t t = timegm(&tm);
  return static_cast<std::int64_t>(t) * 1'000'000 + micros;
}

json ticket_state_json(const domain::ticket::State& s) {
  return json{{"ticket_id", s.ticket_id},
              {"version", s.version},
              {"status", domain::ticket::to_string(s.status)},
              {"number", s.number},
              {"emitter_user_id", s.emitter_user_id},
              {"emitting_structure_id", s.emitting_structure_id},
              {"category", s.category},
              {"sub_category", s.sub_category},
              {"title", s.title},
              {"description", s.description},
              {"level", s.level},
              {"assignee", s.assignee},
              {"asked_by", s.asked_by},
              {"priority", s.priority}};
}

}  // namespace

Result<Moment> Moment::parse(std::string_view text) {
  Moment m;
  if (text == "end" || text.empty()) return m;
  if (text.size() > 1 && text[0] == 'v') {
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(text.data() + 1, text.data() + text.size(), v);
    if (ec == std::errc() && p == text.data() + text.size()) {
      m.kind = Kind::version;
      m.version = v;
      return m;
    }
  } else if (all_digits_and_dots(text)) {
    auto position = events::LogPosition::from_token(text);
    if (position) {
      m.kind = Kind::position;
      m.position = std::move(*position);
      return m;
    }
  } else if (auto t = parse_time(text)) {
    m.kind = Kind::time;
    m.time_us = *t;
    return m;
  }
  return fail(errc::invalid_argument,
              "moment \"" + std::string(text) +
                  "\" is none of: end, a log position (\"17\" or \"3.0.17\"), a UTC time "
                  "(\"2026-11-24T10:15:00Z\"), a version (\"v12\")");
}

std::string Moment::describe() const {
  switch (kind) {
    case Kind::end:
      return "end of the log";
    case Kind::position:
      return "position " + position.to_token();
    case Kind::time:
      return format_time(time_us);
    case Kind::version:
      return "version " + std::to_string(version);
  }
  return "?";
}

bool Moment::includes(const events::LogAddress& address, std::uint64_t event_version,
                      std::int64_t occurred_at_us) const noexcept {
  switch (kind) {
    case Kind::end:
      return true;
    case Kind::position:
      return address.partition < position.next.size() &&
             address.offset < position.next[address.partition];
    case Kind::time:
      return occurred_at_us <= time_us;
    case Kind::version:
      return event_version <= version;
  }
  return false;
}

std::string format_time(std::int64_t time_us) {
  const std::time_t seconds = static_cast<std::time_t>(time_us / 1'000'000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(time_us % 1'000'000));
  return buf;
}

Result<std::vector<HistoryEvent>> read_history(events::EventLog& log, std::string_view stream_id) {
  if (auto ok = events::check_stream_id(stream_id); !ok) {
    return fail(errc::invalid_argument, ok.error().message);
  }
  std::vector<events::RecordedEvent> recorded;
  constexpr std::size_t kChunk = 10'000;
  for (;;) {
    auto chunk = log.read_stream(stream_id, recorded.size() + 1, kChunk);
    if (!chunk) return fail(errc::log_error, chunk.error().message);
    const std::size_t n = chunk->size();
    for (auto& e : *chunk) recorded.push_back(std::move(e));
    if (n < kChunk) break;
  }
  if (auto chain = events::verify_chain(recorded); !chain) {
    return fail(errc::corruption, chain.error().message);
  }
  std::vector<HistoryEvent> out;
  out.reserve(recorded.size());
  for (const auto& r : recorded) {
    auto event = events::decode(r.bytes);
    if (!event) return fail(errc::corruption, event.error().message);
    if (event->stream_id != r.stream_id || event->version != r.version) {
      // The stream index points at an event of another stream or version.
      return fail(errc::corruption, "the stream index of " + r.stream_id + " v" +
                                        std::to_string(r.version) + " points at " +
                                        event->stream_id + " v" + std::to_string(event->version));
    }
    out.push_back(HistoryEvent{r.address, std::move(*event)});
  }
  return out;
}

json payload_fields(const events::Payload& payload) {
  return std::visit(
      [](const auto& p) -> json {
        if constexpr (requires(json & j) { to_json(j, p); }) {
          return json(p);
        } else {
          return json::object();
        }
      },
      payload);
}

json to_row(const HistoryEvent& e) {
  const auto& m = e.event.meta;
  return json{
      {"position", std::to_string(e.address.partition) + ":" + std::to_string(e.address.offset)},
      {"stream", e.event.stream_id},
      {"version", e.event.version},
      {"occurred_at", format_time(m.occurred_at_us)},
      {"actor", m.actor.user_id},
      {"role", m.actor.role},
      {"on_behalf_of", m.actor.on_behalf_of},
      {"action", events::type_name(e.event.payload)},
      {"fields", payload_fields(e.event.payload)},
      {"hash", events::to_hex(e.event.hash)}};
}

std::string_view aggregate_kind(std::string_view stream_id) noexcept {
  if (stream_id.starts_with("ticket-")) return "ticket";
  return {};
}

Result<json> state_at(std::string_view stream_id, const std::vector<HistoryEvent>& history,
                      const Moment& at) {
  const auto kind = aggregate_kind(stream_id);
  if (kind == "ticket") {
    domain::ticket::State state;
    for (const auto& e : history) {
      if (!at.includes(e.address, e.event.version, e.event.meta.occurred_at_us)) break;
      state = domain::ticket::evolve(std::move(state), e.event.payload);
    }
    return ticket_state_json(state);
  }
  return fail(errc::invalid_argument,
              "no aggregate is kept in stream " + std::string(stream_id) + " (known: ticket-<id>)");
}

json diff(const json& before, const json& after) {
  json out = json::object();
  for (const auto& [key, value] : before.items()) {
    const auto it = after.find(key);
    if (it == after.end()) {
      out[key] = json{{"before", value}, {"after", nullptr}};
    } else if (*it != value) {
      out[key] = json{{"before", value}, {"after", *it}};
    }
  }
  for (const auto& [key, value] : after.items()) {
    if (!before.contains(key)) out[key] = json{{"before", nullptr}, {"after", value}};
  }
  return out;
}

}  // namespace chorus::replay
