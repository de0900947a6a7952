#include "projections/view_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <cassert>
#include <filesystem>
#include <vector>

#include "events/invariant.h"

namespace chorus::projections {
namespace {

Error io(const rocksdb::Status& s, std::string_view what) {
  return Error{errc::io_error, std::string(what) + ": " + s.ToString()};
}

// Counter rows are merged, not read and rewritten: a count changes with no read at all.
class CounterAdd final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    const std::uint64_t base = existing == nullptr ? 0 : from_be64(existing->ToStringView());
    *new_value = be64(base + from_be64(value.ToStringView()));
    return true;
  }
  const char* Name() const override { return "chorus.CounterAdd"; }
};

// One block cache for every view store of the process (the live one and a rebuild's), so that
// the rows read most (state rows, the index rows of first and last pages, bucket sets, the
// fences a batch looks up) stay decompressed in memory. RocksDB's own default is 8 MB a store,
// about 1% of the views of a 2.4M-event log (889 MB on disk, ticket_list_bench). The cache
// fills as blocks are read, up to about this much (blocks in use by a read may hold it over).
constexpr std::size_t kBlockCacheBytes = std::size_t{1} << 30;
const std::shared_ptr<rocksdb::Cache>& block_cache() {
  static const std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  return cache;
}

}  // namespace

Result<std::shared_ptr<ViewStore>> ViewStore::open(const std::string& dir, OpenMode mode) {
  std::error_code ec;
  if (mode == OpenMode::read_only && !std::filesystem::is_directory(dir, ec)) {
    return fail(errc::io_error, "no views in " + dir);
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail(errc::io_error, "creating " + dir + ": " + ec.message());
  rocksdb::Options options;
  options.create_if_missing = true;
  options.merge_operator = std::make_shared<CounterAdd>();
  // Projectors read single rows (a ticket's state) on every event: bloom filters spare most
  // of those lookups a trip through the table files.
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_cache = block_cache();
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.write_buffer_size = 64 << 20;
  // Tickers only (block cache hits for the metrics): histograms and timers would read the
  // clock on every read and write of the projectors.
  options.statistics = rocksdb::CreateDBStatistics();
  options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  // A read-only opening is an auditor's (chorus-replay): the views' position is the anchor
  // that shows a log which lost its tail, so a damaged write-ahead log must not pass for a
  // shorter one. Only an unfinished last record (a running server's, or a crash's) is let go.
  if (mode == OpenMode::read_only) {
    options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  }
  rocksdb::DB* raw = nullptr;
  // A read-only instance takes no lock, so an auditor may open the views of a running server;
  // it sees them as they were when opened.
  auto s = mode == OpenMode::read_only ? rocksdb::DB::OpenForReadOnly(options, dir, &raw)
                                       : rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) {
    Error e = io(s, "opening views in " + dir);
    if (s.IsCorruption()) e.code = errc::corruption;
    return std::unexpected(std::move(e));
  }
  std::shared_ptr<ViewStore> store(new ViewStore());
  store->dir_ = dir;
  store->db_.reset(raw);
  store->statistics_ = options.statistics;
  return store;
}

ViewStore::~ViewStore() {
  if (db_) db_->Close();
}

ViewStore::Snapshot::~Snapshot() { db_->ReleaseSnapshot(at_); }

std::unique_ptr<ViewStore::Snapshot> ViewStore::snapshot() const {
  return std::unique_ptr<Snapshot>(new Snapshot(db_.get(), db_->GetSnapshot()));
}

Result<std::optional<std::string>> ViewStore::get(std::string_view key, const Snapshot* at) const {
  std::string value;
  rocksdb::ReadOptions ro;
  if (at != nullptr) ro.snapshot = at->at_;
  auto s = db_->Get(ro, rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>{};
  if (!s.ok()) return std::unexpected(io(s, "reading a view"));
  return std::optional<std::string>{std::move(value)};
}

namespace {

// The bounds of a prefix scan: the prefix itself, and the first key past every key it starts
// (empty when there is none).
struct PrefixBounds {
  std::string lower;
  std::string upper;
  explicit PrefixBounds(std::string_view prefix) : lower(prefix), upper(prefix) {
    while (!upper.empty() && static_cast<unsigned char>(upper.back()) == 0xFF) upper.pop_back();
    if (!upper.empty()) upper.back() = static_cast<char>(upper.back() + 1);
  }
};

// Walks `it` over the prefix from `start` as ViewStore::scan documents. The prefix is checked
// here too, besides the read options' bounds.
Result<void> walk(rocksdb::Iterator& it, const PrefixBounds& b, std::string_view prefix,
                  std::string_view start, bool reverse,
                  const std::function<bool(std::string_view, std::string_view)>& visit) {
  if (reverse) {
    if (!start.empty()) {
      it.SeekForPrev(rocksdb::Slice(start.data(), start.size()));
    } else if (b.upper.empty()) {
      it.SeekToLast();
    } else {
      it.SeekForPrev(b.upper);
      if (it.Valid() && it.key().ToStringView() >= b.upper) it.Prev();
    }
  } else {
    it.Seek(start.empty() ? rocksdb::Slice(b.lower) : rocksdb::Slice(start.data(), start.size()));
  }
  for (; it.Valid(); reverse ? it.Prev() : it.Next()) {
    const std::string_view key = it.key().ToStringView();
    if (!key.starts_with(prefix)) break;
    if (!visit(key, it.value().ToStringView())) break;
  }
  if (!it.status().ok()) return std::unexpected(io(it.status(), "scanning a view"));
  return {};
}

}  // namespace

Result<void> ViewStore::scan(std::string_view prefix, std::string_view start, bool reverse,
                             const std::function<bool(std::string_view, std::string_view)>& visit,
                             const Snapshot* at) const {
  // Bounds keep RocksDB from stepping outside the prefix (and over tombstones beyond it).
  PrefixBounds b(prefix);
  rocksdb::Slice lower_slice(b.lower), upper_slice(b.upper);
  rocksdb::ReadOptions ro;
  if (at != nullptr) ro.snapshot = at->at_;
  ro.iterate_lower_bound = &lower_slice;
  if (!b.upper.empty()) ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  return walk(*it, b, prefix, start, reverse, visit);
}

Result<std::vector<std::optional<std::string>>> ViewStore::multi_get(
    const std::vector<std::string>& keys) const {
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<std::string> values;
  auto statuses = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
  std::vector<std::optional<std::string>> out(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) return std::unexpected(io(statuses[i], "reading a view"));
    out[i] = std::move(values[i]);
  }
  return out;
}

std::uint64_t ViewStore::int_property(const char* name) const {
  std::uint64_t value = 0;
  return db_->GetIntProperty(name, &value) ? value : 0;
}

events::StoreStats ViewStore::stats() const {
  events::StoreStats s;
  s.block_cache_hits = statistics_->getTickerCount(rocksdb::BLOCK_CACHE_HIT);
  s.block_cache_misses = statistics_->getTickerCount(rocksdb::BLOCK_CACHE_MISS);
  std::uint64_t value = 0;
  if (db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kEstimatePendingCompactionBytes,
                                    &value)) {
    s.pending_compaction_bytes = value;
  }
  if (db_->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &value)) {
    s.write_stopped = value != 0;
  }
  return s;
}

Result<std::string> ViewStore::position() const {
  auto v = get(kPositionKey);
  if (!v) return std::unexpected(v.error());
  return v->value_or("");
}

ViewBatch::ViewBatch(const ViewStore& store, KeySetCache* key_sets)
    : store_(store), cache_(key_sets) {}
ViewBatch::~ViewBatch() {
  // Sets taken and never given back: their prefixes may hold keys the cache no longer knows.
  if (cache_ != nullptr && !key_sets_.empty()) cache_->complete_ = false;
}

namespace {

// A counter row after `delta` is added over `base` (absent: 0), as CounterAdd makes it.
std::string counted(std::optional<std::string_view> base, std::int64_t delta) {
  return be64(from_be64(base.value_or(std::string_view())) + static_cast<std::uint64_t>(delta));
}

}  // namespace

std::optional<std::string_view> ViewBatch::resolved(const Entry& e,
                                                    std::optional<std::string_view> stored,
                                                    std::string& scratch) {
  std::optional<std::string_view> value = stored;
  if (e.base == Entry::Base::put) value = e.value;
  if (e.base == Entry::Base::del) value.reset();
  if (e.counted) value = scratch = counted(value, e.count);
  return value;
}

Result<std::optional<std::string>> ViewBatch::get(std::string_view key) const {
  const auto it = entries_.find(key);
  if (it == entries_.end()) return store_.get(key);
  Result<std::optional<std::string>> stored = std::optional<std::string>();
  if (it->second.base == Entry::Base::store) {  // the store's row shows through
    stored = store_.get(key);
    if (!stored) return stored;
  }
  std::string scratch;
  const auto value = resolved(it->second, *stored, scratch);
  return value ? std::optional<std::string>(*value) : std::nullopt;
}

// The batch's entries are merged over a store iterator here, the store's side bounded by the
// read options and the batch's side by the prefix check: a scan never leaves its prefix on
// either side, however many keys the batch deleted next to it (RocksDB's own merge of a batch
// over its base, NewIteratorWithBase in 7.8, walked back over every deleted key before a
// prefix; issue 6's note).
Result<void> ViewBatch::scan(
    std::string_view prefix, std::string_view start, bool reverse,
    const std::function<bool(std::string_view, std::string_view)>& visit) const {
  PrefixBounds b(prefix);
  rocksdb::Slice lower_slice(b.lower), upper_slice(b.upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  if (!b.upper.empty()) ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> base(store_.db()->NewIterator(ro));
  // The batch's side: `m` is its current entry while `in_map` holds.
  auto m = entries_.end();
  bool in_map = false;
  auto back_from = [&](Entries::const_iterator past) {  // the entry before `past`, if any
    in_map = past != entries_.begin();
    if (in_map) m = std::prev(past);
  };
  // A start outside the prefix reads the whole prefix, as ViewStore::scan does.
  const bool past_end = !b.upper.empty() && start >= std::string_view(b.upper);
  if (reverse && (start.empty() || past_end)) {
    if (b.upper.empty()) {
      base->SeekToLast();
      back_from(entries_.end());
    } else {
      base->SeekForPrev(upper_slice);
      if (base->Valid() && base->key().compare(upper_slice) >= 0) base->Prev();
      back_from(entries_.lower_bound(std::string_view(b.upper)));
    }
  } else if (reverse) {
    base->SeekForPrev(rocksdb::Slice(start.data(), start.size()));
    back_from(entries_.upper_bound(start));
  } else {
    const std::string_view from = start < std::string_view(b.lower) ? b.lower : start;
    base->Seek(rocksdb::Slice(from.data(), from.size()));
    m = entries_.lower_bound(from);
    in_map = m != entries_.end();
  }
  auto step_map = [&] {
    if (!reverse) {
      in_map = ++m != entries_.end();
    } else {
      back_from(m);
    }
  };
  std::string scratch;
  for (;;) {
    const bool from_base = base->Valid() && base->key().ToStringView().starts_with(prefix);
    const bool from_map = in_map && std::string_view(m->first).starts_with(prefix);
    if (!from_base && !from_map) break;
    std::string_view key;
    bool use_base = from_base, use_map = from_map;
    if (from_base && from_map) {
      const std::string_view bk = base->key().ToStringView();
      const std::string_view mk = m->first;
      key = reverse ? std::max(bk, mk) : std::min(bk, mk);
      use_base = bk == key;
      use_map = mk == key;
    } else {
      key = from_base ? base->key().ToStringView() : std::string_view(m->first);
    }
    std::optional<std::string_view> value;
    if (use_base) value = base->value().ToStringView();
    if (use_map) value = resolved(m->second, value, scratch);
    const bool go_on = !value || visit(key, *value);
    if (use_base) reverse ? base->Prev() : base->Next();
    if (use_map) step_map();
    if (!go_on) break;
  }
  if (!base->status().ok()) return std::unexpected(io(base->status(), "scanning a view"));
  return {};
}

Result<const ViewBatch::KeySet*> ViewBatch::keys_under(std::string_view prefix) {
  if (auto it = key_sets_.find(prefix); it != key_sets_.end()) return &it->second;
  if (cache_ != nullptr) {
    if (auto cached = cache_->sets_.find(prefix); cached != cache_->sets_.end()) {
      auto node = cache_->sets_.extract(cached);
      cache_->keys_ -= node.mapped().size();
      return &key_sets_.insert(std::move(node)).position->second;
    }
  }
  KeySet keys;
  auto read_all = [&](KeySet& into) {
    return scan(prefix, "", false, [&](std::string_view key, std::string_view) {
      into.emplace_hint(into.end(), key.substr(prefix.size()));
      return true;
    });
  };
  if (cache_ != nullptr && cache_->complete_) {
    // The store holds nothing under a prefix the cache has never held: only this batch may.
    std::string scratch;
    for (auto it = entries_.lower_bound(prefix);
         it != entries_.end() && std::string_view(it->first).starts_with(prefix); ++it) {
      if (resolved(it->second, std::nullopt, scratch)) {
        keys.emplace_hint(keys.end(), std::string_view(it->first).substr(prefix.size()));
      }
    }
#ifndef NDEBUG
    KeySet scanned;
    CHORUS_DEBUG_CHECK(read_all(scanned) && scanned == keys,
                       "a key set read from the batch alone differs from the store's");
#endif
  } else if (auto ok = read_all(keys); !ok) {
    return std::unexpected(ok.error());
  }
  auto added = key_sets_.emplace(std::string(prefix), std::move(keys)).first;
  // A nested prefix would leave one set blind to the other's writes (a caller's bug).
  assert(added == key_sets_.begin() || !prefix.starts_with(std::prev(added)->first));
  assert(std::next(added) == key_sets_.end() ||
         !std::string_view(std::next(added)->first).starts_with(prefix));
  return &added->second;
}

namespace {

// The set of `sets` whose prefix `key` starts with; end() when none. Prefixes do not nest: the
// greatest one not after the key is the only one it may start with.
template <class Sets>
auto set_holding(Sets& sets, std::string_view key) {
  auto it = sets.upper_bound(key);
  if (it == sets.begin()) return sets.end();
  --it;
  return key.starts_with(it->first) ? it : sets.end();
}

}  // namespace

ViewBatch::KeySet* ViewBatch::loaded_keys_for(std::string_view key, std::string_view& suffix) {
  auto it = set_holding(key_sets_, key);
  if (it == key_sets_.end()) {
    // A committed set this batch has not taken yet: taken now, so that the cache never holds
    // a set this batch's writes made stale.
    if (cache_ == nullptr || key.empty() ||
        !cache_->first_bytes_[static_cast<unsigned char>(key.front())]) {
      return nullptr;
    }
    auto cached = set_holding(cache_->sets_, key);
    if (cached == cache_->sets_.end()) return nullptr;
    auto node = cache_->sets_.extract(cached);
    cache_->keys_ -= node.mapped().size();
    it = key_sets_.insert(std::move(node)).position;
  }
  suffix = key.substr(it->first.size());
  return &it->second;
}

void ViewBatch::commit_key_sets() {
  if (cache_ == nullptr) return;
  while (!key_sets_.empty()) {
    auto node = key_sets_.extract(key_sets_.begin());
    cache_->keys_ += node.mapped().size();
    if (node.key().empty()) {
      std::fill(std::begin(cache_->first_bytes_), std::end(cache_->first_bytes_), true);
    } else {
      cache_->first_bytes_[static_cast<unsigned char>(node.key().front())] = true;
    }
    cache_->sets_.insert(std::move(node));
  }
  if (cache_->keys_ > cache_->max_keys_) {
    cache_->sets_.clear();
    cache_->keys_ = 0;
    cache_->complete_ = false;
    std::fill(std::begin(cache_->first_bytes_), std::end(cache_->first_bytes_), false);
  }
}

void ViewBatch::put(std::string_view key, std::string_view value) {
  Entry& e = change(key, /*overwrite=*/true);
  e.base = Entry::Base::put;
  e.value.assign(value);
  e.counted = false;
  e.count = 0;
  std::string_view suffix;
  if (auto* keys = loaded_keys_for(key, suffix)) keys->emplace(suffix);
}

void ViewBatch::del(std::string_view key) {
  Entry& e = change(key, /*overwrite=*/true);
  e.base = Entry::Base::del;
  e.value.clear();
  e.counted = false;
  e.count = 0;
  std::string_view suffix;
  if (auto* keys = loaded_keys_for(key, suffix)) {
    if (auto found = keys->find(suffix); found != keys->end()) keys->erase(found);
  }
}

void ViewBatch::add(std::string_view key, std::int64_t delta) {
  Entry& e = change(key, /*overwrite=*/false);
  e.count += delta;
  e.counted = true;
}

ViewBatch::Entry& ViewBatch::change(std::string_view key, bool overwrite) {
  auto it = entries_.lower_bound(key);
  if (it == entries_.end() || it->first != key) {
    it = entries_.emplace_hint(it, std::piecewise_construct, std::forward_as_tuple(key),
                               std::forward_as_tuple());
    if (save_point_) undo_.emplace_back(it, std::nullopt);
  } else if (save_point_ && it->second.epoch != epoch_) {
    if (overwrite) {
      undo_.emplace_back(it, std::move(it->second));
    } else {
      undo_.emplace_back(it, it->second);
    }
  }
  it->second.epoch = epoch_;
  return it->second;
}

Result<rocksdb::WriteBatch> ViewBatch::folded() const {
  rocksdb::WriteBatch out;
  rocksdb::Status s;
  for (const auto& [key, e] : entries_) {
    const rocksdb::Slice k(key.data(), key.size());
    switch (e.base) {
      case Entry::Base::put:
        s = e.counted ? out.Put(k, counted(e.value, e.count)) : out.Put(k, e.value);
        break;
      case Entry::Base::del:
        s = e.counted ? out.Put(k, counted(std::nullopt, e.count)) : out.Delete(k);
        break;
      case Entry::Base::store:
        // Only counted: the store's row is unknown here, the merge operator adds to it.
        if (e.counted) s = out.Merge(k, be64(static_cast<std::uint64_t>(e.count)));
        break;
    }
    if (!s.ok()) return std::unexpected(io(s, "folding a batch of views"));
  }
  return out;
}

void ViewBatch::note(std::string_view key, std::string_view value) {
  auto it = notes_.lower_bound(key);
  if (it == notes_.end() || it->first != key) {
    it = notes_.emplace_hint(it, std::string(key), std::string(value));
    if (save_point_) notes_undo_.emplace_back(it, std::nullopt);
    return;
  }
  // Few notes are rewritten: each keeps its value at the save point, however often.
  if (save_point_) notes_undo_.emplace_back(it, it->second);
  it->second.assign(value);
}

void ViewBatch::set_save_point() {
  ++epoch_;
  undo_.clear();
  notes_undo_.clear();
  save_point_ = true;
}

namespace {

// Puts each value of `map` back as `undo` recorded it before its first change since the save
// point (nullopt: created since), latest first; empties `undo`.
template <class Map, class Undo>
void undo_changes(Map& map, Undo& undo) {
  for (auto u = undo.rbegin(); u != undo.rend(); ++u) {
    if (u->second) {
      u->first->second = std::move(*u->second);
    } else {
      map.erase(u->first);
    }
  }
  undo.clear();
}

}  // namespace

void ViewBatch::rollback_to_save_point() {
  if (!save_point_) return;  // none left: nothing to drop
  undo_changes(entries_, undo_);
  undo_changes(notes_, notes_undo_);
  save_point_ = false;
  // Sets taken from the cache may hold keys the dropped changes wrote or deleted: gone, read
  // again from the store on the next call, so the cache can no longer assume what it lacks is
  // empty. Without sets taken (a ticket's lists move in finish(), after the events), it can.
  if (cache_ != nullptr && !key_sets_.empty()) cache_->complete_ = false;
  key_sets_.clear();
}

}  // namespace chorus::projections
