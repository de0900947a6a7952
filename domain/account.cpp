#include "domain/account.h"

#include <algorithm>

#include "domain/fields.h"

namespace chorus::domain::account {
namespace {

using events::Overloaded;

using Events = Decision<std::vector<events::Payload>>;
using fields::check_text;

bool is_support(const Caller& caller) {
  return caller.roles.support_level1 || caller.roles.support_level2;
}

}  // namespace

const char* to_string(Status status) noexcept {
  switch (status) {
    case Status::none:
      return "none";
    case Status::pending_activation:
      return "En cours d'activation";
    case Status::active:
      return "Actif";
    case Status::deactivated:
      return "Désactivé";
  }
  return "?";
}

structure::AccountFacts facts_of(const State& state) noexcept {
  return structure::AccountFacts{state.status != Status::none,
                                 state.status == Status::active,
                                 state.status == Status::deactivated,
                                 state.origin == "pigp",
                                 state.technical,
                                 state.technical_structure_id};
}

bool is_email(std::string_view email) noexcept {
  if (email.empty() || email.size() > kEmailMax) return false;
  if (email.find_first_of(" \t\r\n") != std::string_view::npos) return false;
  const auto at = email.find('@');
  if (at == 0 || at == std::string_view::npos || email.find('@', at + 1) != std::string_view::npos)
    return false;
  const auto domain = email.substr(at + 1);
  const auto dot = domain.find('.');
  return dot != std::string_view::npos && dot > 0 && dot + 1 < domain.size();
}

std::string stream_id(const std::string& user_id) { return "account-" + user_id; }

Decision<std::vector<events::Payload>> decide(const State& state, const Command& command,
                                              const Caller& caller, const Context& context) {
  auto one = [](events::Payload p) -> Events { return std::vector<events::Payload>{std::move(p)}; };
  const std::string& id = state.user_id;
  const bool holder = !caller.user_id.empty() && caller.user_id == id;
  auto status_is = [&](Status wanted, std::string_view rule,
                       std::string_view what) -> Decision<void> {
    if (state.status == Status::none) {
      return reject(errc::not_found, std::string(rule) + ".not_found", "user_id",
                    "Compte introuvable.");
    }
    if (state.status != wanted) {
      return reject(errc::wrong_status, std::string(rule) + ".status", "status",
                    std::string(what) + " (statut actuel : " + to_string(state.status) + ").");
    }
    return {};
  };
  // Whether the caller may learn that this account exists: its holder, support and auditors
  // (and, for an activation e-mail, a manager who sees the holder among a structure's users).
  // Anyone else is told "not found" before any check of the account's state, so that no answer
  // (403, 409) tells an existing account from an unknown one.
  auto hidden_from = [&](bool sees_holder, std::string_view rule) -> Decision<void> {
    if (holder || is_support(caller) || caller.roles.auditor || sees_holder) return {};
    return reject(errc::not_found, std::string(rule) + ".not_found", "user_id",
                  "Compte introuvable.");
  };
  return std::visit(
      Overloaded{
          [&](const CreateAccount& c) -> Events {
            constexpr std::string_view rule = "account.create";
            if (state.status != Status::none) {
              return reject(errc::wrong_status, "account.create.exists", "user_id",
                            "Ce compte existe déjà.");
            }
            if (c.origin != "portal" && c.origin != "pigp") {
              return reject(errc::invalid_field, "account.create.origin", "origin",
                            "L'origine d'un compte est le portail ou le PIGP.");
            }
            // "Seuls les correspondants dématérialisation ... sont habilités à créer ... un
            // compte utilisateur sur le PIGP": such accounts arrive by the import only.
            if (c.origin == "pigp" && !context.from_pigp_import) {
              return reject(errc::forbidden, "account.create.pigp", "origin",
                            "Les comptes PIGP sont créés par l'import du PIGP.");
            }
            if (c.technical && !context.caller_is_gp) {
              return reject(errc::forbidden, "account.create.technical", "technical",
                            "Seul un gestionnaire principal crée un utilisateur technique.");
            }
            if (caller.roles.auditor && !is_support(caller)) {
              return reject(errc::forbidden, "account.create.read_only", "",
                            "Un auditeur consulte sans modifier.");
            }
            if (!is_email(c.login_email)) {
              return reject(errc::invalid_field, "account.create.login_email", "login_email",
                            "L'adresse de connexion n'est pas une adresse électronique valide.");
            }
            for (auto check :
                 {check_text(c.first_name, "first_name", kNameMax, !c.technical, "Prénom", rule),
                  check_text(c.last_name, "last_name", kNameMax, true, "Nom", rule)}) {
              if (!check) return std::unexpected(check.error());
            }
            return one(events::AccountCreated{id, c.login_email, c.first_name, c.last_name,
                                              c.origin, c.technical,
                                              c.technical ? c.structure_id : std::string()});
          },
          [&](const Activate&) -> Events {
            if (auto ok = hidden_from(false, "account.activate"); !ok) {
              return std::unexpected(ok.error());
            }
            if (auto ok = status_is(Status::pending_activation, "account.activate",
                                    "Ce compte n'est pas en cours d'activation");
                !ok) {
              return std::unexpected(ok.error());
            }
            if (!holder) {
              return reject(errc::forbidden, "account.activate.holder_only", "",
                            "Seul le titulaire du compte l'active.");
            }
            return one(events::AccountActivated{id});
          },
          [&](const ResendActivation&) -> Events {
            // A manager who may see the holder in the structure's users list.
            const bool sees_holder =
                context.holder_on_structure &&
                access::may(context.caller_access, access::Action::view_requests,
                            context.holder_services);
            if (auto ok = hidden_from(sees_holder, "account.resend_activation"); !ok) {
              return std::unexpected(ok.error());
            }
            if (auto ok = status_is(Status::pending_activation, "account.resend_activation",
                                    "Ce compte n'est pas en cours d'activation");
                !ok) {
              return std::unexpected(ok.error());
            }
            const bool entitled =
                context.holder_on_structure &&
                access::may(context.caller_access, access::Action::resend_activation,
                            context.holder_services);
            if (!entitled && !(is_support(caller))) {
              return reject(errc::forbidden, "account.resend_activation.forbidden", "",
                            "Seul un gestionnaire d'une structure de l'utilisateur, ou le "
                            "support, renvoie le courriel d'activation.");
            }
            return one(events::ActivationResent{id});
          },
          [&](const Deactivate& c) -> Events {
            constexpr std::string_view rule = "account.deactivate";
            if (auto ok = hidden_from(false, rule); !ok) return std::unexpected(ok.error());
            if (state.status == Status::none) {
              return reject(errc::not_found, "account.deactivate.not_found", "user_id",
                            "Compte introuvable.");
            }
            if (state.status == Status::deactivated) {
              return reject(errc::wrong_status, "account.deactivate.status", "status",
                            "Ce compte est déjà désactivé.");
            }
            if (!holder && !is_support(caller)) {
              return reject(errc::forbidden, "account.deactivate.forbidden", "",
                            "Seul le titulaire du compte, ou le support, le désactive.");
            }
            // "Il doit désigner un nouveau gestionnaire principal ... pour toutes les
            // structures dont il est gestionnaire principal."
            for (const auto& s : context.managed_structures) {
              const auto named = std::ranges::count(c.replacements, s, &Replacement::structure_id);
              if (named != 1) {
                return reject(errc::invalid_field, std::string(rule) + ".replacement_missing",
                              "replacements",
                              "Désignez un nouveau gestionnaire principal, une seule fois, pour la "
                              "structure " +
                                  s + ".");
              }
            }
            for (const auto& r : c.replacements) {
              if (std::ranges::find(context.managed_structures, r.structure_id) ==
                  context.managed_structures.end()) {
                return reject(errc::invalid_field, std::string(rule) + ".replacement_unmanaged",
                              "replacements",
                              "Vous n'êtes pas gestionnaire principal de la structure " +
                                  r.structure_id + ".");
              }
              if (r.new_gp_user_id == id) {
                return reject(errc::invalid_field, std::string(rule) + ".replacement_self",
                              "replacements",
                              "Le nouveau gestionnaire principal est un autre "
                              "utilisateur.");
              }
            }
            return one(events::AccountDeactivated{id, c.now_us});
          },
          [&](const Reactivate& c) -> Events {
            if (auto ok = hidden_from(false, "account.reactivate"); !ok) {
              return std::unexpected(ok.error());
            }
            if (auto ok = status_is(Status::deactivated, "account.reactivate",
                                    "Ce compte n'est pas désactivé");
                !ok) {
              return std::unexpected(ok.error());
            }
            if (!holder) {
              return reject(errc::forbidden, "account.reactivate.holder_only", "",
                            "Seul le titulaire du compte le réactive.");
            }
            if (c.now_us - state.deactivated_at_us > kReactivationWindowUs) {
              return reject(errc::wrong_status, "account.reactivate.too_late", "status",
                            "Le délai de 60 jours pour réactiver ce compte est dépassé.");
            }
            return one(events::AccountReactivated{id});
          },
      },
      command);
}

State evolve(State state, const events::Payload& payload) {
  ++state.version;
  std::visit(Overloaded{
                 [&](const events::AccountCreated& e) {
                   state.status = Status::pending_activation;
                   state.user_id = e.user_id;
                   state.login_email = e.login_email;
                   state.first_name = e.first_name;
                   state.last_name = e.last_name;
                   state.origin = e.origin;
                   state.technical = e.technical;
                   state.technical_structure_id = e.structure_id;
                 },
                 [&](const events::AccountActivated&) { state.status = Status::active; },
                 [&](const events::ActivationResent&) {},
                 [&](const events::AccountDeactivated& e) {
                   state.status = Status::deactivated;
                   state.deactivated_at_us = e.at_us;
                 },
                 [&](const events::AccountReactivated&) { state.status = Status::active; },
                 [&](const events::MainManagerRoleChanged& e) {
                   if (e.held) {
                     state.managed_structures.insert(e.structure_id);
                   } else {
                     state.managed_structures.erase(e.structure_id);
                   }
                 },
                 // Events of other aggregates never reach an account stream.
                 [&](const auto&) {},
             },
             payload);
  return state;
}

}  // namespace chorus::domain::account
