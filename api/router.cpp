#include "api/router.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "api/content_store.h"
#include "api/json_body.h"
#include "api/metrics.h"
#include "api/rate_limit.h"
#include "api/structure_routes.h"
#include "api/ticket_lists.h"
#include "domain/reference_object.h"
#include "domain/ticket.h"
#include "events/codec.h"
#include "events/utf8.h"
#include "projections/json_text.h"
#include "projections/outbox_views.h"
#include "projections/reference_views.h"
#include "projections/structure_views.h"
#include "projections/ticket_views.h"

namespace chorus::api {
namespace {

using nlohmann::json;
using projections::json_text;
using Clock = std::chrono::steady_clock;

// Views store rows as JSON text: a list answer splices them in as they are, without parsing
// each row only to print it again. `head` holds the other members, as `"key":value,` text.
Response rows_response(std::string head, const std::vector<std::string>& rows) {
  std::string body = "{" + std::move(head) + "\"items\":[";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i) body.push_back(',');
    body += rows[i];
  }
  body += "]}";
  return Response{200, "application/json", std::move(body), {}};
}

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Splits "/v1/tickets/abc/submit" into segments.
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

// "application/json" or a "+json" type, any case, with parameters; a charset, when declared,
// is UTF-8 (JSON's own, RFC 8259): a body declared in another is read as UTF-8 by nobody.
bool is_json_media_type(std::string_view content_type) {
  std::string type(content_type);
  for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto trimmed = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  std::string_view rest(type);
  const std::string_view essence = trimmed(rest.substr(0, rest.find(';')));
  if (essence != "application/json" &&
      !(essence.starts_with("application/") && essence.ends_with("+json"))) {
    return false;
  }
  while (rest.find(';') != std::string_view::npos) {
    rest.remove_prefix(rest.find(';') + 1);
    const std::string_view parameter = trimmed(rest.substr(0, rest.find(';')));
    if (!parameter.starts_with("charset=")) continue;
    std::string_view charset = parameter.substr(8);
    if (charset.size() >= 2 && charset.front() == '"' && charset.back() == '"') {
      charset = charset.substr(1, charset.size() - 2);
    }
    if (charset != "utf-8" && charset != "utf8") return false;
  }
  return true;
}

// Matches `path` (as sent, escapes undecoded) against a pattern like
// "/v1/tickets/{ticket_id}/submit"; fills `params`, each decoded.
bool match(std::string_view pattern, std::string_view path, std::vector<std::string>& params) {
  auto p = segments(pattern);
  auto s = segments(path);
  if (p.size() != s.size()) return false;
  std::vector<std::string> found;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i].starts_with('{')) {
      if (s[i].empty()) return false;
      found.push_back(percent_decode(s[i], false));
    } else if (p[i] != s[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

// The emitting structure a ticket command concerns: the form's when it brings one, else the
// draft's. No business destination is modelled on tickets yet, so none is looked up.
const std::string& emitting_structure_of(const domain::ticket::Command& command,
                                         const domain::ticket::State& state) {
  if (const auto* d = std::get_if<domain::ticket::SaveDraft>(&command)) {
    return d->form.emitting_structure_id;
  }
  if (const auto* s = std::get_if<domain::ticket::Submit>(&command); s && s->form) {
    return s->form->emitting_structure_id;
  }
  return state.emitting_structure_id;
}

// Ticket ids are UUIDs: checking the shape keeps garbage out of stream ids and keys.
void check_ticket_id(const std::string& id) {
  bool ok = id.size() == 36;
  for (std::size_t i = 0; ok && i < id.size(); ++i) {
    const char c = id[i];
    ok = (i == 8 || i == 13 || i == 18 || i == 23)
             ? c == '-'
             : (std::isxdigit(static_cast<unsigned char>(c)) != 0);
  }
  if (!ok) throw Problem{404, "ticket.not_found", "ticket_id", "Ticket introuvable."};
}

domain::ticket::Form read_form(const JsonBody& body) {
  return domain::ticket::Form{body.string_or_empty("emitting_structure_id"),
                              body.string_or_empty("category"),
                              body.string_or_empty("sub_category"),
                              body.string_or_empty("title"),
                              body.string_or_empty("description"),
                              body.string_or_empty("destination_structure_id"),
                              body.string_or_empty("destination_service"),
                              body.string_or_empty("object_type"),
                              body.string_or_empty("object_number")};
}

const std::set<std::string> kFormFields{"emitting_structure_id", "category",
                                        "sub_category",          "title",
                                        "description",           "destination_structure_id",
                                        "destination_service",   "object_type",
                                        "object_number"};

// The destination ("Organisation destinataire", service) a ticket command concerns: the form's,
// for a ticket still being written, when it brings one; else the ticket's.
std::pair<std::string, std::string> destination_of(const domain::ticket::Command& command,
                                                   const domain::ticket::State& state) {
  // Once submitted, a ticket's destination is its own, whatever a form names: the access read
  // for a form naming the caller's structure would otherwise tell its reader that a ticket sent
  // elsewhere exists (403 instead of 404).
  using domain::ticket::Status;
  if (state.status != Status::none && state.status != Status::draft) {
    return {state.destination_structure_id, state.destination_service};
  }
  if (const auto* d = std::get_if<domain::ticket::SaveDraft>(&command)) {
    return {d->form.destination_structure_id, d->form.destination_service};
  }
  if (const auto* s = std::get_if<domain::ticket::Submit>(&command); s && s->form) {
    return {s->form->destination_structure_id, s->form->destination_service};
  }
  return {state.destination_structure_id, state.destination_service};
}

// The object ("Type d'objet concerné", "Numéro") a ticket command names: the form's when it
// brings one, else the ticket's.
std::pair<std::string, std::string> object_of(const domain::ticket::Command& command,
                                              const domain::ticket::State& state) {
  if (const auto* d = std::get_if<domain::ticket::SaveDraft>(&command)) {
    return {d->form.object_type, d->form.object_number};
  }
  if (const auto* s = std::get_if<domain::ticket::Submit>(&command); s && s->form) {
    return {s->form->object_type, s->form->object_number};
  }
  return {state.object_type, state.object_number};
}

// The recipient of the object of `type` and `number` as the reference objects view records it;
// nullopt when either is empty or no import brought it. Throws Problem 503 when the views fail.
std::optional<domain::ticket::Context::ObjectRecipient> object_recipient(
    const projections::ViewStore& store, const std::string& type, const std::string& number) {
  if (type.empty() || number.empty()) return std::nullopt;
  auto row = projections::reference_object(store, type, number);
  if (!row) throw Problem{503, "views.unavailable", "", "Vues indisponibles."};
  if (!*row) return std::nullopt;
  return domain::ticket::Context::ObjectRecipient{
      (*row)->recipient_structure_id, (*row)->recipient_service, (*row)->issuer_structure_id};
}

// One line per command: its type, outcome (accepted or the rule), correlation id and time.
// Accepted commands at debug level, refusals at info. No user id, no text of the command.
void log_command(const char* type, const std::string& outcome, const std::string& correlation_id,
                 double seconds) {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::get("api");
    return l ? l : spdlog::default_logger();
  }();
  logger->log(outcome == "accepted" ? spdlog::level::debug : spdlog::level::info,
              "msg=\"command\" type={} outcome={} correlation_id={} duration_ms={:.3f}", type,
              outcome, correlation_id, seconds * 1000);
}

// "attachment; filename=...": an ASCII stand-in for old clients, and the UTF-8 name percent-
// encoded (RFC 6266, RFC 5987). The name has no control character (domain rule).
std::string content_disposition(const std::string& name) {
  std::string ascii, encoded;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    ascii.push_back(c < 0x20 || c >= 0x7F || ch == '"' || ch == '\\' ? '_' : ch);
    if (std::isalnum(c) != 0 ||
        std::string_view("!#$&+-.^_`|~").find(ch) != std::string_view::npos) {
      encoded.push_back(ch);
    } else {
      encoded += '%';
      encoded.push_back(kHex[c >> 4]);
      encoded.push_back(kHex[c & 0xF]);
    }
  }
  return "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded;
}

// Whether `structure_id` is an active structure of the views having `service` (when not empty),
// true for an empty id: a ticket is only routed where someone can receive it, and emitted by a
// structure still active. Throws Problem 503 when the views fail.
bool active_structure(const projections::ViewStore& store, const std::string& structure_id,
                      const std::string& service) {
  if (structure_id.empty()) return true;
  auto row = projections::structure_detail(store, structure_id);
  if (!row) throw Problem{503, "views.unavailable", "", "Vues indisponibles."};
  if (!*row) return false;
  const json d = json::parse(**row, nullptr, false);
  if (!d.is_object() || d.value("status", "") != "active") return false;
  if (service.empty()) return true;
  const json none = json::array();
  const json& services = d.contains("services") ? d.at("services") : none;
  return std::any_of(services.begin(), services.end(),
                     [&](const json& s) { return s.value("code", "") == service; });
}

// A queue's scope as the query names it: "all", "unassigned", "mine" ("Assignés à moi"). Throws
// Problem 400 naming `scope` otherwise.
projections::QueueScope queue_scope(const std::string& name) {
  if (name == "all") return projections::QueueScope::all;
  if (name == "unassigned") return projections::QueueScope::unassigned;
  if (name == "mine") return projections::QueueScope::mine;
  throw Problem{400, "request.query", "scope",
                "File inconnue : « " + name + " » (all, unassigned ou mine)."};
}

// The outbox is drained by the mailer, and views are rebuilt by the operators: both run with
// the operator role. `rule` names the refusal ("outbox.operator_only").
void require_operator(const domain::Caller& caller, const char* rule, const char* who) {
  if (!caller.roles.operator_) {
    throw Problem{403, rule, "", std::string("Réservé ") + who + " (rôle operator)."};
  }
}

}  // namespace

std::string percent_decode(std::string_view s, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::size_t positive_param(const Request& r, const char* name, std::size_t fallback,
                           std::size_t max) {
  const std::string* v = r.query_param(name);
  if (v == nullptr) return fallback;
  std::size_t n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc{} || ptr != v->data() + v->size() || n == 0 || n > max) {
    throw Problem{400, "request.query", name,
                  std::string("Le paramètre « ") + name + " » doit être un entier entre 1 et " +
                      std::to_string(max) + "."};
  }
  return n;
}

Response Problem::to_response() const {
  json body{{"type", "about:blank"},
            {"title", rule},
            {"status", status},
            {"detail", detail},
            {"rule", rule}};
  if (!field.empty()) body["field"] = field;
  Response r{status, "application/problem+json", json_text(body), {}};
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  if (status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

const std::vector<RouteInfo>& Router::routes() {
  static const std::vector<RouteInfo> kRoutes{
      {"GET", "/healthz"},
      {"GET", "/readyz"},
      {"GET", "/metrics"},
      {"POST", "/v1/tickets"},
      {"POST", "/v1/tickets/drafts"},
      {"PUT", "/v1/tickets/{ticket_id}/draft"},
      {"POST", "/v1/tickets/{ticket_id}/submit"},
      {"DELETE", "/v1/tickets/{ticket_id}/draft"},
      {"POST", "/v1/tickets/{ticket_id}/information-requests"},
      {"POST", "/v1/tickets/{ticket_id}/information"},
      {"POST", "/v1/tickets/{ticket_id}/solution"},
      {"POST", "/v1/tickets/{ticket_id}/solution/accept"},
      {"POST", "/v1/tickets/{ticket_id}/solution/refuse"},
      {"POST", "/v1/tickets/{ticket_id}/close"},
      {"POST", "/v1/tickets/{ticket_id}/comments"},
      {"POST", "/v1/tickets/{ticket_id}/take"},
      {"POST", "/v1/tickets/{ticket_id}/release"},
      {"POST", "/v1/tickets/{ticket_id}/reassign"},
      {"POST", "/v1/tickets/{ticket_id}/escalate"},
      {"PUT", "/v1/tickets/{ticket_id}/priority"},
      {"GET", "/v1/tickets/{ticket_id}"},
      {"POST", "/v1/tickets/{ticket_id}/attachments", {"name"}},
      {"GET", "/v1/tickets/{ticket_id}/attachments/{attachment_id}"},
      {"GET", "/v1/outbox", {"limit"}},
      {"POST", "/v1/admin/views/rebuild"},
      {"POST", "/v1/admin/attachments/sweep", {"older_than_minutes"}},
      {"POST", "/v1/outbox/{notification_id}/sent"},
      {"GET",
       "/v1/me/tickets",
       {"tab", "sort", "order", "page", "page_size", "number", "q", "category", "sub_category",
        "status", "opened_from", "opened_to"}},
      {"GET", "/v1/me/tickets/counts"},
      {"POST", "/v1/structures"},
      {"GET", "/v1/structures", {"identifier_type", "identifier_value", "name", "limit"}},
      {"POST", "/v1/structure-imports"},
      {"GET", "/v1/structures/{structure_id}"},
      {"PUT", "/v1/structures/{structure_id}/data"},
      {"POST", "/v1/structures/{structure_id}/deactivate"},
      {"POST", "/v1/structures/{structure_id}/identifier"},
      {"POST", "/v1/structures/{structure_id}/services"},
      {"PUT", "/v1/structures/{structure_id}/services/{code}"},
      {"DELETE", "/v1/structures/{structure_id}/services/{code}"},
      {"POST", "/v1/structures/{structure_id}/attachment-requests"},
      {"POST", "/v1/structures/{structure_id}/attachment-requests/decisions"},
      {"POST", "/v1/structures/{structure_id}/attachment-requests/{request_id}/validate"},
      {"POST", "/v1/structures/{structure_id}/attachment-requests/{request_id}/refuse"},
      {"GET", "/v1/structures/{structure_id}/members", {"q", "status", "service", "format"}},
      {"POST", "/v1/structures/{structure_id}/members"},
      {"POST", "/v1/structures/{structure_id}/members/removals"},
      {"DELETE", "/v1/structures/{structure_id}/members/{user_id}"},
      {"POST", "/v1/structures/{structure_id}/members/{user_id}/password-reset"},
      {"POST", "/v1/structures/{structure_id}/main-manager"},
      {"POST", "/v1/structures/{structure_id}/espaces"},
      {"POST", "/v1/structures/{structure_id}/subscription-requests"},
      {"POST", "/v1/structures/{structure_id}/subscription-requests/decisions"},
      {"POST", "/v1/structures/{structure_id}/subscription-requests/{request_id}/validate"},
      {"POST", "/v1/structures/{structure_id}/subscription-requests/{request_id}/refuse"},
      {"GET", "/v1/structures/{structure_id}/history", {"page", "page_size", "before"}},
      {"GET", "/v1/approvals", {"structure_id", "kind", "q", "after", "sort", "page", "page_size"}},
      {"GET", "/v1/me/attachments"},
      {"POST", "/v1/accounts"},
      {"POST", "/v1/accounts/{user_id}/activate"},
      {"POST", "/v1/accounts/{user_id}/activation-resend"},
      {"POST", "/v1/accounts/{user_id}/deactivate"},
      {"POST", "/v1/accounts/{user_id}/reactivate"},
      {"POST", "/v1/pigp-imports"},
      {"GET",
       "/v1/me/tickets/export.csv",
       {"tab", "sort", "order", "number", "q", "category", "sub_category", "status", "opened_from",
        "opened_to"}},
      {"GET",
       "/v1/support/tickets",
       {"level", "scope", "sort", "order", "page", "page_size", "number", "q", "category",
        "sub_category", "status", "opened_from", "opened_to"}},
      {"GET",
       "/v1/received/tickets",
       {"structure_id", "service", "scope", "sort", "order", "page", "page_size", "number", "q",
        "category", "sub_category", "status", "opened_from", "opened_to"}},
      {"POST", "/v1/public/tickets"},
      {"GET", "/v1/public/ticket-categories"},
      {"GET", "/v1/reference-objects/{object_type}/{object_number}", {"emitting_structure_id"}},
      {"POST", "/v1/reference-object-imports"},
  };
  return kRoutes;
}

bool Router::answers_at_once(const Request& request) const {
  if (request.method != "GET" && request.method != "HEAD") return false;
  if (request.consistency_token.empty()) return true;
  const auto position = events::LogPosition::from_token(request.consistency_token);
  return !position || runner_.applied().covers(*position);
}

std::optional<BodyLimit> Router::body_limit(std::string_view method, std::string_view path) const {
  std::vector<std::string> params;
  if (method == "POST" && match("/v1/tickets/{ticket_id}/attachments", path, params)) {
    return BodyLimit{options_.max_attachment_bytes, "attachment.too_large",
                     "Pièce jointe trop volumineuse"};
  }
  return std::nullopt;
}

Router::Router(events::EventLog& log, projections::Runner& runner, const TokenVerifier& tokens,
               Metrics& metrics, RouterOptions options)
    : log_(log),
      runner_(runner),
      tokens_(tokens),
      metrics_(metrics),
      options_(options),
      commands_(log) {
  commands_.on_append = [this](const std::vector<events::Payload>& payloads, double seconds) {
    if (!metrics_.enabled()) return;
    std::vector<const char*> types;
    types.reserve(payloads.size());
    for (const auto& p : payloads) types.push_back(events::type_name(p));
    metrics_.observe_append(types, seconds);
  };
}

Response Router::handle(const Request& request) noexcept {
  const auto start = Clock::now();
  std::string route = "unmatched";
  Response response;
  try {
    response = dispatch(request, route);
  } catch (const Problem& p) {
    response = p.to_response();
  } catch (const std::exception&) {
    response = Problem{500, "internal", "", "Erreur interne."}.to_response();
  }
  try {
    if (metrics_.enabled()) {
      metrics_.observe_request(route, response.status,
                               std::chrono::duration<double>(Clock::now() - start).count());
    }
  } catch (...) {
  }
  return response;
}

Response Router::dispatch(const Request& request, std::string& route_label) {
  std::vector<std::string> params;
  const RouteInfo* route = nullptr;
  bool path_known = false;
  for (const auto& r : routes()) {
    if (match(r.pattern, request.raw_path, params)) {
      path_known = true;
      if (request.method == r.method) {
        route = &r;
        break;
      }
    }
  }
  if (route == nullptr) {
    if (path_known) throw Problem{405, "request.method", "", "Méthode non permise."};
    throw Problem{404, "request.route", "", "Ressource inconnue."};
  }
  route_label = route->pattern;
  const std::string_view pattern = route->pattern;
  if (!request.repeated_headers.empty()) {
    const std::string& name = request.repeated_headers.front();
    throw Problem{400, "request.header", name, "En-tête « " + name + " » envoyé plusieurs fois."};
  }
  // Decoded path and query text reaches keys, events and answers: it must be text. A NUL would
  // cut a view key, and bytes that are not UTF-8 cannot be written into JSON.
  for (const auto& param : params) {
    if (!events::is_plain_text(param, /*line_breaks=*/false)) {
      throw Problem{400, "request.path", "",
                    "Le chemin contient un caractère de contrôle ou n'est pas de l'UTF-8 valide."};
    }
  }
  // Bodies are JSON but an attachment's bytes: a body declared otherwise (or not declared) is
  // refused before it is read. This also keeps a browser's cross-site form, which can only
  // send text/plain or a form encoding, away from the routes that take no token.
  if (!request.body.empty() && pattern != "/v1/tickets/{ticket_id}/attachments" &&
      !is_json_media_type(request.content_type)) {
    throw Problem{415, "request.content_type", "Content-Type",
                  "Le corps de la requête doit être déclaré « application/json », en UTF-8."};
  }
  for (const auto& [name, value] : request.query) {
    const bool name_ok = events::is_plain_text(name, false);
    if (!name_ok || !events::is_plain_text(value, false)) {
      throw Problem{400, "request.query", name_ok ? name : "",
                    "Un paramètre de la requête contient un caractère de contrôle ou n'est pas de "
                    "l'UTF-8 valide."};
    }
    if (std::ranges::find(route->query, name) == route->query.end()) {
      throw Problem{400, "request.query", name, "Paramètre inconnu : « " + name + " »."};
    }
    // Read as the first one, a second value would never be checked.
    if (std::ranges::count(request.query, name, &std::pair<std::string, std::string>::first) > 1) {
      throw Problem{400, "request.query", name, "Paramètre répété : « " + name + " »."};
    }
  }

  // --- Unauthenticated operational endpoints -------------------------------------------
  if (pattern == "/healthz") return Response{200, "text/plain", "ok\n", {}};
  if (pattern == "/readyz") {
    // A server another has taken the log over from writes nothing more: out of the rotation.
    if (log_.fenced()) {
      throw Problem{503, "ready.fenced", "",
                    "Un autre serveur écrit désormais le journal : celui-ci n'enregistre plus."};
    }
    auto end = log_.end();
    if (!end) throw Problem{503, "ready.log", "", "Journal injoignable : " + end.error().message};
    auto applied = runner_.applied();
    const std::uint64_t lag = applied.distance_to(*end);
    if (lag > options_.ready_max_lag) {
      throw Problem{503, "ready.views", "",
                    "Vues en retard de " + std::to_string(lag) + " événements."};
    }
    return json_response(200, json{{"log", log_.kind()}, {"view_lag_events", lag}});
  }
  if (pattern == "/metrics") {
    // Turned off (--metrics=false): as if the route did not exist.
    if (!metrics_.enabled()) throw Problem{404, "request.route", "", "Ressource inconnue."};
    auto end = log_.end();
    auto applied = runner_.applied();
    auto stats = runner_.stats();
    const double lag = end ? static_cast<double>(applied.distance_to(*end)) : 0;
    const auto store = runner_.store();
    Metrics::ViewState state;
    state.applied_events = static_cast<double>(stats.events_applied);
    state.lag_events = lag;
    if (lag > 0 && stats.last_applied_at_us > 0) {
      const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      state.lag_seconds = static_cast<double>(now_us - stats.last_applied_at_us) / 1e6;
    }
    state.set_aside_events = static_cast<double>(stats.events_set_aside);
    state.rebuild_running = stats.rebuilding ? 1 : 0;
    state.rebuild_applied_events = static_cast<double>(stats.rebuild_events_applied);
    state.rebuild_remaining_events = static_cast<double>(stats.rebuild_events_remaining);
    state.rebuilds_completed = static_cast<double>(stats.rebuilds_completed);
    state.rebuilds_failed = static_cast<double>(stats.rebuilds_failed);
    state.pending_compaction_bytes =
        static_cast<double>(store->int_property("rocksdb.estimate-pending-compaction-bytes"));
    state.write_stopped = static_cast<double>(store->int_property("rocksdb.is-write-stopped"));
    state.memtable_bytes =
        static_cast<double>(store->int_property("rocksdb.cur-size-all-mem-tables"));
    metrics_.set_view_state(state);
    metrics_.set_storage_state(log_.stats(), store->stats());
    return Response{200, "text/plain; version=0.0.4", metrics_.scrape(), {}};
  }

  // --- Signed-out mode: the one route without an identity ------------------------------
  if (pattern == "/v1/public/tickets") {
    // "Mode non connecté": an e-mail instead of an account; the ticket gets its number and is
    // routed, but no portal view lists it for its emitter. Never idempotent by key: with no
    // identity, two senders could share a key.
    if (options_.public_tickets_limit) {
      const double now_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
              .count();
      if (const double wait_s =
              options_.public_tickets_limit->acquire(request.client_address, now_s);
          wait_s > 0) {
        const auto retry = static_cast<long long>(std::ceil(wait_s));
        Response r = Problem{429, "public_ticket.rate_limited", "",
                             "Trop de sollicitations envoyées depuis cette adresse : réessayez "
                             "dans " +
                                 std::to_string(retry) + " s."}
                         .to_response();
        r.headers.emplace_back("Retry-After", std::to_string(retry));
        return r;
      }
    }
    JsonBody body(request.body, {"email", "category", "sub_category", "title", "description",
                                 "destination_structure_id", "destination_service", "object_type",
                                 "object_number"});
    domain::ticket::Form form;
    form.category = body.string_or_empty("category");
    form.sub_category = body.string_or_empty("sub_category");
    form.title = body.string_or_empty("title");
    form.description = body.string_or_empty("description");
    form.destination_structure_id = body.string_or_empty("destination_structure_id");
    form.destination_service = body.string_or_empty("destination_service");
    form.object_type = body.string_or_empty("object_type");
    form.object_number = body.string_or_empty("object_number");
    const std::string ticket_id = random_uuid();
    const domain::ticket::SubmitSignedOut command{form, body.string_or_empty("email"),
                                                  domain::ticket::number_for(ticket_id)};
    const domain::Caller nobody{};
    CommandMeta meta{nobody, "signed_out", random_uuid(), random_uuid()};
    domain::ticket::State initial;
    initial.ticket_id = ticket_id;
    domain::ticket::Context context;
    context.categories = options_.categories;
    context.destination_exists =
        active_structure(*runner_.store(), form.destination_structure_id, form.destination_service);
    context.object = object_recipient(*runner_.store(), form.object_type, form.object_number);
    const auto started = Clock::now();
    try {
      auto outcome = commands_.run(
          domain::ticket::stream_id(ticket_id), meta,
          Aggregate<domain::ticket::State>{
              std::move(initial), &domain::ticket::evolve, [&](const domain::ticket::State& state) {
                return domain::ticket::decide(state, command, nobody, context);
              }});
      const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      metrics_.observe_command("ticket.submit_signed_out", "accepted", seconds);
      log_command("ticket.submit_signed_out", "accepted", meta.correlation_id, seconds);
      return json_response(201, json{{"ticket_id", ticket_id},
                                     {"number", command.number},
                                     {"consistency_token", outcome.consistency_token}});
    } catch (const Problem& p) {
      const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      metrics_.observe_command("ticket.submit_signed_out", p.rule, seconds);
      log_command("ticket.submit_signed_out", p.rule, meta.correlation_id, seconds);
      throw;
    }
  }

  // The ticket form's lists ("Catégorie", "Sous-catégorie"): reference data, the same for the
  // signed-out form, so without an identity. Each pair says where it goes and, for an
  // object-bound pair, the object type the form fills in ("Type d'objet concerné", seed 002).
  if (pattern == "/v1/public/ticket-categories") {
    json categories = json::array();
    if (options_.categories != nullptr) {
      for (const auto& [category, subs] : options_.categories->pairs()) {
        json listed = json::array();
        for (const auto& sub : subs) {
          json pair{{"name", sub},
                    {"routing", domain::ticket::is_business(sub) ? "business" : "support"}};
          if (auto type = options_.categories->object_type(category, sub); !type.empty()) {
            pair["object_type"] = std::move(type);
          }
          listed.push_back(std::move(pair));
        }
        categories.push_back(json{{"name", category}, {"sub_categories", std::move(listed)}});
      }
    }
    return json_response(200, json{{"categories", std::move(categories)}});
  }

  // --- Everything else needs a verified identity ---------------------------------------
  auto caller = tokens_.verify(request.authorization, now_s());
  if (!caller)
    throw Problem{401, "auth.token", "Authorization",
                  "Authentification requise : " + caller.error()};
  auto wait_for_views = [&] {
    if (request.consistency_token.empty()) return;
    auto position = events::LogPosition::from_token(request.consistency_token);
    if (!position) {
      throw Problem{400, "request.consistency_token", "X-Consistency-Token",
                    "Jeton de cohérence mal formé."};
    }
    // A token no write has produced (beyond the log's end) would hold this thread for the
    // whole wait and answer 503 to a retry that can never succeed: refused at once. Beyond
    // what this server knows of the log, the log's keeper is asked (on Kafka, the brokers: a
    // token from another server's write this one has not read yet is within their
    // watermarks, and waits); when it cannot tell in time, the token waits as well.
    if (!runner_.applied().covers(*position)) {
      auto known = log_.end();
      if (known && !known->covers(*position)) {
        auto written = log_.covered_by_writes(
            *position, std::min(options_.consistency_wait, std::chrono::milliseconds(1000)));
        if (written && !*written) {
          throw Problem{400, "request.consistency_token", "X-Consistency-Token",
                        "Jeton de cohérence au-delà du journal : aucune écriture ne l'a donné."};
        }
      }
    }
    if (auto ok = runner_.wait_for(*position, options_.consistency_wait); !ok) {
      throw Problem{503, "views.behind", "X-Consistency-Token",
                    "Les vues n'ont pas encore rattrapé cette écriture ; réessayez."};
    }
  };

  // A deactivated account acts no more, whatever token it still holds (its rights as a manager
  // included), but for reactivating itself. As the access views know it, once they hold the
  // request's consistency token: a deactivation is seen once the views hold it.
  // A command retried under its Idempotency-Key still gets its first answer, should the
  // account have been deactivated since (its deactivation itself, whose answer was lost): the
  // command side answers the replay and refuses anything else (CommandMeta::replay_only).
  // Operator actions but the outbox's (one command each) and batch imports, which answer line
  // by line, are refused outright.
  bool replay_only = false;
  if (pattern != "/v1/accounts/{user_id}/reactivate" || params.empty() ||
      params[0] != caller->user_id) {
    wait_for_views();
    auto deactivated = projections::account_deactivated(*runner_.store(), caller->user_id);
    if (!deactivated) throw Problem{503, "views.unavailable", "", "Vues indisponibles."};
    if (*deactivated) {
      const bool one_command =
          request.method != "GET" && !request.idempotency_key.empty() &&
          !pattern.starts_with("/v1/admin/") && pattern != "/v1/pigp-imports" &&
          pattern != "/v1/structure-imports" && pattern != "/v1/reference-object-imports";
      if (!one_command) throw deactivated_caller();
      replay_only = true;
    }
  }

  if (is_structure_route(pattern)) {
    return StructureRoutes(commands_, runner_, metrics_)
        .handle(pattern, params, request, *caller, replay_only, wait_for_views);
  }

  // `before_append` runs once the decision is accepted, before its events are appended (an
  // attachment's bytes go to the content store there); it may run again on a retry after a
  // version conflict. `extra`, given the outcome, makes members joining the answer; it may
  // refuse a replay that does not match (throwing Problem).
  auto run_ticket_command =
      [&](const std::string& ticket_id, const char* type,
          std::function<domain::ticket::Command(const domain::ticket::State&)> make_command,
          const std::function<void()>& before_append = {},
          const std::function<json(const CommandOutcome&)>& extra = {}) {
        const auto started = Clock::now();
        // The role recorded in the events: support acts as such, anyone else as a user.
        const char* role = caller->roles.support_level2   ? "support_n2"
                           : caller->roles.support_level1 ? "support_n1"
                                                          : "user";
        // An upload's bytes stay out of its id: other bytes under its key are refused (422)
        // by comparing them with what the first upload stored.
        const std::string_view own_body =
            pattern == "/v1/tickets/{ticket_id}/attachments" ? std::string_view() : request.body;
        CommandMeta meta{*caller, role,
                         CommandHandler::command_id(
                             caller->user_id, std::string(request.method) + " " + request.path,
                             request.idempotency_key, own_body),
                         random_uuid()};
        meta.replay_only = replay_only;
        // The access view must have seen the caller's own attachments.
        wait_for_views();
        try {
          domain::ticket::State initial;
          initial.ticket_id = ticket_id;
          auto outcome = commands_.run(
              domain::ticket::stream_id(ticket_id), meta,
              Aggregate<domain::ticket::State>{
                  std::move(initial), &domain::ticket::evolve,
                  [&](const domain::ticket::State& state) {
                    auto command = make_command(state);
                    // The caller must be attached to the emitting structure: the form's,
                    // or the draft's.
                    // A business recipient holds "Sollicitations reçues" on the destination.
                    const auto [destination, service] = destination_of(command, state);
                    auto context =
                        ticket_context(*runner_.store(), *caller,
                                       emitting_structure_of(command, state), destination, service);
                    // Only a take asks whether a business ticket's holder has left (two more
                    // view reads, and one more way to fail, for no other command).
                    if (std::holds_alternative<domain::ticket::Take>(command) &&
                        domain::ticket::is_business(state.sub_category) &&
                        !state.assignee.empty() && state.assignee != caller->user_id) {
                      // Whether its holder may still work it: the rule that made them a
                      // recipient, on an account not deactivated (which refuses them all).
                      const domain::Caller holder{state.assignee, {}};
                      auto deactivated =
                          projections::account_deactivated(*runner_.store(), state.assignee);
                      if (!deactivated) {
                        throw Problem{503, "views.unavailable", "", "Vues indisponibles."};
                      }
                      context.assignee_left_destination =
                          *deactivated ||
                          !ticket_context(*runner_.store(), holder, "", destination, service)
                               .business_recipient;
                    }
                    context.categories = options_.categories;
                    context.destination_exists =
                        active_structure(*runner_.store(), destination, service);
                    // Only a form saved or submitted is emitted (one more view read).
                    if (std::holds_alternative<domain::ticket::SaveDraft>(command) ||
                        std::holds_alternative<domain::ticket::Submit>(command)) {
                      context.emitting_structure_active = active_structure(
                          *runner_.store(), emitting_structure_of(command, state), "");
                    }
                    const auto [object_type, object_number] = object_of(command, state);
                    context.object = object_recipient(*runner_.store(), object_type, object_number);
                    auto decision = domain::ticket::decide(state, command, *caller, context);
                    if (decision && before_append) before_append();
                    return decision;
                  }});
          json answer{{"ticket_id", ticket_id},
                      {"version", outcome.version},
                      {"consistency_token", outcome.consistency_token}};
          if (extra) answer.update(extra(outcome));
          const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
          metrics_.observe_command(type, "accepted", seconds);
          log_command(type, "accepted", meta.correlation_id, seconds);
          Response r = json_response(outcome.replayed ? 200 : 201, answer);
          r.headers.emplace_back("X-Consistency-Token", outcome.consistency_token);
          return r;
        } catch (const Problem& p) {
          const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
          metrics_.observe_command(type, p.rule, seconds);
          log_command(type, p.rule, meta.correlation_id, seconds);
          throw;
        }
      };

  if (pattern == "/v1/tickets/drafts" || pattern == "/v1/tickets") {
    JsonBody body(request.body, kFormFields);
    const domain::ticket::Form form = read_form(body);
    // With an Idempotency-Key the ticket id is derived from it, so a retry finds its ticket.
    const std::string ticket_id =
        request.idempotency_key.empty()
            ? random_uuid()
            : CommandHandler::command_id(caller->user_id, pattern, request.idempotency_key,
                                         request.body);
    if (pattern == "/v1/tickets/drafts") {
      return run_ticket_command(ticket_id, "ticket.save_draft", [&](const auto&) {
        return domain::ticket::Command{domain::ticket::SaveDraft{form}};
      });
    }
    return run_ticket_command(ticket_id, "ticket.submit", [&](const auto&) {
      return domain::ticket::Command{
          domain::ticket::Submit{form, domain::ticket::number_for(ticket_id)}};
    });
  }
  if (pattern == "/v1/tickets/{ticket_id}/draft" && request.method == "PUT") {
    check_ticket_id(params[0]);
    JsonBody body(request.body, kFormFields);
    const domain::ticket::Form form = read_form(body);
    return run_ticket_command(params[0], "ticket.save_draft", [&](const auto&) {
      return domain::ticket::Command{domain::ticket::SaveDraft{form}};
    });
  }
  if (pattern == "/v1/tickets/{ticket_id}/submit") {
    check_ticket_id(params[0]);
    std::optional<domain::ticket::Form> form;
    if (!request.body.empty()) {
      JsonBody body(request.body, kFormFields);
      // Any field makes it a form, checked whole: a new destination alone is not quietly
      // dropped for the one saved.
      if (std::ranges::any_of(kFormFields, [&](const std::string& f) { return body.has(f); })) {
        form = read_form(body);
      }
    }
    return run_ticket_command(params[0], "ticket.submit", [&](const auto&) {
      return domain::ticket::Command{
          domain::ticket::Submit{form, domain::ticket::number_for(params[0])}};
    });
  }

  // The status table after submission: each route is one command; `field` names the body's
  // text field ("" when the command takes none).
  struct Action {
    const char* pattern;
    const char* type;
    const char* field;
    domain::ticket::Command (*make)(std::string);
  };
  static const Action kActions[] = {
      {"/v1/tickets/{ticket_id}/draft", "ticket.delete_draft", "",
       [](std::string) -> domain::ticket::Command { return domain::ticket::DeleteDraft{}; }},
      {"/v1/tickets/{ticket_id}/information-requests", "ticket.request_information", "text",
       [](std::string t) -> domain::ticket::Command {
         return domain::ticket::RequestInformation{std::move(t)};
       }},
      {"/v1/tickets/{ticket_id}/information", "ticket.provide_information", "text",
       [](std::string t) -> domain::ticket::Command {
         return domain::ticket::ProvideInformation{std::move(t)};
       }},
      {"/v1/tickets/{ticket_id}/solution", "ticket.propose_solution", "text",
       [](std::string t) -> domain::ticket::Command {
         return domain::ticket::ProposeSolution{std::move(t)};
       }},
      {"/v1/tickets/{ticket_id}/solution/accept", "ticket.accept_solution", "",
       [](std::string) -> domain::ticket::Command { return domain::ticket::AcceptSolution{}; }},
      {"/v1/tickets/{ticket_id}/solution/refuse", "ticket.refuse_solution", "reason",
       [](std::string r) -> domain::ticket::Command {
         return domain::ticket::RefuseSolution{std::move(r)};
       }},
      {"/v1/tickets/{ticket_id}/close", "ticket.close", "reason",
       [](std::string r) -> domain::ticket::Command {
         return domain::ticket::Close{std::move(r)};
       }},
      {"/v1/tickets/{ticket_id}/comments", "ticket.comment", "text",
       [](std::string t) -> domain::ticket::Command {
         return domain::ticket::AddComment{std::move(t)};
       }},
      {"/v1/tickets/{ticket_id}/take", "ticket.take", "",
       [](std::string) -> domain::ticket::Command { return domain::ticket::Take{}; }},
      {"/v1/tickets/{ticket_id}/release", "ticket.release", "",
       [](std::string) -> domain::ticket::Command { return domain::ticket::Release{}; }},
      {"/v1/tickets/{ticket_id}/reassign", "ticket.reassign", "agent_user_id",
       [](std::string a) -> domain::ticket::Command {
         return domain::ticket::Reassign{std::move(a)};
       }},
      {"/v1/tickets/{ticket_id}/escalate", "ticket.escalate", "",
       [](std::string) -> domain::ticket::Command { return domain::ticket::Escalate{}; }},
  };
  if (pattern == "/v1/outbox/{notification_id}/sent") {
    require_operator(*caller, "outbox.operator_only", "au service d'envoi");
    if (!request.body.empty()) JsonBody body(request.body, {});
    const std::string& id = params[0];
    auto pending = projections::notification_pending(*runner_.store(), id);
    if (!pending) throw Problem{503, "views.unavailable", "", "Vues indisponibles."};
    auto stream = events::check_stream_id("notification-" + id);
    if (!stream)
      throw Problem{404, "notification.not_found", "notification_id", "Notification inconnue."};
    CommandMeta meta{*caller, "mailer",
                     CommandHandler::command_id(caller->user_id, "POST " + request.path,
                                                request.idempotency_key, request.body),
                     random_uuid()};
    meta.replay_only = replay_only;
    auto outcome = commands_.run(
        "notification-" + id, meta,
        Aggregate<bool>{false, [](bool, const events::Payload&) { return true; },
                        [&](bool sent) -> domain::Decision<std::vector<events::Payload>> {
                          if (sent) {
                            return domain::reject(domain::errc::wrong_status,
                                                  "notification.sent.already", "notification_id",
                                                  "Notification déjà marquée envoyée.");
                          }
                          if (!*pending) {
                            return domain::reject(domain::errc::not_found, "notification.not_found",
                                                  "notification_id", "Notification inconnue.");
                          }
                          return std::vector<events::Payload>{events::NotificationSent{id}};
                        }});
    Response r = json_response(
        outcome.replayed ? 200 : 201,
        json{{"notification_id", id}, {"consistency_token", outcome.consistency_token}});
    r.headers.emplace_back("X-Consistency-Token", outcome.consistency_token);
    return r;
  }
  if (pattern == "/v1/reference-object-imports") {
    // The reference objects (invoices, TIC refund requests, court-fee statements) made elsewhere
    // in Chorus Pro, each with the recipient its tickets go to, brought by the support's or the
    // operators' import script. Each line is decided and written on its own: a refused line
    // says why, the others go through; a line already known with that recipient is unchanged.
    if (!caller->roles.support_level1 && !caller->roles.support_level2 &&
        !caller->roles.operator_) {
      throw Problem{403, "reference_object.import.forbidden", "",
                    "Import réservé au support et à l'exploitation."};
    }
    JsonBody body(request.body, {"objects"});
    const auto lines =
        body.object_list("objects", {"object_type", "object_number", "issuer_structure_id",
                                     "recipient_structure_id", "recipient_service"});
    if (lines.empty() || lines.size() > 1000) {
      throw Problem{422, "request.bulk_size", "objects", "Entre 1 et 1000 objets par envoi."};
    }
    wait_for_views();  // the recipients' structures are looked up in the views
    const auto store = runner_.store();
    const char* role = caller->roles.support_level2   ? "support_n2"
                       : caller->roles.support_level1 ? "support_n1"
                                                      : "operator";
    const std::string base_id = CommandHandler::command_id(caller->user_id, "POST " + request.path,
                                                           request.idempotency_key, request.body);
    json results = json::array();
    std::string last_token;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const auto started = Clock::now();
      const domain::reference_object::Import line{
          lines[i].string_or_empty("object_type"), lines[i].string_or_empty("object_number"),
          lines[i].string_or_empty("recipient_structure_id"),
          lines[i].string_or_empty("recipient_service"),
          lines[i].string_or_empty("issuer_structure_id")};
      json item{{"line", i + 1},
                {"object_type", line.object_type},
                {"object_number", line.object_number}};
      // A retry with the same Idempotency-Key finds each line's first run.
      CommandMeta meta{*caller, role,
                       request.idempotency_key.empty()
                           ? random_uuid()
                           : CommandHandler::command_id(caller->user_id,
                                                        base_id + "#" + std::to_string(i), "line"),
                       random_uuid()};
      meta.replay_only = replay_only;
      domain::reference_object::Context context;
      context.recipient_exists =
          !line.recipient_structure_id.empty() &&
          active_structure(*store, line.recipient_structure_id, line.recipient_service);
      context.issuer_exists = !line.issuer_structure_id.empty() &&
                              active_structure(*store, line.issuer_structure_id, "");
      const std::string stream =
          domain::reference_object::stream_id(line.object_type, line.object_number);
      try {
        const CommandOutcome outcome = commands_.run_appends(
            meta,
            [&](CommandHandler::StreamLoader& loader)
                -> domain::Decision<domain::workflow::Appends> {
              const auto state = loader.load(stream, domain::reference_object::State{},
                                             &domain::reference_object::evolve);
              auto decided = domain::reference_object::decide(state, line, *caller, context);
              if (!decided) return std::unexpected(decided.error());
              if (decided->empty()) return domain::workflow::Appends{};
              return domain::workflow::Appends{{stream, state.version, std::move(*decided)}};
            });
        item["outcome"] = outcome.consistency_token.empty() ? "unchanged"
                          : outcome.replayed                ? "replayed"
                                                            : "imported";
        if (!outcome.consistency_token.empty()) last_token = outcome.consistency_token;
        const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
        metrics_.observe_command("reference_object.import", "accepted", seconds);
        log_command("reference_object.import", "accepted", meta.correlation_id, seconds);
      } catch (const Problem& p) {
        const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
        metrics_.observe_command("reference_object.import", p.rule, seconds);
        log_command("reference_object.import", p.rule, meta.correlation_id, seconds);
        item["outcome"] = "refused";
        item["problem"] = problem_json(p);
      }
      results.push_back(std::move(item));
    }
    return batch_response(std::move(results), last_token);
  }
  if (pattern == "/v1/tickets/{ticket_id}/attachments") {
    // "Ajouter une pièce jointe": the raw bytes as the body (no base64), the media type as
    // Content-Type, the file name in ?name=. The size limit was enforced while reading (413,
    // Router::body_limit); checked again here for bodies that arrived otherwise.
    check_ticket_id(params[0]);
    const ContentStore* files = options_.attachments;
    if (files == nullptr) {
      throw Problem{503, "attachment.store", "", "Stockage des pièces jointes indisponible."};
    }
    if (request.body.size() > options_.max_attachment_bytes) {
      throw Problem{413, "attachment.too_large", "",
                    "Pièce jointe trop volumineuse (maximum " +
                        std::to_string(options_.max_attachment_bytes) + " octets)."};
    }
    const std::string* name = request.query_param("name");
    domain::ticket::AddAttachment command{
        request.idempotency_key.empty()
            ? random_uuid()
            : CommandHandler::command_id(caller->user_id, "attachment " + request.path,
                                         request.idempotency_key),
        name ? *name : "",
        request.content_type.empty() ? "application/octet-stream" : request.content_type,
        request.body.size(), ContentStore::digest(request.body)};
    // The bytes are durable before the event that names them is appended; a refused decision
    // stores nothing.
    auto store_bytes = [&] {
      if (auto ok = files->put(request.body, command.sha256); !ok) {
        throw Problem{503, "attachment.store", "",
                      "Stockage des pièces jointes indisponible ; réessayez."};
      }
    };
    // A retry with the same Idempotency-Key answers what the first upload stored; other bytes
    // under the same key are refused, never taken for the first ones.
    auto stored_file = [&](const CommandOutcome& outcome) -> json {
      if (!outcome.replayed) {
        return json{{"attachment_id", command.attachment_id},
                    {"sha256", command.sha256},
                    {"size", command.size}};
      }
      auto recorded = log_.read_stream(domain::ticket::stream_id(params[0]), outcome.version, 1);
      if (!recorded) throw Problem{503, "log.unavailable", "", "Journal indisponible."};
      const events::FileAttached* first = nullptr;
      std::optional<events::Event> event;
      if (!recorded->empty()) {
        if (auto decoded = events::decode(recorded->front().bytes)) event = std::move(*decoded);
      }
      if (event) first = std::get_if<events::FileAttached>(&event->payload);
      if (first == nullptr) throw Problem{500, "internal", "", "Erreur interne."};
      if (first->sha256 != command.sha256) {
        throw Problem{422, "attachment.idempotency_key", "Idempotency-Key",
                      "Cette clé d'idempotence a déjà servi à joindre un autre fichier."};
      }
      return json{{"attachment_id", first->attachment_id},
                  {"sha256", first->sha256},
                  {"size", first->size}};
    };
    return run_ticket_command(
        params[0], "ticket.attachment",
        [&](const auto&) { return domain::ticket::Command{command}; }, store_bytes, stored_file);
  }
  if (pattern == "/v1/tickets/{ticket_id}/priority") {
    check_ticket_id(params[0]);
    JsonBody body(request.body, {"impact", "severity", "priority", "reason"});
    domain::ticket::SetPriority command{
        body.string_or_empty("impact"), body.string_or_empty("severity"),
        body.optional_int("priority"), body.string_or_empty("reason")};
    return run_ticket_command(params[0], "ticket.priority",
                              [&](const auto&) { return domain::ticket::Command{command}; });
  }
  for (const auto& action : kActions) {
    if (pattern != action.pattern) continue;
    check_ticket_id(params[0]);
    std::string text;
    if (*action.field != '\0') {
      JsonBody body(request.body.empty() ? "{}" : request.body, {action.field});
      text = body.string_or_empty(action.field);
    } else if (!request.body.empty()) {
      JsonBody body(request.body, {});  // no field is accepted
    }
    // A copy each time: the command is made again for every attempt (a version conflict
    // decides it again), and a moved-from text once made the retry refuse it as blank.
    return run_ticket_command(params[0], action.type,
                              [&](const auto&) { return action.make(text); });
  }

  // --- Queries -------------------------------------------------------------------------
  wait_for_views();
  auto store = runner_.store();
  auto or_503 = [](auto result) {
    if (!result) throw Problem{503, "views.unavailable", "", "Vues indisponibles."};
    return std::move(*result);
  };
  // The detail of a ticket the caller may read; someone else's ticket answers exactly like a
  // missing one (404): existence must not leak.
  auto readable_ticket = [&](const std::string& ticket_id) {
    check_ticket_id(ticket_id);
    auto row = or_503(projections::ticket_detail(*store, ticket_id));
    if (!row) throw Problem{404, "ticket.not_found", "ticket_id", "Ticket introuvable."};
    json t = json::parse(*row);
    domain::ticket::State seen;
    seen.sub_category = t.value("sub_category", "");
    const bool emitter = t.value("emitter_user_id", "") == caller->user_id;
    // Support for a technical ticket; for a business ("M-") one, the destination's users
    // holding "Sollicitations reçues", to read ("Consultation") or write.
    const bool business = domain::ticket::is_business(seen.sub_category);
    const bool recipient =
        t.value("status", "") != "Brouillon" &&
        (business ? reads_received_tickets(*store, *caller, t.value("destination_structure_id", ""),
                                           t.value("destination_service", ""))
                  : domain::ticket::is_recipient(seen, *caller, domain::ticket::Context{}));
    if (!emitter && !recipient) {
      throw Problem{404, "ticket.not_found", "ticket_id", "Ticket introuvable."};
    }
    return t;
  };
  if (pattern == "/v1/tickets/{ticket_id}") return json_response(200, readable_ticket(params[0]));
  if (pattern == "/v1/tickets/{ticket_id}/attachments/{attachment_id}") {
    const json t = readable_ticket(params[0]);
    const json none = json::array();
    const json& listed = t.contains("attachments") ? t.at("attachments") : none;
    const auto found = std::find_if(listed.begin(), listed.end(), [&](const json& a) {
      return a.value("attachment_id", "") == params[1];
    });
    if (found == listed.end()) {
      throw Problem{404, "attachment.not_found", "attachment_id", "Pièce jointe introuvable."};
    }
    if (options_.attachments == nullptr) {
      throw Problem{503, "attachment.store", "", "Stockage des pièces jointes indisponible."};
    }
    auto bytes = options_.attachments->get(found->value("sha256", ""));
    if (!bytes) {
      // The event is only appended once its bytes are durable: a miss or a mismatch is damage.
      spdlog::error("msg=\"attachment content unreadable\" ticket_id={} error=\"{}\"", params[0],
                    bytes.error().message);
      if (bytes.error().code == content_errc::io_error) {
        throw Problem{503, "attachment.store", "", "Stockage des pièces jointes indisponible."};
      }
      // On Kafka another server may have received the file, into a store this one does not
      // share (--attachments-dir): a setting to fix, not damage to the file.
      if (bytes.error().code == content_errc::not_found && log_.kind() == "kafka" &&
          !options_.attachments_shared) {
        throw Problem{503, "attachment.elsewhere", "",
                      "Le contenu de cette pièce jointe est sur un autre serveur : les serveurs "
                      "doivent partager leur stockage des pièces jointes (--attachments-dir)."};
      }
      throw Problem{500, "attachment.content", "", "Contenu de la pièce jointe illisible."};
    }
    return Response{200,
                    found->value("media_type", "application/octet-stream"),
                    std::move(*bytes),
                    {{"Content-Disposition", content_disposition(found->value("name", ""))},
                     {"X-Content-Type-Options", "nosniff"}}};
  }
  if (pattern == "/v1/me/tickets" || pattern == "/v1/me/tickets/export.csv") {
    const std::string* tab = request.query_param("tab");
    const std::string tab_name = tab ? *tab : "tous";
    auto list = projections::emitted_list(caller->user_id, tab_name);
    if (!list) throw Problem{400, "request.query", "tab", "Onglet inconnu : « " + tab_name + " »."};
    const projections::TicketQuery query = ticket_query(request);
    if (pattern == "/v1/me/tickets/export.csv") {
      return ticket_csv_response(store, *list, query, "tickets-" + tab_name + ".csv");
    }
    const std::string head = json_text(json{{"tab", tab_name}});
    return ticket_page_response(*store, *list, query, head.substr(1, head.size() - 2) + ",");
  }
  if (pattern == "/v1/support/tickets") {
    // Support queues ("file du support"): each level reads its own; level 2 also reads level 1,
    // which it may be asked to watch. Business ("M-") queues come with routing (issue 5).
    const auto& roles = caller->roles;
    if (!roles.support_level1 && !roles.support_level2) {
      throw Problem{403, "queue.support_only", "", "Réservé au support (niveau 1 ou 2)."};
    }
    const int level =
        static_cast<int>(positive_param(request, "level", roles.support_level2 ? 2 : 1, 2));
    if (level == 2 && !roles.support_level2) {
      throw Problem{403, "queue.level", "level", "La file du niveau 2 est réservée au niveau 2."};
    }
    const std::string* scope_param = request.query_param("scope");
    const std::string scope_name = scope_param ? *scope_param : "all";
    const auto scope = queue_scope(scope_name);
    auto list = or_503(projections::support_queue(level, scope, caller->user_id));
    const projections::TicketQuery query = ticket_query(request);
    const std::string head = json_text(json{{"level", level}, {"scope", scope_name}});
    return ticket_page_response(*store, list, query, head.substr(1, head.size() - 2) + ",");
  }
  if (pattern == "/v1/admin/views/rebuild") {
    // Rebuilds every view from the log beside the live ones, then swaps them in; progress is
    // on /metrics (chorus_view_rebuild_*). Used after a projection changed or views are doubted.
    require_operator(*caller, "views.operator_only", "à l'exploitation");
    if (!request.body.empty()) JsonBody(request.body, {});  // no field is accepted
    if (auto started = runner_.start_rebuild(); !started) {
      throw Problem{409, "views.rebuild_running", "",
                    "Une reconstruction des vues est déjà en cours."};
    }
    return json_response(202, json{{"status", "started"}});
  }
  if (pattern == "/v1/admin/attachments/sweep") {
    // Removes attachment content that no event names (stored, then the append failed or the
    // decision was refused) and leftover temporary files, once older than the cutoff. The
    // views are first brought up to the log's end, so every event acknowledged before the
    // sweep is seen; put() keeps later ones safe (content_store.h).
    require_operator(*caller, "attachments.operator_only", "à l'exploitation");
    if (!request.body.empty()) JsonBody(request.body, {});  // no field: the cutoff is a query
    const ContentStore* files = options_.attachments;
    if (files == nullptr) {
      throw Problem{503, "attachment.store", "", "Stockage des pièces jointes indisponible."};
    }
    // At least 5 minutes: longer than any upload takes between storing its bytes and
    // appending its event.
    const std::size_t minutes =
        positive_param(request, "older_than_minutes", 24 * 60, 366 * 24 * 60);
    if (minutes < 5) {
      throw Problem{400, "request.query", "older_than_minutes",
                    "« older_than_minutes » doit valoir au moins 5."};
    }
    const auto cutoff =
        std::filesystem::file_time_type::clock::now() - std::chrono::minutes(minutes);
    // The log's end is this server's knowledge of it: a server another has taken the log over
    // from would miss the new owner's events, and remove what they name from a shared store.
    if (log_.fenced()) {
      throw Problem{503, "log.fenced", "",
                    "Un autre serveur écrit désormais le journal : lancez le nettoyage sur "
                    "celui-ci."};
    }
    auto end = log_.end();
    if (!end) throw Problem{503, "log.unavailable", "", "Journal indisponible."};
    if (auto caught_up = runner_.wait_for(*end, options_.consistency_wait); !caught_up) {
      throw Problem{503, "views.behind", "", "Les vues n'ont pas encore rattrapé le journal."};
    }
    auto views = runner_.store();
    auto report = files->sweep(cutoff, [&](const std::string& sha256) -> ContentResult<bool> {
      auto named = projections::content_named(*views, sha256);
      if (!named)
        return std::unexpected(ContentError{content_errc::io_error, named.error().message});
      return *named;
    });
    if (!report) {
      spdlog::error("msg=\"attachment sweep failed\" error=\"{}\"", report.error().message);
      throw Problem{503, "attachment.store", "", "Stockage des pièces jointes indisponible."};
    }
    spdlog::info(
        "msg=\"attachment sweep\" examined={} removed={} temporary_removed={} bytes_freed={}",
        report->examined, report->removed, report->temporary_removed, report->bytes_freed);
    return json_response(200, json{{"examined", report->examined},
                                   {"removed", report->removed},
                                   {"temporary_removed", report->temporary_removed},
                                   {"bytes_freed", report->bytes_freed}});
  }
  if (pattern == "/v1/received/tickets") {
    // "Sollicitations reçues": the business ("M-") tickets sent to a structure (or one of its
    // services), for its users holding that espace (to read or write), paged like the support
    // queues.
    const std::string* structure = request.query_param("structure_id");
    if (structure == nullptr) {
      throw Problem{400, "request.query", "structure_id",
                    "Le paramètre « structure_id » est obligatoire."};
    }
    const std::string* service_param = request.query_param("service");
    const std::string service = service_param ? *service_param : "";
    if (!reads_received_tickets(*store, *caller, *structure, service)) {
      throw Problem{403, "queue.received_only", "structure_id",
                    "Réservé aux utilisateurs de la structure destinataire titulaires de l'espace "
                    "« Sollicitations reçues »."};
    }
    const std::string* scope_param = request.query_param("scope");
    const std::string scope_name = scope_param ? *scope_param : "all";
    const auto scope = queue_scope(scope_name);
    auto list = projections::received_queue(*structure, service, scope, caller->user_id);
    if (!list) throw Problem{400, "request.query", "structure_id", "Structure manquante."};
    const projections::TicketQuery query = ticket_query(request);
    const std::string head =
        json_text(json{{"structure_id", *structure}, {"service", service}, {"scope", scope_name}});
    return ticket_page_response(*store, *list, query, head.substr(1, head.size() - 2) + ",");
  }
  if (pattern == "/v1/outbox") {
    require_operator(*caller, "outbox.operator_only", "au service d'envoi");
    const std::size_t limit = positive_param(request, "limit", 100, 1000);
    auto rows = or_503(projections::pending_notifications(*store, limit));
    return rows_response("", rows);
  }
  if (pattern == "/v1/reference-objects/{object_type}/{object_number}") {
    // The object a ticket form names, read back so that the form fills in "Organisation
    // destinataire" (seed 002) before it is sent. Scoped as the rule that routes the ticket
    // (domain/ticket.cpp, check_form): only users of the object's issuer may name it, and
    // anyone else gets what an unknown number gets, so probing numbers teaches nothing.
    const std::string& type = params[0];
    const std::string& number = params[1];
    if (!domain::reference_object::is_object_type(type)) {
      throw Problem{404, "reference_object.object_type", "object_type",
                    "Type d'objet inconnu : « " + type + " »."};
    }
    const std::string* emitting = request.query_param("emitting_structure_id");
    if (emitting == nullptr) {
      throw Problem{400, "request.query", "emitting_structure_id",
                    "Le paramètre « emitting_structure_id » (structure émettrice) est "
                    "obligatoire."};
    }
    if (!ticket_context(*store, *caller, *emitting, "", "").attached_to_emitting_structure) {
      throw Problem{403, "reference_object.emitting_structure", "emitting_structure_id",
                    "Vous n'êtes pas rattaché à cette structure émettrice."};
    }
    const auto object = object_recipient(*store, type, number);
    if (!object || object->issuer_structure_id != *emitting) {
      throw Problem{404, "reference_object.not_found", "object_number",
                    "Le numéro saisi ne correspond à aucun objet de type « " + type +
                        " » existant dans Chorus Pro."};
    }
    json answer{{"object_type", type},
                {"object_number", number},
                {"destination_structure_id", object->structure_id},
                {"destination_service", object->service}};
    if (auto row = or_503(projections::structure_detail(*store, object->structure_id))) {
      const json d = json::parse(*row, nullptr, false);
      if (d.is_object() && d.contains("data") && d.at("data").is_object()) {
        answer["destination_designation"] = d.at("data").value("designation", "");
      }
    }
    return json_response(200, answer);
  }
  if (pattern == "/v1/me/tickets/counts") {
    json counts = json::object();
    for (const char* tab : projections::kTicketTabs) {
      counts[tab] = or_503(
          projections::list_count(*store, or_503(projections::emitted_list(caller->user_id, tab))));
    }
    return json_response(200, counts);
  }
  throw Problem{404, "request.route", "", "Ressource inconnue."};
}

}  // namespace chorus::api
