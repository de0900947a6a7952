#include "api/reference.h"

#include <nlohmann/json.hpp>

#include "domain/reference_object.h"

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
      // A plain name, or {"name": ..., "object_type": ...} for a pair about an object.
      const json* sub_name = &s;
      std::string object_type;
      if (s.is_object()) {
        const auto n = s.find("name");
        const auto t = s.find("object_type");
        if (n == s.end() || t == s.end() || !t->is_string() ||
            !domain::reference_object::is_object_type(t->get_ref<const std::string&>())) {
          return std::unexpected("category \"" + name->get<std::string>() +
                                 "\": a sub-category object needs \"name\" and a known "
                                 "\"object_type\": " +
                                 s.dump());
        }
        sub_name = &*n;
        object_type = t->get<std::string>();
      }
      if (!sub_name->is_string() || sub_name->get_ref<const std::string&>().empty()) {
        return std::unexpected("category \"" + name->get<std::string>() +
                               "\" has an empty or non-text sub-category");
      }
      out.add(name->get<std::string>(), sub_name->get<std::string>(), object_type);
    }
  }
  return out;
}

}  // namespace chorus::api
