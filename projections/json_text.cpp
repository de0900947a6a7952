#include "projections/json_text.h"

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

}  // namespace chorus::projections
