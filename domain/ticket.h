#pragma once
// The ticket ("sollicitation") aggregate: pure rules, no I/O. decide() turns a command into
// events or a Rejection; evolve() folds an event into the state. Seed 002, DOMAIN.md "Tickets".

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "domain/caller.h"
#include "domain/categories.h"
#include "domain/errc.h"
#include "events/event.h"

namespace chorus::domain::ticket {

enum class Status {
  none,                     // never saved
  draft,                    // "Brouillon"
  open,                     // "Ouvert"
  waiting_for_information,  // "En attente d'informations"
  resolved,                 // "Résolu"
  closed,                   // "Fermé": final
  deleted,                  // a deleted draft: gone from every view
};

[[nodiscard]] const char* to_string(Status status) noexcept;

// A ticket that does not exist yet has status none and its ticket_id set by the command side.
struct State {
  Status status = Status::none;
  std::uint64_t version = 0;
  std::string ticket_id;
  std::string number;  // set on submission
  std::string emitter_user_id;
  std::string emitting_structure_id;
  std::string category;
  std::string sub_category;
  std::string title;
  std::string description;
  std::string destination_structure_id;  // "M-" tickets: the business recipient
  std::string destination_service;       // empty: the whole structure
  std::string emitter_email;             // signed-out tickets only (no emitter_user_id)
  std::string object_type;               // object-bound pairs: the object the ticket is about
  std::string object_number;
  // Support handling (service desk).
  int level = 1;                // 1, or 2 once escalated ("Envoyé au support")
  std::string assignee;         // the agent handling it ("En cours de traitement"); empty: nobody
  std::string asked_by;         // the agent whose information request is pending (cleared by an
                                // escalation: the answer then goes to level 2)
  int priority = 0;             // 1 very high .. 4 low; 0 not set
  std::size_t attachments = 0;  // files added ("pièces jointes")
};

// The form ("Informations générales", "Emetteur", "Problème rencontré").
struct Form {
  std::string emitting_structure_id;
  std::string category;
  std::string sub_category;
  std::string title;        // "Titre/Résumé"
  std::string description;  // "Description longue"
  // "Organisation destinataire": required for an "M-" sub-category (a business service),
  // refused for the others (technical support, level 1). The service is optional.
  std::string destination_structure_id = {};  // defaults: forms written before routing
  std::string destination_service = {};
  // "Type d'objet concerné" and "Numéro": required for an object-bound pair (categories.h,
  // object_type), refused for the others. The ticket then goes to the object's recipient: the
  // destination may be left empty (the portal fills it in) or name that same recipient.
  std::string object_type = {};
  std::string object_number = {};
};

// "Enregistrer et quitter": create or edit a draft.
struct SaveDraft {
  Form form;
};

// "Soumettre": a draft, or a new ticket directly. Without `form`, a draft is submitted as
// saved; a new ticket needs one.
struct Submit {
  std::optional<Form> form;
  std::string number;  // chosen by the command side: number_for(ticket id)
};

// Signed-out mode ("mode non connecté"): no account, an e-mail instead; the form without an
// emitting structure. The ticket gets its number and is routed like any other, but no portal
// view lists it for its emitter, who cannot act on it: answers go by e-mail.
struct SubmitSignedOut {
  Form form;           // emitting_structure_id stays empty
  std::string email;   // where the ticket's messages go
  std::string number;  // chosen by the command side: number_for(ticket id)
};

// "Quitter sans enregistrer" on a saved draft.
struct DeleteDraft {};
// The recipient asks the emitter for information.
struct RequestInformation {
  std::string text;
};
// The emitter answers the information request.
struct ProvideInformation {
  std::string text;
};
// The recipient answers / proposes a solution.
struct ProposeSolution {
  std::string text;
};
// The emitter accepts the solution.
struct AcceptSolution {};
// The emitter refuses the solution; the reason is required.
struct RefuseSolution {
  std::string reason;
};
// The emitter closes a ticket no longer needed.
struct Close {
  std::string reason;
};
// Either side comments, until "Fermé".
struct AddComment {
  std::string text;
};

// Either side adds a file ("pièce jointe"), until "Fermé"; the emitter also on a draft. The
// command side has already put the bytes in the content store (I/O stays out of domain/) and
// checked the size limit, a server setting; the rules check the description.
struct AddAttachment {
  std::string attachment_id;  // chosen by the command side
  std::string name;           // file name, without a directory
  std::string media_type;     // "type/subtype"
  std::uint64_t size = 0;     // bytes, at least 1
  std::string sha256;         // of the content: 64 lower-case hex digits
};

// Support handling: take the ticket, release it, give it to another agent, send it to level 2.
// A business ("M-") ticket is taken and released by its recipients ("prendre en charge",
// **decision**: the seeds describe taking for the service desk only; the received queues have
// "assigned to me" too); reassigning, escalating and the priority stay the support's.
struct Take {};
struct Release {};
struct Reassign {
  std::string agent_user_id;
};
struct Escalate {};
// Impact and severity give the recommended priority; `priority` overrides it (reason needed).
struct SetPriority {
  std::string impact;
  std::string severity;
  std::optional<int> priority;
  std::string reason;
};

using Command =
    std::variant<SaveDraft, Submit, DeleteDraft, RequestInformation, ProvideInformation,
                 ProposeSolution, AcceptSolution, RefuseSolution, Close, AddComment, Take, Release,
                 Reassign, Escalate, SetPriority, AddAttachment, SubmitSignedOut>;

// The priority recommended for impact x severity ("major", "medium", "minor"):
// major+major 1; major+medium 2; medium+medium or major+minor 3; otherwise 4.
// 0 when either value is not on the scale.
[[nodiscard]] int recommended_priority(std::string_view impact, std::string_view severity) noexcept;

// What the command side knows that the rules need, passed in so that decide() stays pure.
struct Context {
  bool attached_to_emitting_structure = false;  // from the access view
  // The caller holds "Sollicitations reçues" with write access on the destination of a
  // business ("M-") ticket: from the access view (structures issue); false until then.
  bool business_recipient = false;
  // A business ticket's assignee, when not the caller, no longer holds "Sollicitations reçues"
  // with write access on its destination (detached, the grant withdrawn, or the account
  // deactivated): from the access view. Another recipient may then take the ticket over (Take),
  // its holder being unable to release it. False when not looked up.
  bool assignee_left_destination = false;
  // The categories table (reference data loaded by the server). Null: pairs are not checked
  // (tools deciding on data they made themselves, such as the workload generator).
  const Categories* categories = nullptr;
  // The form's destination structure is active and has the destination service (when one is
  // named): from the structure views. True when not looked up.
  bool destination_exists = true;
  // The object the form names (object_type, object_number) as the reference objects record it
  // (reference_object.h), looked up by the command side; nullopt when unknown or not named.
  struct ObjectRecipient {
    std::string structure_id;
    std::string service;  // empty: the whole structure
    // The structure that issued the object: a ticket about it must be emitted by it.
    std::string issuer_structure_id = {};
  };
  std::optional<ObjectRecipient> object = std::nullopt;
  // The form's emitting structure is active: a deactivated structure's tickets stay readable,
  // but it emits no new one. From the structure views; true when not looked up (only forms
  // saved or submitted need it). Last, as every member added since positional initializers
  // were written.
  bool emitting_structure_active = true;
  // The caller holds "Sollicitations reçues" on the destination of a business ticket, to read
  // ("Consultation") at least: such a reader sees the ticket, so a command of theirs is
  // forbidden (read_only), not answered as if the ticket did not exist. From the access view.
  bool business_reader = false;
};

// "M-" sub-categories go to a business service; all others to technical support.
[[nodiscard]] bool is_business(const std::string& sub_category) noexcept;

// Whether `caller` is a recipient of the ticket: support (level 1 or 2) for a technical
// ticket, the destination's entitled users for a business one.
[[nodiscard]] bool is_recipient(const State& state, const Caller& caller,
                                const Context& context) noexcept;

// Limits of the form, shared with the API's validation messages.
inline constexpr std::size_t kTitleMax = 200;
inline constexpr std::size_t kDescriptionMax = 20'000;
inline constexpr std::size_t kCodeMax = 100;
inline constexpr std::size_t kTextMax = 20'000;
inline constexpr std::size_t kEmailMax = 254;        // bytes and characters: RFC 5321
inline constexpr std::size_t kFileNameMax = 255;     // bytes and characters: what file systems
                                                     // and a download's header allow
inline constexpr std::size_t kAttachmentsMax = 100;  // files per ticket

// Decides `command` on `state` for `caller`. On success, the payloads to append (never empty).
// On rejection, names the rule and field. Pure and thread-safe.
[[nodiscard]] Decision<std::vector<events::Payload>> decide(const State& state,
                                                            const Command& command,
                                                            const Caller& caller,
                                                            const Context& context);

// Invariant 3 of DOMAIN.md, for auditors replaying a log: the status a ticket moves to when
// `payload` follows a ticket in status `from`, as the status table allows (Fermé is final;
// support handling and comments leave the status as is). Fails with wrong_status, rule
// "ticket.invariant.transition", when the table does not allow the event in that status, and
// with invalid_field, rule "ticket.invariant.foreign_event", for an event of another aggregate.
// Checks statuses only: who acted is checked when commands are decided. Pure, thread-safe.
[[nodiscard]] Decision<Status> transition(Status from, const events::Payload& payload);

// Folds one event of this ticket's stream into the state. Pure.
[[nodiscard]] State evolve(State state, const events::Payload& payload);

// The ticket's number ("SOL-" and 10 Crockford base32 characters), as users quote it:
// human-readable, stable, and unique without coordination between writers, being 50 bits of
// the SHA-256 of the ticket id. Pure.
[[nodiscard]] std::string number_for(const std::string& ticket_id);

// "ticket-<id>": the stream of a ticket.
[[nodiscard]] std::string stream_id(const std::string& ticket_id);

}  // namespace chorus::domain::ticket
