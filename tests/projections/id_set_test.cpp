#include "projections/id_set.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

namespace chorus::projections {
namespace {

// Random ids, a few thousand (enough to grow the table several times), with repeats, against a
// std::set.
TEST(IdSet, HoldsWhatASetWould) {
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    IdSet set;
    std::set<std::string> model;
    auto id_of = [](std::uint32_t n) { return "ticket-" + std::to_string(n * 2654435761u); };
    const std::uint32_t ids = 1 + rng() % 5000;
    for (std::uint32_t i = 0; i < ids; ++i) {
      const std::string id = id_of(rng() % ids);
      set.insert(id);
      model.insert(id);
    }
    set.insert("");                                // ignored
    for (std::uint32_t n = 0; n < ids * 2; ++n) {  // also ids never inserted
      ASSERT_EQ(set.contains(id_of(n)), model.contains(id_of(n))) << id_of(n);
    }
    EXPECT_FALSE(set.contains(""));
    ASSERT_EQ(set.size(), model.size()) << "round " << round;
  }
}

TEST(IdSet, EmptySetHoldsNothing) {
  const IdSet set;
  EXPECT_FALSE(set.contains("a"));
  EXPECT_EQ(set.size(), 0u);
}

}  // namespace
}  // namespace chorus::projections
