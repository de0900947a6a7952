#pragma once
// JSON text of view rows and of the answers made from them. Text the API lets in is UTF-8
// (events/utf8.h), but a log may hold events written before every field was checked, or by
// another producer: nlohmann's dump() throws on such bytes, which in a projector would stop the
// runner on every start at the same event. Here they become U+FFFD instead, so a row is always
// JSON its readers parse, and nothing throws.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace chorus::projections {

// `value` as JSON text: compact, or indented by `indent` spaces when not negative; each byte
// of a string that is not well-formed UTF-8 replaced by U+FFFD. Never throws but bad_alloc.
// Pure, thread-safe.
[[nodiscard]] std::string json_text(const nlohmann::json& value, int indent = -1);

// Appends `text` as a JSON string, byte for byte as json_text() writes it (compact), when `text`
// is well-formed UTF-8: `"` and `\` escaped, backspace, form feed, line feed, carriage return and
// tab as \b \f \n \r \t, other C0 controls as \u00xx, everything else as it is. Returns false,
// appending nothing, when `text` is not well-formed UTF-8 (json_text replaces such bytes; the
// caller then goes through it). For rows written by hand that must equal a tree's dump (the
// folded rebuild writes millions). Pure, thread-safe.
[[nodiscard]] bool append_json_string_as_dumped(std::string& out, std::string_view text);

// One member of a flat JSON object: a string or an integer.
struct JsonMember {
  std::string_view name;
  std::variant<std::string_view, std::int64_t> value;
};
// The text json_text() gives the tree holding `members` (names distinct), written without the
// tree: members sorted by name as the tree holds them, strings by append_json_string_as_dumped
// (through the tree when one is not UTF-8). For rows the projectors write by the million (a new
// ticket's detail, a notification). Pure, thread-safe.
[[nodiscard]] std::string json_object_text(std::vector<JsonMember> members);

}  // namespace chorus::projections
