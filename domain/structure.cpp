#include "domain/structure.h"

#include <algorithm>
#include <chrono>

#include "domain/fields.h"
#include "events/codec.h"

namespace chorus::domain::structure {
namespace {

using events::Overloaded;

using Events = Decision<std::vector<events::Payload>>;
using access::Action;
using access::RoleScope;
using fields::check_text;

constexpr std::size_t kNameMax = 200;  // designation and address lines (no limit in the seeds)

template <class T>
std::unexpected<Rejection> fail(const Decision<T>& d) {
  return std::unexpected(d.error());
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::ranges::find(v, s) != v.end();
}

const Service* find_service(const State& state, const std::string& code) {
  auto it = std::ranges::find(state.services, code, &Service::code);
  return it == state.services.end() ? nullptr : &*it;
}

bool active_on(const Service& s, const std::string& today) {
  return s.valid_from <= today && (s.valid_to.empty() || today <= s.valid_to);
}

// Whether `code` names a service of the structure that is active on `today`.
bool service_active(const State& state, const std::string& code, const std::string& today) {
  const Service* s = find_service(state, code);
  return s != nullptr && active_on(*s, today);
}

// The request services as the permission table takes them: empty for the whole structure.
std::vector<std::string> as_services(const std::string& service) {
  return service.empty() ? std::vector<std::string>{} : std::vector<std::string>{service};
}

Decision<void> check_data(const events::StructureData& d, bool is_public, bool has_other_service) {
  constexpr std::string_view rule = "structure.data";
  for (auto check :
       {check_text(d.designation, "designation", kNameMax, true, "Désignation", rule),
        check_text(d.address_line1, "address_line1", kNameMax, true, "Adresse", rule),
        check_text(d.address_line2, "address_line2", kNameMax, false, "Complément d'adresse", rule),
        check_text(d.postal_code, "postal_code", kIdMax, true, "Code postal", rule),
        check_text(d.city, "city", kIdMax, true, "Ville", rule),
        check_text(d.country, "country", kIdMax, true, "Pays", rule),
        check_text(d.vat_number, "vat_number", kIdMax, false, "Numéro de TVA intracommunautaire",
                   rule),
        check_text(d.pacage_number, "pacage_number", kIdMax, false, "Numéro PACAGE", rule),
        check_text(d.social_regime, "social_regime", kIdMax, false, "Régime social", rule)}) {
    if (!check) return check;
  }
  // "Seules les structures de type « publique » peuvent être maîtrise d'ouvrage (MOA)."
  if (!is_public && d.moa_mode != 0) {
    return reject(errc::invalid_field, "structure.data.moa_private", "moa_mode",
                  "Seules les structures publiques peuvent être maîtrise d'ouvrage (MOA).");
  }
  if (is_public && (d.moa_mode < 1 || d.moa_mode > 3)) {
    return reject(errc::invalid_field, "structure.data.moa_mode", "moa_mode",
                  "Indiquez si la structure est sans MOA, avec MOA ou exclusivement MOA.");
  }
  if (d.service_code_required && !has_other_service) {
    return reject(errc::invalid_field, "structure.data.service_code_required",
                  "service_code_required",
                  "Le code service ne peut être rendu obligatoire que si un service autre que "
                  "FACTURES_PUBLIQUES existe sur la structure.");
  }
  return {};
}

Decision<void> check_service(const Service& s) {
  constexpr std::string_view rule = "structure.service";
  for (auto check :
       {check_text(s.code, "code", kCodeMax, true, "Code", rule),
        check_text(s.label, "label", kCodeMax, true, "Libellé du service", rule),
        check_text(s.description, "description", kTextMax, false, "Description", rule)}) {
    if (!check) return check;
  }
  if (!is_date(s.valid_from)) {
    return reject(errc::invalid_field, "structure.service.valid_from", "valid_from",
                  "La date de début de validité est obligatoire (AAAA-MM-JJ).");
  }
  if (!s.valid_to.empty() && (!is_date(s.valid_to) || s.valid_to < s.valid_from)) {
    return reject(errc::invalid_field, "structure.service.valid_to", "valid_to",
                  "La date de fin de validité suit la date de début (AAAA-MM-JJ).");
  }
  return {};
}

// Whether a public structure's GP must come from the PIGP: every public structure but the
// State and "exclusivement MOA" ones (seed 003, « Point d'attention »).
bool needs_pigp(const State& state) {
  return state.is_public && !state.is_state && !moa_only(state);
}

Decision<void> check_new_gp(const State& state, const std::string& user_id,
                            const AccountFacts& account, std::string_view rule) {
  if (auto ok = check_text(user_id, "new_gp_user_id", kIdMax, true,
                           "Nouveau gestionnaire principal", rule);
      !ok) {
    return ok;
  }
  if (!account.exists) {
    return reject(errc::invalid_field, std::string(rule) + ".unknown_user", "new_gp_user_id",
                  "Aucun compte ne correspond à cet identifiant de connexion.");
  }
  if (!account.active) {
    return reject(errc::invalid_field, std::string(rule) + ".inactive_user", "new_gp_user_id",
                  "Le nouveau gestionnaire principal doit avoir un compte actif.");
  }
  if (account.technical) {
    return reject(errc::invalid_field, std::string(rule) + ".technical_user", "new_gp_user_id",
                  "Un utilisateur technique ne peut pas être gestionnaire principal.");
  }
  if (needs_pigp(state) && !account.pigp) {
    return reject(errc::invalid_field, std::string(rule) + ".pigp_required", "new_gp_user_id",
                  "Pour une structure publique, le gestionnaire principal doit avoir un compte "
                  "PIGP (sauf l'Etat et les structures exclusivement MOA).");
  }
  return {};
}

// The rights an espace is opened with for `service` (empty: the whole structure): those opened
// on the whole structure and on that service, together. Neither read nor write: not opened.
Espace opened_rights(const State& state, std::string_view espace, std::string_view service) {
  Espace out{std::string(espace), std::string(service), false, false};
  for (const Espace& e : state.espaces) {
    if (e.espace != espace || !(e.service.empty() || e.service == service)) continue;
    out.read = out.read || e.read;
    out.write = out.write || e.write;
  }
  return out;
}

// The services a user holds after being granted `granted` on top of what they had: services
// already validated stay granted; the whole structure absorbs everything.
std::vector<std::string> merged(const Member* before, const std::vector<std::string>& granted) {
  if (before != nullptr && before->services.empty()) return {};
  if (granted.empty()) return {};
  std::vector<std::string> out = before != nullptr ? before->services : std::vector<std::string>{};
  for (const auto& s : granted) {
    if (!contains(out, s)) out.push_back(s);
  }
  return out;
}

// A manager changes someone's role only when their scope covers everything that role covers:
// a GS scoped to service A must not promote or demote a user of service B ("cloisonnement").
Decision<Role> new_role(const access::Access& caller, const Member* before, Role chosen,
                        std::string_view rule) {
  if (chosen == Role::gp) {
    return reject(errc::invalid_field, std::string(rule) + ".role", "role",
                  "Le rôle attribué est gestionnaire secondaire ou utilisateur simple ; le "
                  "gestionnaire principal se transfère.");
  }
  if (before == nullptr) return chosen;
  if (before->role == Role::gp) return Role::gp;
  const bool whole = caller.member == RoleScope::gp || caller.member == RoleScope::gs_whole;
  if (before->role != chosen && !whole &&
      (before->services.empty() ||
       !access::may(caller.member, caller.services, Action::decide_attachment, before->services))) {
    return reject(errc::forbidden, std::string(rule) + ".role_scope", "role",
                  "Le rôle de cet utilisateur couvre des services hors de votre périmètre.");
  }
  return chosen;
}

}  // namespace

const char* to_string(Role role) noexcept {
  switch (role) {
    case Role::gp:
      return "gp";
    case Role::gs:
      return "gs";
    case Role::user:
      return "user";
  }
  return "?";
}

std::optional<Role> role_from(std::string_view text) noexcept {
  if (text == "gp") return Role::gp;
  if (text == "gs") return Role::gs;
  if (text == "user") return Role::user;
  return std::nullopt;
}

bool moa_only(const State& state) noexcept {
  return state.data.moa_mode == static_cast<std::uint8_t>(MoaMode::only);
}

bool is_identifier_type(std::string_view type) noexcept {
  if (type.empty() || type.size() > kIdMax || type.front() < 'A' || type.front() > 'Z') {
    return false;
  }
  return std::ranges::all_of(
      type, [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; });
}

bool is_siret(std::string_view value) noexcept {
  if (value.size() != 14) return false;
  int sum = 0;
  for (std::size_t i = 0; i < 14; ++i) {
    const char c = value[13 - i];
    if (c < '0' || c > '9') return false;
    int d = c - '0';
    if (i % 2 == 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 == 0;
}

bool is_date(std::string_view date) noexcept {
  if (date.size() != 10 || date[4] != '-' || date[7] != '-') return false;
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (date[i] < '0' || date[i] > '9') return false;
  }
  const int year =
      (date[0] - '0') * 1000 + (date[1] - '0') * 100 + (date[2] - '0') * 10 + (date[3] - '0');
  const unsigned month = static_cast<unsigned>((date[5] - '0') * 10 + (date[6] - '0'));
  const unsigned day = static_cast<unsigned>((date[8] - '0') * 10 + (date[9] - '0'));
  // A day of the calendar: 2026-02-29 and 04-31 are none.
  return std::chrono::year_month_day{std::chrono::year{year}, std::chrono::month{month},
                                     std::chrono::day{day}}
      .ok();
}

access::Access access_of(const State& state, const Caller& caller) {
  access::Access out;
  out.roles = caller.roles;
  auto it = state.members.find(caller.user_id);
  if (it == state.members.end() || caller.user_id.empty()) return out;
  const Member& m = it->second;
  out.services = m.services;
  switch (m.role) {
    case Role::gp:
      out.member = RoleScope::gp;
      out.services.clear();
      break;
    case Role::gs:
      out.member = m.services.empty() ? RoleScope::gs_whole : RoleScope::gs_services;
      break;
    case Role::user:
      out.member = RoleScope::user;
      break;
  }
  return out;
}

access::Action action_of(const Command& command) noexcept {
  return std::visit(
      Overloaded{
          [](const CreateStructure&) { return Action::create_structure; },
          [](const ChangeData&) { return Action::change_data; },
          [](const DeactivateStructure&) { return Action::deactivate_structure; },
          [](const AddService&) { return Action::change_data; },
          [](const ChangeService&) { return Action::change_data; },
          [](const RemoveService&) { return Action::change_data; },
          [](const RequestAttachment&) { return Action::request_attachment; },
          [](const ValidateAttachment&) { return Action::decide_attachment; },
          [](const RefuseAttachment&) { return Action::decide_attachment; },
          [](const AttachDirectly&) { return Action::attach_directly; },
          [](const RemoveAttachment&) { return Action::remove_attachment; },
          [](const TransferMainManager&) { return Action::transfer_main_manager; },
          [](const ResetTechnicalPassword&) { return Action::reset_technical_password; },
          [](const EnableEspace&) { return Action::enable_espace; },
          [](const RequestSubscription&) { return Action::request_subscription; },
          [](const ValidateSubscription&) { return Action::decide_subscription; },
          [](const RefuseSubscription&) { return Action::decide_subscription; },
      },
      command);
}

std::string stream_id(const std::string& structure_id) { return "structure-" + structure_id; }

std::string identifier_stream_id(std::string_view type, std::string_view value) {
  auto plain = [](std::string_view text) {
    return !text.empty() && std::ranges::all_of(text, [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    });
  };
  if (plain(type) && plain(value) && type.size() + value.size() <= 180) {
    return "identifier-" + std::string(type) + "-" + std::string(value);
  }
  std::string both(type);
  both.push_back('\0');
  both.append(value);
  return "identifier-~" + events::to_hex(events::sha256(both));
}

Reservation evolve_reservation(Reservation state, const events::Payload& payload) {
  ++state.version;
  if (const auto* e = std::get_if<events::IdentifierReserved>(&payload)) {
    state.structure_id = e->structure_id;
  }
  return state;
}

Decision<std::vector<events::Payload>> decide(const State& state, const Command& command,
                                              const Caller& caller, const Context& context) {
  auto one = [](events::Payload p) -> Events { return std::vector<events::Payload>{std::move(p)}; };
  const access::Access me = access_of(state, caller);
  const Action action = action_of(command);
  const std::string rule_prefix = std::string("structure.") + access::to_string(action);

  // The structure exists (or, for a creation, does not yet) and is active.
  if (action == Action::create_structure) {
    if (state.status != Status::none) {
      return reject(errc::wrong_status, rule_prefix + ".exists", "structure_id",
                    "Cette structure existe déjà.");
    }
  } else if (state.status == Status::none) {
    return reject(errc::not_found, rule_prefix + ".not_found", "structure_id",
                  "Structure introuvable.");
  } else if (state.status == Status::inactive &&
             !std::holds_alternative<RefuseAttachment>(command) &&
             !std::holds_alternative<RefuseSubscription>(command)) {
    // A refusal stays open: it closes a request that no one can grant any more (one left
    // pending on a structure deactivated before deactivations closed them).
    return reject(errc::wrong_status, rule_prefix + ".inactive", "status",
                  "Cette structure est désactivée.");
  }
  // The table, for what concerns the whole structure or named services. Requests are checked
  // below against their own service, where not knowing them matters.
  auto allowed = [&](std::span<const std::string> services) -> Decision<void> {
    if (access::may(me, action, services)) return {};
    return reject(errc::forbidden, rule_prefix + ".forbidden", "",
                  "Vous n'avez pas les droits pour cette action sur cette structure.");
  };
  // A pending request is known only to who may see it; seeing it is not deciding it.
  auto decidable = [&](const std::string& service) -> Decision<void> {
    const auto services = as_services(service);
    if (!access::may(me, Action::view_requests, services)) {
      return reject(errc::not_found, rule_prefix + ".not_found", "request_id",
                    "Demande introuvable.");
    }
    return allowed(services);
  };
  const std::string& id = state.structure_id;

  return std::visit(
      Overloaded{
          [&](const CreateStructure& c) -> Events {
            constexpr std::string_view rule = "structure.create";
            if (auto ok = allowed({}); !ok) return fail(ok);
            if (auto ok = check_text(c.identifier_type, "identifier_type", kIdMax, true,
                                     "Type d'identifiant", rule);
                !ok) {
              return fail(ok);
            }
            if (!is_identifier_type(c.identifier_type)) {
              return reject(errc::invalid_field, "structure.create.identifier_type",
                            "identifier_type",
                            "Le type d'identifiant s'écrit en majuscules, chiffres et « _ » "
                            "(SIRET, ...).");
            }
            if (c.identifier_type == "SIRET"
                    ? !is_siret(c.identifier_value)
                    : c.identifier_value.empty() || c.identifier_value.size() > kIdMax) {
              return reject(errc::invalid_field, "structure.create.identifier", "identifier_value",
                            "L'identifiant n'est pas valide (un SIRET compte 14 chiffres et "
                            "respecte la clé de Luhn).");
            }
            if (context.identifier_taken) {
              return reject(errc::invalid_field, "structure.create.identifier_taken",
                            "identifier_value", "Une structure porte déjà cet identifiant.");
            }
            if (!is_date(c.created_on)) {
              return reject(errc::invalid_field, "structure.create.created_on", "created_on",
                            "Date de création manquante.");
            }
            if (auto ok = check_data(c.data, c.is_public, false); !ok) return fail(ok);
            std::vector<events::Payload> out{events::StructureCreated{
                id, c.identifier_type, c.identifier_value, c.is_public, c.is_public && c.is_state,
                c.is_public && c.pigp_managed, c.created_on, "", c.data}};
            if (!c.first_gp_user_id.empty()) {
              State created = evolve(state, out.front());
              if (auto ok = check_new_gp(created, c.first_gp_user_id, context.account, rule); !ok) {
                return fail(ok);
              }
              out.push_back(events::MainManagerTransferred{id, "", c.first_gp_user_id, true});
            }
            return out;
          },
          [&](const ChangeData& c) -> Events {
            if (auto ok = allowed({}); !ok) return fail(ok);
            if (auto ok = check_data(c.data, state.is_public, state.services.size() > 1); !ok) {
              return fail(ok);
            }
            // Leaving "exclusivement MOA" puts the PIGP rule of transfers back on the GP
            // in place: one who could not be named now could stay.
            State after = state;
            after.data = c.data;
            if (!state.gp.empty() && moa_only(state) && needs_pigp(after) && !context.gp_is_pigp) {
              return reject(errc::invalid_field, "structure.change_data.pigp_required", "moa_mode",
                            "Le gestionnaire principal de cette structure publique n'a pas de "
                            "compte PIGP : transférez d'abord son rôle à un compte PIGP.");
            }
            return one(events::StructureDataChanged{id, c.data});
          },
          [&](const DeactivateStructure& c) -> Events {
            if (auto ok = allowed({}); !ok) return fail(ok);
            if (auto ok =
                    check_text(c.reason, "reason", kTextMax, true, "Motif", "structure.deactivate");
                !ok) {
              return fail(ok);
            }
            std::vector<events::Payload> out{events::StructureDeactivated{id, "", c.reason}};
            // Within what a refusal's reason may hold, as one a manager writes.
            std::string closing = "Structure désactivée : " + c.reason;
            if (closing.size() > kTextMax) closing = "Structure désactivée.";
            for (auto& p : closing_refusals(state, closing)) {
              out.push_back(std::move(p));
            }
            return out;
          },
          [&](const AddService& c) -> Events {
            if (auto ok = allowed({}); !ok) return fail(ok);
            if (auto ok = check_service(c.service); !ok) return fail(ok);
            if (find_service(state, c.service.code) != nullptr) {
              return reject(errc::invalid_field, "structure.service.duplicate_code", "code",
                            "Un service porte déjà ce code sur cette structure.");
            }
            const Service& s = c.service;
            return one(events::ServiceAdded{id, s.code, s.label, s.description, s.valid_from,
                                            s.valid_to, s.commitment_required});
          },
          [&](const ChangeService& c) -> Events {
            if (auto ok = allowed({}); !ok) return fail(ok);
            if (c.service.code == kPublicInvoices) {
              return reject(errc::invalid_field, "structure.service.public_invoices", "code",
                            "Le service FACTURES_PUBLIQUES n'est pas modifiable.");
            }
            if (find_service(state, c.service.code) == nullptr) {
              return reject(errc::not_found, "structure.service.not_found", "code",
                            "Service introuvable.");
            }
            if (auto ok = check_service(c.service); !ok) return fail(ok);
            const Service& s = c.service;
            return one(events::ServiceChanged{id, s.code, s.label, s.description, s.valid_from,
                                              s.valid_to, s.commitment_required});
          },
          [&](const RemoveService& c) -> Events {
            if (auto ok = allowed({}); !ok) return fail(ok);
            if (c.code == kPublicInvoices) {
              return reject(errc::invalid_field, "structure.service.public_invoices", "code",
                            "Le service FACTURES_PUBLIQUES ne peut pas être supprimé.");
            }
            if (find_service(state, c.code) == nullptr) {
              return reject(errc::not_found, "structure.service.not_found", "code",
                            "Service introuvable.");
            }
            // Removing a service someone holds would widen their scope to the whole
            // structure (an empty list means everything): their rights go first.
            const bool in_use =
                std::ranges::any_of(
                    state.members,
                    [&](const auto& m) { return contains(m.second.services, c.code); }) ||
                std::ranges::any_of(state.attachment_requests,
                                    [&](const auto& r) { return r.second.service == c.code; }) ||
                std::ranges::any_of(state.espaces,
                                    [&](const Espace& e) { return e.service == c.code; }) ||
                std::ranges::any_of(state.subscription_requests,
                                    [&](const auto& r) { return r.second.service == c.code; }) ||
                std::ranges::any_of(state.subscriptions, [&](const SubscriptionRequest& r) {
                  return r.service == c.code;
                });
            if (in_use) {
              return reject(errc::wrong_status, "structure.service.in_use", "code",
                            "Ce service a encore des utilisateurs, des demandes ou des espaces.");
            }
            if (state.data.service_code_required && state.services.size() == 2) {
              return reject(errc::wrong_status, "structure.service.code_required", "code",
                            "Le code service est obligatoire sur cette structure : un service "
                            "autre que FACTURES_PUBLIQUES doit rester.");
            }
            return one(events::ServiceRemoved{id, c.code});
          },
          [&](const RequestAttachment& c) -> Events {
            constexpr std::string_view rule = "structure.request_attachment";
            if (auto ok = allowed({}); !ok) return fail(ok);
            if (!context.account.active) {
              return reject(errc::forbidden, "structure.request_attachment.inactive_account", "",
                            "Votre compte doit être activé pour demander un rattachement.");
            }
            // A technical account is attached by its structure's GP, never on its own request
            // (which another structure could grant, and then reset its password).
            if (context.account.technical) {
              return reject(errc::forbidden, "structure.request_attachment.technical", "",
                            "Un utilisateur technique est rattaché par le gestionnaire "
                            "principal de sa structure.");
            }
            if (auto ok = check_text(c.request_id, "request_id", kIdMax, true, "Demande", rule);
                !ok) {
              return fail(ok);
            }
            if (auto ok = check_text(c.comment, "comment", kTextMax, false, "Commentaire", rule);
                !ok) {
              return fail(ok);
            }
            const auto member = state.members.find(caller.user_id);
            const Member* before = member == state.members.end() ? nullptr : &member->second;
            std::vector<events::Payload> out;
            auto add = [&](const std::string& request_id,
                           const std::string& service) -> Decision<void> {
              if (state.used_request_ids.contains(request_id)) {
                return reject(errc::invalid_field, "structure.request_attachment.request_id",
                              "request_id", "Cet identifiant de demande a déjà servi.");
              }
              if (before != nullptr &&
                  (before->services.empty() ||
                   (!service.empty() && contains(before->services, service)))) {
                return reject(errc::wrong_status, "structure.request_attachment.already",
                              "services", "Vous êtes déjà rattaché à ce périmètre.");
              }
              for (const auto& [rid, r] : state.attachment_requests) {
                if (r.user_id == caller.user_id && r.service == service) {
                  return reject(errc::wrong_status, "structure.request_attachment.pending",
                                "services", "Une demande est déjà en cours de validation.");
                }
              }
              out.push_back(
                  events::AttachmentRequested{id, request_id, caller.user_id, service, c.comment});
              return {};
            };
            if (c.services.empty()) {
              if (auto ok = add(c.request_id, ""); !ok) return fail(ok);
              return out;
            }
            for (std::size_t i = 0; i < c.services.size(); ++i) {
              const std::string& code = c.services[i];
              if (!service_active(state, code, context.today)) {
                return reject(errc::invalid_field, "structure.request_attachment.service",
                              "services",
                              "Le service " + code + " n'existe pas ou n'est pas actif.");
              }
              if (std::count(c.services.begin(), c.services.end(), code) > 1) {
                return reject(errc::invalid_field, "structure.request_attachment.duplicate",
                              "services", "Le service " + code + " est demandé deux fois.");
              }
              if (auto ok = add(c.request_id + "-" + std::to_string(i + 1), code); !ok) {
                return fail(ok);
              }
            }
            return out;
          },
          [&](const ValidateAttachment& c) -> Events {
            constexpr std::string_view rule = "structure.validate_attachment";
            auto it = state.attachment_requests.find(c.request_id);
            if (it == state.attachment_requests.end()) {
              return reject(errc::not_found, "structure.decide_attachment.not_found", "request_id",
                            "Demande introuvable.");
            }
            const AttachmentRequest& r = it->second;
            if (auto ok = decidable(r.service); !ok) return fail(ok);
            if (context.deactivated_requesters.contains(r.user_id)) {
              return reject(errc::wrong_status, "structure.validate_attachment.account_deactivated",
                            "request_id",
                            "Le compte du demandeur est désactivé : refusez la demande.");
            }
            if (auto ok = check_text(c.comment, "comment", kTextMax, false, "Commentaire", rule);
                !ok) {
              return fail(ok);
            }
            const std::vector<std::string> granted =
                c.services.empty() ? as_services(r.service) : c.services;
            for (const auto& code : granted) {
              if (!service_active(state, code, context.today)) {
                return reject(errc::invalid_field, "structure.validate_attachment.service",
                              "services",
                              "Le service " + code + " n'existe pas ou n'est pas actif.");
              }
            }
            // "Cloisonnement": what is granted stays inside the manager's services too.
            if (!access::may(me, Action::decide_attachment, granted)) {
              return reject(errc::forbidden, "structure.validate_attachment.scope", "services",
                            "Vous ne pouvez attribuer que les services de votre périmètre.");
            }
            const auto member = state.members.find(r.user_id);
            const Member* before = member == state.members.end() ? nullptr : &member->second;
            auto role = new_role(me, before, c.role, rule);
            if (!role) return fail(role);
            return one(events::AttachmentValidated{
                id, c.request_id, r.user_id, to_string(*role),
                *role == Role::gp ? std::vector<std::string>{} : merged(before, granted),
                c.comment});
          },
          [&](const RefuseAttachment& c) -> Events {
            auto it = state.attachment_requests.find(c.request_id);
            if (it == state.attachment_requests.end()) {
              return reject(errc::not_found, "structure.decide_attachment.not_found", "request_id",
                            "Demande introuvable.");
            }
            if (auto ok = decidable(it->second.service); !ok) return fail(ok);
            if (auto ok = check_text(c.reason, "reason", kTextMax, true, "Motif du refus",
                                     "structure.refuse_attachment");
                !ok) {
              return fail(ok);
            }
            return one(events::AttachmentRefused{id, c.request_id, it->second.user_id, c.reason});
          },
          [&](const AttachDirectly& c) -> Events {
            constexpr std::string_view rule = "structure.attach_directly";
            if (auto ok = allowed(c.services); !ok) return fail(ok);
            for (auto check :
                 {check_text(c.user_id, "user_id", kIdMax, true, "Utilisateur", rule),
                  check_text(c.comment, "comment", kTextMax, false, "Commentaire", rule)}) {
              if (!check) return fail(check);
            }
            if (!is_date(c.start_date)) {
              return reject(errc::invalid_field, "structure.attach_directly.start_date",
                            "start_date", "La date de début de validité est obligatoire.");
            }
            if (!context.account.exists || context.account.deactivated) {
              return reject(errc::invalid_field, "structure.attach_directly.account", "user_id",
                            "Aucun compte actif ne correspond à cet utilisateur.");
            }
            // "le gestionnaire principal doit rattacher ce nouvel utilisateur, appelé
            // « utilisateur technique »".
            if (context.account.technical && (me.member != RoleScope::gp || c.role != Role::user)) {
              return reject(errc::forbidden, "structure.attach_directly.technical", "user_id",
                            "Seul le gestionnaire principal rattache un utilisateur technique, "
                            "comme utilisateur simple.");
            }
            // Its structure is the one whose GP created it, or the one a SIRET change made of
            // it; for an account created before that was recorded, the one holding it now.
            const std::string& home = context.account.technical_structure_id;
            const bool ours = home.empty() ? !context.account_attached_elsewhere ||
                                                 state.members.contains(c.user_id)
                                           : home == id || home == state.origin_structure_id;
            if (context.account.technical && !ours) {
              return reject(errc::forbidden, "structure.attach_directly.technical_elsewhere",
                            "user_id",
                            "Cet utilisateur technique est celui d'une autre structure.");
            }
            for (const auto& code : c.services) {
              if (!service_active(state, code, context.today)) {
                return reject(errc::invalid_field, "structure.attach_directly.service", "services",
                              "Le service " + code + " n'existe pas ou n'est pas actif.");
              }
            }
            const auto member = state.members.find(c.user_id);
            const Member* before = member == state.members.end() ? nullptr : &member->second;
            if (before != nullptr && before->role == Role::gp) {
              return reject(errc::wrong_status, "structure.attach_directly.gp", "user_id",
                            "Cet utilisateur est le gestionnaire principal de la structure.");
            }
            auto role = new_role(me, before, c.role, rule);
            if (!role) return fail(role);
            auto services = merged(before, c.services);
            // The same attachment again would only repeat a row of the structure's history.
            if (before != nullptr && before->role == *role && before->services == services &&
                before->start_date == c.start_date) {
              return reject(errc::wrong_status, "structure.attach_directly.unchanged", "user_id",
                            "Cet utilisateur est déjà rattaché avec ce rôle, ces services et "
                            "cette date.");
            }
            return one(events::UserAttached{id, c.user_id, to_string(*role), std::move(services),
                                            c.start_date, c.comment, true});
          },
          [&](const RemoveAttachment& c) -> Events {
            if (auto ok = allowed({}); !ok) return fail(ok);
            if (!state.members.contains(c.user_id)) {
              return reject(errc::not_found, "structure.remove_attachment.not_found", "user_id",
                            "Cet utilisateur n'est pas rattaché à la structure.");
            }
            if (c.user_id == state.gp) {
              return reject(errc::wrong_status, "structure.remove_attachment.gp", "user_id",
                            "Le gestionnaire principal ne peut pas être supprimé : transférez "
                            "d'abord son rôle.");
            }
            return one(events::AttachmentRemoved{id, c.user_id});
          },
          [&](const TransferMainManager& c) -> Events {
            if (auto ok = allowed({}); !ok) return fail(ok);
            if (c.new_gp_user_id == state.gp && !state.gp.empty()) {
              return reject(errc::invalid_field, "structure.transfer.same", "new_gp_user_id",
                            "Cet utilisateur est déjà le gestionnaire principal.");
            }
            if (auto ok =
                    check_new_gp(state, c.new_gp_user_id, context.account, "structure.transfer");
                !ok) {
              return fail(ok);
            }
            // Support acts on the structure's behalf when its GP left (seed 000).
            const bool by_support = me.member != RoleScope::gp;
            return one(events::MainManagerTransferred{id, state.gp, c.new_gp_user_id, by_support});
          },
          [&](const ResetTechnicalPassword& c) -> Events {
            if (auto ok = allowed({}); !ok) return fail(ok);
            if (!state.members.contains(c.user_id) || !context.account.technical) {
              return reject(errc::not_found, "structure.reset_technical_password.not_found",
                            "user_id", "Aucun utilisateur technique rattaché à cette structure.");
            }
            return one(events::PasswordResetRecorded{id, c.user_id});
          },
          [&](const EnableEspace& c) -> Events {
            constexpr std::string_view rule = "structure.enable_espace";
            if (auto ok = allowed(as_services(c.service)); !ok) return fail(ok);
            if (auto ok = check_text(c.espace, "espace", kCodeMax, true, "Espace", rule); !ok) {
              return fail(ok);
            }
            if (!c.service.empty() && find_service(state, c.service) == nullptr) {
              return reject(errc::invalid_field, "structure.enable_espace.service", "service",
                            "Service introuvable.");
            }
            if (!c.read && !c.write) {
              return reject(errc::invalid_field, "structure.enable_espace.rights", "read",
                            "Cochez « Consultation » ou « Modification ».");
            }
            return one(events::EspaceEnabled{id, c.espace, c.service, c.read || c.write, c.write});
          },
          [&](const RequestSubscription& c) -> Events {
            constexpr std::string_view rule = "structure.request_subscription";
            if (auto ok = allowed({}); !ok) return fail(ok);
            if (!context.account.active) {
              return reject(errc::forbidden, "structure.request_subscription.inactive_account", "",
                            "Votre compte doit être activé.");
            }
            for (auto check :
                 {check_text(c.request_id, "request_id", kIdMax, true, "Demande", rule),
                  check_text(c.espace, "espace", kCodeMax, true, "Espace", rule),
                  check_text(c.comment, "comment", kTextMax, false, "Commentaire", rule)}) {
              if (!check) return fail(check);
            }
            if (state.used_request_ids.contains(c.request_id)) {
              return reject(errc::invalid_field, "structure.request_subscription.request_id",
                            "request_id", "Cet identifiant de demande a déjà servi.");
            }
            if (!c.read && !c.write) {
              return reject(errc::invalid_field, "structure.request_subscription.rights", "read",
                            "Cochez « Consultation » ou « Modification ».");
            }
            // The table admits members only; a scoped member asks for their own services.
            const auto member = state.members.find(caller.user_id);
            if (member == state.members.end() || (!member->second.services.empty() &&
                                                  !contains(member->second.services, c.service))) {
              return reject(errc::forbidden, "structure.request_subscription.scope", "service",
                            "Vous n'êtes rattaché qu'à certains services de la structure.");
            }
            if (!c.service.empty()) {
              if (!service_active(state, c.service, context.today)) {
                return reject(errc::invalid_field, "structure.request_subscription.service",
                              "service",
                              "Le service " + c.service + " n'existe pas ou n'est pas actif.");
              }
            }
            const Espace opened = opened_rights(state, c.espace, c.service);
            if (!opened.read && !opened.write) {
              return reject(errc::invalid_field, "structure.request_subscription.espace", "espace",
                            "Cet espace n'est pas ouvert sur la structure ou le service.");
            }
            if (c.write && !opened.write) {
              return reject(errc::invalid_field, "structure.request_subscription.rights", "write",
                            "Cet espace n'est ouvert qu'en consultation.");
            }
            return one(events::SubscriptionRequested{id, c.request_id, caller.user_id, c.espace,
                                                     c.service, c.read || c.write, c.write,
                                                     c.comment});
          },
          [&](const ValidateSubscription& c) -> Events {
            auto it = state.subscription_requests.find(c.request_id);
            if (it == state.subscription_requests.end()) {
              return reject(errc::not_found, "structure.decide_subscription.not_found",
                            "request_id", "Demande introuvable.");
            }
            const SubscriptionRequest& r = it->second;
            if (auto ok = decidable(r.service); !ok) return fail(ok);
            if (!c.read && !c.write) {
              return reject(errc::invalid_field, "structure.validate_subscription.rights", "read",
                            "Cochez « Consultation » ou « Modification », ou refusez la demande.");
            }
            // Rights go to members, within their services: one removed, or narrowed to other
            // services, since asking gets none (the request stays for a refusal).
            const auto member = state.members.find(r.user_id);
            if (member == state.members.end() || (!member->second.services.empty() &&
                                                  !contains(member->second.services, r.service))) {
              return reject(errc::wrong_status, "structure.validate_subscription.not_member",
                            "request_id",
                            "Le demandeur n'est plus rattaché à la structure ou à ce service : "
                            "refusez la demande.");
            }
            if (context.deactivated_requesters.contains(r.user_id)) {
              return reject(errc::wrong_status,
                            "structure.validate_subscription.account_deactivated", "request_id",
                            "Le compte du demandeur est désactivé : refusez la demande.");
            }
            if (!r.service.empty()) {
              if (!service_active(state, r.service, context.today)) {
                return reject(
                    errc::wrong_status, "structure.validate_subscription.service", "request_id",
                    "Le service " + r.service + " n'est plus actif : refusez la demande.");
              }
            }
            // No more than the espace is opened with, as it is now (it may have changed).
            const Espace opened = opened_rights(state, r.espace, r.service);
            if (!opened.read && !opened.write) {
              return reject(errc::wrong_status, "structure.validate_subscription.espace",
                            "request_id",
                            "Cet espace n'est plus ouvert sur la structure ou le service : "
                            "refusez la demande.");
            }
            if (c.write && !opened.write) {
              return reject(errc::invalid_field, "structure.validate_subscription.rights", "write",
                            "Cet espace n'est ouvert qu'en consultation.");
            }
            if (auto ok = check_text(c.comment, "comment", kTextMax, false, "Commentaire",
                                     "structure.validate_subscription");
                !ok) {
              return fail(ok);
            }
            return one(events::SubscriptionValidated{id, c.request_id, r.user_id, r.espace,
                                                     r.service, c.read || c.write, c.write,
                                                     c.comment});
          },
          [&](const RefuseSubscription& c) -> Events {
            auto it = state.subscription_requests.find(c.request_id);
            if (it == state.subscription_requests.end()) {
              return reject(errc::not_found, "structure.decide_subscription.not_found",
                            "request_id", "Demande introuvable.");
            }
            if (auto ok = decidable(it->second.service); !ok) return fail(ok);
            if (auto ok = check_text(c.reason, "reason", kTextMax, true, "Motif du refus",
                                     "structure.refuse_subscription");
                !ok) {
              return fail(ok);
            }
            return one(events::SubscriptionRefused{id, c.request_id, it->second.user_id, c.reason});
          },
      },
      command);
}

std::vector<events::Payload> closing_refusals(const State& state, const std::string& reason) {
  std::vector<events::Payload> out;
  for (const auto& [rid, r] : state.attachment_requests) {
    out.push_back(events::AttachmentRefused{state.structure_id, rid, r.user_id, reason});
  }
  for (const auto& [rid, r] : state.subscription_requests) {
    out.push_back(events::SubscriptionRefused{state.structure_id, rid, r.user_id, reason});
  }
  return out;
}

BulkOutcome decide_each(const State& state, const std::vector<Command>& commands,
                        const Caller& caller, const Context& context) {
  BulkOutcome out;
  State current = state;
  for (const Command& command : commands) {
    auto decided = decide(current, command, caller, context);
    if (!decided) {
      out.results.emplace_back(decided.error());
      continue;
    }
    for (auto& p : *decided) {
      current = evolve(std::move(current), p);
      out.payloads.push_back(std::move(p));
    }
    out.results.emplace_back(std::nullopt);
  }
  return out;
}

State evolve(State state, const events::Payload& payload) {
  ++state.version;
  if (!std::holds_alternative<events::AttachmentRefused>(payload) &&
      !std::holds_alternative<events::SubscriptionRefused>(payload)) {
    state.closing_on_deactivation = false;  // set again below by a StructureDeactivated
  }
  auto service_of = [](const auto& e) {
    return Service{e.code, e.label, e.description, e.valid_from, e.valid_to, e.commitment_required};
  };
  std::visit(
      Overloaded{
          [&](const events::StructureCreated& e) {
            state.status = Status::active;
            state.structure_id = e.structure_id;
            state.identifier_type = e.identifier_type;
            state.identifier_value = e.identifier_value;
            state.is_public = e.is_public;
            state.is_state = e.is_state;
            state.pigp_managed = e.pigp_managed;
            state.created_on = e.created_on;
            state.origin_structure_id = e.origin_structure_id;
            state.data = e.data;
            state.services = {
                Service{std::string(kPublicInvoices), std::string(events::kPublicInvoicesLabel),
                        std::string(events::kPublicInvoicesDescription), e.created_on, "", false}};
          },
          [&](const events::StructureDataChanged& e) { state.data = e.data; },
          [&](const events::StructureDeactivated& e) {
            state.status = Status::inactive;
            state.closing_on_deactivation = true;
            state.successor_structure_id = e.successor_structure_id;
          },
          [&](const events::ServiceAdded& e) { state.services.push_back(service_of(e)); },
          [&](const events::ServiceChanged& e) {
            auto it = std::ranges::find(state.services, e.code, &Service::code);
            if (it != state.services.end()) *it = service_of(e);
          },
          [&](const events::ServiceRemoved& e) {
            std::erase_if(state.services, [&](const Service& s) { return s.code == e.code; });
          },
          [&](const events::AttachmentRequested& e) {
            state.attachment_requests[e.request_id] =
                AttachmentRequest{e.user_id, e.service, e.comment};
            state.used_request_ids.insert(e.request_id);
          },
          [&](const events::AttachmentValidated& e) {
            state.attachment_requests.erase(e.request_id);
            Member& m = state.members[e.user_id];
            m.role = role_from(e.role).value_or(Role::user);
            m.services = e.services;
          },
          [&](const events::AttachmentRefused& e) {
            state.attachment_requests.erase(e.request_id);
          },
          [&](const events::UserAttached& e) {
            Member& m = state.members[e.user_id];
            m.role = role_from(e.role).value_or(Role::user);
            m.services = e.services;
            m.start_date = e.start_date;
          },
          [&](const events::AttachmentRemoved& e) { state.members.erase(e.user_id); },
          [&](const events::MainManagerTransferred& e) {
            if (auto it = state.members.find(e.from_user_id); it != state.members.end()) {
              it->second.role = Role::user;  // stays attached, as a simple user
              it->second.services.clear();
            }
            Member& m = state.members[e.to_user_id];
            m.role = Role::gp;
            m.services.clear();
            state.gp = e.to_user_id;
          },
          [&](const events::EspaceEnabled& e) {
            auto it = std::ranges::find_if(state.espaces, [&](const Espace& x) {
              return x.espace == e.espace && x.service == e.service;
            });
            if (it == state.espaces.end()) {
              state.espaces.push_back(Espace{e.espace, e.service, e.read, e.write});
            } else {
              it->read = e.read;
              it->write = e.write;
            }
          },
          [&](const events::SubscriptionRequested& e) {
            state.subscription_requests[e.request_id] =
                SubscriptionRequest{e.user_id, e.espace, e.service, e.read, e.write, e.comment};
            state.used_request_ids.insert(e.request_id);
          },
          [&](const events::SubscriptionValidated& e) {
            state.subscription_requests.erase(e.request_id);
            state.subscriptions.push_back(
                SubscriptionRequest{e.user_id, e.espace, e.service, e.read, e.write, e.comment});
          },
          [&](const events::SubscriptionRefused& e) {
            state.subscription_requests.erase(e.request_id);
          },
          // Recorded for the history; changes no right.
          [&](const events::PasswordResetRecorded&) {},
          // Events of other aggregates (tickets, accounts) never reach a structure stream.
          [&](const auto&) {},
      },
      payload);
  return state;
}

}  // namespace chorus::domain::structure
