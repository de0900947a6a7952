#pragma once
// Reference data of the ticket form: the categories and their sub-categories ("Informations
// générales", seed 002). The table is data under version control (api/reference/
// categories.json), read by the server at start and passed to the rules in their Context:
// domain/ reads no file. Pure.

#include <map>
#include <set>
#include <string>
#include <string_view>

namespace chorus::domain::ticket {

class Categories {
 public:
  // Adds a pair; repeated pairs are kept once.
  void add(const std::string& category, const std::string& sub_category) {
    pairs_[category].insert(sub_category);
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
};

}  // namespace chorus::domain::ticket
