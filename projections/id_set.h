#pragma once
// IdSet: the ticket ids a search keeps.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::projections {

// A set of ids that owns their bytes: what a scan of an index hands out lives only for one
// visit. Searches keep thousands of ids and more (a queue's matches, a long list's), so the
// ids' bytes go to one arena and the table is open addressing over their hashes: no
// allocation per id. With a std::unordered_map of std::string, hashing, probing and allocating
// took about 45% of a three-word search (ticket_list_bench, 2026-11-27). Ids are non-empty; an
// empty one is ignored. Not thread-safe.
class IdSet {
 public:
  // Adds `id`; does nothing when it is there already.
  void insert(std::string_view id);

  [[nodiscard]] bool contains(std::string_view id) const;
  [[nodiscard]] std::size_t size() const { return used_; }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::uint64_t at = 0;    // in arena_
    std::uint32_t size = 0;  // 0: free
  };
  // The slot holding `id`, or the free slot where it would go.
  [[nodiscard]] std::size_t find(std::string_view id, std::uint64_t hash) const;
  void grow();

  std::string arena_;
  std::vector<Slot> slots_;  // a power of two, at most half full
  std::size_t used_ = 0;
};

}  // namespace chorus::projections
