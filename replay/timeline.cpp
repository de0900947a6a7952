#include "replay/timeline.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "domain/account.h"
#include "domain/structure.h"
#include "domain/ticket.h"
#include "events/chain.h"
#include "events/codec.h"

// The payloads' JSON forms, field by field as in schema/event.fbs. A payload without one (a
// type added since) shows its type with no fields rather than failing: see payload_fields().
namespace chorus::events {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TicketDraftSaved, ticket_id, emitter_user_id,
                                   emitting_structure_id, category, sub_category, title,
                                   description, destination_structure_id, destination_service,
                                   object_type, object_number)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TicketSubmitted, ticket_id, number, emitter_user_id,
                                   emitting_structure_id, category, sub_category, title,
                                   description, destination_structure_id, destination_service,
                                   emitter_email, object_type, object_number)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TicketDraftDeleted, ticket_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InformationRequested, ticket_id, text)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InformationProvided, ticket_id, text)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SolutionProposed, ticket_id, text)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SolutionAccepted, ticket_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SolutionRefused, ticket_id, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TicketClosed, ticket_id, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CommentAdded, ticket_id, text)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(FileAttached, ticket_id, attachment_id, name, media_type, size,
                                   sha256)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TicketAssigned, ticket_id, agent_user_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TicketEscalated, ticket_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PrioritySet, ticket_id, impact, severity, recommended, priority,
                                   reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NotificationSent, notification_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StructureData, designation, address_line1, address_line2,
                                   postal_code, city, country, payment_status_hidden,
                                   service_code_required, commitment_required,
                                   commitment_or_service_required, moa_mode, vat_number,
                                   pacage_number, social_regime, billing_mandate)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StructureCreated, structure_id, identifier_type,
                                   identifier_value, is_public, is_state, pigp_managed, created_on,
                                   origin_structure_id, data)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StructureDataChanged, structure_id, data)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StructureDeactivated, structure_id, successor_structure_id,
                                   reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ServiceAdded, structure_id, code, label, description, valid_from,
                                   valid_to, commitment_required)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ServiceChanged, structure_id, code, label, description,
                                   valid_from, valid_to, commitment_required)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ServiceRemoved, structure_id, code)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountCreated, user_id, login_email, first_name, last_name,
                                   origin, technical)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountActivated, user_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ActivationResent, user_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountReactivated, user_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountDeactivated, user_id, at_us)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PasswordResetRecorded, structure_id, user_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AttachmentRequested, structure_id, request_id, user_id, service,
                                   comment)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AttachmentValidated, structure_id, request_id, user_id, role,
                                   services, comment)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AttachmentRefused, structure_id, request_id, user_id, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SubscriptionRefused, structure_id, request_id, user_id, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(IdentifierReserved, identifier_type, identifier_value,
                                   structure_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ReferenceObjectImported, object_type, object_number,
                                   recipient_structure_id, recipient_service, issuer_structure_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UserAttached, structure_id, user_id, role, services, start_date,
                                   comment, direct)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AttachmentRemoved, structure_id, user_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MainManagerTransferred, structure_id, from_user_id, to_user_id,
                                   by_support)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MainManagerRoleChanged, user_id, structure_id, held)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(EspaceEnabled, structure_id, espace, service, read, write)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SubscriptionRequested, structure_id, request_id, user_id, espace,
                                   service, read, write, comment)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SubscriptionValidated, structure_id, request_id, user_id, espace,
                                   service, read, write, comment)
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

// "YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z]" (a space may stand for the T), in UTC, every field of its
// width and in its range: a day the month has, no second 60, nothing before 1970 (before any
// event), nothing around it.
std::optional<std::int64_t> parse_time(std::string_view text) {
  if (!text.empty() && (text.back() == 'Z' || text.back() == 'z')) text.remove_suffix(1);
  auto number = [&](std::size_t at, std::size_t width) -> std::optional<int> {
    int value = 0;
    if (at + width > text.size()) return std::nullopt;
    for (std::size_t i = at; i < at + width; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  const auto year = number(0, 4), month = number(5, 2), day = number(8, 2), hour = number(11, 2),
             minute = number(14, 2);
  if (!year || !month || !day || !hour || !minute || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != ' ') || text[13] != ':') {
    return std::nullopt;
  }
  std::string_view rest = text.substr(16);
  int second = 0;
  std::int64_t micros = 0;
  if (!rest.empty()) {
    const auto sec = number(17, 2);
    if (rest[0] != ':' || !sec) return std::nullopt;
    second = *sec;
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
  const std::chrono::year_month_day date{std::chrono::year{*year},
                                         std::chrono::month{static_cast<unsigned>(*month)},
                                         std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok() || *year < 1970 || *hour > 23 || *minute > 59 || second > 59) return std::nullopt;
  const auto at = std::chrono::sys_days(date) + std::chrono::hours(*hour) +
                  std::chrono::minutes(*minute) + std::chrono::seconds(second);
  return std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count() +
         micros;
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

json structure_state_json(const domain::structure::State& s) {
  namespace st = domain::structure;
  json services = json::array();
  for (const auto& sv : s.services) {
    services.push_back(json{{"code", sv.code},
                            {"label", sv.label},
                            {"description", sv.description},
                            {"valid_from", sv.valid_from},
                            {"valid_to", sv.valid_to},
                            {"commitment_required", sv.commitment_required}});
  }
  json members = json::object();
  for (const auto& [user, m] : s.members) {
    members[user] = json{
        {"role", st::to_string(m.role)}, {"services", m.services}, {"start_date", m.start_date}};
  }
  json requests = json::object();
  for (const auto& [id, r] : s.attachment_requests) {
    requests[id] = json{{"user_id", r.user_id}, {"service", r.service}, {"comment", r.comment}};
  }
  json espaces = json::array();
  for (const auto& e : s.espaces) {
    espaces.push_back(
        json{{"espace", e.espace}, {"service", e.service}, {"read", e.read}, {"write", e.write}});
  }
  auto subscription = [](const st::SubscriptionRequest& r) {
    return json{{"user_id", r.user_id}, {"espace", r.espace}, {"service", r.service},
                {"read", r.read},       {"write", r.write},   {"comment", r.comment}};
  };
  json pending_subscriptions = json::object();
  for (const auto& [id, r] : s.subscription_requests) pending_subscriptions[id] = subscription(r);
  json subscriptions = json::array();
  for (const auto& r : s.subscriptions) subscriptions.push_back(subscription(r));
  const char* status = s.status == st::Status::none     ? "none"
                       : s.status == st::Status::active ? "active"
                                                        : "inactive";
  return json{{"structure_id", s.structure_id},
              {"version", s.version},
              {"status", status},
              {"identifier_type", s.identifier_type},
              {"identifier_value", s.identifier_value},
              {"is_public", s.is_public},
              {"is_state", s.is_state},
              {"pigp_managed", s.pigp_managed},
              {"created_on", s.created_on},
              {"origin_structure_id", s.origin_structure_id},
              {"successor_structure_id", s.successor_structure_id},
              {"data", s.data},
              {"services", services},
              {"gp", s.gp},
              {"members", members},
              {"attachment_requests", requests},
              {"espaces", espaces},
              {"subscription_requests", pending_subscriptions},
              {"subscriptions", subscriptions}};
}

json account_state_json(const domain::account::State& a) {
  return json{{"user_id", a.user_id},
              {"version", a.version},
              {"status", domain::account::to_string(a.status)},
              {"login_email", a.login_email},
              {"first_name", a.first_name},
              {"last_name", a.last_name},
              {"origin", a.origin},
              {"technical", a.technical},
              {"deactivated_at_us", a.deactivated_at_us},
              {"managed_structures", a.managed_structures}};
}

// Folds the events of `history` up to `at` with the aggregate's evolve().
template <class State, class Evolve>
State fold(const std::vector<HistoryEvent>& history, const Moment& at, Evolve evolve) {
  State state;
  for (const auto& e : history) {
    if (!at.includes(e.address, e.event.version, e.event.meta.occurred_at_us)) break;
    state = evolve(std::move(state), e.event.payload);
  }
  return state;
}

}  // namespace

std::optional<events::LogAddress> parse_address(std::string_view s) {
  const auto colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size()) return std::nullopt;
  auto number = [](std::string_view digits, std::uint64_t& out) {
    if (!std::ranges::all_of(digits, [](char c) { return c >= '0' && c <= '9'; })) return false;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return ec == std::errc() && p == digits.data() + digits.size();
  };
  std::uint64_t partition = 0, offset = 0;
  if (!number(s.substr(0, colon), partition) || !number(s.substr(colon + 1), offset)) {
    return std::nullopt;
  }
  if (partition >= 65'536 || offset == std::numeric_limits<std::uint64_t>::max()) {
    return std::nullopt;
  }
  return events::LogAddress{static_cast<std::uint32_t>(partition), offset};
}

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
  } else if (auto address = parse_address(text)) {
    // What history prints beside each event: the moment that event made.
    m.kind = Kind::position;
    m.from_address = true;
    m.position.next.assign(address->partition + std::size_t{1}, 0);
    m.position.next.back() = address->offset + 1;
    return m;
  } else if (auto t = parse_time(text)) {
    m.kind = Kind::time;
    m.time_us = *t;
    return m;
  }
  return fail(errc::invalid_argument,
              "moment \"" + std::string(text) +
                  "\" is none of: end, a log position (\"17\" or \"3.0.17\"), an event's address "
                  "(\"0:26\"), a UTC time "
                  "(\"2026-11-24T10:15:00Z\"), a version (\"v12\")");
}

Result<void> Moment::within(std::string_view stream_id, std::uint64_t versions) const {
  if (kind != Kind::version || version <= versions) return {};
  return fail(errc::not_found, "stream " + std::string(stream_id) + " has " +
                                   std::to_string(versions) + " versions, not " +
                                   std::to_string(version));
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
  // The placements read end where the stream's head says it does: an index that lost its last
  // entries would otherwise show a shorter history as whole.
  auto head = log.stream_version(stream_id);
  if (!head) return fail(errc::log_error, head.error().message);
  if (*head != recorded.size()) {
    return fail(errc::corruption, "the stream index places " + std::to_string(recorded.size()) +
                                      " versions of " + std::string(stream_id) +
                                      " but its head says " + std::to_string(*head) +
                                      " (chorus-replay verify names the damage)");
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
  if (stream_id.starts_with("structure-")) return "structure";
  if (stream_id.starts_with("account-")) return "account";
  if (stream_id.starts_with("identifier-")) return "identifier";
  return {};
}

Result<json> state_at(std::string_view stream_id, const std::vector<HistoryEvent>& history,
                      const Moment& at) {
  if (auto ok = at.within(stream_id, history.size()); !ok) return std::unexpected(ok.error());
  const auto kind = aggregate_kind(stream_id);
  if (kind == "ticket") {
    return ticket_state_json(fold<domain::ticket::State>(history, at, [](auto s, const auto& p) {
      return domain::ticket::evolve(std::move(s), p);
    }));
  }
  if (kind == "structure") {
    return structure_state_json(fold<domain::structure::State>(
        history, at,
        [](auto s, const auto& p) { return domain::structure::evolve(std::move(s), p); }));
  }
  if (kind == "account") {
    return account_state_json(fold<domain::account::State>(history, at, [](auto s, const auto& p) {
      return domain::account::evolve(std::move(s), p);
    }));
  }
  if (kind == "identifier") {
    // The reservation the command side loads before creating a structure (or changing its
    // identifier): whoever holds the identifier at that moment.
    const auto r = fold<domain::structure::Reservation>(history, at, [](auto s, const auto& p) {
      return domain::structure::evolve_reservation(std::move(s), p);
    });
    return json{{"version", r.version}, {"taken", r.version > 0}, {"structure_id", r.structure_id}};
  }
  return fail(errc::invalid_argument, "no aggregate is kept in stream " + std::string(stream_id) +
                                          " (known: ticket-<id>, structure-<id>, account-<user "
                                          "id>, identifier-<type>-<value>)");
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

std::string printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace chorus::replay
