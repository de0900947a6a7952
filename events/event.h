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
  // "Organisation destinataire" of an "M-" sub-category (a business service); empty otherwise.
  // Added fields default to empty, so that initializations written before them stay valid.
  std::string destination_structure_id = {};
  std::string destination_service = {};  // empty: the whole structure
  // Object-bound pairs ("Type d'objet concerné", "Numéro"): the invoice, TIC refund request or
  // court-fee statement the ticket is about; the destination above is then its recipient.
  // Empty for other pairs.
  std::string object_type = {};
  std::string object_number = {};
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
  std::string destination_structure_id = {};  // as in TicketDraftSaved
  std::string destination_service = {};
  // Signed-out mode: no account (empty emitter_user_id and emitting structure); the e-mail the
  // ticket's messages go to.
  std::string emitter_email = {};
  std::string object_type = {};  // as in TicketDraftSaved
  std::string object_number = {};
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

// Either side adds a file ("pièce jointe") until "Fermé". The event describes it; the bytes
// are in the content store (api/content_store.h) under `sha256`, stored before the append.
struct FileAttached {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string ticket_id;
  std::string attachment_id;  // names the file within the ticket (download route)
  std::string name;           // the file name as uploaded
  std::string media_type;     // "application/pdf", ...
  std::uint64_t size = 0;     // bytes
  std::string sha256;         // of the content, 64 lower-case hex digits
  bool operator==(const FileAttached&) const = default;
};

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

// --- Structures, accounts, attachments, espaces (issue 6, seed 003) ------------------------
// Every payload names its aggregate: `structure_id` for "structure-<id>" (which also holds the
// structure's roles, requests and espaces), `user_id` for "account-<id>". Roles are "gp", "gs"
// or "user"; an empty service list means the whole structure; dates are YYYY-MM-DD.

// The editable data of a structure ("fiche structure"), shared by creation and change.
struct StructureData {
  std::string designation;
  std::string address_line1;
  std::string address_line2;
  std::string postal_code;
  std::string city;
  std::string country;
  bool payment_status_hidden = false;  // "mise en paiement" not reported to suppliers
  bool service_code_required = false;
  bool commitment_required = false;  // "numéro d'engagement"
  bool commitment_or_service_required = false;
  std::uint8_t moa_mode = 0;  // 0 private, 1 sans MOA, 2 avec MOA, 3 exclusivement MOA
  // Not copied by a SIRET change.
  std::string vat_number;
  std::string pacage_number;
  std::string social_regime;
  bool billing_mandate = false;
  bool operator==(const StructureData&) const = default;
};

// Created by support, imported, or duplicated by a SIRET change (`origin_structure_id` set).
// FACTURES_PUBLIQUES exists from this event on, valid from `created_on`, as below: no event
// names it, so the domain's state and the views read it from here alike.
inline constexpr std::string_view kPublicInvoicesCode = "FACTURES_PUBLIQUES";
inline constexpr std::string_view kPublicInvoicesLabel = "Factures publiques";
inline constexpr std::string_view kPublicInvoicesDescription =
    "Réception des factures des autres structures publiques";
struct StructureCreated {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string structure_id;
  std::string identifier_type;  // "SIRET", ...
  std::string identifier_value;
  bool is_public = false;
  bool is_state = false;  // "Etat"
  bool pigp_managed = false;
  std::string created_on;
  std::string origin_structure_id;
  StructureData data;
  bool operator==(const StructureCreated&) const = default;
};

struct StructureDataChanged {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string structure_id;
  StructureData data;
  bool operator==(const StructureDataChanged&) const = default;
};

// Inactive from now on (its tickets stay readable); `successor_structure_id` after a SIRET
// change.
struct StructureDeactivated {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string structure_id;
  std::string successor_structure_id;
  std::string reason;
  bool operator==(const StructureDeactivated&) const = default;
};

// A service added or changed; `valid_to` empty: open-ended.
#define CHORUS_SERVICE_EVENT(Name)                     \
  struct Name {                                        \
    static constexpr std::uint16_t kSchemaVersion = 1; \
    std::string structure_id;                          \
    std::string code;                                  \
    std::string label;                                 \
    std::string description;                           \
    std::string valid_from;                            \
    std::string valid_to;                              \
    bool commitment_required = false;                  \
    bool operator==(const Name&) const = default;      \
  };
CHORUS_SERVICE_EVENT(ServiceAdded)
CHORUS_SERVICE_EVENT(ServiceChanged)
#undef CHORUS_SERVICE_EVENT

struct ServiceRemoved {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string structure_id;
  std::string code;
  bool operator==(const ServiceRemoved&) const = default;
};

// "En cours d'activation". The only events that carry a login and names.
struct AccountCreated {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string user_id;
  std::string login_email;
  std::string first_name;
  std::string last_name;
  std::string origin;      // "portal" or "pigp"
  bool technical = false;  // "utilisateur technique" (API access)
  // A technical account's structure: the one whose GP created it, and only it (or the
  // structure a SIRET change made of it) may attach it. Empty for other accounts, and for
  // technical ones created before 2026-11-28 (absent from their stored bytes).
  std::string structure_id{};
  bool operator==(const AccountCreated&) const = default;
};

// Account lifecycle steps that carry nothing but the account.
#define CHORUS_ACCOUNT_EVENT(Name)                     \
  struct Name {                                        \
    static constexpr std::uint16_t kSchemaVersion = 1; \
    std::string user_id;                               \
    bool operator==(const Name&) const = default;      \
  };
CHORUS_ACCOUNT_EVENT(AccountActivated)
CHORUS_ACCOUNT_EVENT(ActivationResent)
CHORUS_ACCOUNT_EVENT(AccountReactivated)
#undef CHORUS_ACCOUNT_EVENT

// Reactivable for 60 days after `at_us` (the domain has no clock: the time is in the event).
struct AccountDeactivated {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string user_id;
  std::int64_t at_us = 0;
  bool operator==(const AccountDeactivated&) const = default;
};

// The GP of `structure_id` reset the password of its technical account: recorded, never the
// secret.
struct PasswordResetRecorded {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string structure_id;
  std::string user_id;
  bool operator==(const PasswordResetRecorded&) const = default;
};

// "En cours de validation": one request per service (empty service: the whole structure).
struct AttachmentRequested {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string structure_id;
  std::string request_id;
  std::string user_id;
  std::string service;
  std::string comment;
  bool operator==(const AttachmentRequested&) const = default;
};

// "Validée": `services` is what the user holds afterwards.
struct AttachmentValidated {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string structure_id;
  std::string request_id;
  std::string user_id;
  std::string role;
  std::vector<std::string> services;
  std::string comment;
  bool operator==(const AttachmentValidated&) const = default;
};

// "Refusée" (attachment) and "Désactivée" (subscription): a request refused with a reason.
#define CHORUS_REFUSAL_EVENT(Name)                     \
  struct Name {                                        \
    static constexpr std::uint16_t kSchemaVersion = 1; \
    std::string structure_id;                          \
    std::string request_id;                            \
    std::string user_id;                               \
    std::string reason;                                \
    bool operator==(const Name&) const = default;      \
  };
CHORUS_REFUSAL_EVENT(AttachmentRefused)
CHORUS_REFUSAL_EVENT(SubscriptionRefused)
#undef CHORUS_REFUSAL_EVENT

// Attached without a request (`direct`), or copied by a SIRET change; `services` is what the
// user holds afterwards.
struct UserAttached {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string structure_id;
  std::string user_id;
  std::string role;
  std::vector<std::string> services;
  std::string start_date;
  std::string comment;
  bool direct = true;
  bool operator==(const UserAttached&) const = default;
};

// "Supprimée", at structure level.
struct AttachmentRemoved {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string structure_id;
  std::string user_id;
  bool operator==(const AttachmentRemoved&) const = default;
};

// The GP role moves to `to_user_id` (attached if not yet); the former GP stays a simple user of
// the whole structure. An empty `from_user_id` names the first GP. One event, so that the change
// of GP and the attachments it implies cannot be split.
struct MainManagerTransferred {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string structure_id;
  std::string from_user_id;
  std::string to_user_id;
  bool by_support = false;
  bool operator==(const MainManagerTransferred&) const = default;
};

// On the account's stream, with the MainManagerTransferred it mirrors: `user_id` became
// (`held`) or stopped being the GP of `structure_id`. What the account manages is then read
// from its own stream, at the version a deactivation is decided on.
struct MainManagerRoleChanged {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string user_id;
  std::string structure_id;
  bool held = false;
  bool operator==(const MainManagerRoleChanged&) const = default;
};

// An espace opened on the structure (empty service) or on one service.
struct EspaceEnabled {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string structure_id;
  std::string espace;
  std::string service;
  bool read = false;   // "Consultation"
  bool write = false;  // "Modification"
  bool operator==(const EspaceEnabled&) const = default;
};

// A subscription asked for, and validated with the rights as granted (adjustable).
#define CHORUS_SUBSCRIPTION_EVENT(Name)                \
  struct Name {                                        \
    static constexpr std::uint16_t kSchemaVersion = 1; \
    std::string structure_id;                          \
    std::string request_id;                            \
    std::string user_id;                               \
    std::string espace;                                \
    std::string service;                               \
    bool read = false;                                 \
    bool write = false;                                \
    std::string comment;                               \
    bool operator==(const Name&) const = default;      \
  };
CHORUS_SUBSCRIPTION_EVENT(SubscriptionRequested)
CHORUS_SUBSCRIPTION_EVENT(SubscriptionValidated)
#undef CHORUS_SUBSCRIPTION_EVENT

// The first and only event of the stream "identifier-<type>-<value>" (domain/structure.h,
// identifier_stream_id), appended with the StructureCreated that takes the identifier at
// expected version 0: two structures cannot take one identifier, even at the same instant.
struct IdentifierReserved {
  static constexpr std::uint16_t kSchemaVersion = 1;
  std::string identifier_type;
  std::string identifier_value;
  std::string structure_id;
  bool operator==(const IdentifierReserved&) const = default;
};

// A reference object (invoice, TIC refund request, court-fee statement) as an import command
// brought it, on the stream "object-<type>-<number>" (domain/reference_object.h): the recipient
// that tickets about it go to. A later import of the same object with another recipient adds
// another event; the last one holds.
struct ReferenceObjectImported {
  // 2: issuer_structure_id. Version 1 events have none: no ticket may name their object until
  // an import records its issuer.
  static constexpr std::uint16_t kSchemaVersion = 2;
  std::string object_type;    // "facture", "demande_remboursement_tic", "memoire_frais_justice"
  std::string object_number;  // as users quote it
  std::string recipient_structure_id;
  std::string recipient_service;  // empty: the whole structure
  // The structure that issued the object (the invoice's supplier, the refund's or the fees'
  // claimant): "ma facture" in seed 002. Only its users may open a ticket about the object.
  std::string issuer_structure_id = {};
  bool operator==(const ReferenceObjectImported&) const = default;
};

using Payload =
    std::variant<TicketDraftSaved, TicketSubmitted, TicketDraftDeleted, InformationRequested,
                 InformationProvided, SolutionProposed, SolutionAccepted, SolutionRefused,
                 TicketClosed, CommentAdded, TicketAssigned, TicketEscalated, PrioritySet,
                 NotificationSent, StructureCreated, StructureDataChanged, StructureDeactivated,
                 ServiceAdded, ServiceChanged, ServiceRemoved, AccountCreated, AccountActivated,
                 ActivationResent, AccountDeactivated, AccountReactivated, PasswordResetRecorded,
                 AttachmentRequested, AttachmentValidated, AttachmentRefused, UserAttached,
                 AttachmentRemoved, MainManagerTransferred, EspaceEnabled, SubscriptionRequested,
                 SubscriptionValidated, SubscriptionRefused, FileAttached, IdentifierReserved,
                 ReferenceObjectImported, MainManagerRoleChanged>;

// A visitor made of lambdas, one per payload type: std::visit(Overloaded{...}, payload).
template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

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
