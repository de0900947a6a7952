#pragma once
// Builders of events for tests of events/ and of what reads the log.

#include <random>
#include <string>

#include "events/event_log.h"

namespace chorus::events::testing {

inline EventId random_event_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  EventId id;
  for (auto& b : id) b = static_cast<std::uint8_t>(rng());
  return id;
}

// A draft-saved event whose description has `payload_bytes` characters.
inline NewEvent draft_event(const std::string& ticket_id, std::size_t payload_bytes = 40) {
  NewEvent e;
  e.meta.event_id = random_event_id();
  e.meta.occurred_at_us = 1'700'000'000'000'000;
  e.meta.actor = Actor{"user-1", "emitter", ""};
  e.meta.correlation_id = "corr-1";
  e.meta.causation_id = "cmd-1";
  e.payload = TicketDraftSaved{ticket_id,
                               "user-1",
                               "structure-1",
                               "Technique",
                               "Connexion",
                               "Titre",
                               std::string(payload_bytes, 'x')};
  return e;
}

inline StreamAppend append_to(const std::string& stream, std::uint64_t expected,
                              std::size_t count = 1, std::size_t payload_bytes = 40) {
  StreamAppend s{stream, expected, {}};
  for (std::size_t i = 0; i < count; ++i) s.events.push_back(draft_event(stream, payload_bytes));
  return s;
}

}  // namespace chorus::events::testing
