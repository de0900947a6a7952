// Rows written by hand equal a tree's dump (projections/json_text.h): the detail row of a new
// ticket is written so by the step both view writers share.
#include "projections/json_text.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace chorus::projections {
namespace {

TEST(JsonText, AStringWrittenByHandIsWhatATreeDumps) {
  std::mt19937 rng(7);
  // Every ASCII byte, some letters of several bytes, quotes and backslashes, in random strings.
  const std::string pieces[] = {"\"",   "\\",   "\b",   "\f", "\n",     "\r",      "\t",
                                "\x01", "\x1f", "\x7f", "é",  "€",      "😀",       "a",
                                "Z",    " ",    "/",    "<",  "\u2028", "\xc2\xa0"};
  for (int i = 0; i < 2000; ++i) {
    std::string text;
    const int n = static_cast<int>(rng() % 12);
    for (int j = 0; j < n; ++j) {
      if (rng() % 3 == 0) {
        text.push_back(static_cast<char>(rng() % 0x80));
      } else {
        text += pieces[rng() % std::size(pieces)];
      }
    }
    std::string by_hand;
    ASSERT_TRUE(append_json_string_as_dumped(by_hand, text));
    EXPECT_EQ(by_hand, json_text(nlohmann::json(text))) << i;
  }
}

TEST(JsonText, TextThatIsNotUtf8IsLeftToTheTree) {
  for (const char* text : {"a\xff", "\xc3", "\xed\xa0\x80", "\xc0\xaf", "ok \xc3("}) {
    std::string out = "kept";
    EXPECT_FALSE(append_json_string_as_dumped(out, text)) << text;
    EXPECT_EQ(out, "kept");
  }
}

TEST(JsonText, AnObjectWrittenWithoutATreeIsWhatTheTreeDumps) {
  const std::vector<JsonMember> members{{"title", "Titre \"cité\"\n"},
                                        {"at_us", std::int64_t{-1767225600000000}},
                                        {"number", ""},
                                        {"category", "Métier"},
                                        {"attachments_count", std::int64_t{3}}};
  nlohmann::json tree = nlohmann::json::object();
  for (const auto& m : members) {
    std::visit([&](const auto& v) { tree[std::string(m.name)] = v; }, m.value);
  }
  EXPECT_EQ(json_object_text(members), json_text(tree));
  // A string that is not UTF-8: the tree's replacement, whatever the hand would have written.
  std::vector<JsonMember> bad = members;
  bad.push_back({"name", "a\xff"});
  tree["name"] = "a\xff";
  EXPECT_EQ(json_object_text(bad), json_text(tree));
  EXPECT_EQ(json_object_text({}), "{}");
}

}  // namespace
}  // namespace chorus::projections
