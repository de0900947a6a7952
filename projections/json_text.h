#pragma once
// JSON text of view rows and of the answers made from them. Text the API lets in is UTF-8
// (events/utf8.h), but a log may hold events written before every field was checked, or by
// another producer: nlohmann's dump() throws on such bytes, which in a projector would stop the
// runner on every start at the same event. Here they become U+FFFD instead, so a row is always
// JSON its readers parse, and nothing throws.

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace chorus::projections {

// `value` as JSON text: compact, or indented by `indent` spaces when not negative; each byte
// of a string that is not well-formed UTF-8 replaced by U+FFFD. Never throws but bad_alloc.
// Pure, thread-safe.
[[nodiscard]] std::string json_text(const nlohmann::json& value, int indent = -1);

}  // namespace chorus::projections
