#pragma once
// The ticket ("sollicitation") aggregate: pure rules, no I/O. decide() turns a command into
// events or a Rejection; evolve() folds an event into the state. Seed 002, DOMAIN.md "Tickets".

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "domain/caller.h"
#include "domain/errc.h"
#include "events/event.h"

namespace chorus::domain::ticket {

enum class Status {
  none,     // never saved
  draft,    // "Brouillon"
  open,     // "Ouvert"
  closed,   // "Fermé"
  deleted,  // a deleted draft: gone from every view
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
};

// The form ("Informations générales", "Emetteur", "Problème rencontré").
struct Form {
  std::string emitting_structure_id;
  std::string category;
  std::string sub_category;
  std::string title;        // "Titre/Résumé"
  std::string description;  // "Description longue"
};

// "Enregistrer et quitter": create or edit a draft.
struct SaveDraft {
  Form form;
};

// "Soumettre": a draft, or a new ticket directly. Without `form`, a draft is submitted as
// saved; a new ticket needs one.
struct Submit {
  std::optional<Form> form;
  std::string number;  // chosen by the command side (see api/ticket_numbers.h)
};

using Command = std::variant<SaveDraft, Submit>;

// What the command side knows that the rules need, passed in so that decide() stays pure.
struct Context {
  bool attached_to_emitting_structure = false;  // from the access view
};

// Limits of the form, shared with the API's validation messages.
inline constexpr std::size_t kTitleMax = 200;
inline constexpr std::size_t kDescriptionMax = 20'000;
inline constexpr std::size_t kCodeMax = 100;

// Decides `command` on `state` for `caller`. On success, the payloads to append (never empty).
// On rejection, names the rule and field. Pure and thread-safe.
[[nodiscard]] Decision<std::vector<events::Payload>> decide(const State& state,
                                                            const Command& command,
                                                            const Caller& caller,
                                                            const Context& context);

// Folds one event of this ticket's stream into the state. Pure.
[[nodiscard]] State evolve(State state, const events::Payload& payload);

// "ticket-<id>": the stream of a ticket.
[[nodiscard]] std::string stream_id(const std::string& ticket_id);

}  // namespace chorus::domain::ticket
