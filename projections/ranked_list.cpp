#include "projections/ranked_list.h"

namespace chorus::projections {
namespace {

Result<void> add_count(ViewBatch& batch, const RankedList& list, const std::string& key,
                       std::int64_t delta) {
  if (list.merge_counts) {
    batch.add(key, delta);
    return {};
  }
  auto v = batch.get(key);
  if (!v) return std::unexpected(v.error());
  const std::uint64_t before = v->has_value() && (*v)->size() == 8 ? from_be64(**v) : 0;
  batch.put(key, be64(before + static_cast<std::uint64_t>(delta)));
  return {};
}

// Keeps the head row on the first row's suffix: `suffix` comes in (inserted) or goes out.
Result<void> move_head(ViewBatch& batch, const RankedList& list, const std::string& suffix,
                       bool inserted) {
  if (list.head.empty()) return {};
  auto head = batch.get(list.head);
  if (!head) return std::unexpected(head.error());
  if (inserted) {
    if (!head->has_value() || suffix < **head) batch.put(list.head, suffix);
    return {};
  }
  if (!head->has_value() || **head != suffix) return {};
  // The first row leaves: the next live row (the caller may not have deleted it yet) is the
  // new head. Rows removed out of order after it are the only tombstones walked here.
  const std::string own = list.rows + suffix;
  std::optional<std::string> next;
  auto ok = batch.scan(list.rows, own, false, [&](std::string_view key, std::string_view) {
    if (key == own) return true;
    next.emplace(key.substr(list.rows.size()));
    return false;
  });
  if (!ok) return std::unexpected(ok.error());
  if (next) {
    batch.put(list.head, *next);
  } else {
    batch.del(list.head);
  }
  return {};
}

}  // namespace

// The list's fences (one row in kFenceEvery) are read once per batch and then looked up in
// memory: a batch applies many events to the same lists, and a reverse seek through every level
// of the store for each took over a third of a rebuild's time (perf, replay_bench --parts
// rebuild).
Result<std::string> ranked_fence_before(ViewBatch& batch, const RankedList& list,
                                        const std::string& suffix) {
  auto fences = batch.keys_under(list.fences);
  if (!fences) return std::unexpected(fences.error());
  auto it = (*fences)->lower_bound(suffix);
  if (it == (*fences)->begin()) return std::string();
  return *std::prev(it);
}

Result<RankedRows> ranked_rows_to_fence(const ViewBatch& batch, const RankedList& list,
                                        const std::string& suffix) {
  const std::string own = list.rows + suffix;
  RankedRows rows;
  auto ok = batch.scan(list.rows, own, false, [&](std::string_view key, std::string_view value) {
    if (key == own) return true;
    const std::string_view row = key.substr(list.rows.size());
    if (list.is_fence(row, value)) return false;
    rows.emplace_back(row, value);
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  return rows;
}

bool is_fence_id(std::string_view id) noexcept {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : id) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h % kFenceEvery == 0;
}

Result<void> ranked_insert(ViewBatch& batch, const RankedList& list, const std::string& suffix,
                           std::string_view value) {
  if (auto ok = move_head(batch, list, suffix, /*inserted=*/true); !ok) return ok;
  auto before = ranked_fence_before(batch, list, suffix);
  if (!before) return std::unexpected(before.error());
  if (!list.is_fence(suffix, value)) return add_count(batch, list, list.buckets + *before, 1);
  // A new fence splits the bucket it lands in: the rows after it move to its own bucket.
  auto moved = ranked_rows_to_fence(batch, list, suffix);
  if (!moved) return std::unexpected(moved.error());
  batch.put(list.fences + suffix, "");
  batch.put(list.buckets + suffix, be64(moved->size() + 1));
  return add_count(batch, list, list.buckets + *before, -static_cast<std::int64_t>(moved->size()));
}

Result<void> ranked_remove(ViewBatch& batch, const RankedList& list, const std::string& suffix,
                           std::string_view value) {
  if (auto ok = move_head(batch, list, suffix, /*inserted=*/false); !ok) return ok;
  std::int64_t delta = -1;
  if (list.is_fence(suffix, value)) {
    // The fence's bucket joins the one before.
    batch.del(list.fences + suffix);
    batch.del(list.buckets + suffix);
    auto moved = ranked_rows_to_fence(batch, list, suffix);
    if (!moved) return std::unexpected(moved.error());
    delta = static_cast<std::int64_t>(moved->size());
  }
  auto before = ranked_fence_before(batch, list, suffix);
  if (!before) return std::unexpected(before.error());
  return add_count(batch, list, list.buckets + *before, delta);
}

Result<std::optional<std::string>> ranked_key_at(const ViewStore& store, const RankedList& list,
                                                 std::uint64_t rank, std::uint64_t total) {
  std::optional<std::string> bucket;  // suffix of the bucket's fence ("" for the head)
  std::uint64_t skip = 0;
  const bool from_start = rank < total / 2;
  std::uint64_t passed = 0;  // rows in the buckets passed
  auto ok =
      store.scan(list.buckets, "", !from_start, [&](std::string_view key, std::string_view v) {
        const std::uint64_t n = v.size() == 8 ? from_be64(v) : 0;
        // From the end, the bucket holds ranks total-passed-n .. total-passed-1.
        if (from_start ? passed + n > rank : passed + n >= total - rank) {
          bucket.emplace(key.substr(list.buckets.size()));
          skip = from_start ? rank - passed : rank + passed + n - total;
          return false;
        }
        passed += n;
        return true;
      });
  if (!ok) return std::unexpected(ok.error());
  if (!bucket) return std::optional<std::string>{};
  std::string start = bucket->empty() ? "" : list.rows + *bucket;
  if (bucket->empty() && !list.head.empty()) {
    // Past the tombstones of the rows that left the head.
    auto head = store.get(list.head);
    if (!head) return std::unexpected(head.error());
    if (head->has_value()) start = list.rows + **head;
  }
  std::optional<std::string> found;
  ok = store.scan(list.rows, start, false, [&](std::string_view key, std::string_view) {
    if (skip > 0) {
      --skip;
      return true;
    }
    found.emplace(key);
    return false;
  });
  if (!ok) return std::unexpected(ok.error());
  return found;
}

Result<std::uint64_t> ranked_rank_of(const ViewStore& store, const RankedList& list,
                                     const std::string& suffix) {
  // The fence at or before `suffix` ("" for the head bucket).
  std::string fence;
  auto ok = store.scan(list.fences, list.fences + suffix, true,
                       [&](std::string_view key, std::string_view) {
                         fence.assign(key.substr(list.fences.size()));
                         return false;
                       });
  if (!ok) return std::unexpected(ok.error());
  // The buckets before that fence, the head bucket ("", first in key order) included.
  std::uint64_t rank = 0;
  if (!fence.empty()) {
    ok = store.scan(list.buckets, "", false, [&](std::string_view key, std::string_view v) {
      if (key.substr(list.buckets.size()) >= fence) return false;
      rank += v.size() == 8 ? from_be64(v) : 0;
      return true;
    });
    if (!ok) return std::unexpected(ok.error());
  }
  std::string start = fence.empty() ? "" : list.rows + fence;
  if (fence.empty() && !list.head.empty()) {
    auto head = store.get(list.head);
    if (!head) return std::unexpected(head.error());
    if (head->has_value()) start = list.rows + **head;
  }
  const std::string end = list.rows + suffix;
  ok = store.scan(list.rows, start, false, [&](std::string_view key, std::string_view) {
    if (key >= end) return false;
    ++rank;
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  return rank;
}

}  // namespace chorus::projections
