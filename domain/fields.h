#pragma once
// Field checks shared by the ticket, structure and account aggregates: a rejection names the rule
// and the field and says in French what is wrong, as the portal shows it.

#include <string>
#include <string_view>

#include "domain/errc.h"

namespace chorus::domain::fields {

// `value` is present when `required` and at most `max` bytes. Success: nothing. Failure:
// invalid_field with rule "<rule>.required" or "<rule>.too_long". Pure, thread-safe.
[[nodiscard]] inline Decision<void> check_text(const std::string& value, std::string_view field,
                                               std::size_t max, bool required,
                                               std::string_view label, std::string_view rule) {
  if (required && value.empty()) {
    return reject(errc::invalid_field, std::string(rule) + ".required", std::string(field),
                  "Le champ « " + std::string(label) + " » est obligatoire.");
  }
  if (value.size() > max) {
    return reject(
        errc::invalid_field, std::string(rule) + ".too_long", std::string(field),
        "Le champ « " + std::string(label) + " » dépasse " + std::to_string(max) + " caractères.");
  }
  return {};
}

}  // namespace chorus::domain::fields
