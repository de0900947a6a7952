#include "projections/id_set.h"

#include <cstring>
#include <functional>

namespace chorus::projections {
namespace {

std::uint64_t hash_of(std::string_view id) { return std::hash<std::string_view>{}(id); }

}  // namespace

std::size_t IdSet::find(std::string_view id, std::uint64_t hash) const {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.size == 0) return i;
    if (s.hash == hash && s.size == id.size() &&
        std::memcmp(arena_.data() + s.at, id.data(), id.size()) == 0) {
      return i;
    }
  }
}

// Doubles the table (64 slots at first); the arena stays where it is.
void IdSet::grow() {
  std::vector<Slot> old(slots_.empty() ? 64 : slots_.size() * 2);
  old.swap(slots_);
  const std::size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.size == 0) continue;
    std::size_t i = s.hash & mask;
    while (slots_[i].size != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void IdSet::insert(std::string_view id) {
  if (id.empty()) return;
  if ((used_ + 1) * 2 > slots_.size()) grow();
  const std::uint64_t hash = hash_of(id);
  Slot& s = slots_[find(id, hash)];
  if (s.size != 0) return;
  s = Slot{hash, arena_.size(), static_cast<std::uint32_t>(id.size())};
  arena_.append(id);
  ++used_;
}

bool IdSet::contains(std::string_view id) const {
  if (slots_.empty() || id.empty()) return false;
  return slots_[find(id, hash_of(id))].size != 0;
}

}  // namespace chorus::projections
