#include "projections/view_store.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/write_batch_with_index.h>

#include <algorithm>
#include <cassert>
#include <filesystem>
#include <vector>

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
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.write_buffer_size = 64 << 20;
  // Tickers only (block cache hits for the metrics): histograms and timers would read the
  // clock on every read and write of the projectors.
  options.statistics = rocksdb::CreateDBStatistics();
  options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  rocksdb::DB* raw = nullptr;
  // A read-only instance takes no lock, so an auditor may open the views of a running server;
  // it sees them as they were when opened.
  auto s = mode == OpenMode::read_only ? rocksdb::DB::OpenForReadOnly(options, dir, &raw)
                                       : rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) return std::unexpected(io(s, "opening views in " + dir));
  std::shared_ptr<ViewStore> store(new ViewStore());
  store->dir_ = dir;
  store->db_.reset(raw);
  store->statistics_ = options.statistics;
  return store;
}

ViewStore::~ViewStore() {
  if (db_) db_->Close();
}

Result<std::optional<std::string>> ViewStore::get(std::string_view key) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &value);
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

Result<void> ViewStore::scan(
    std::string_view prefix, std::string_view start, bool reverse,
    const std::function<bool(std::string_view, std::string_view)>& visit) const {
  // Bounds keep RocksDB from stepping outside the prefix (and over tombstones beyond it).
  PrefixBounds b(prefix);
  rocksdb::Slice lower_slice(b.lower), upper_slice(b.upper);
  rocksdb::ReadOptions ro;
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

ViewBatch::ViewBatch(const ViewStore& store)
    : store_(store),
      batch_(std::make_unique<rocksdb::WriteBatchWithIndex>(rocksdb::BytewiseComparator(), 0,
                                                            /*overwrite_key=*/false)) {}
ViewBatch::~ViewBatch() = default;

Result<std::optional<std::string>> ViewBatch::get(std::string_view key) const {
  settle(key);
  std::string value;
  auto s = batch_->GetFromBatchAndDB(store_.db(), rocksdb::ReadOptions(),
                                     rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>{};
  if (!s.ok()) return std::unexpected(io(s, "reading a view"));
  return std::optional<std::string>{std::move(value)};
}

// RocksDB's own merge of a batch over its base (NewIteratorWithBase, 7.8) skips the batch's
// deleted keys one by one without looking at the scan's bounds: a reverse scan that runs out
// of its prefix walked back over every key the batch had deleted before it (a fence lookup
// behind a batch of decisions cost thousands of steps; issue 6's note). So the batch's entries
// are merged here, the base bounded by the read options and the batch's entries by the prefix
// check: a scan never leaves its prefix on either side.
Result<void> ViewBatch::scan(
    std::string_view prefix, std::string_view start, bool reverse,
    const std::function<bool(std::string_view, std::string_view)>& visit) const {
  settle_prefix(prefix);
  PrefixBounds b(prefix);
  rocksdb::Slice lower_slice(b.lower), upper_slice(b.upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  if (!b.upper.empty()) ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> base(store_.db()->NewIterator(ro));
  std::unique_ptr<rocksdb::WBWIIterator> delta(batch_->NewIterator());
  // A start outside the prefix reads the whole prefix, as ViewStore::scan does.
  const bool past_end = !b.upper.empty() && start >= std::string_view(b.upper);
  if (reverse && (start.empty() || past_end)) {
    if (b.upper.empty()) {
      base->SeekToLast();
      delta->SeekToLast();
    } else {
      base->SeekForPrev(upper_slice);
      if (base->Valid() && base->key().compare(upper_slice) >= 0) base->Prev();
      delta->SeekForPrev(upper_slice);
      if (delta->Valid() && delta->Entry().key.compare(upper_slice) >= 0) delta->Prev();
    }
  } else if (reverse) {
    const rocksdb::Slice from(start.data(), start.size());
    base->SeekForPrev(from);
    delta->SeekForPrev(from);
  } else {
    const rocksdb::Slice from = start < std::string_view(b.lower)
                                    ? lower_slice
                                    : rocksdb::Slice(start.data(), start.size());
    base->Seek(from);
    delta->Seek(from);
  }
  auto step = [reverse](auto& it) { reverse ? it.Prev() : it.Next(); };
  std::string key;
  std::string merged;
  std::vector<rocksdb::WriteEntry> entries;  // one key's, in the order they were written
  for (;;) {
    const bool in_base = base->Valid() && base->key().ToStringView().starts_with(prefix);
    const bool in_delta = delta->Valid() && delta->Entry().key.ToStringView().starts_with(prefix);
    if (!in_base && !in_delta) break;
    if (in_base && in_delta) {
      const std::string_view bk = base->key().ToStringView();
      const std::string_view dk = delta->Entry().key.ToStringView();
      key.assign(reverse ? std::max(bk, dk) : std::min(bk, dk));
    } else {
      key.assign(in_base ? base->key().ToStringView() : delta->Entry().key.ToStringView());
    }
    const bool from_base = in_base && base->key().ToStringView() == key;
    entries.clear();
    while (delta->Valid() && delta->Entry().key.ToStringView() == key) {
      entries.push_back(delta->Entry());
      step(*delta);
    }
    if (reverse) std::reverse(entries.begin(), entries.end());
    // The row as the batch leaves it: the base's value, then each entry in turn.
    std::optional<std::string_view> value;
    if (from_base) value = base->value().ToStringView();
    for (const auto& e : entries) {
      switch (e.type) {
        case rocksdb::kPutRecord:
          value = e.value.ToStringView();
          break;
        case rocksdb::kDeleteRecord:
        case rocksdb::kSingleDeleteRecord:
          value.reset();
          break;
        case rocksdb::kMergeRecord: {
          // The one merge operator of the views (CounterAdd): a counter plus a delta.
          const std::uint64_t before = value && value->size() == 8 ? from_be64(*value) : 0;
          const std::uint64_t delta_value =
              e.value.size() == 8 ? from_be64(e.value.ToStringView()) : 0;
          merged = be64(before + delta_value);
          value = merged;
          break;
        }
        default:
          break;
      }
    }
    const bool go_on = !value || visit(key, *value);
    if (from_base) step(*base);
    if (!go_on) break;
  }
  if (!base->status().ok()) return std::unexpected(io(base->status(), "scanning a view"));
  if (!delta->status().ok()) return std::unexpected(io(delta->status(), "scanning a view"));
  return {};
}

Result<const ViewBatch::KeySet*> ViewBatch::keys_under(std::string_view prefix) {
  if (auto it = key_sets_.find(prefix); it != key_sets_.end()) return &it->second;
  KeySet keys;
  auto ok = scan(prefix, "", false, [&](std::string_view key, std::string_view) {
    keys.emplace_hint(keys.end(), key.substr(prefix.size()));
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  auto added = key_sets_.emplace(std::string(prefix), std::move(keys)).first;
  // A nested prefix would leave one set blind to the other's writes (a caller's bug).
  assert(added == key_sets_.begin() || !prefix.starts_with(std::prev(added)->first));
  assert(std::next(added) == key_sets_.end() ||
         !std::string_view(std::next(added)->first).starts_with(prefix));
  return &added->second;
}

ViewBatch::KeySet* ViewBatch::loaded_keys_for(std::string_view key, std::string_view& suffix) {
  if (key_sets_.empty()) return nullptr;
  // Prefixes do not nest: the greatest one not after the key is the only one it may start with.
  auto it = key_sets_.upper_bound(key);
  if (it == key_sets_.begin()) return nullptr;
  --it;
  if (!key.starts_with(it->first)) return nullptr;
  suffix = key.substr(it->first.size());
  return &it->second;
}

void ViewBatch::put(std::string_view key, std::string_view value) {
  settle(key);
  batch_->Put(rocksdb::Slice(key.data(), key.size()), rocksdb::Slice(value.data(), value.size()));
  std::string_view suffix;
  if (auto* keys = loaded_keys_for(key, suffix)) keys->emplace(suffix);
}

void ViewBatch::del(std::string_view key) {
  settle(key);
  batch_->Delete(rocksdb::Slice(key.data(), key.size()));
  std::string_view suffix;
  if (auto* keys = loaded_keys_for(key, suffix)) {
    if (auto found = keys->find(suffix); found != keys->end()) keys->erase(found);
  }
}

void ViewBatch::add(std::string_view key, std::int64_t delta) {
  auto it = counts_.find(key);
  const bool created = it == counts_.end();
  if (created) it = counts_.emplace(std::string(key), Count{}).first;
  remember(it, created);
  it->second.delta += delta;
  it->second.pending = true;
}

void ViewBatch::remember(Counts::iterator it, bool created) const {
  if (created) {
    undo_.emplace_back(it, std::nullopt);
  } else if (it->second.epoch != epoch_) {
    undo_.emplace_back(it, it->second);
  }
  it->second.epoch = epoch_;
}

void ViewBatch::write_out(Counts::iterator it) const {
  if (!it->second.pending) return;
  remember(it, false);
  batch_->Merge(rocksdb::Slice(it->first.data(), it->first.size()),
                be64(static_cast<std::uint64_t>(it->second.delta)));
  it->second.delta = 0;
  it->second.pending = false;
}

void ViewBatch::settle(std::string_view key) const {
  if (counts_.empty()) return;
  if (auto it = counts_.find(key); it != counts_.end()) write_out(it);
}

void ViewBatch::settle_prefix(std::string_view prefix) const {
  for (auto it = counts_.lower_bound(prefix);
       it != counts_.end() && std::string_view(it->first).starts_with(prefix); ++it) {
    write_out(it);
  }
}

rocksdb::WriteBatchWithIndex& ViewBatch::raw() {
  for (auto it = counts_.begin(); it != counts_.end(); ++it) write_out(it);
  undo_.clear();
  counts_.clear();
  return *batch_;
}

Result<rocksdb::WriteBatch> ViewBatch::folded() {
  raw();
  rocksdb::WriteBatch out;
  rocksdb::Status s;
  std::unique_ptr<rocksdb::WBWIIterator> it(batch_->NewIterator());
  std::string key, value;
  // The index orders a key's entries as they were written.
  for (it->SeekToFirst(); it->Valid();) {
    key.assign(it->Entry().key.data(), it->Entry().key.size());
    enum class Base { none, put, del } base = Base::none;
    std::uint64_t sum = 0;
    bool counted = false;
    for (; it->Valid() && it->Entry().key.ToStringView() == key; it->Next()) {
      const rocksdb::WriteEntry e = it->Entry();
      if (e.type == rocksdb::kPutRecord) {
        base = Base::put;
        value.assign(e.value.data(), e.value.size());
        sum = 0;
        counted = false;
      } else if (e.type == rocksdb::kDeleteRecord || e.type == rocksdb::kSingleDeleteRecord) {
        base = Base::del;
        sum = 0;
        counted = false;
      } else if (e.type == rocksdb::kMergeRecord) {
        sum += from_be64(e.value.ToStringView());  // CounterAdd, the views' one merge operator
        counted = true;
      }
    }
    const rocksdb::Slice k(key);
    if (!counted) {
      if (base == Base::put) s = out.Put(k, value);
      if (base == Base::del) s = out.Delete(k);
    } else if (base == Base::none) {
      s = out.Merge(k, be64(sum));
    } else {
      // A count over a put (or over nothing, after a delete) is what CounterAdd makes of it.
      s = out.Put(k, be64((base == Base::put ? from_be64(value) : 0) + sum));
    }
    if (!s.ok()) return std::unexpected(io(s, "folding a batch of views"));
  }
  return out;
}

void ViewBatch::set_save_point() {
  batch_->SetSavePoint();
  ++epoch_;
  undo_.clear();
}

void ViewBatch::rollback_to_save_point() {
  if (!batch_->RollbackToSavePoint().ok()) return;  // no save point left: nothing to drop
  // Back to each counter's state at the save point; merges written since are gone with the
  // batch's entries.
  for (auto u = undo_.rbegin(); u != undo_.rend(); ++u) {
    if (u->second) {
      u->first->second = *u->second;
    } else {
      counts_.erase(u->first);
    }
  }
  undo_.clear();
  key_sets_.clear();  // they may hold keys the dropped changes wrote or deleted
}

}  // namespace chorus::projections
