#pragma once
// Field checks shared by the ticket, structure and account aggregates: a rejection names the rule
// and the field and says in French what is wrong, as the portal shows it.

#include <string>
#include <string_view>

#include "domain/errc.h"
#include "events/utf8.h"

namespace chorus::domain::fields {

// `value` is present (not blank: white space and invisible characters alone are not, as
// events::skip_blank reads them) when `required`, at most
// `max` characters (a value with a byte limit as well checks it itself), and plain text: UTF-8
// without control characters but line breaks and tabs (events::is_plain_text). Success: nothing.
// Failure: invalid_field with rule
// "<rule>.required", "<rule>.too_long" or "<rule>.text". Pure, thread-safe.
[[nodiscard]] inline Decision<void> check_text(const std::string& value, std::string_view field,
                                               std::size_t max, bool required,
                                               std::string_view label, std::string_view rule) {
  const bool blank = events::skip_blank(value).empty();
  if (required && blank) {
    return reject(errc::invalid_field, std::string(rule) + ".required", std::string(field),
                  "Le champ « " + std::string(label) + " » est obligatoire.");
  }
  // Characters, as the message says and as seed 003's limits count them: every byte of UTF-8
  // but a continuation byte (10xxxxxx) starts one (a value that is not UTF-8 is refused below).
  const auto characters = std::ranges::count_if(
      value, [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
  if (static_cast<std::size_t>(characters) > max) {
    return reject(
        errc::invalid_field, std::string(rule) + ".too_long", std::string(field),
        "Le champ « " + std::string(label) + " » dépasse " + std::to_string(max) + " caractères.");
  }
  if (!events::is_plain_text(value, /*line_breaks=*/true)) {
    return reject(errc::invalid_field, std::string(rule) + ".text", std::string(field),
                  "Le champ « " + std::string(label) +
                      " » contient un caractère de contrôle ou d'inversion du sens d'écriture, "
                      "ou n'est pas de l'UTF-8 valide.");
  }
  return {};
}

}  // namespace chorus::domain::fields
