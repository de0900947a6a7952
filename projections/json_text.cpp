#include "projections/json_text.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "events/utf8.h"

namespace chorus::projections {

std::string json_text(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

bool append_json_string_as_dumped(std::string& out, std::string_view text) {
  for (std::string_view rest = text; !rest.empty();) {
    const std::size_t len = events::utf8_sequence(rest);
    if (len == 0) return false;
    rest.remove_prefix(len);
  }
  out.reserve(out.size() + text.size() + 2);
  out.push_back('"');
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return true;
}

std::string json_object_text(std::vector<JsonMember> members) {
  std::ranges::sort(members, {}, &JsonMember::name);
  std::string out = "{";
  bool ok = true;
  for (const auto& m : members) {
    if (out.size() > 1) out.push_back(',');
    ok = ok && append_json_string_as_dumped(out, m.name);
    out.push_back(':');
    if (const auto* text = std::get_if<std::string_view>(&m.value)) {
      ok = ok && append_json_string_as_dumped(out, *text);
    } else {
      out += std::to_string(std::get<std::int64_t>(m.value));
    }
    if (!ok) break;
  }
  if (ok) return out + "}";
  nlohmann::json tree = nlohmann::json::object();
  for (const auto& m : members) {
    std::visit([&](const auto& v) { tree[std::string(m.name)] = v; }, m.value);
  }
  return json_text(tree);
}

}  // namespace chorus::projections
