#pragma once
// Reference objects: the invoices ("factures"), TIC refund requests ("demandes de remboursement
// TIC") and court-fee statements ("mémoires de frais de justice") a ticket may be about (seed
// 002, "Certaines demandes d'aides portent sur un objet précis"). They are made elsewhere in
// Chorus Pro; this product knows of them through an import command that records, per object,
// the recipient its tickets go to. Pure: no I/O, the command side passes what it looked up.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "domain/caller.h"
#include "domain/errc.h"
#include "events/event.h"

namespace chorus::domain::reference_object {

// The object types, as categories.json and the ticket form name them ("Type d'objet concerné").
inline constexpr std::array<std::string_view, 3> kObjectTypes{
    "facture",                    // "Facture"
    "demande_remboursement_tic",  // "Demande de remboursement TIC"
    "memoire_frais_justice",      // "Mémoire de frais de justice"
};
[[nodiscard]] bool is_object_type(std::string_view type) noexcept;

inline constexpr std::size_t kNumberMax = 100;

// An object as the log last recorded it.
struct State {
  std::uint64_t version = 0;  // 0: never imported
  std::string recipient_structure_id;
  std::string recipient_service;
  std::string issuer_structure_id;  // empty: recorded before issuers were (schema version 1)
};

// One line of an import: the object, the structure that issued it, and its recipient (a
// structure, optionally one service).
struct Import {
  std::string object_type;
  std::string object_number;
  std::string recipient_structure_id;
  std::string recipient_service;  // empty: the whole structure
  std::string issuer_structure_id = {};
};

// What the command side looked up in the structure views.
struct Context {
  // The recipient structure is active and has the service (when one is named).
  bool recipient_exists = false;
  // The issuing structure is known and active.
  bool issuer_exists = false;
};

// Decides one import line for `caller`. Success: the events to append to
// stream_id(type, number) at `state.version`: one ReferenceObjectImported, or none when the
// object is already recorded with this issuer and recipient (a repeated import changes
// nothing). Failure: forbidden (rule "reference_object.import.forbidden") unless the caller is
// support (level 1 or 2) or an operator; invalid_field naming object_type, object_number,
// issuer_structure_id, recipient_structure_id or recipient_service. Nothing is written on
// failure. Pure, thread-safe.
[[nodiscard]] Decision<std::vector<events::Payload>> decide(const State& state,
                                                            const Import& command,
                                                            const Caller& caller,
                                                            const Context& context);

// Folds one event of an object's stream. Pure.
[[nodiscard]] State evolve(State state, const events::Payload& payload);

// "object-<type>-<number>" when both are letters and digits only, else "object-~" and the
// SHA-256 (hex) of type and number: any number a user types gives a valid stream id. Pure.
[[nodiscard]] std::string stream_id(std::string_view type, std::string_view number);

}  // namespace chorus::domain::reference_object
