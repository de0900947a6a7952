#pragma once
// IdTally: the ticket ids a search has kept so far, read from several sources in turn.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::projections {

// The ids that passed every source read so far (an index range, a word's postings): the first
// source seeds them, each later source counts the ids it holds among those that passed every
// earlier one. Searches feed it 100,000 ids and more (a common word's postings), so the ids'
// bytes go to one arena and the table is open addressing over their hashes: no allocation per
// id. With a std::unordered_map of std::string, hashing, probing and allocating took about 45%
// of a three-word search (ticket_list_bench, 2026-11-27). Ids are non-empty; an empty one is
// ignored. Not thread-safe.
class IdTally {
 public:
  // Adds `id` to the ids in play (first source only). Does nothing when it is there already.
  void seed(std::string_view id);
  // The current source holds `id`: it stays in play if it passed every earlier source. Counts
  // once per source, however often it comes.
  void hit(std::string_view id);
  // The current source is read: only the ids it held stay in play.
  void next_source();
  // Forgets the current source's hits (to read it another way instead).
  void undo_source();
  // Makes room for `ids` seeds in all without growing the table.
  void reserve(std::size_t ids);

  // Whether `id` is in play (passed every source ended by next_source).
  [[nodiscard]] bool contains(std::string_view id) const;
  // Ids in play.
  [[nodiscard]] std::size_t size() const { return alive_; }
  // The ids in play, in no particular order.
  [[nodiscard]] std::vector<std::string> ids() const;

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::uint64_t at = 0;     // in arena_
    std::uint32_t size = 0;   // 0: free
    std::uint32_t level = 0;  // sources passed
  };
  // The slot holding `id`, or the free slot where it would go.
  [[nodiscard]] std::size_t find(std::string_view id, std::uint64_t hash) const;
  void grow();

  std::string arena_;
  std::vector<Slot> slots_;  // a power of two, at most half full
  std::size_t used_ = 0;
  std::uint32_t level_ = 0;
  std::size_t alive_ = 0, passed_ = 0;
};

}  // namespace chorus::projections
