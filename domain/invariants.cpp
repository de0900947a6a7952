#include "domain/invariants.h"

#include <algorithm>
#include <set>

namespace chorus::domain::invariants {

std::optional<std::string> one_main_manager(const structure::State& state, bool had_gp) {
  if (state.status != structure::Status::active || !had_gp) return std::nullopt;
  int gps = 0;
  for (const auto& [user, member] : state.members) {
    if (member.role != structure::Role::gp) continue;
    ++gps;
    if (!member.services.empty()) return "its GP " + user + " covers services only";
  }
  if (gps == 0) return std::string("it has no GP");
  if (gps > 1) return std::to_string(gps) + " GPs";
  return std::nullopt;
}

std::optional<std::string> main_manager_account_active(const structure::State& state,
                                                       bool gp_deactivated) {
  if (state.status != structure::Status::active || state.gp.empty() || !gp_deactivated) {
    return std::nullopt;
  }
  return "its GP " + state.gp + " has a deactivated account";
}

std::optional<std::string> services_sound(const structure::State& state,
                                          const structure::Service& as_created) {
  if (state.status == structure::Status::none) return std::nullopt;
  if (state.services.empty() || state.services.front().code != structure::kPublicInvoices) {
    return std::string("FACTURES_PUBLIQUES is missing");
  }
  if (!(state.services.front() == as_created)) return std::string("FACTURES_PUBLIQUES changed");
  std::set<std::string_view> codes;
  for (const auto& s : state.services) {
    if (!codes.insert(s.code).second) return "service code " + s.code + " appears twice";
  }
  return std::nullopt;
}

std::optional<std::string> decision_entitled(const structure::State& before,
                                             const events::Payload& payload,
                                             const events::Actor& actor) {
  // The request decided and the action it takes, for the four decision events.
  std::string request_id, service;
  access::Action action = access::Action::decide_attachment;
  bool pending = false;
  auto attachment = [&](const std::string& id) {
    request_id = id;
    action = access::Action::decide_attachment;
    if (auto it = before.attachment_requests.find(id); it != before.attachment_requests.end()) {
      pending = true;
      service = it->second.service;
    }
  };
  auto subscription = [&](const std::string& id) {
    request_id = id;
    action = access::Action::decide_subscription;
    if (auto it = before.subscription_requests.find(id); it != before.subscription_requests.end()) {
      pending = true;
      service = it->second.service;
    }
  };
  if (const auto* e = std::get_if<events::AttachmentValidated>(&payload)) {
    attachment(e->request_id);
  } else if (const auto* e1 = std::get_if<events::AttachmentRefused>(&payload)) {
    attachment(e1->request_id);
  } else if (const auto* e2 = std::get_if<events::SubscriptionValidated>(&payload)) {
    subscription(e2->request_id);
  } else if (const auto* e3 = std::get_if<events::SubscriptionRefused>(&payload)) {
    subscription(e3->request_id);
  } else {
    return std::nullopt;
  }
  if (!pending) return "decides request " + request_id + ", which is not pending";
  Caller caller{actor.user_id, {}};
  caller.roles.support_level1 = actor.role == "support_n1";
  caller.roles.support_level2 = actor.role == "support_n2";
  caller.roles.auditor = actor.role == "auditor";
  const auto access = structure::access_of(before, caller);
  std::vector<std::string> concerned;
  if (!service.empty()) concerned.push_back(service);
  // A structure's deactivation (by support, or by its managers' SIRET change) closes what was
  // pending on it with refusals in the same append (structure::closing_refusals).
  const bool closing = before.closing_on_deactivation &&
                       (std::holds_alternative<events::AttachmentRefused>(payload) ||
                        std::holds_alternative<events::SubscriptionRefused>(payload)) &&
                       (access::may(access, access::Action::deactivate_structure, {}) ||
                        access::may(access, access::Action::change_identifier, {}));
  if (!closing && !access::may(access, action, concerned)) {
    return actor.user_id + " was not entitled to decide request " + request_id;
  }
  // A subscription grants rights to a member of the structure, within their services: one
  // removed (or narrowed) while the request waited gets nothing (DOMAIN.md "Espace
  // subscriptions", partitioning).
  if (const auto* v = std::get_if<events::SubscriptionValidated>(&payload)) {
    const auto member = before.members.find(v->user_id);
    if (member == before.members.end()) {
      return "request " + request_id + " granted an espace to " + v->user_id +
             ", who was not a member of the structure";
    }
    const auto& services = member->second.services;
    if (!services.empty() &&
        std::find(services.begin(), services.end(), v->service) == services.end()) {
      return "request " + request_id + " granted an espace on a service " + v->user_id +
             " was not attached to";
    }
  }
  return std::nullopt;
}

}  // namespace chorus::domain::invariants
