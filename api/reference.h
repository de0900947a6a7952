#pragma once
// Reference data the server loads at start and hands to the rules: the categories table of
// the ticket form (api/reference/categories.json, built into chorusd; --categories-file reads
// another copy instead).

#include <expected>
#include <string>
#include <string_view>

#include "domain/categories.h"

namespace chorus::api {

// The text of api/reference/categories.json as it was at build time. Thread-safe.
[[nodiscard]] std::string_view built_in_categories_json() noexcept;

// The table from its JSON form: {"categories": [{"name": ..., "sub_categories": [...]}, ...]}
// (other top-level members, such as "_comment", are ignored); a sub-category is its name, or
// {"name": ..., "object_type": "facture"} for a pair about an object (object_type one of
// domain::reference_object::kObjectTypes). Fails with a message naming what is wrong (not JSON,
// a missing or empty name, an unknown object type, no category at all); nothing else is read.
// Pure, thread-safe.
[[nodiscard]] std::expected<domain::ticket::Categories, std::string> load_categories(
    std::string_view json_text);

}  // namespace chorus::api
