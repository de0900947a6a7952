#include "projections/id_tally.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>

namespace chorus::projections {
namespace {

// Random sources over a few thousand ids (enough to grow the table several times), against a
// map of how many sources each id passed.
TEST(IdTally, KeepsWhatPassedEverySourceAsAMapWould) {
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    IdTally tally;
    std::map<std::string, int> model;  // id -> sources passed
    int level = 0;
    auto id_of = [](std::uint32_t n) { return "ticket-" + std::to_string(n * 2654435761u); };
    const std::uint32_t ids = 1 + rng() % 5000;
    if (round % 2 == 0) tally.reserve(ids);
    for (std::uint32_t i = 0; i < ids; ++i) {
      const std::string id = id_of(rng() % ids);
      tally.seed(id);
      model.emplace(id, 0);
    }
    tally.seed("");  // ignored
    const int sources = static_cast<int>(rng() % 4);
    for (int s = 0; s < sources; ++s) {
      const bool undo = rng() % 4 == 0;
      std::set<std::string> held;
      for (std::uint32_t i = 0; i < ids; ++i) {
        const std::string id = id_of(rng() % (ids * 2));  // also ids never seeded
        tally.hit(id);
        tally.hit(id);  // counts once
        held.insert(id);
      }
      if (undo) {
        tally.undo_source();
        continue;
      }
      tally.next_source();
      for (auto& [id, n] : model) {
        if (n == level && held.contains(id)) ++n;
      }
      ++level;
    }
    std::vector<std::string> want;
    for (const auto& [id, n] : model) {
      if (n == level) want.push_back(id);
      ASSERT_EQ(tally.contains(id), n == level) << id;
    }
    EXPECT_FALSE(tally.contains(id_of(ids * 3)));
    EXPECT_FALSE(tally.contains(""));
    ASSERT_EQ(tally.size(), want.size());
    auto got = tally.ids();
    std::sort(got.begin(), got.end());
    ASSERT_EQ(got, want) << "round " << round;
  }
}

TEST(IdTally, EmptyTallyHoldsNothing) {
  IdTally tally;
  tally.hit("a");
  tally.next_source();
  EXPECT_FALSE(tally.contains("a"));
  EXPECT_EQ(tally.size(), 0u);
  EXPECT_TRUE(tally.ids().empty());
}

}  // namespace
}  // namespace chorus::projections
