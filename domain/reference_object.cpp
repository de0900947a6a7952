#include "domain/reference_object.h"

#include <algorithm>

#include "domain/fields.h"
#include "events/codec.h"

namespace chorus::domain::reference_object {

bool is_object_type(std::string_view type) noexcept {
  return std::find(kObjectTypes.begin(), kObjectTypes.end(), type) != kObjectTypes.end();
}

Decision<std::vector<events::Payload>> decide(const State& state, const Import& c,
                                              const Caller& caller, const Context& context) {
  constexpr std::string_view rule = "reference_object.import";
  // Objects come from the rest of Chorus Pro: the support (AIFE) or the operators' scripts
  // bring them, never a portal user.
  if (!caller.roles.support_level1 && !caller.roles.support_level2 && !caller.roles.operator_) {
    return reject(errc::forbidden, "reference_object.import.forbidden", "",
                  "Import réservé au support et à l'exploitation.");
  }
  if (!is_object_type(c.object_type)) {
    return reject(errc::invalid_field, "reference_object.import.object_type", "object_type",
                  "Type d'objet inconnu : « " + c.object_type +
                      " » (facture, demande_remboursement_tic ou memoire_frais_justice).");
  }
  for (auto check : {fields::check_text(c.object_number, "object_number", kNumberMax, true,
                                        "Numéro de l'objet", rule),
                     fields::check_text(c.issuer_structure_id, "issuer_structure_id", 100, true,
                                        "Structure émettrice de l'objet", rule),
                     fields::check_text(c.recipient_structure_id, "recipient_structure_id", 100,
                                        true, "Structure destinataire", rule),
                     fields::check_text(c.recipient_service, "recipient_service", 100, false,
                                        "Service destinataire", rule)}) {
    if (!check) return std::unexpected(check.error());
  }
  // The number goes into keys and is quoted back: printable characters only.
  if (std::any_of(c.object_number.begin(), c.object_number.end(), [](char ch) {
        const auto u = static_cast<unsigned char>(ch);
        return u < 0x20 || u == 0x7F;
      })) {
    return reject(errc::invalid_field, "reference_object.import.object_number", "object_number",
                  "Le numéro de l'objet contient un caractère de contrôle.");
  }
  if (!context.issuer_exists) {
    return reject(errc::invalid_field, "reference_object.import.issuer", "issuer_structure_id",
                  "Structure émettrice de l'objet inconnue ou inactive.");
  }
  if (!context.recipient_exists) {
    return reject(errc::invalid_field, "reference_object.import.recipient",
                  c.recipient_service.empty() ? "recipient_structure_id" : "recipient_service",
                  "Structure ou service destinataire inconnu ou inactif.");
  }
  if (state.version > 0 && state.recipient_structure_id == c.recipient_structure_id &&
      state.recipient_service == c.recipient_service &&
      state.issuer_structure_id == c.issuer_structure_id) {
    return std::vector<events::Payload>{};  // already known so
  }
  return std::vector<events::Payload>{
      events::ReferenceObjectImported{c.object_type, c.object_number, c.recipient_structure_id,
                                      c.recipient_service, c.issuer_structure_id}};
}

State evolve(State state, const events::Payload& payload) {
  ++state.version;
  if (const auto* e = std::get_if<events::ReferenceObjectImported>(&payload)) {
    state.recipient_structure_id = e->recipient_structure_id;
    state.recipient_service = e->recipient_service;
    state.issuer_structure_id = e->issuer_structure_id;
  }
  return state;
}

std::string stream_id(std::string_view type, std::string_view number) {
  auto plain = [](std::string_view text) {
    return !text.empty() && std::ranges::all_of(text, [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    });
  };
  if (plain(type) && plain(number) && type.size() + number.size() <= 180) {
    return "object-" + std::string(type) + "-" + std::string(number);
  }
  std::string both(type);
  both.push_back('\0');
  both.append(number);
  return "object-~" + events::to_hex(events::sha256(both));
}

}  // namespace chorus::domain::reference_object
