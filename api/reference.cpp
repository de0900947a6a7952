#include "api/reference.h"

#include <nlohmann/json.hpp>

namespace chorus::api {

std::expected<domain::ticket::Categories, std::string> load_categories(std::string_view json_text) {
  using nlohmann::json;
  const json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return std::unexpected("not a JSON object");
  const auto list = doc.find("categories");
  if (list == doc.end() || !list->is_array() || list->empty()) {
    return std::unexpected("\"categories\" must be a non-empty array");
  }
  domain::ticket::Categories out;
  for (const json& c : *list) {
    const auto name = c.is_object() ? c.find("name") : c.end();
    const auto subs = c.is_object() ? c.find("sub_categories") : c.end();
    if (name == c.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
      return std::unexpected("a category without a name: " + c.dump());
    }
    if (subs == c.end() || !subs->is_array() || subs->empty()) {
      return std::unexpected("category \"" + name->get<std::string>() +
                             "\" needs a non-empty \"sub_categories\" array");
    }
    for (const json& s : *subs) {
      if (!s.is_string() || s.get_ref<const std::string&>().empty()) {
        return std::unexpected("category \"" + name->get<std::string>() +
                               "\" has an empty or non-text sub-category");
      }
      out.add(name->get<std::string>(), s.get<std::string>());
    }
  }
  return out;
}

}  // namespace chorus::api
