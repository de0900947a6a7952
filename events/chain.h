#pragma once
// Hash-chain verification of a stream: what lets an auditor prove a history unaltered.

#include <span>

#include "events/errc.h"
#include "events/event_log.h"

namespace chorus::events {

// Checks that `events`, consecutive events of one stream in version order, form an intact
// chain: versions consecutive from the first one's, each stored hash matching its body, and
// each prev_hash equal to its predecessor's hash (`prev_hash` for the first; zeros when the
// first is version 1). Returns the hash of the last event (or `prev_hash` when empty).
// Fails with corruption naming the stream, the version and the address of the first bad event.
// Pure and thread-safe.
[[nodiscard]] Result<Hash> verify_chain(std::span<const RecordedEvent> events,
                                        const Hash& prev_hash = {});

}  // namespace chorus::events
