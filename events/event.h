#pragma once
// Plain C++ forms of events: what the domain produces and what readers decode into.
// No FlatBuffers here: the stored layout lives in schema/event.fbs and codec.cpp only,
// so that code including this header compiles fast.

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace chorus::events {

using EventId = std::array<std::uint8_t, 16>;
using Hash = std::array<std::uint8_t, 32>;

struct Actor {
  std::string user_id;
  std::string role;          // the role the actor acted in ("emitter", "support_n1", ...)
  std::string on_behalf_of;  // empty unless support acts for someone
  bool operator==(const Actor&) const = default;
};

// --- Payloads: one struct per table of the `Payload` union in schema/event.fbs -------------

// "Brouillon": the emitter saved a draft.
struct TicketDraftSaved {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string ticket_id;
  std::string emitter_user_id;
  std::string emitting_structure_id;
  std::string category;
  std::string sub_category;
  std::string title;
  std::string description;
  bool operator==(const TicketDraftSaved&) const = default;
};

// "Ouvert": the emitter submitted the ticket ("Soumettre"), which got its number. Carries the
// form as submitted, whether or not a draft came first.
struct TicketSubmitted {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string ticket_id;
  std::string number;
  std::string emitter_user_id;
  std::string emitting_structure_id;
  std::string category;
  std::string sub_category;
  std::string title;
  std::string description;
  bool operator==(const TicketSubmitted&) const = default;
};

// Actions of the status table after submission; each names its ticket and, where the portal
// asks for one, the text the actor wrote.
#define CHORUS_TICKET_TEXT_EVENT(Name, field)          \
  struct Name {                                        \
    static constexpr std::uint16_t kSchemaVersion = 1; \
    std::string ticket_id;                             \
    std::string field;                                 \
    bool operator==(const Name&) const = default;      \
  };
CHORUS_TICKET_TEXT_EVENT(InformationRequested, text)  // "En attente d'informations"
CHORUS_TICKET_TEXT_EVENT(InformationProvided, text)   // back to "Ouvert"
CHORUS_TICKET_TEXT_EVENT(SolutionProposed, text)      // "Résolu"
CHORUS_TICKET_TEXT_EVENT(SolutionRefused, reason)     // back to "Ouvert"
CHORUS_TICKET_TEXT_EVENT(TicketClosed, reason)        // "Fermé", no longer needed
CHORUS_TICKET_TEXT_EVENT(CommentAdded, text)          // either side, until "Fermé"
#undef CHORUS_TICKET_TEXT_EVENT

// Support handling (service desk, seed 001): an agent takes the ticket ("En cours de
// traitement"), or another gets it; an empty agent means released.
struct TicketAssigned {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string ticket_id;
  std::string agent_user_id;
  bool operator==(const TicketAssigned&) const = default;
};

// Level 1 sends the ticket to level 2 ("Envoyé au support").
struct TicketEscalated {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string ticket_id;
  bool operator==(const TicketEscalated&) const = default;
};

// Priority from impact x severity (recommended), possibly overridden by an agent (reason).
struct PrioritySet {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string ticket_id;
  std::string impact;    // "major", "medium", "minor"
  std::string severity;  // same scale
  std::uint8_t recommended = 0;
  std::uint8_t priority = 0;  // 1 very high .. 4 low
  std::string reason;         // why it differs from the recommendation
  bool operator==(const PrioritySet&) const = default;
};

// The mailer sent a notification of the outbox; the stream is "notification-<id>".
struct NotificationSent {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string notification_id;
  bool operator==(const NotificationSent&) const = default;
};

// A saved draft deleted ("Quitter sans enregistrer"): gone from every view.
struct TicketDraftDeleted {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string ticket_id;
  bool operator==(const TicketDraftDeleted&) const = default;
};

// The emitter accepts the proposed solution: "Fermé".
struct SolutionAccepted {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string ticket_id;
  bool operator==(const SolutionAccepted&) const = default;
};

using Payload = std::variant<TicketDraftSaved, TicketSubmitted, TicketDraftDeleted,
                             InformationRequested, InformationProvided, SolutionProposed,
                             SolutionAccepted, SolutionRefused, TicketClosed, CommentAdded,
                             TicketAssigned, TicketEscalated, PrioritySet, NotificationSent>;

// The event type's stable name, as shown to auditors and used in metric labels.
[[nodiscard]] const char* type_name(const Payload& payload) noexcept;

// --- Envelope ------------------------------------------------------------------------------

// What the command side decides; the log adds the stream position and the hashes.
struct EventMeta {
  EventId event_id{};
  std::int64_t occurred_at_us = 0;
  Actor actor;
  std::string correlation_id;
  std::string causation_id;  // the command id
  bool operator==(const EventMeta&) const = default;
};

struct NewEvent {
  EventMeta meta;
  Payload payload;
};

// A decoded stored event.
struct Event {
  EventMeta meta;
  std::string stream_id;
  std::uint64_t version = 0;
  std::uint16_t schema_version = 0;
  Hash prev_hash{};
  Hash hash{};
  Payload payload;
};

}  // namespace chorus::events
