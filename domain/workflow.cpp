#include "domain/workflow.h"

#include <algorithm>
#include <cassert>
#include <iterator>

namespace chorus::domain::workflow {
namespace {

structure::AccountFacts facts(const ImportInputs& inputs, const std::string& user_id,
                              const std::set<std::string>& leaving) {
  auto it = inputs.accounts.find(user_id);
  if (it == inputs.accounts.end()) return {};
  structure::AccountFacts f = account::facts_of(it->second);
  // A replacement the same batch deactivates would leave the structure without a GP at once.
  if (leaving.contains(user_id)) f.active = false;
  return f;
}

}  // namespace

Decision<Appends> change_identifier(const structure::State& old, const ChangeIdentifier& c,
                                    const Caller& caller, const IdentifierContext& context) {
  using structure::Status;
  if (old.status == Status::none) {
    return reject(errc::not_found, "structure.change_identifier.not_found", "structure_id",
                  "Structure introuvable.");
  }
  if (old.status != Status::active) {
    return reject(errc::wrong_status, "structure.change_identifier.inactive", "status",
                  "Cette structure est désactivée.");
  }
  if (!access::may(structure::access_of(old, caller), access::Action::change_identifier, {})) {
    return reject(errc::forbidden, "structure.change_identifier.forbidden", "",
                  "Seul un gestionnaire de la structure modifie son identifiant.");
  }
  if (c.new_structure_id.empty() || c.new_structure_id == old.structure_id) {
    return reject(errc::invalid_field, "structure.change_identifier.new_structure_id",
                  "new_structure_id", "Identifiant de la nouvelle structure manquant.");
  }
  if (!structure::is_identifier_type(c.identifier_type)) {
    return reject(errc::invalid_field, "structure.change_identifier.identifier_type",
                  "identifier_type",
                  "Le type d'identifiant s'écrit en majuscules, chiffres et « _ » (SIRET, ...).");
  }
  if (c.identifier_type == "SIRET" ? !structure::is_siret(c.identifier_value)
                                   : c.identifier_value.empty()) {
    return reject(errc::invalid_field, "structure.change_identifier.identifier", "identifier_value",
                  "L'identifiant n'est pas valide (un SIRET compte 14 chiffres et respecte la "
                  "clé de Luhn).");
  }
  if (context.identifier_taken ||
      (c.identifier_type == old.identifier_type && c.identifier_value == old.identifier_value)) {
    return reject(errc::invalid_field, "structure.change_identifier.identifier_taken",
                  "identifier_value", "Une structure porte déjà cet identifiant.");
  }
  if (!structure::is_date(c.today)) {
    return reject(errc::invalid_field, "structure.change_identifier.today", "today",
                  "Date du jour manquante.");
  }
  const std::string& id = c.new_structure_id;
  events::StructureData data = old.data;
  // "Toutes les données sont reprises excepté le mandat de facturation, le compte utilisateur
  // technique, le numéro PACAGE, le régime social, le numéro de TVA intracommunautaire et les
  // informations de raccordement."
  data.billing_mandate = false;
  data.pacage_number.clear();
  data.social_regime.clear();
  data.vat_number.clear();
  StreamDecision created{structure::stream_id(id), 0, {}};
  created.payloads.push_back(events::StructureCreated{id, c.identifier_type, c.identifier_value,
                                                      old.is_public, old.is_state, old.pigp_managed,
                                                      c.today, old.structure_id, data});
  for (const auto& s : old.services) {
    if (s.code == structure::kPublicInvoices) continue;  // created with the structure
    created.payloads.push_back(events::ServiceAdded{
        id, s.code, s.label, s.description, s.valid_from, s.valid_to, s.commitment_required});
  }
  for (const auto& e : old.espaces) {
    created.payloads.push_back(events::EspaceEnabled{id, e.espace, e.service, e.read, e.write});
  }
  if (!old.gp.empty()) {
    created.payloads.push_back(events::MainManagerTransferred{id, "", old.gp, false});
  }
  for (const auto& [user_id, m] : old.members) {
    if (user_id == old.gp || context.technical_users.contains(user_id)) continue;
    created.payloads.push_back(events::UserAttached{id, user_id, structure::to_string(m.role),
                                                    m.services, m.start_date, "", false});
  }
  StreamDecision deactivated{structure::stream_id(old.structure_id), old.version, {}};
  deactivated.payloads.push_back(
      events::StructureDeactivated{old.structure_id, id, "Changement d'identifiant"});
  // Requests wait on the structure that asked, not on its successor: each requester is told to
  // ask the new one.
  for (auto& p : structure::closing_refusals(
           old, "Changement d'identifiant : la structure est remplacée par " + id +
                    ", où renouveler la demande.")) {
    deactivated.payloads.push_back(std::move(p));
  }
  return Appends{std::move(created), std::move(deactivated)};
}

void reserve_identifiers(Appends& appends) {
  Appends reservations;
  for (const auto& decision : appends) {
    for (const auto& payload : decision.payloads) {
      if (const auto* e = std::get_if<events::StructureCreated>(&payload)) {
        reservations.push_back(
            StreamDecision{structure::identifier_stream_id(e->identifier_type, e->identifier_value),
                           0,
                           {events::IdentifierReserved{e->identifier_type, e->identifier_value,
                                                       e->structure_id}}});
      }
    }
  }
  std::ranges::move(reservations, std::back_inserter(appends));
}

std::set<std::string> main_manager_accounts(const Appends& appends) {
  std::set<std::string> users;
  for (const auto& decision : appends) {
    for (const auto& payload : decision.payloads) {
      if (const auto* e = std::get_if<events::MainManagerTransferred>(&payload)) {
        if (!e->from_user_id.empty()) users.insert(e->from_user_id);
        users.insert(e->to_user_id);
      }
    }
  }
  return users;
}

void record_main_manager_roles(Appends& appends,
                               const std::map<std::string, std::uint64_t>& account_versions) {
  std::vector<events::MainManagerRoleChanged> changes;
  for (const auto& decision : appends) {
    for (const auto& payload : decision.payloads) {
      if (const auto* e = std::get_if<events::MainManagerTransferred>(&payload)) {
        if (!e->from_user_id.empty()) {
          changes.push_back({e->from_user_id, e->structure_id, false});
        }
        changes.push_back({e->to_user_id, e->structure_id, true});
      }
    }
  }
  for (auto& change : changes) {
    const std::string stream = account::stream_id(change.user_id);
    auto written = std::ranges::find(appends, stream, &StreamDecision::stream_id);
    if (written == appends.end()) {
      const auto version = account_versions.find(change.user_id);
      assert(version != account_versions.end());
      appends.push_back(
          StreamDecision{stream, version == account_versions.end() ? 0 : version->second, {}});
      written = std::prev(appends.end());
    }
    written->payloads.emplace_back(std::move(change));
  }
}

Decision<Appends> deactivate_account(const account::State& holder,
                                     const account::Deactivate& command, const Caller& caller,
                                     const std::vector<Managed>& managed) {
  account::Context context;
  for (const auto& m : managed) context.managed_structures.push_back(m.structure->structure_id);
  auto decided = account::decide(holder, command, caller, context);
  if (!decided) return std::unexpected(decided.error());
  Appends out{
      StreamDecision{account::stream_id(holder.user_id), holder.version, std::move(*decided)}};
  for (const auto& m : managed) {
    auto r = std::ranges::find(command.replacements, m.structure->structure_id,
                               &account::Replacement::structure_id);
    structure::Context sc;
    sc.account = m.new_gp;
    auto transfer = structure::decide(
        *m.structure, structure::TransferMainManager{r->new_gp_user_id}, caller, sc);
    if (!transfer) {
      Rejection why = transfer.error();
      why.message = "Structure " + m.structure->structure_id + " : " + why.message;
      return std::unexpected(std::move(why));
    }
    out.push_back(StreamDecision{structure::stream_id(m.structure->structure_id),
                                 m.structure->version, std::move(*transfer)});
  }
  return out;
}

ImportOutcome pigp_import(const PigpImport& batch, const Caller& importer,
                          const ImportInputs& inputs) {
  ImportOutcome out;
  const std::set<std::string> leaving(batch.deactivate_user_ids.begin(),
                                      batch.deactivate_user_ids.end());
  std::set<std::string> handled;  // structures whose replacement was used by a deactivation
  // The replacement lines of each structure (a file of 10,000 lines is not searched per line).
  std::map<std::string_view, std::vector<const account::Replacement*>> named;
  for (const auto& r : batch.replacements) named[r.structure_id].push_back(&r);
  // A transfer for one structure, or the report line saying why it cannot be made.
  auto transfer = [&](const structure::State& s,
                      const std::string& leaving_gp) -> std::optional<StreamDecision> {
    const auto lines = named.find(s.structure_id);
    if (lines != named.end() && lines->second.size() > 1) {
      // Which line the file meant is not for the import to guess.
      out.report.push_back(
          ReportLine{s.structure_id, leaving_gp,
                     Rejection{errc::invalid_field, "pigp_import.replacement_twice", "replacements",
                               "Structure " + s.structure_id +
                                   " : plusieurs remplaçants désignés ; aucun n'est appliqué."}});
      return std::nullopt;
    }
    if (lines == named.end()) {
      out.report.push_back(ReportLine{
          s.structure_id, leaving_gp,
          Rejection{errc::invalid_field, "pigp_import.replacement_missing", "replacements",
                    "Structure " + s.structure_id + " : son gestionnaire principal " + leaving_gp +
                        " est désactivé sans remplaçant ; la structure resterait sans "
                        "gestionnaire principal."}});
      return std::nullopt;
    }
    const account::Replacement* r = lines->second.front();
    structure::Context sc;
    sc.account = facts(inputs, r->new_gp_user_id, leaving);
    auto decided =
        structure::decide(s, structure::TransferMainManager{r->new_gp_user_id}, importer, sc);
    if (!decided) {
      Rejection why = decided.error();
      why.message = "Structure " + s.structure_id + " : " + why.message;
      out.report.push_back(ReportLine{s.structure_id, r->new_gp_user_id, std::move(why)});
      return std::nullopt;
    }
    return StreamDecision{structure::stream_id(s.structure_id), s.version, std::move(*decided)};
  };

  for (const auto& user_id : leaving) {
    auto holder = inputs.accounts.find(user_id);
    if (holder == inputs.accounts.end()) {
      out.report.push_back(ReportLine{"", user_id,
                                      Rejection{errc::not_found, "pigp_import.unknown_account",
                                                "user_id", "Compte " + user_id + " introuvable."}});
      continue;
    }
    std::vector<std::string> managed;
    std::vector<StreamDecision> transfers;
    bool complete = true;
    for (const auto& [sid, s] : inputs.structures) {
      if (s.status != structure::Status::active || s.gp != user_id) continue;
      managed.push_back(sid);
      handled.insert(sid);
      if (auto t = transfer(s, user_id)) {
        transfers.push_back(std::move(*t));
      } else {
        complete = false;
      }
    }
    if (!complete) {
      // Never half-applied: the account stays active while a structure still needs it as GP;
      // the structures whose replacement is valid change GP all the same.
      out.report.push_back(
          ReportLine{"", user_id,
                     Rejection{errc::wrong_status, "pigp_import.deactivation_held", "user_id",
                               "Compte " + user_id +
                                   " non désactivé : une structure qu'il gère resterait "
                                   "sans gestionnaire principal."}});
      for (auto& t : transfers) out.units.push_back(Appends{std::move(t)});
      continue;
    }
    account::Deactivate command{batch.now_us, {}};
    for (const auto& sid : managed) {
      command.replacements.push_back(*named.at(sid).front());
    }
    account::Context ac;
    ac.managed_structures = managed;
    auto decided = account::decide(holder->second, command, importer, ac);
    if (!decided) {
      out.report.push_back(ReportLine{"", user_id, decided.error()});
      for (auto& t : transfers) out.units.push_back(Appends{std::move(t)});
      continue;
    }
    Appends unit{
        StreamDecision{account::stream_id(user_id), holder->second.version, std::move(*decided)}};
    for (auto& t : transfers) unit.push_back(std::move(t));
    out.units.push_back(std::move(unit));
  }
  // Replacements named for structures whose GP stays: plain transfers.
  for (const auto& r : batch.replacements) {
    if (handled.contains(r.structure_id)) continue;
    auto s = inputs.structures.find(r.structure_id);
    if (s == inputs.structures.end()) {
      out.report.push_back(
          ReportLine{r.structure_id, r.new_gp_user_id,
                     Rejection{errc::not_found, "pigp_import.unknown_structure", "structure_id",
                               "Structure " + r.structure_id + " introuvable."}});
      continue;
    }
    handled.insert(r.structure_id);
    if (auto t = transfer(s->second, s->second.gp)) out.units.push_back(Appends{std::move(*t)});
  }
  return out;
}

}  // namespace chorus::domain::workflow
