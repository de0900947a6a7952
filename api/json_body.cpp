#include "api/json_body.h"

#include "events/utf8.h"
#include "projections/json_text.h"

namespace chorus::api {

using projections::json_text;

JsonBody::JsonBody(const std::string& body, std::set<std::string> allowed) {
  const Problem not_json{400, "request.json", "",
                         "Le corps de la requête n'est pas du JSON valide."};
  // No JSON text holds a raw NUL, and nlohmann's lexer takes one for the end of the input,
  // which would let whatever follows it pass unread.
  if (body.find('\0') != std::string::npos) throw not_json;
  // A member named twice is refused, not read as its last value: a proxy or a validator in
  // front reading the first would see another request than the one decided.
  std::vector<std::set<std::string, std::less<>>> members;  // of each object being read
  std::string twice;
  auto note_members = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) {
      members.emplace_back();
    } else if (event == E::object_end) {
      members.pop_back();
    } else if (event == E::key && twice.empty() && !members.empty() &&
               !members.back().insert(parsed.get<std::string>()).second) {
      twice = parsed.get<std::string>();
    }
    return true;
  };
  try {
    json_ = nlohmann::json::parse(body, note_members);
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann validates UTF-8 while lexing strings and says so in its message.
    const bool utf8 = std::string_view(e.what()).find("UTF-8") != std::string_view::npos;
    if (!utf8) throw not_json;
    throw Problem{400, "request.utf8", "", "Le corps de la requête n'est pas de l'UTF-8 valide."};
  } catch (const nlohmann::json::exception&) {
    // A number beyond a double's range (1e999999) is out_of_range, not a parse error.
    throw Problem{400, "request.json", "",
                  "Le corps de la requête n'est pas du JSON valide : nombre hors limites."};
  }
  if (!twice.empty()) {
    throw Problem{400, "request.duplicate_member", events::is_plain_text(twice, false) ? twice : "",
                  "Le corps de la requête nomme deux fois le même champ."};
  }
  *this = JsonBody(std::move(json_), allowed);
}

JsonBody::JsonBody(nlohmann::json object, const std::set<std::string>& allowed)
    : json_(std::move(object)) {
  if (!json_.is_object()) {
    throw Problem{400, "request.json_object", "",
                  "Le corps de la requête doit être un objet JSON."};
  }
  for (const auto& [name, value] : json_.items()) {
    if (!allowed.contains(name)) {
      throw Problem{400, "request.unknown_field", name, "Champ inconnu : « " + name + " »."};
    }
  }
}

bool JsonBody::bool_or(const std::string& name, bool fallback) const {
  auto it = json_.find(name);
  if (it == json_.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    throw Problem{400, "request.type", name, "Le champ « " + name + " » doit être un booléen."};
  }
  return it->get<bool>();
}

namespace {

// The text of string field `name`: JSON lets a string escape any control character ("\u0000"),
// which would cut a view key or hide in what the portal shows; line breaks and tabs are text.
const std::string& checked_text(const std::string& name, const std::string& value) {
  if (!events::is_plain_text(value, /*line_breaks=*/true)) {
    throw Problem{400, "request.text", name,
                  "Le champ « " + name +
                      " » contient un caractère de contrôle ou d'inversion du sens d'écriture."};
  }
  return value;
}

}  // namespace

std::vector<std::string> JsonBody::string_list(const std::string& name) const {
  auto it = json_.find(name);
  if (it == json_.end() || it->is_null()) return {};
  std::vector<std::string> out;
  if (it->is_array()) {
    for (const auto& item : *it) {
      if (!item.is_string()) break;
      out.push_back(checked_text(name, item.get_ref<const std::string&>()));
    }
    if (out.size() == it->size()) return out;
  }
  throw Problem{400, "request.type", name,
                "Le champ « " + name + " » doit être une liste de chaînes."};
}

std::vector<JsonBody> JsonBody::object_list(const std::string& name,
                                            const std::set<std::string>& allowed) const {
  auto it = json_.find(name);
  if (it == json_.end() || it->is_null()) return {};
  if (!it->is_array()) {
    throw Problem{400, "request.type", name, "Le champ « " + name + " » doit être une liste."};
  }
  std::vector<JsonBody> out;
  for (const auto& item : *it) out.emplace_back(item, allowed);
  return out;
}

JsonBody JsonBody::object(const std::string& name, const std::set<std::string>& allowed) const {
  auto it = json_.find(name);
  if (it == json_.end() || it->is_null()) return JsonBody(nlohmann::json::object(), allowed);
  return JsonBody(*it, allowed);
}

std::optional<std::string> JsonBody::optional_string(const std::string& name) const {
  auto it = json_.find(name);
  if (it == json_.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) {
    throw Problem{400, "request.type", name, "Le champ « " + name + " » doit être une chaîne."};
  }
  return checked_text(name, it->get_ref<const std::string&>());
}

std::optional<int> JsonBody::optional_int(const std::string& name) const {
  auto it = json_.find(name);
  if (it == json_.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer() || *it > 1'000'000 || *it < -1'000'000) {
    throw Problem{400, "request.type", name, "Le champ « " + name + " » doit être un entier."};
  }
  return it->get<int>();
}

std::string JsonBody::string_or_empty(const std::string& name) const {
  return optional_string(name).value_or("");
}

Response json_response(int status, const nlohmann::json& body) {
  return Response{status, "application/json", json_text(body), {}};
}

nlohmann::json problem_json(const Problem& p) {
  nlohmann::json out{{"status", p.status}, {"rule", p.rule}, {"detail", p.detail}};
  if (!p.field.empty()) out["field"] = p.field;
  return out;
}

Response batch_response(nlohmann::json results, const std::string& last_token) {
  Response r = json_response(
      200, nlohmann::json{{"results", std::move(results)}, {"consistency_token", last_token}});
  if (!last_token.empty()) r.headers.emplace_back("X-Consistency-Token", last_token);
  return r;
}

}  // namespace chorus::api
