#pragma once
// Commands that touch several streams, decided by the aggregates they touch and returned as
// one set of appends: the command side writes a set in a single log batch (EventLog::append
// takes several streams, all or nothing), each stream at the version of the state it decided
// on. Pure, no I/O. DOMAIN.md "Structures" (SIRET change), "User accounts" (deactivating a
// GP), "Main-manager transfer" (PIGP imports); seed 000 for the import incident.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "domain/account.h"
#include "domain/caller.h"
#include "domain/errc.h"
#include "domain/structure.h"
#include "events/event.h"

namespace chorus::domain::workflow {

// The events for one stream, to append at `expected_version` (the version decided on).
struct StreamDecision {
  std::string stream_id;
  std::uint64_t expected_version = 0;
  std::vector<events::Payload> payloads;
};
// Appended together or not at all.
using Appends = std::vector<StreamDecision>;

// "Modifier l'identifiant": the structure is duplicated under the new identifier and the old
// one deactivated. Every datum is copied except the billing mandate, technical user accounts,
// PACAGE number, social regime and intra-EU VAT number (connection settings are not modelled
// yet); pending requests and granted subscriptions are not copied (users ask again).
struct ChangeIdentifier {
  std::string new_structure_id;  // chosen by the command side
  std::string identifier_type = "SIRET";
  std::string identifier_value;
  std::string today;  // YYYY-MM-DD: the duplicate's creation date
};
struct IdentifierContext {
  bool identifier_taken = false;
  std::set<std::string> technical_users;  // attached technical accounts, not copied
};
// Success: appends for the new stream (created, from version 0) and the old one (deactivated).
// Failure: the rejection, nothing to write. Pure, thread-safe.
[[nodiscard]] Decision<Appends> change_identifier(const structure::State& old_structure,
                                                  const ChangeIdentifier& command,
                                                  const Caller& caller,
                                                  const IdentifierContext& context);

// Adds to `appends` the reservation of the identifier of every structure created in it (one
// IdentifierReserved per StructureCreated, at expected version 0 of
// structure::identifier_stream_id): written in the same batch, a second structure taking the
// same identifier conflicts instead of passing. Pure, thread-safe.
void reserve_identifiers(Appends& appends);

// The accounts whose GP role `appends` change: the former and the new GP of every
// MainManagerTransferred in them (a first GP has no former one). Pure, thread-safe.
[[nodiscard]] std::set<std::string> main_manager_accounts(const Appends& appends);

// Mirrors every GP change of `appends` on the accounts' own streams: a MainManagerRoleChanged
// per side of each MainManagerTransferred (lost, then gained), so that an account's stream
// knows what it manages and a transfer to an account conflicts with that account's
// deactivation decided at the same instant. Appended after the account's events when
// `appends` already writes its stream, else as a new StreamDecision at
// `account_versions[user_id]`: the version of the account the decision read (the new GP's,
// found active), so that a change of the account since conflicts. Every account of
// main_manager_accounts() not written by `appends` must be in `account_versions` (checked in
// debug builds; one missing is written at version 0, which conflicts with its existing stream).
// Pure, thread-safe.
void record_main_manager_roles(Appends& appends,
                               const std::map<std::string, std::uint64_t>& account_versions);

// A structure the account holder manages as GP, with what is known of the new GP named for it.
struct Managed {
  const structure::State* structure = nullptr;
  structure::AccountFacts new_gp;
};
// "Désactiver mon compte" (or support on the holder's behalf): the deactivation and one GP
// transfer per managed structure, one atomic append. Failure: the first rejection, from the
// account or from a structure (its rule names which). Pure, thread-safe.
[[nodiscard]] Decision<Appends> deactivate_account(const account::State& holder,
                                                   const account::Deactivate& command,
                                                   const Caller& caller,
                                                   const std::vector<Managed>& managed);

// A PIGP import batch (FAR1002): accounts deactivated and GP replacements named by the PIGP.
struct PigpImport {
  std::int64_t now_us = 0;
  std::vector<std::string> deactivate_user_ids;
  std::vector<account::Replacement> replacements;
};
// What the batch touches, loaded by the command side: the accounts named (deactivated or
// replacements) and every active structure whose GP is deactivated or for which a replacement
// is named.
struct ImportInputs {
  std::map<std::string, account::State> accounts;
  std::map<std::string, structure::State> structures;
};
// One line of the import report: which structure (or account) was not applied, and why.
struct ReportLine {
  std::string structure_id;  // empty for a line about an account only
  std::string user_id;
  Rejection reason;
};
struct ImportOutcome {
  std::vector<Appends> units;  // each applied atomically, independently of the others
  std::vector<ReportLine> report;
};
// Applies the batch per structure: a structure that would be left without a GP (no
// replacement, several for it, or one the transfer rules refuse) gets a report line and no
// event, and the
// account of its GP stays active (a report line says so); everything else goes through. A
// deactivation and the transfers it needs form one unit. `importer` acts as support (the
// transfers are recorded by_support). Pure, thread-safe.
[[nodiscard]] ImportOutcome pigp_import(const PigpImport& batch, const Caller& importer,
                                        const ImportInputs& inputs);

}  // namespace chorus::domain::workflow
