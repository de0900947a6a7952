#pragma once
// A sorted list whose row at any rank is found in a few bounded scans, whatever the rank: some
// rows are fences (chosen by a hash of their id, so a rebuild lays out the same ones) and each
// fence's bucket counts the rows from it (included) to the next fence. The row at rank r is
// found by summing bucket counts from the nearer end (about n / (2 * kFenceEvery) small rows),
// then skipping inside one bucket (about kFenceEvery rows): the last page of a list costs what
// the first does. Used by the ticket lists (ticket_views.h) and the approvals inbox
// (structure_views.h); each names the three key prefixes in its own key layout.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "projections/view_store.h"

namespace chorus::projections {

inline constexpr std::uint64_t kFenceEvery = 64;

// Whether a row with this id is a fence: FNV-1a of the id is 0 modulo kFenceEvery. Depends on
// the id only. Pure, thread-safe.
[[nodiscard]] bool is_fence_id(std::string_view id) noexcept;

struct RankedList {
  std::string rows;     // rows + <suffix> -> the row (written by the owner)
  std::string fences;   // fences + <suffix> -> "" for each fence
  std::string buckets;  // buckets + <fence suffix> -> be64 rows of that bucket; `buckets` itself
                        // counts the rows before the first fence
  // Whether the row at `suffix` holding `value` is a fence; must give the same answer for a row
  // for as long as it is in the list (it decides from the row's id).
  bool (*is_fence)(std::string_view suffix, std::string_view value) = nullptr;
  // Bucket counts merged (ViewBatch::add: no read, but operands pile up until compaction) or
  // read and rewritten (one point read; for lists whose tail changes with every event).
  bool merge_counts = true;
  // When not empty: the key of a row holding the suffix of the list's first row, so that the
  // first bucket is read from its first live row on. Rows leave a queue mostly from its head
  // (the oldest request is decided first), and their tombstones, until compacted, would
  // otherwise be walked by every read of the first page (tests/bench/structure_views_bench.cpp:
  // p99 6.6 ms for a GS's first page right after 10,000 decisions). Costs one point read per
  // insert and removal.
  std::string head{};
};

// The suffix of the nearest fence before `suffix` (excluded), "" (the head bucket) when none;
// read-your-writes. The list's fences are read once per batch (ViewBatch::keys_under; once
// for many batches with the runner's KeySetCache), then looked up in memory. Fails with io_error.
// Changes nothing; not thread-safe (one batch).
[[nodiscard]] Result<std::string> ranked_fence_before(ViewBatch& batch, const RankedList& list,
                                                      const std::string& suffix);

// The rows after `suffix` up to the next fence (both excluded), as (suffix, value) in key
// order: the rows a fence at `suffix` takes into its bucket or gives back; read-your-writes.
// Fails with io_error. Changes nothing; not thread-safe (one batch).
using RankedRows = std::vector<std::pair<std::string, std::string>>;
[[nodiscard]] Result<RankedRows> ranked_rows_to_fence(const ViewBatch& batch,
                                                      const RankedList& list,
                                                      const std::string& suffix);

// Counts the row at `suffix` (holding `value`) into the list's buckets, splitting a bucket when
// the row is a fence, and moves the head row when the row comes first. The caller writes or
// deletes the row itself, before or after. Reads the nearest fence before it and, for a fence,
// the rows up to the next fence (read-your-writes); with a head row, that row, and on removal
// of the first row the rows up to the next live one.
// Fails with io_error when the store fails (the batch may then hold part of the change; the
// runner drops the batch). Not thread-safe (one batch).
[[nodiscard]] Result<void> ranked_insert(ViewBatch& batch, const RankedList& list,
                                         const std::string& suffix, std::string_view value);
// Counts the row out, merging a fence's bucket into the one before. As ranked_insert.
[[nodiscard]] Result<void> ranked_remove(ViewBatch& batch, const RankedList& list,
                                         const std::string& suffix, std::string_view value);

// The full key of the row at `rank` (0-based, key order) of the list, which holds `total` rows;
// nullopt when there is no such row. Fails with io_error. Changes nothing; thread-safe.
[[nodiscard]] Result<std::optional<std::string>> ranked_key_at(const ViewStore& store,
                                                               const RankedList& list,
                                                               std::uint64_t rank,
                                                               std::uint64_t total);

// The rank `suffix` has in the list, or would have if it were a row: the rows before it. From
// the bucket counts summed from the start of the list up to the fence at or before it (about
// n / kFenceEvery small rows) and the rows of that bucket up to it. Fails with io_error.
// Changes nothing; thread-safe.
[[nodiscard]] Result<std::uint64_t> ranked_rank_of(const ViewStore& store, const RankedList& list,
                                                   const std::string& suffix);

}  // namespace chorus::projections
