#include "api/structure_routes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <deque>
#include <nlohmann/json.hpp>
#include <set>
#include <span>

#include "api/json_body.h"
#include "api/metrics.h"
#include "domain/account.h"
#include "domain/structure.h"
#include "domain/workflow.h"
#include "projections/csv.h"
#include "projections/json_text.h"

namespace chorus::api {
namespace {

// Lines of one PIGP import (FAR1002): accounts, deactivations and GP replacements together.
constexpr std::size_t kPigpImportMaxLines = 10000;

using domain::access::Action;
using domain::access::RoleScope;
using nlohmann::json;
using projections::csv_line;
using projections::json_text;
using projections::kCsvByteOrderMark;
namespace st = domain::structure;
namespace ac = domain::account;
namespace wf = domain::workflow;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kReceivedTickets = "Sollicitations reçues";

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Today in UTC, YYYY-MM-DD: services are active when today is inside their validity.
std::string today() {
  const auto days = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  const std::chrono::year_month_day ymd{days};
  auto two = [](unsigned n) { return std::string(n < 10 ? "0" : "") + std::to_string(n); };
  return std::to_string(static_cast<int>(ymd.year())) + "-" +
         two(static_cast<unsigned>(ymd.month())) + "-" + two(static_cast<unsigned>(ymd.day()));
}

// Ids in paths and bodies become stream ids and view keys: a bounded, plain alphabet keeps
// separators and garbage out. A bad one answers like an unknown one.
bool plain_id(std::string_view id) {
  if (id.empty() || id.size() > st::kIdMax) return false;
  return std::ranges::all_of(id, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  });
}
void check_id(const std::string& id, const char* what, const char* rule) {
  if (!plain_id(id)) throw Problem{404, rule, what, "Introuvable."};
}

std::string query_or_empty(const Request& r, const char* name) {
  const std::string* v = r.query_param(name);
  return v ? *v : "";
}

template <class T>
T or_503(projections::Result<T> result) {
  if (!result) throw Problem{503, "views.unavailable", "", "Vues indisponibles."};
  return std::move(*result);
}

std::vector<std::string> as_services(const std::string& service) {
  if (service.empty()) return {};
  return {service};
}

// The role the caller acts in, recorded in the events.
const char* actor_role(const domain::Caller& caller) {
  return caller.roles.support_level2   ? "support_n2"
         : caller.roles.support_level1 ? "support_n1"
                                       : "user";
}

bool is_support(const domain::Caller& caller) {
  return caller.roles.support_level1 || caller.roles.support_level2;
}

events::StructureData read_data(const JsonBody& d) {
  events::StructureData data;
  data.designation = d.string_or_empty("designation");
  data.address_line1 = d.string_or_empty("address_line1");
  data.address_line2 = d.string_or_empty("address_line2");
  data.postal_code = d.string_or_empty("postal_code");
  data.city = d.string_or_empty("city");
  data.country = d.string_or_empty("country");
  data.payment_status_hidden = d.bool_or("payment_status_hidden", false);
  data.service_code_required = d.bool_or("service_code_required", false);
  data.commitment_required = d.bool_or("commitment_required", false);
  data.commitment_or_service_required = d.bool_or("commitment_or_service_required", false);
  const int moa = d.optional_int("moa_mode").value_or(0);
  if (moa < 0 || moa > 3) {
    throw Problem{422, "structure.data.moa_mode", "moa_mode",
                  "Le mode MOA vaut 0 (privé), 1 (sans MOA), 2 (avec MOA) ou 3 (exclusivement "
                  "MOA)."};
  }
  data.moa_mode = static_cast<std::uint8_t>(moa);
  data.vat_number = d.string_or_empty("vat_number");
  data.pacage_number = d.string_or_empty("pacage_number");
  data.social_regime = d.string_or_empty("social_regime");
  data.billing_mandate = d.bool_or("billing_mandate", false);
  return data;
}
const std::set<std::string> kDataFields{"designation",
                                        "address_line1",
                                        "address_line2",
                                        "postal_code",
                                        "city",
                                        "country",
                                        "payment_status_hidden",
                                        "service_code_required",
                                        "commitment_required",
                                        "commitment_or_service_required",
                                        "moa_mode",
                                        "vat_number",
                                        "pacage_number",
                                        "social_regime",
                                        "billing_mandate"};
const std::set<std::string> kCreateFields{"structure_id", "identifier_type", "identifier_value",
                                          "is_public",    "is_state",        "pigp_managed",
                                          "data",         "first_gp_user_id"};
const std::set<std::string> kServiceFields{"code",       "label",    "description",
                                           "valid_from", "valid_to", "commitment_required"};

st::Service read_service(const JsonBody& b, std::string code) {
  return st::Service{std::move(code),
                     b.string_or_empty("label"),
                     b.string_or_empty("description"),
                     b.string_or_empty("valid_from"),
                     b.string_or_empty("valid_to"),
                     b.bool_or("commitment_required", false)};
}

st::Role read_role(const JsonBody& b) {
  const std::string text = b.string_or_empty("role");
  if (text.empty()) return st::Role::user;
  auto role = st::role_from(text);
  if (!role) throw Problem{422, "structure.role", "role", "Rôle inconnu : « " + text + " »."};
  return *role;
}

// The account a structure command concerns, whose facts the rules need.
std::string concerned_user(const st::Command& command, const domain::Caller& caller) {
  return std::visit(
      [&](const auto& c) -> std::string {
        using C = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<C, st::CreateStructure>) {
          return c.first_gp_user_id;
        } else if constexpr (std::is_same_v<C, st::AttachDirectly> ||
                             std::is_same_v<C, st::ResetTechnicalPassword>) {
          return c.user_id;
        } else if constexpr (std::is_same_v<C, st::TransferMainManager>) {
          return c.new_gp_user_id;
        } else if constexpr (std::is_same_v<C, st::RequestAttachment> ||
                             std::is_same_v<C, st::RequestSubscription>) {
          return caller.user_id;
        } else {
          return "";
        }
      },
      command);
}

ac::State load_account(CommandHandler::StreamLoader& loader, const std::string& user_id) {
  ac::State initial;
  initial.user_id = user_id;
  return loader.load(ac::stream_id(user_id), std::move(initial), &ac::evolve);
}
st::State load_structure(CommandHandler::StreamLoader& loader, const std::string& structure_id) {
  st::State initial;
  initial.structure_id = structure_id;
  return loader.load(st::stream_id(structure_id), std::move(initial), &st::evolve);
}
// Whether the log holds the reservation of this identifier (a structure took it).
bool reserved(CommandHandler::StreamLoader& loader, const std::string& type,
              const std::string& value) {
  return loader
             .load(st::identifier_stream_id(type, value), st::Reservation{},
                   &st::evolve_reservation)
             .version > 0;
}
// The account versions a decision read, by user id.
using AccountVersions = std::map<std::string, std::uint64_t>;
// What the rules need to know of an account, keeping the version read in `read`.
st::AccountFacts facts(CommandHandler::StreamLoader& loader, const std::string& user_id,
                       AccountVersions& read) {
  if (!plain_id(user_id)) return {};
  const ac::State state = load_account(loader, user_id);
  read.emplace(user_id, state.version);
  return ac::facts_of(state);
}
// Mirrors the GP changes of `appends` on the accounts' streams
// (workflow::record_main_manager_roles): each account at the version its decision read, in
// `read`, else at its version now: a former GP, whose account the decision did not need, or
// the GP a SIRET change copies to the duplicate (that GP's deactivation writes the old
// structure, which the change writes too, so the two conflict there).
void record_roles(CommandHandler::StreamLoader& loader, wf::Appends& appends,
                  AccountVersions read) {
  for (const auto& user : wf::main_manager_accounts(appends)) {
    if (!read.contains(user)) read.emplace(user, load_account(loader, user).version);
  }
  wf::record_main_manager_roles(appends, read);
}

// The requesters of the requests `commands` validate whose account is deactivated
// (st::Context::deactivated_requesters).
std::set<std::string> deactivated_requesters(CommandHandler::StreamLoader& loader,
                                             const st::State& state,
                                             std::span<const st::Command> commands) {
  std::set<std::string> checked, out;
  for (const auto& command : commands) {
    std::string user;
    if (const auto* v = std::get_if<st::ValidateAttachment>(&command)) {
      if (auto it = state.attachment_requests.find(v->request_id);
          it != state.attachment_requests.end()) {
        user = it->second.user_id;
      }
    } else if (const auto* vs = std::get_if<st::ValidateSubscription>(&command)) {
      if (auto it = state.subscription_requests.find(vs->request_id);
          it != state.subscription_requests.end()) {
        user = it->second.user_id;
      }
    }
    if (user.empty() || !plain_id(user) || !checked.insert(user).second) continue;
    if (ac::facts_of(load_account(loader, user)).deactivated) out.insert(user);
  }
  return out;
}

json rejection_json(const domain::Rejection& r) { return problem_json(to_problem(r)); }

// What a unit of a PIGP import does, which names its command id whatever the state it was
// decided on, and the stream a retry finds it on: the departure of an account (with its
// transfers), else the transfer of a structure.
struct UnitSubject {
  std::string salt;  // "deactivate-<user>" or "transfer-<structure>"
  bool account = false;
  std::string id;  // the user or structure id
};
UnitSubject unit_subject(const wf::Appends& unit) {
  for (const auto& d : unit) {
    for (const auto& p : d.payloads) {
      if (const auto* e = std::get_if<events::AccountDeactivated>(&p)) {
        return {"deactivate-" + e->user_id, true, e->user_id};
      }
    }
  }
  for (const auto& d : unit) {
    for (const auto& p : d.payloads) {
      if (const auto* e = std::get_if<events::MainManagerTransferred>(&p)) {
        return {"transfer-" + e->structure_id, false, e->structure_id};
      }
    }
  }
  assert(false && "a PIGP unit departs or transfers");
  return {"unit", false, ""};
}

// The services a pending request or history row concerns (empty: the whole structure).
std::vector<std::string> row_services(const json& row) {
  return as_services(row.value("service", ""));
}

}  // namespace

bool is_structure_route(std::string_view pattern) noexcept {
  return pattern.starts_with("/v1/structures") || pattern.starts_with("/v1/structure-imports") ||
         pattern.starts_with("/v1/accounts") || pattern.starts_with("/v1/pigp-imports") ||
         pattern == "/v1/approvals" || pattern == "/v1/me/attachments";
}

domain::access::Access access_from_view(const std::optional<projections::AccessRow>& row,
                                        const domain::Caller& caller) {
  domain::access::Access a;
  a.roles = caller.roles;
  if (!row) return a;
  if (row->role == "gp") {
    a.member = RoleScope::gp;
  } else if (row->role == "gs") {
    a.member = row->services.empty() ? RoleScope::gs_whole : RoleScope::gs_services;
    a.services = row->services;
  } else if (row->role == "user") {
    a.member = RoleScope::user;
    a.services = row->services;
  }
  return a;
}

domain::ticket::Context ticket_context(const projections::ViewStore& store,
                                       const domain::Caller& caller,
                                       const std::string& emitting_structure_id,
                                       const std::string& destination_structure_id,
                                       const std::string& destination_service) {
  domain::ticket::Context context;
  if (!emitting_structure_id.empty() && plain_id(emitting_structure_id)) {
    auto row = or_503(projections::structure_access(store, caller.user_id, emitting_structure_id));
    context.attached_to_emitting_structure = row.has_value() && !row->role.empty();
  }
  if (!destination_structure_id.empty() && plain_id(destination_structure_id)) {
    auto row =
        or_503(projections::structure_access(store, caller.user_id, destination_structure_id));
    context.business_recipient =
        row && projections::may_write_espace(*row, kReceivedTickets, destination_service);
    context.business_reader =
        row && projections::may_read_espace(*row, kReceivedTickets, destination_service);
  }
  return context;
}

bool reads_received_tickets(const projections::ViewStore& store, const domain::Caller& caller,
                            const std::string& destination_structure_id,
                            const std::string& destination_service) {
  return ticket_context(store, caller, "", destination_structure_id, destination_service)
      .business_reader;
}

Response StructureRoutes::handle(std::string_view pattern, const std::vector<std::string>& params,
                                 const Request& request, const domain::Caller& caller,
                                 bool replay_only, const std::function<void()>& wait_for_views) {
  const auto started = Clock::now();
  CommandMeta meta{caller, actor_role(caller),
                   CommandHandler::command_id(caller.user_id, request.method + " " + request.path,
                                              request.idempotency_key, request.body),
                   random_uuid()};
  meta.replay_only = replay_only;
  // An id the client may retry with: derived from the Idempotency-Key, else random.
  auto fresh_id = [&](std::string_view salt) {
    return request.idempotency_key.empty()
               ? random_uuid()
               : CommandHandler::command_id(caller.user_id,
                                            std::string(pattern) + "#" + std::string(salt),
                                            request.idempotency_key, request.body);
  };
  auto record = [&](const char* type, const std::string& outcome) {
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    metrics_.observe_command(type, outcome, seconds);
    static const std::shared_ptr<spdlog::logger> logger = [] {
      auto l = spdlog::get("api");
      return l ? l : spdlog::default_logger();
    }();
    logger->log(outcome == "accepted" ? spdlog::level::debug : spdlog::level::info,
                "msg=\"command\" type={} outcome={} correlation_id={} duration_ms={:.3f}", type,
                outcome, meta.correlation_id, seconds * 1000);
  };
  auto written = [&](const CommandOutcome& outcome, json body) {
    body["version"] = outcome.version;
    body["consistency_token"] = outcome.consistency_token;
    Response r = json_response(outcome.replayed ? 200 : 201, body);
    if (!outcome.consistency_token.empty()) {
      r.headers.emplace_back("X-Consistency-Token", outcome.consistency_token);
    }
    return r;
  };
  // Runs a multi-stream command with metrics and the command log line.
  auto run = [&](const char* type,
                 const std::function<domain::Decision<wf::Appends>(CommandHandler::StreamLoader&)>&
                     decide) {
    try {
      CommandOutcome outcome = commands_.run_appends(meta, decide);
      record(type, "accepted");
      return outcome;
    } catch (const Problem& p) {
      record(type, p.rule);
      throw;
    }
  };

  // One command on one structure; the context (today, the account concerned, whether the
  // identifier is taken) is filled here, the rest is the aggregate's.
  auto structure_command = [&](const char* type, const std::string& structure_id,
                               const st::Command& command, json answer = json::object()) {
    check_id(structure_id, "structure_id", "structure.not_found");
    bool identifier_taken = false;
    const auto* create = std::get_if<st::CreateStructure>(&command);
    if (create) {
      // Structures created before identifiers were reserved in the log are found in the view.
      wait_for_views();
      identifier_taken =
          or_503(projections::structure_by_identifier(*runner_.store(), create->identifier_type,
                                                      create->identifier_value))
              .has_value();
    }
    // For a technical account created before its structure was recorded
    // (AccountCreated::structure_id): whether another, active, structure holds it (the access
    // view). Read for every direct attachment: the account is loaded only inside the decision.
    bool attached_elsewhere = false;
    if (const auto* attach = std::get_if<st::AttachDirectly>(&command);
        attach != nullptr && plain_id(attach->user_id)) {
      wait_for_views();
      auto store = runner_.store();
      for (const auto& row : or_503(projections::user_accesses(*store, attach->user_id))) {
        if (row.structure_id == structure_id || attached_elsewhere) continue;
        // A deactivated structure (one a SIRET change replaced, which copies no technical
        // account) holds it no more.
        auto detail = or_503(projections::structure_detail(*store, row.structure_id));
        const json d = detail ? json::parse(*detail, nullptr, false) : json();
        attached_elsewhere = !d.is_object() || d.value("status", "") != "inactive";
      }
    }
    auto outcome =
        run(type, [&](CommandHandler::StreamLoader& loader) -> domain::Decision<wf::Appends> {
          const st::State state = load_structure(loader, structure_id);
          st::Context context;
          context.today = today();
          AccountVersions read;
          context.account = facts(loader, concerned_user(command, caller), read);
          context.identifier_taken =
              identifier_taken ||
              (create && reserved(loader, create->identifier_type, create->identifier_value));
          context.account_attached_elsewhere = attached_elsewhere;
          context.deactivated_requesters =
              deactivated_requesters(loader, state, std::span(&command, 1));
          if (std::holds_alternative<st::ChangeData>(command) && state.is_public &&
              !state.gp.empty()) {
            context.gp_is_pigp = facts(loader, state.gp, read).pigp;
          }
          auto decided = st::decide(state, command, caller, context);
          if (!decided) return std::unexpected(decided.error());
          wf::Appends appends{{st::stream_id(structure_id), state.version, std::move(*decided)}};
          // The reservation is what makes the identifier unique: a creation racing this one
          // conflicts on it, decides again and finds it taken.
          wf::reserve_identifiers(appends);
          // A new GP's account, found active, is written at the version read: its
          // deactivation racing this conflicts.
          record_roles(loader, appends, std::move(read));
          return appends;
        });
    answer["structure_id"] = structure_id;
    return written(outcome, std::move(answer));
  };

  // Bulk decisions on one structure: one result per command, the accepted ones in one append.
  auto structure_bulk = [&](const char* type, const std::string& structure_id,
                            const std::vector<st::Command>& commands,
                            const std::vector<std::string>& labels, const char* label_name) {
    check_id(structure_id, "structure_id", "structure.not_found");
    if (commands.empty() || commands.size() > 1000) {
      throw Problem{422, "request.bulk_size", "", "Entre 1 et 1000 éléments par envoi."};
    }
    std::vector<std::optional<domain::Rejection>> results;
    auto outcome =
        run(type, [&](CommandHandler::StreamLoader& loader) -> domain::Decision<wf::Appends> {
          const st::State state = load_structure(loader, structure_id);
          st::Context context;
          context.today = today();
          context.deactivated_requesters = deactivated_requesters(loader, state, commands);
          auto bulk = st::decide_each(state, commands, caller, context);
          results = std::move(bulk.results);
          if (bulk.payloads.empty()) return wf::Appends{};
          wf::Appends appends{
              {st::stream_id(structure_id), state.version, std::move(bulk.payloads)}};
          record_roles(loader, appends, {});
          return appends;
        });
    json items = json::array();
    for (std::size_t i = 0; i < labels.size(); ++i) {
      json item{{label_name, labels[i]}};
      if (outcome.replayed) {
        item["outcome"] = "replayed";
      } else if (i < results.size() && results[i]) {
        item["outcome"] = "refused";
        item["problem"] = rejection_json(*results[i]);
      } else {
        item["outcome"] = "accepted";
      }
      items.push_back(std::move(item));
    }
    json body{{"structure_id", structure_id},
              {"results", std::move(items)},
              {"version", outcome.version},
              {"consistency_token", outcome.consistency_token}};
    Response r = json_response(200, body);
    if (!outcome.consistency_token.empty()) {
      r.headers.emplace_back("X-Consistency-Token", outcome.consistency_token);
    }
    return r;
  };

  auto account_command =
      [&](const char* type, const std::string& user_id, const ac::Command& command,
          const std::function<ac::Context(CommandHandler::StreamLoader&)>& make_context) {
        check_id(user_id, "user_id", "account.not_found");
        auto outcome =
            run(type, [&](CommandHandler::StreamLoader& loader) -> domain::Decision<wf::Appends> {
              const ac::State state = load_account(loader, user_id);
              const ac::Context context = make_context(loader);
              auto decided = ac::decide(state, command, caller, context);
              if (!decided) return std::unexpected(decided.error());
              return wf::Appends{{ac::stream_id(user_id), state.version, std::move(*decided)}};
            });
        return written(outcome, json{{"user_id", user_id}});
      };
  auto no_context = [](CommandHandler::StreamLoader&) { return ac::Context{}; };

  // ------------------------------------------------------------------ structures: commands
  if (pattern == "/v1/structures" && request.method == "POST") {
    JsonBody body(request.body, kCreateFields);
    std::string id = body.string_or_empty("structure_id");
    if (id.empty()) id = fresh_id("structure");
    st::CreateStructure c{body.string_or_empty("identifier_type"),
                          body.string_or_empty("identifier_value"),
                          body.bool_or("is_public", false),
                          body.bool_or("is_state", false),
                          body.bool_or("pigp_managed", false),
                          read_data(body.object("data", kDataFields)),
                          today(),
                          body.string_or_empty("first_gp_user_id")};
    if (!c.first_gp_user_id.empty() && !plain_id(c.first_gp_user_id)) {
      throw Problem{422, "structure.create.first_gp", "first_gp_user_id",
                    "Identifiant d'utilisateur invalide."};
    }
    if (!plain_id(id)) {
      throw Problem{422, "structure.create.structure_id", "structure_id",
                    "Identifiant de structure invalide (lettres, chiffres, « - », « _ », « . »)."};
    }
    return structure_command("structure.create", id, c);
  }
  if (pattern == "/v1/structure-imports") {
    // A reference import: each line is created on its own; a refused line does not stop the
    // others, and says why.
    JsonBody body(request.body, {"structures"});
    auto lines = body.object_list("structures", kCreateFields);
    if (lines.empty() || lines.size() > 1000) {
      throw Problem{422, "request.bulk_size", "structures",
                    "Entre 1 et 1000 structures par envoi."};
    }
    json results = json::array();
    std::string last_token;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const JsonBody& line = lines[i];
      std::string id = line.string_or_empty("structure_id");
      if (id.empty()) id = fresh_id("structure-" + std::to_string(i));
      json item{{"line", i + 1}, {"structure_id", id}};
      const std::string base_id = meta.command_id;
      meta.command_id = request.idempotency_key.empty()
                            ? random_uuid()
                            : CommandHandler::command_id(caller.user_id,
                                                         base_id + "#" + std::to_string(i), "line");
      try {
        st::CreateStructure c{line.string_or_empty("identifier_type"),
                              line.string_or_empty("identifier_value"),
                              line.bool_or("is_public", false),
                              line.bool_or("is_state", false),
                              line.bool_or("pigp_managed", false),
                              read_data(line.object("data", kDataFields)),
                              today(),
                              line.string_or_empty("first_gp_user_id")};
        Response r = structure_command("structure.create", id, c);
        meta.command_id = base_id;
        item["outcome"] = r.status == 201 ? "created" : "replayed";
        last_token = json::parse(r.body).value("consistency_token", "");
      } catch (const Problem& p) {
        meta.command_id = base_id;
        item["outcome"] = "refused";
        item["problem"] = problem_json(p);
      }
      results.push_back(std::move(item));
    }
    return batch_response(std::move(results), last_token);
  }
  if (pattern == "/v1/structures/{structure_id}/data") {
    JsonBody body(request.body, kDataFields);
    return structure_command("structure.change_data", params[0], st::ChangeData{read_data(body)});
  }
  if (pattern == "/v1/structures/{structure_id}/deactivate") {
    JsonBody body(request.body.empty() ? "{}" : request.body, {"reason"});
    return structure_command("structure.deactivate", params[0],
                             st::DeactivateStructure{body.string_or_empty("reason")});
  }
  if (pattern == "/v1/structures/{structure_id}/identifier") {
    // "Modifier l'identifiant": the duplicate and the deactivation in one append.
    check_id(params[0], "structure_id", "structure.not_found");
    JsonBody body(request.body, {"identifier_type", "identifier_value"});
    wf::ChangeIdentifier c;
    c.new_structure_id = fresh_id("identifier");
    c.identifier_type = body.optional_string("identifier_type").value_or("SIRET");
    c.identifier_value = body.string_or_empty("identifier_value");
    c.today = today();
    wait_for_views();
    auto store = runner_.store();
    wf::IdentifierContext context;
    context.identifier_taken =
        or_503(projections::structure_by_identifier(*store, c.identifier_type, c.identifier_value))
            .has_value();
    auto members =
        or_503(projections::structure_members(*store, params[0], [](const std::string& row) {
          return json::parse(row, nullptr, false).value("technical", false);
        }));
    for (const auto& m : members)
      context.technical_users.insert(json::parse(m).value("user_id", ""));
    auto outcome = run(
        "structure.change_identifier",
        [&](CommandHandler::StreamLoader& loader) -> domain::Decision<wf::Appends> {
          wf::IdentifierContext now = context;
          now.identifier_taken =
              now.identifier_taken || reserved(loader, c.identifier_type, c.identifier_value);
          auto appends = wf::change_identifier(load_structure(loader, params[0]), c, caller, now);
          if (appends) {
            wf::reserve_identifiers(*appends);
            record_roles(loader, *appends, {});
          }
          return appends;
        });
    return written(outcome,
                   json{{"structure_id", params[0]}, {"new_structure_id", c.new_structure_id}});
  }
  if (pattern == "/v1/structures/{structure_id}/services" && request.method == "POST") {
    JsonBody body(request.body, kServiceFields);
    return structure_command("structure.add_service", params[0],
                             st::AddService{read_service(body, body.string_or_empty("code"))});
  }
  if (pattern == "/v1/structures/{structure_id}/services/{code}" && request.method == "PUT") {
    JsonBody body(request.body, kServiceFields);
    if (body.has("code") && body.string_or_empty("code") != params[1]) {
      throw Problem{422, "structure.service.code_fixed", "code",
                    "Le code d'un service ne change pas."};
    }
    return structure_command("structure.change_service", params[0],
                             st::ChangeService{read_service(body, params[1])});
  }
  if (pattern == "/v1/structures/{structure_id}/services/{code}" && request.method == "DELETE") {
    return structure_command("structure.remove_service", params[0], st::RemoveService{params[1]});
  }
  if (pattern == "/v1/structures/{structure_id}/attachment-requests") {
    JsonBody body(request.body.empty() ? "{}" : request.body, {"services", "comment"});
    st::RequestAttachment c{fresh_id("attachment"), body.string_list("services"),
                            body.string_or_empty("comment")};
    json ids = json::array();
    if (c.services.empty()) ids.push_back(c.request_id);
    for (std::size_t i = 0; i < c.services.size(); ++i) {
      ids.push_back(c.request_id + "-" + std::to_string(i + 1));
    }
    return structure_command("structure.request_attachment", params[0], c,
                             json{{"request_ids", ids}});
  }
  const std::set<std::string> kValidateFields{"role", "services", "comment"};
  if (pattern == "/v1/structures/{structure_id}/attachment-requests/{request_id}/validate") {
    JsonBody body(request.body.empty() ? "{}" : request.body, kValidateFields);
    return structure_command(
        "structure.validate_attachment", params[0],
        st::ValidateAttachment{params[1], read_role(body), body.string_list("services"),
                               body.string_or_empty("comment")},
        json{{"request_id", params[1]}});
  }
  if (pattern == "/v1/structures/{structure_id}/attachment-requests/{request_id}/refuse") {
    JsonBody body(request.body.empty() ? "{}" : request.body, {"reason"});
    return structure_command("structure.refuse_attachment", params[0],
                             st::RefuseAttachment{params[1], body.string_or_empty("reason")},
                             json{{"request_id", params[1]}});
  }
  if (pattern == "/v1/structures/{structure_id}/attachment-requests/decisions" ||
      pattern == "/v1/structures/{structure_id}/subscription-requests/decisions") {
    const bool attachments = pattern.find("attachment") != std::string_view::npos;
    JsonBody body(request.body, {"decisions"});
    std::vector<st::Command> commands;
    std::vector<std::string> labels;
    // The fields of each line are those of the single route's decision, no more: a role or
    // services on a subscription would be accepted and silently ignored.
    const std::set<std::string> fields =
        attachments
            ? std::set<std::string>{"request_id", "decision", "role",
                                    "services",   "comment",  "reason"}
            : std::set<std::string>{"request_id", "decision", "read", "write", "comment", "reason"};
    for (const auto& d : body.object_list("decisions", fields)) {
      const std::string rid = d.string_or_empty("request_id");
      const std::string decision = d.string_or_empty("decision");
      if (decision != "validate" && decision != "refuse") {
        throw Problem{422, "request.decision", "decision",
                      "Décision « validate » ou « refuse » attendue."};
      }
      labels.push_back(rid);
      if (attachments) {
        if (decision == "validate") {
          commands.emplace_back(st::ValidateAttachment{rid, read_role(d), d.string_list("services"),
                                                       d.string_or_empty("comment")});
        } else {
          commands.emplace_back(st::RefuseAttachment{rid, d.string_or_empty("reason")});
        }
      } else if (decision == "validate") {
        commands.emplace_back(st::ValidateSubscription{
            rid, d.bool_or("read", true), d.bool_or("write", false), d.string_or_empty("comment")});
      } else {
        commands.emplace_back(st::RefuseSubscription{rid, d.string_or_empty("reason")});
      }
    }
    return structure_bulk(
        attachments ? "structure.decide_attachments" : "structure.decide_subscriptions", params[0],
        commands, labels, "request_id");
  }
  if (pattern == "/v1/structures/{structure_id}/members" && request.method == "POST") {
    JsonBody body(request.body, {"user_id", "role", "services", "start_date", "comment"});
    const std::string user = body.string_or_empty("user_id");
    if (!plain_id(user)) {
      throw Problem{422, "structure.attach_directly.user_id", "user_id",
                    "Identifiant d'utilisateur invalide."};
    }
    std::string start = body.string_or_empty("start_date");
    if (start.empty()) start = today();
    return structure_command("structure.attach_directly", params[0],
                             st::AttachDirectly{user, read_role(body), body.string_list("services"),
                                                start, body.string_or_empty("comment")},
                             json{{"user_id", user}});
  }
  if (pattern == "/v1/structures/{structure_id}/members/{user_id}" && request.method == "DELETE") {
    return structure_command("structure.remove_attachment", params[0],
                             st::RemoveAttachment{params[1]}, json{{"user_id", params[1]}});
  }
  if (pattern == "/v1/structures/{structure_id}/members/removals") {
    JsonBody body(request.body, {"user_ids"});
    const auto users = body.string_list("user_ids");
    std::vector<st::Command> commands;
    for (const auto& u : users) commands.emplace_back(st::RemoveAttachment{u});
    return structure_bulk("structure.remove_attachments", params[0], commands, users, "user_id");
  }
  if (pattern == "/v1/structures/{structure_id}/members/{user_id}/password-reset") {
    if (!request.body.empty()) JsonBody body(request.body, {});
    return structure_command("structure.reset_technical_password", params[0],
                             st::ResetTechnicalPassword{params[1]}, json{{"user_id", params[1]}});
  }
  if (pattern == "/v1/structures/{structure_id}/main-manager") {
    // By the GP, or by support on behalf of a structure whose GP left (seed 000).
    JsonBody body(request.body, {"new_gp_user_id"});
    const std::string to = body.string_or_empty("new_gp_user_id");
    return structure_command("structure.transfer_main_manager", params[0],
                             st::TransferMainManager{to}, json{{"new_gp_user_id", to}});
  }
  if (pattern == "/v1/structures/{structure_id}/espaces") {
    JsonBody body(request.body, {"espace", "service", "read", "write"});
    return structure_command(
        "structure.enable_espace", params[0],
        st::EnableEspace{body.string_or_empty("espace"), body.string_or_empty("service"),
                         body.bool_or("read", true), body.bool_or("write", false)});
  }
  if (pattern == "/v1/structures/{structure_id}/subscription-requests") {
    JsonBody body(request.body, {"espace", "service", "read", "write", "comment"});
    st::RequestSubscription c{fresh_id("subscription"),        body.string_or_empty("espace"),
                              body.string_or_empty("service"), body.bool_or("read", true),
                              body.bool_or("write", false),    body.string_or_empty("comment")};
    return structure_command("structure.request_subscription", params[0], c,
                             json{{"request_id", c.request_id}});
  }
  if (pattern == "/v1/structures/{structure_id}/subscription-requests/{request_id}/validate") {
    JsonBody body(request.body.empty() ? "{}" : request.body, {"read", "write", "comment"});
    return structure_command(
        "structure.validate_subscription", params[0],
        st::ValidateSubscription{params[1], body.bool_or("read", true),
                                 body.bool_or("write", false), body.string_or_empty("comment")},
        json{{"request_id", params[1]}});
  }
  if (pattern == "/v1/structures/{structure_id}/subscription-requests/{request_id}/refuse") {
    JsonBody body(request.body.empty() ? "{}" : request.body, {"reason"});
    return structure_command("structure.refuse_subscription", params[0],
                             st::RefuseSubscription{params[1], body.string_or_empty("reason")},
                             json{{"request_id", params[1]}});
  }

  // ------------------------------------------------------------------ accounts
  if (pattern == "/v1/accounts") {
    JsonBody body(request.body, {"user_id", "login_email", "first_name", "last_name", "technical",
                                 "structure_id"});
    const bool technical = body.bool_or("technical", false);
    std::string user = body.string_or_empty("user_id");
    // A portal account is the caller's own (the identity provider named them); support may
    // create one for someone else; a technical account gets a fresh id.
    if (technical) {
      if (user.empty()) user = fresh_id("technical");
    } else if (user.empty()) {
      user = caller.user_id;
    } else if (user != caller.user_id && !is_support(caller)) {
      throw Problem{403, "account.create.other", "user_id",
                    "Vous ne créez que votre propre compte."};
    }
    if (!plain_id(user)) {
      throw Problem{422, "account.create.user_id", "user_id",
                    "Identifiant d'utilisateur invalide."};
    }
    const std::string structure_id = body.string_or_empty("structure_id");
    ac::CreateAccount c{body.string_or_empty("login_email"),
                        body.string_or_empty("first_name"),
                        body.string_or_empty("last_name"),
                        "portal",
                        technical,
                        technical ? structure_id : std::string()};
    return account_command("account.create", user, c, [&](CommandHandler::StreamLoader& loader) {
      ac::Context context;
      if (technical && plain_id(structure_id)) {
        const st::State s = load_structure(loader, structure_id);
        context.caller_is_gp = s.status == st::Status::active && s.gp == caller.user_id;
      }
      return context;
    });
  }
  if (pattern == "/v1/accounts/{user_id}/activate") {
    return account_command("account.activate", params[0], ac::Activate{}, no_context);
  }
  if (pattern == "/v1/accounts/{user_id}/activation-resend") {
    JsonBody body(request.body.empty() ? "{}" : request.body, {"structure_id"});
    const std::string structure_id = body.string_or_empty("structure_id");
    const std::string& holder = params[0];
    return account_command("account.resend_activation", holder, ac::ResendActivation{},
                           [&](CommandHandler::StreamLoader& loader) {
                             ac::Context context;
                             if (!plain_id(structure_id)) return context;
                             const st::State s = load_structure(loader, structure_id);
                             context.caller_access = st::access_of(s, caller);
                             if (auto m = s.members.find(holder); m != s.members.end()) {
                               context.holder_on_structure = true;
                               context.holder_services = m->second.services;
                             }
                             for (const auto& [rid, r] : s.attachment_requests) {
                               if (r.user_id != holder) continue;
                               // Asking for the whole structure outweighs any service.
                               if (!context.holder_on_structure || r.service.empty()) {
                                 context.holder_services = as_services(r.service);
                               } else if (!context.holder_services.empty()) {
                                 context.holder_services.push_back(r.service);
                               }
                               context.holder_on_structure = true;
                             }
                             return context;
                           });
  }
  if (pattern == "/v1/accounts/{user_id}/deactivate") {
    // "Désactiver mon compte": with a new GP for every structure the holder manages, in the
    // same append as the transfers.
    check_id(params[0], "user_id", "account.not_found");
    JsonBody body(request.body.empty() ? "{}" : request.body, {"replacements"});
    ac::Deactivate command{now_us(), {}};
    for (const auto& r : body.object_list("replacements", {"structure_id", "new_gp_user_id"})) {
      command.replacements.push_back(
          ac::Replacement{r.string_or_empty("structure_id"), r.string_or_empty("new_gp_user_id")});
    }
    wait_for_views();
    // Where the holder is GP, as the access view says; each is then read from its own stream,
    // which has the last word.
    std::set<std::string> candidates;
    for (const auto& row : or_503(projections::user_accesses(*runner_.store(), params[0]))) {
      if (row.role == "gp") candidates.insert(row.structure_id);
    }
    for (const auto& r : command.replacements) {
      if (plain_id(r.structure_id)) candidates.insert(r.structure_id);
    }
    auto outcome = run("account.deactivate", [&](CommandHandler::StreamLoader& loader) {
      const ac::State holder = load_account(loader, params[0]);
      // The holder's stream has the last word on what it manages: a transfer to the holder
      // that the view does not show yet is there, and writes that stream, so that it and this
      // deactivation cannot both pass.
      std::set<std::string> managed_ids = candidates;
      managed_ids.insert(holder.managed_structures.begin(), holder.managed_structures.end());
      AccountVersions read;
      std::deque<st::State> states;
      std::vector<wf::Managed> managed;
      for (const auto& sid : managed_ids) {
        st::State s = load_structure(loader, sid);
        if (s.status != st::Status::active || s.gp != params[0]) continue;
        states.push_back(std::move(s));
        std::string named;
        for (const auto& r : command.replacements) {
          if (r.structure_id == sid) named = r.new_gp_user_id;
        }
        managed.push_back(wf::Managed{&states.back(), facts(loader, named, read)});
      }
      auto appends = wf::deactivate_account(holder, command, caller, managed);
      if (appends) record_roles(loader, *appends, std::move(read));
      return appends;
    });
    return written(outcome, json{{"user_id", params[0]}});
  }
  if (pattern == "/v1/accounts/{user_id}/reactivate") {
    if (!request.body.empty()) JsonBody body(request.body, {});
    return account_command("account.reactivate", params[0], ac::Reactivate{now_us()}, no_context);
  }
  if (pattern == "/v1/pigp-imports") {
    // FAR1002: accounts created, deactivated and GP replacements, applied per structure (and
    // per departing account with its transfers); a structure that would be left without GP is
    // reported and the rest goes through (seed 000).
    if (!is_support(caller)) {
      throw Problem{403, "pigp_import.forbidden", "", "Import réservé au support (AIFE)."};
    }
    JsonBody body(request.body, {"accounts", "deactivate_user_ids", "replacements"});
    const auto accounts =
        body.object_list("accounts", {"user_id", "login_email", "first_name", "last_name"});
    wf::PigpImport batch{now_us(), body.string_list("deactivate_user_ids"), {}};
    for (const auto& r : body.object_list("replacements", {"structure_id", "new_gp_user_id"})) {
      batch.replacements.push_back(
          ac::Replacement{r.string_or_empty("structure_id"), r.string_or_empty("new_gp_user_id")});
    }
    // Bounded, as every batch route is, but well beyond a day's file: a deactivation and the
    // replacement of the GP it removes must come in one request (a structure may not be left
    // without GP in between), so a file is not to be cut at an arbitrary line. An empty file
    // (a day without change) is a batch that does nothing.
    const std::size_t lines =
        accounts.size() + batch.deactivate_user_ids.size() + batch.replacements.size();
    if (lines > kPigpImportMaxLines) {
      throw Problem{422, "request.bulk_size", "",
                    "Au plus " + std::to_string(kPigpImportMaxLines) +
                        " lignes (comptes, désactivations et remplacements) par envoi."};
    }
    json report = json::array();
    json applied = json::array();
    std::string last_token;
    const std::string base_id = meta.command_id;
    auto unit_id = [&](const std::string& salt) {
      return request.idempotency_key.empty()
                 ? random_uuid()
                 : CommandHandler::command_id(caller.user_id, base_id + "#" + salt, "unit");
    };
    for (const auto& a : accounts) {
      const std::string user = a.string_or_empty("user_id");
      meta.command_id = unit_id("account-" + user);
      try {
        check_id(user, "user_id", "pigp_import.user_id");
        ac::CreateAccount c{a.string_or_empty("login_email"), a.string_or_empty("first_name"),
                            a.string_or_empty("last_name"), "pigp", false};
        ac::Context context;
        context.from_pigp_import = true;
        auto outcome =
            run("pigp_import.create_account",
                [&](CommandHandler::StreamLoader& loader) -> domain::Decision<wf::Appends> {
                  const ac::State state = load_account(loader, user);
                  if (state.status != ac::Status::none) return wf::Appends{};  // known already
                  auto decided = ac::decide(state, c, caller, context);
                  if (!decided) return std::unexpected(decided.error());
                  return wf::Appends{{ac::stream_id(user), state.version, std::move(*decided)}};
                });
        if (!outcome.consistency_token.empty()) last_token = outcome.consistency_token;
      } catch (const Problem& p) {
        report.push_back(json{{"structure_id", ""},
                              {"user_id", user},
                              {"rule", p.rule},
                              {"field", p.field},
                              {"detail", p.detail}});
      }
    }
    meta.command_id = base_id;
    // A retry (same Idempotency-Key and body) finds the units its first run applied, each by
    // its id on its own stream (a departure on the account, a transfer on the structure, under
    // the departure's id when it went with one), and answers them as replayed instead of
    // deciding them again on what they changed. What is left is decided again, as a re-import
    // of those lines.
    json replayed = json::array();
    bool replayed_any = false;
    // Whether unit `salt` of this request wrote the stream of `account` or structure `id`.
    auto applied_before = [&](const std::string& salt, bool account, const std::string& id) {
      if (id.empty()) return false;
      CommandHandler::StreamLoader loader(commands_, unit_id(salt));
      if (account) {
        (void)load_account(loader, id);
      } else {
        (void)load_structure(loader, id);
      }
      return loader.replay().has_value();
    };
    std::set<std::string> seen;  // streams answered as replayed
    auto replay_of = [&](const std::string& stream) {
      if (seen.insert(stream).second) replayed.push_back(stream);
      replayed_any = true;
    };
    std::unordered_map<std::size_t, std::string> departures;  // ids of the departure units
    if (!request.idempotency_key.empty()) {
      for (const auto& u : batch.deactivate_user_ids) {
        const std::string id = unit_id("deactivate-" + u);
        departures.emplace(CommandHandler::id_hash(id), id);
      }
    }
    // Whether this request's departure of `user` is in the log (then answered as replayed).
    auto departed = [&](const std::string& user) {
      if (request.idempotency_key.empty() || !plain_id(user) ||
          !applied_before("deactivate-" + user, true, user)) {
        return false;
      }
      replay_of(ac::stream_id(user));
      return true;
    };
    // Whether this request's transfer of `structure` is in the log: on its own (then answered
    // as replayed), or with a departure (one look at the structure's own commands).
    auto transferred = [&](const std::string& structure) {
      if (request.idempotency_key.empty() || !plain_id(structure)) return false;
      if (applied_before("transfer-" + structure, false, structure)) {
        replay_of(st::stream_id(structure));
        return true;
      }
      return !departures.empty() &&
             commands_.earlier_of(st::stream_id(structure), departures).has_value();
    };
    std::erase_if(batch.deactivate_user_ids, departed);
    std::erase_if(batch.replacements,
                  [&](const ac::Replacement& r) { return transferred(r.structure_id); });
    wait_for_views();
    auto store = runner_.store();
    std::set<std::string> structure_ids;
    std::set<std::string> user_ids(batch.deactivate_user_ids.begin(),
                                   batch.deactivate_user_ids.end());
    for (const auto& u : batch.deactivate_user_ids) {
      if (!plain_id(u)) continue;
      for (const auto& row : or_503(projections::user_accesses(*store, u))) {
        if (row.role == "gp") structure_ids.insert(row.structure_id);
      }
    }
    for (const auto& r : batch.replacements) {
      if (plain_id(r.structure_id)) structure_ids.insert(r.structure_id);
      user_ids.insert(r.new_gp_user_id);
    }
    // Each unit is written on its own, at the versions the whole batch was decided on (plus
    // what earlier units of the batch wrote there): a unit that meets a concurrent change is
    // reported, never half-applied.
    wf::ImportOutcome outcome;
    AccountVersions read;  // every account whose GP role a unit may change
    const std::set<std::string> departing(batch.deactivate_user_ids.begin(),
                                          batch.deactivate_user_ids.end());
    {
      CommandHandler::StreamLoader loader(commands_, meta.command_id);
      wf::ImportInputs inputs;
      for (const auto& u : user_ids) {
        if (!plain_id(u)) continue;
        ac::State a = load_account(loader, u);
        read.emplace(u, a.version);
        if (a.status == ac::Status::none) continue;
        // What a departing account manages, by its own stream (the view may not show a
        // transfer yet).
        if (departing.contains(u)) {
          structure_ids.insert(a.managed_structures.begin(), a.managed_structures.end());
        }
        inputs.accounts.emplace(u, std::move(a));
      }
      for (const auto& sid : structure_ids) {
        st::State s = load_structure(loader, sid);
        if (s.status != st::Status::active) continue;
        if (!s.gp.empty() && !read.contains(s.gp)) {
          read.emplace(s.gp, load_account(loader, s.gp).version);
        }
        inputs.structures.emplace(sid, std::move(s));
      }
      outcome = wf::pigp_import(batch, caller, inputs);
    }
    // The same request sent twice at once: what the other one applied between this one's look
    // above and its decision reads as done already ("déjà désactivé"); it is a replay.
    std::erase_if(outcome.report, [&](const wf::ReportLine& line) {
      return line.structure_id.empty() ? departed(line.user_id) : transferred(line.structure_id);
    });
    for (const auto& line : outcome.report) {
      const Problem p = to_problem(line.reason);
      report.push_back(json{{"structure_id", line.structure_id},
                            {"user_id", line.user_id},
                            {"rule", p.rule},
                            {"field", p.field},
                            {"detail", p.detail}});
    }
    // Events the units before wrote, by stream: a unit writes an account another one wrote
    // (a replacement named for two structures) after them, not at the version loaded.
    std::map<std::string, std::uint64_t> written_before;
    for (std::size_t i = 0; i < outcome.units.size(); ++i) {
      auto& unit = outcome.units[i];
      wf::record_main_manager_roles(unit, read);
      for (auto& d : unit) d.expected_version += written_before[d.stream_id];
      json ids = json::array();
      for (const auto& d : unit) ids.push_back(d.stream_id);
      const auto [salt, account, subject] = unit_subject(unit);
      meta.command_id = unit_id(salt);
      auto appended = commands_.append_all(meta, unit);
      if (!appended) {
        // The same request, sent twice at once, may have written it in between.
        if (!request.idempotency_key.empty() && applied_before(salt, account, subject)) {
          replay_of(account ? ac::stream_id(subject) : st::stream_id(subject));
          // The same decision's events, written by the twin: the next unit writing one of these
          // streams comes after them.
          for (const auto& d : unit) written_before[d.stream_id] += d.payloads.size();
          continue;
        }
        report.push_back(json{{"streams", ids},
                              {"rule", "command.concurrent_update"},
                              {"detail", "Modification concurrente : réimportez cette ligne."}});
        continue;
      }
      for (const auto& d : unit) written_before[d.stream_id] += d.payloads.size();
      last_token = appended->position.to_token();
      applied.push_back(ids);
    }
    // A replayed unit's token would cover its own stream only: the log's end covers them all.
    if (replayed_any) last_token = commands_.covering_token(last_token);
    meta.command_id = base_id;
    record("pigp_import", "accepted");
    Response r = json_response(200, json{{"applied", applied},
                                         {"replayed", replayed},
                                         {"report", report},
                                         {"consistency_token", last_token}});
    if (!last_token.empty()) r.headers.emplace_back("X-Consistency-Token", last_token);
    return r;
  }

  // ------------------------------------------------------------------ queries
  wait_for_views();
  auto store = runner_.store();
  auto access_to = [&](const std::string& structure_id) {
    return access_from_view(
        or_503(projections::structure_access(*store, caller.user_id, structure_id)), caller);
  };
  auto existing = [&](const std::string& structure_id) {
    check_id(structure_id, "structure_id", "structure.not_found");
    auto row = or_503(projections::structure_detail(*store, structure_id));
    if (!row) throw Problem{404, "structure.not_found", "structure_id", "Structure introuvable."};
    return json::parse(*row);
  };

  if (pattern == "/v1/structures" && request.method == "GET") {
    // The public directory ("view_structure" is granted to everyone signed in).
    const std::string type = query_or_empty(request, "identifier_type");
    const std::string value = query_or_empty(request, "identifier_value");
    const std::string name = query_or_empty(request, "name");
    const std::size_t limit = positive_param(request, "limit", 20, 200);
    std::vector<std::string> ids;
    if (!value.empty()) {
      auto id = or_503(
          projections::structure_by_identifier(*store, type.empty() ? "SIRET" : type, value));
      if (id) ids.push_back(*id);
    } else if (!name.empty()) {
      ids = or_503(projections::structures_by_name(*store, name, limit));
    } else {
      throw Problem{400, "request.query", "identifier_value",
                    "Cherchez par identifiant (identifier_value) ou par nom (name)."};
    }
    json items = json::array();
    for (const auto& id : ids) {
      auto row = or_503(projections::structure_detail(*store, id));
      if (!row) continue;
      json d = json::parse(*row);
      items.push_back(json{{"structure_id", id},
                           {"identifier_type", d["identifier_type"]},
                           {"identifier_value", d["identifier_value"]},
                           {"designation", d["data"]["designation"]},
                           {"status", d["status"]}});
    }
    return json_response(200, json{{"items", items}});
  }
  if (pattern == "/v1/structures/{structure_id}") {
    json detail = existing(params[0]);
    // The GP's identity is for the structure's own managers, support and auditors.
    if (!domain::access::may(access_to(params[0]), Action::view_history, {})) {
      detail.erase("gp_user_id");
    }
    return json_response(200, detail);
  }
  if (pattern == "/v1/structures/{structure_id}/history") {
    existing(params[0]);
    const auto access = access_to(params[0]);
    const std::size_t page = positive_param(request, "page", 1, 1'000'000);
    const std::size_t page_size = positive_param(request, "page_size", 20, 200);
    // "before": the "seq" of the last row read, for the next page in one bounded scan.
    const std::uint64_t before =
        request.query_param("before") ? positive_param(request, "before", 1, 1ULL << 62) : 0;
    json head{{"structure_id", params[0]}, {"page", page}, {"page_size", page_size}};
    if (domain::access::may(access, Action::view_history, {})) {
      auto listed = or_503(projections::history_page(*store, params[0], page, page_size, before));
      head["total"] = listed.total;
      head["items"] = json::array();
      for (auto& row : listed.rows) head["items"].push_back(json::parse(row));
      if (listed.rows.size() == page_size && !head["items"].empty()) {
        head["next_before"] = head["items"].back()["seq"];
      }
      return json_response(200, head);
    }
    if (access.member != RoleScope::gs_services) {
      throw Problem{403, "structure.view_history.forbidden", "",
                    "L'historique est réservé aux gestionnaires de la structure."};
    }
    // "Cloisonnement": a GS of services sees the rows about their services only, filed under
    // each service by the view; every row is checked again here.
    auto listed = or_503(projections::service_history_page(*store, params[0], access.services, page,
                                                           page_size, before));
    head["total"] = listed.total;
    head["items"] = json::array();
    for (auto& row : listed.rows) {
      json r = json::parse(row);
      if (domain::access::may(access, Action::view_history, row_services(r))) {
        head["items"].push_back(std::move(r));
      }
    }
    if (listed.rows.size() == page_size && !head["items"].empty()) {
      head["next_before"] = head["items"].back()["seq"];
    }
    return json_response(200, head);
  }
  if (pattern == "/v1/structures/{structure_id}/members" && request.method == "GET") {
    if (const std::string format = query_or_empty(request, "format");
        !format.empty() && format != "json" && format != "csv") {
      throw Problem{400, "request.query", "format", "Format « json » ou « csv »."};
    }
    existing(params[0]);
    const auto access = access_to(params[0]);
    // Who may see requests may see who is attached, within the same scope.
    if (!domain::access::may(access, Action::view_requests, {}) &&
        access.member != RoleScope::gs_services) {
      throw Problem{403, "structure.members.forbidden", "",
                    "La liste des utilisateurs est réservée aux gestionnaires de la structure."};
    }
    const std::string q = query_or_empty(request, "q");
    const std::string status = query_or_empty(request, "status");
    const std::string service = query_or_empty(request, "service");
    auto rows =
        or_503(projections::structure_members(*store, params[0], [&](const std::string& text) {
          json m = json::parse(text, nullptr, false);
          if (m.is_discarded()) return false;
          const auto services = m.value("services", std::vector<std::string>{});
          if (!domain::access::may(access, Action::view_requests, services)) return false;
          if (!status.empty() && m.value("status", "") != status) return false;
          if (!service.empty() && std::ranges::find(services, service) == services.end())
            return false;
          if (q.empty()) return true;
          for (const char* f : {"user_id", "login_email", "first_name", "last_name"}) {
            if (m.value(f, "").find(q) != std::string::npos) return true;
          }
          return false;
        }));
    if (query_or_empty(request, "format") == "csv") {
      // The same dialect as the tickets' export (projections/csv.h).
      std::string csv(kCsvByteOrderMark);
      csv += csv_line(
          {"Identifiant", "Adresse e-mail", "Prénom", "Nom", "Statut", "Rôle", "Services"});
      for (const auto& row : rows) {
        json m = json::parse(row);
        std::string services;
        for (const auto& s : m.value("services", std::vector<std::string>{})) {
          services += (services.empty() ? "" : " ") + s;
        }
        csv += csv_line({m.value("user_id", ""), m.value("login_email", ""),
                         m.value("first_name", ""), m.value("last_name", ""), m.value("status", ""),
                         m.value("role", ""), services});
      }
      return Response{200,
                      "text/csv; charset=utf-8",
                      std::move(csv),
                      {{"Content-Disposition", "attachment; filename=\"utilisateurs.csv\""}}};
    }
    json items = json::array();
    for (const auto& row : rows) items.push_back(json::parse(row));
    return json_response(200, json{{"structure_id", params[0]}, {"items", items}});
  }
  if (pattern == "/v1/me/attachments") {
    // "Mes rattachements aux structures": the caller's own rows only.
    json items = json::array();
    for (const auto& row : or_503(projections::user_accesses(*store, caller.user_id))) {
      json item{{"structure_id", row.structure_id}, {"role", row.role}, {"services", row.services}};
      json espaces = json::array();
      for (const auto& e : row.espaces) {
        espaces.push_back(json{
            {"espace", e.espace}, {"service", e.service}, {"read", e.read}, {"write", e.write}});
      }
      item["espaces"] = espaces;
      if (auto d = or_503(projections::structure_detail(*store, row.structure_id))) {
        json detail = json::parse(*d);
        item["designation"] = detail["data"]["designation"];
        item["status"] = detail["status"];
      }
      items.push_back(std::move(item));
    }
    json pending = json::array();
    for (const auto& row : or_503(projections::user_pending_requests(*store, caller.user_id))) {
      pending.push_back(json::parse(row));
    }
    return json_response(200, json{{"items", items}, {"pending_requests", pending}});
  }
  if (pattern == "/v1/approvals") {
    // "Approbation": every pending request the caller may see, per structure they manage, or
    // for support and auditors every structure with pending requests; or the one named.
    const std::string named = query_or_empty(request, "structure_id");
    const std::string kind = query_or_empty(request, "kind");
    const std::string q = query_or_empty(request, "q");
    const std::string sort = query_or_empty(request, "sort");
    if (!sort.empty() && sort != "oldest" && sort != "newest") {
      throw Problem{400, "request.query", "sort", "Tri « oldest » ou « newest »."};
    }
    if (!kind.empty() && kind != "attachment" && kind != "subscription") {
      throw Problem{400, "request.query", "kind", "Type « attachment » ou « subscription »."};
    }
    const std::size_t page = positive_param(request, "page", 1, 1'000'000);
    const std::size_t page_size = positive_param(request, "page_size", 20, 200);
    struct InScope {
      std::string structure_id;
      domain::access::Access access;
      std::optional<std::uint64_t> pending;  // known when every group is the caller's
    };
    std::vector<InScope> scope;
    if (!named.empty()) {
      existing(named);
      auto access = access_to(named);
      if (!domain::access::may(access, Action::view_requests, {}) &&
          access.member != RoleScope::gs_services) {
        throw Problem{403, "structure.view_requests.forbidden", "",
                      "L'approbation est réservée aux gestionnaires de la structure."};
      }
      scope.push_back(InScope{named, std::move(access), std::nullopt});
    } else if (is_support(caller) || caller.roles.auditor) {
      // Support (and auditors), who manage no structure: every structure with pending
      // requests, in structure id order, each with its count (the portal filters by naming
      // one).
      for (auto& [sid, n] : or_503(projections::structures_with_pending(*store))) {
        auto access = access_to(sid);
        if (domain::access::may(access, Action::view_requests, {})) {
          scope.push_back(InScope{std::move(sid), std::move(access), n});
        }
      }
    } else {
      for (const auto& row : or_503(projections::user_accesses(*store, caller.user_id))) {
        auto access = access_from_view(row, caller);
        if (access.member == RoleScope::gp || access.member == RoleScope::gs_whole ||
            access.member == RoleScope::gs_services) {
          scope.push_back(InScope{row.structure_id, std::move(access), std::nullopt});
        }
      }
    }
    // "after": the next_cursor of the previous page; the page then starts just after that row
    // in one seek, whatever its depth.
    std::optional<projections::PendingCursor> after;
    if (const auto text = query_or_empty(request, "after"); !text.empty()) {
      after = projections::parse_pending_cursor(text);
      // A cursor only places the page among the caller's own structures (in structure id
      // order), whatever it names.
      if (!after) {
        throw Problem{400, "request.query", "after", "Curseur de page invalide."};
      }
    }
    if (!q.empty() && !projections::is_searchable(q)) {
      throw Problem{400, "request.query", "q",
                    "La recherche demande au moins une lettre ou un chiffre."};
    }
    json counts = json::array();
    json items = json::array();
    std::uint64_t total = 0;
    std::uint64_t skip = after ? 0 : static_cast<std::uint64_t>(page - 1) * page_size;
    for (const auto& [sid, access, known] : scope) {
      std::uint64_t pending = 0;
      if (known) {
        pending = *known;
      } else {
        for (const auto& [service, n] : or_503(projections::pending_counts(*store, sid))) {
          if (domain::access::may(access, Action::view_requests, as_services(service))) {
            pending += n;
          }
        }
      }
      counts.push_back(json{{"structure_id", sid}, {"pending", pending}});
      projections::PendingQuery query;
      // A scoped GS reads only their services' groups: the whole-structure group is never
      // theirs.
      if (access.member == RoleScope::gs_services &&
          !domain::access::may(access, Action::view_requests, {})) {
        query.services = access.services;
      }
      query.newest_first = sort == "newest";
      query.kind = kind;
      query.words = q;
      const bool filtered = !kind.empty() || !q.empty();
      // A structure before the cursor's gave its rows to earlier pages: only its total counts.
      const bool passed = after && sid < after->structure_id;
      if (after && sid == after->structure_id) query.after = after;
      if (!filtered) {
        // The counters give the total; a structure wholly skipped or after a full page is
        // not read.
        total += pending;
        if (passed || items.size() >= page_size) continue;
        if (!query.after && skip >= pending) {
          skip -= pending;
          continue;
        }
      }
      query.offset = query.after ? 0 : skip;
      query.limit = passed ? 0 : page_size - std::min(page_size, items.size());
      auto listed = or_503(projections::pending_page(*store, sid, query));
      for (auto& row : listed.rows) {
        json r = json::parse(row);
        // Every row read is checked against the caller's scope, whatever the layout promises.
        if (domain::access::may(access, Action::view_requests, row_services(r))) {
          items.push_back(std::move(r));
        }
      }
      const std::uint64_t matching = filtered ? listed.total : pending;
      if (!query.after && !passed) skip = skip > matching ? skip - matching : 0;
      if (filtered) total += listed.total;
    }
    json answer{{"counts", counts},
                {"total", total},
                {"page", page},
                {"page_size", page_size},
                {"items", items}};
    // The cursor of the next page, when this one is full (it may then be the last).
    if (items.size() == page_size)
      answer["next_cursor"] = projections::pending_cursor(json_text(items.back()));
    return json_response(200, answer);
  }
  throw Problem{404, "request.route", "", "Ressource inconnue."};
}

}  // namespace chorus::api
