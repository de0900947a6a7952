#pragma once
// Reference data of the ticket form: the categories and their sub-categories ("Informations
// générales", seed 002). The table is data under version control (api/reference/
// categories.json), read by the server at start and passed to the rules in their Context:
// domain/ reads no file. Some pairs concern an object (an invoice, a TIC refund request, a
// court-fee statement): the table names its type, and such a ticket carries the object's type
// and number and goes to the object's recipient (seed 002). Pure.

#include <map>
#include <set>
#include <string>
#include <string_view>

namespace chorus::domain::ticket {

class Categories {
 public:
  // Adds a pair; repeated pairs are kept once. `object_type` not empty: the pair concerns an
  // object of that type (reference_object.h, kObjectTypes); a repeated pair keeps its first.
  void add(const std::string& category, const std::string& sub_category,
           const std::string& object_type = "") {
    pairs_[category].insert(sub_category);
    if (!object_type.empty())
      object_types_.try_emplace(category + '\0' + sub_category, object_type);
  }
  // The object type a pair concerns ("facture", ...), empty for a pair about no object.
  [[nodiscard]] std::string object_type(std::string_view category,
                                        std::string_view sub_category) const {
    std::string key(category);
    key.push_back('\0');
    key.append(sub_category);
    auto it = object_types_.find(key);
    return it == object_types_.end() ? std::string() : it->second;
  }
  [[nodiscard]] bool has_category(std::string_view category) const {
    return pairs_.find(category) != pairs_.end();
  }
  [[nodiscard]] bool contains(std::string_view category, std::string_view sub_category) const {
    auto it = pairs_.find(category);
    return it != pairs_.end() && it->second.find(sub_category) != it->second.end();
  }
  [[nodiscard]] bool empty() const { return pairs_.empty(); }
  [[nodiscard]] const std::map<std::string, std::set<std::string, std::less<>>, std::less<>>&
  pairs() const {
    return pairs_;
  }

 private:
  std::map<std::string, std::set<std::string, std::less<>>, std::less<>> pairs_;
  std::map<std::string, std::string, std::less<>> object_types_;  // "<category>\0<sub>" -> type
};

}  // namespace chorus::domain::ticket
