#pragma once
// The user account aggregate: "En cours d'activation" -> active -> deactivated, reactivable for
// 60 days. Its stream, "account-<user_id>", is the only one holding a login and names. Pure
// rules, no I/O, no clock: times come with the commands. DOMAIN.md "User accounts", seed 003.

#include <cstdint>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "domain/access.h"
#include "domain/caller.h"
#include "domain/errc.h"
#include "domain/structure.h"
#include "events/event.h"

namespace chorus::domain::account {

enum class Status {
  none,                // never created
  pending_activation,  // "En cours d'activation"
  active,
  deactivated,
};

// The status as the portal shows it. Pure, thread-safe, never fails.
[[nodiscard]] const char* to_string(Status status) noexcept;

inline constexpr std::int64_t kReactivationWindowUs = 60LL * 24 * 3600 * 1'000'000;
inline constexpr std::size_t kEmailMax = 254;
inline constexpr std::size_t kNameMax = 100;

// An account that does not exist yet has status none and its user_id set by the command side.
struct State {
  Status status = Status::none;
  std::uint64_t version = 0;
  std::string user_id;
  std::string login_email;
  std::string first_name;
  std::string last_name;
  std::string origin;  // "portal" or "pigp"
  bool technical = false;
  std::string technical_structure_id;  // events::AccountCreated::structure_id
  std::int64_t deactivated_at_us = 0;
  // The structures this account became GP of and has not handed over, by its own stream
  // (MainManagerRoleChanged); a structure deactivated since stays listed. Accounts that became
  // GP before the stream recorded it have none here: the command side adds the access view's.
  std::set<std::string> managed_structures;
};

// What the structure rules need to know about an account. Pure, thread-safe, never fails.
[[nodiscard]] structure::AccountFacts facts_of(const State& state) noexcept;

// Created on the portal (by the user, or by a GP for a technical account) or by the PIGP
// import (origin "pigp").
struct CreateAccount {
  std::string login_email;
  std::string first_name;
  std::string last_name;
  std::string origin = "portal";
  bool technical = false;
  std::string structure_id{};  // a technical account's structure, whose GP the caller is
};
// The holder follows the link of the activation e-mail.
struct Activate {};
// "Renvoyer un courriel d'activation", by a manager of a structure of the user, or support.
struct ResendActivation {};
// A GP names a new GP for each structure they manage, in the same command (the workflow
// deactivate_account appends the transfers with the deactivation).
struct Replacement {
  std::string structure_id;
  std::string new_gp_user_id;
};
struct Deactivate {
  std::int64_t now_us = 0;
  std::vector<Replacement> replacements;
};
struct Reactivate {
  std::int64_t now_us = 0;
};

using Command = std::variant<CreateAccount, Activate, ResendActivation, Deactivate, Reactivate>;

// What the command side knows that the rules need.
struct Context {
  bool from_pigp_import = false;  // CreateAccount with origin "pigp" comes only from the import
  bool caller_is_gp = false;      // CreateAccount of a technical account: the caller is a GP
  // ResendActivation: the caller's access on a structure the holder is attached to (or asks to
  // be), and the holder's services there (empty: the whole structure).
  access::Access caller_access;
  bool holder_on_structure = false;
  std::vector<std::string> holder_services;
  // Deactivate: the active structures whose GP the holder is (from the access view).
  std::vector<std::string> managed_structures;
};

// Decides `command` on `state` for `caller`. On success, the payloads to append to the account
// stream (never empty); on rejection, the rule and field. A caller who may not learn that the
// account exists (anyone but its holder, support, auditors and, for an activation e-mail, a
// manager who sees the holder among a structure's users) gets not_found on every command but
// CreateAccount, whatever the account's state. Deactivate checks that a new GP is
// named for exactly the managed structures; the transfers themselves are decided by the
// structures (workflow::deactivate_account composes both). Pure and thread-safe.
[[nodiscard]] Decision<std::vector<events::Payload>> decide(const State& state,
                                                            const Command& command,
                                                            const Caller& caller,
                                                            const Context& context);

// Folds one event of this account's stream into the state. Pure, thread-safe, never fails.
[[nodiscard]] State evolve(State state, const events::Payload& payload);

// "account-<user_id>": the stream of an account. Pure, thread-safe.
[[nodiscard]] std::string stream_id(const std::string& user_id);

// Whether `email` looks like a login e-mail: one '@', something on both sides, a dot in the
// domain, no space, at most kEmailMax bytes. Pure, thread-safe.
[[nodiscard]] bool is_email(std::string_view email) noexcept;

}  // namespace chorus::domain::account
