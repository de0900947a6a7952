#pragma once
// The invariants of DOMAIN.md as pure checks on folded states, for whoever must prove them over
// a history: the replay tool's verify, and tests. Each returns nullopt when the invariant
// holds, or a sentence saying how it is broken. Invariant 3 (tickets) is
// domain::ticket::transition(); invariant 5 (reading scope) is not a property of the log.

#include <optional>
#include <string>

#include "domain/structure.h"
#include "events/event.h"

namespace chorus::domain::invariants {

// Invariant 1: an active structure that has had a GP has exactly one, who covers the whole
// structure. `had_gp`: whether a GP was ever named. Pure, thread-safe.
[[nodiscard]] std::optional<std::string> one_main_manager(const structure::State& state,
                                                          bool had_gp);

// Invariant 1, with DOMAIN.md "User accounts" (a GP leaves only by naming a new GP): the GP of
// an active structure holds an account that is not deactivated. `gp_deactivated`: whether the
// account of state.gp is deactivated. Pure, thread-safe.
[[nodiscard]] std::optional<std::string> main_manager_account_active(const structure::State& state,
                                                                     bool gp_deactivated);

// Invariant 2: service codes are unique and FACTURES_PUBLIQUES comes first, unchanged since
// `as_created` (the structure's FACTURES_PUBLIQUES as its creation made it). Pure,
// thread-safe.
[[nodiscard]] std::optional<std::string> services_sound(const structure::State& state,
                                                        const structure::Service& as_created);

// Invariant 4: when `payload` is a decision on a request (attachment or subscription validated
// or refused), it refers to a request pending in `before` and `actor` was entitled to decide it
// on `before`, by the permission table (domain/access.h), or is a refusal closing it on a
// structure just deactivated by one entitled to that; a subscription validated grants to a
// member of `before`, within their services. nullopt for any other payload. Pure,
// thread-safe.
[[nodiscard]] std::optional<std::string> decision_entitled(const structure::State& before,
                                                           const events::Payload& payload,
                                                           const events::Actor& actor);

}  // namespace chorus::domain::invariants
