#pragma once
// The RocksDB database that holds every view, and the batch a projector writes into.
// Keys are laid out by each view's own header (ticket_views.h, ...); this file knows none.
// Reserved prefix: "\x00" (the store's own rows: applied position, set-aside events).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "events/big_endian.h"
#include "events/event_log.h"
#include "projections/errc.h"

namespace rocksdb {
class DB;
class Statistics;
class WriteBatch;
class WriteBatchWithIndex;
}  // namespace rocksdb

namespace chorus::projections {

class ViewStore {
 public:
  enum class OpenMode { read_write, read_only };
  // Opens or creates the store in `dir`. read_only opens an existing store without taking its
  // lock (a server may hold it), as it stands at that moment; writing to it then fails.
  // Fails with io_error (missing store in read_only mode, locked or unreadable files).
  [[nodiscard]] static Result<std::shared_ptr<ViewStore>> open(
      const std::string& dir, OpenMode mode = OpenMode::read_write);
  ~ViewStore();

  // Point read. nullopt when absent. Thread-safe.
  [[nodiscard]] Result<std::optional<std::string>> get(std::string_view key) const;

  // Visits rows whose key starts with `prefix`, from `start` (a full key; empty: the first or,
  // when reverse, the last row of the prefix), in key order or reverse key order, until
  // `visit` returns false. Thread-safe; sees one consistent snapshot.
  [[nodiscard]] Result<void> scan(
      std::string_view prefix, std::string_view start, bool reverse,
      const std::function<bool(std::string_view key, std::string_view value)>& visit) const;

  // Point reads of several keys at once (one RocksDB MultiGet): one value per key, nullopt
  // when absent. Fails with io_error when any read fails. Thread-safe.
  [[nodiscard]] Result<std::vector<std::optional<std::string>>> multi_get(
      const std::vector<std::string>& keys) const;

  // The applied log position (a consistency token), empty before the first event.
  [[nodiscard]] Result<std::string> position() const;

  // A RocksDB integer property of the store (e.g. "rocksdb.estimate-pending-compaction-bytes"),
  // 0 when unknown. Thread-safe.
  [[nodiscard]] std::uint64_t int_property(const char* name) const;

  // The store's block cache, compaction and write-stop figures, for metrics. Counters start at
  // 0 when the store opens (so again after a rebuild swaps a new one in). Never fails.
  // Thread-safe.
  [[nodiscard]] events::StoreStats stats() const;

  const std::string& dir() const { return dir_; }
  rocksdb::DB* db() const { return db_.get(); }

 private:
  ViewStore() = default;
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::shared_ptr<rocksdb::Statistics> statistics_;
};

// The changes of one batch of events, with read-your-writes: get() sees earlier puts of the
// same batch. Not thread-safe; one per runner.
class ViewBatch {
 public:
  explicit ViewBatch(const ViewStore& store);
  ~ViewBatch();
  [[nodiscard]] Result<std::optional<std::string>> get(std::string_view key) const;
  // As ViewStore::scan, over the store with this batch's changes on top (counter merges
  // resolved). Never steps outside the prefix, however many keys the batch deleted next to it.
  // Fails with io_error when the store fails. Changes nothing. Not thread-safe.
  [[nodiscard]] Result<void> scan(
      std::string_view prefix, std::string_view start, bool reverse,
      const std::function<bool(std::string_view key, std::string_view value)>& visit) const;
  // The keys under `prefix` (their suffixes after it), read once per batch with scan() and then
  // kept in step with this batch's put() and del() under it: for small key sets that are looked
  // up many times a batch (a ranked list's fences, ranked_list.cpp), where each lookup would
  // otherwise be a seek through every level of the store. Prefixes asked for must not nest (no
  // one is a prefix of another). The set stays valid until the next call that may change the
  // batch's rows (put, del, rollback). Fails with io_error when the store fails. Not
  // thread-safe.
  using KeySet = std::set<std::string, std::less<>>;
  [[nodiscard]] Result<const KeySet*> keys_under(std::string_view prefix);
  void put(std::string_view key, std::string_view value);
  void del(std::string_view key);
  // Adds `delta` to a counter row (8-byte big-endian, absent = 0), without reading it. The
  // deltas of one key are summed in memory and written as one merge (before the key is next
  // read, put or deleted, or by raw()): a word's count in a user's tab, moved up and down by
  // every ticket of a batch, is one merge operand instead of one per ticket. The row ends as
  // with one merge per call (it exists, 0 included, once any delta was added).
  void add(std::string_view key, std::int64_t delta);
  void set_save_point();
  // Drops every change since the last save point (and the key sets of keys_under, read again
  // on the next call). One level: without a save point left (none set, or already rolled
  // back to), nothing changes.
  void rollback_to_save_point();
  // The batch with every summed delta written. Call it once, at the end (later calls see the
  // same batch; changes after it are not supported).
  rocksdb::WriteBatchWithIndex& raw();
  // What the runner commits: raw()'s changes folded to one entry per key, in key order. A key
  // put or deleted, then counted, becomes the put of its count (as the merge operator would
  // resolve it); only the last put or delete of a key stays. Written, it leaves the store as
  // raw() would, with fewer entries, which the memtable takes in order (each insert starts
  // where the one before ended). Call it once, at the end, as raw(). Fails with io_error when
  // RocksDB refuses an entry (a key or value beyond its limits); nothing is then to be written.
  [[nodiscard]] Result<rocksdb::WriteBatch> folded();

 private:
  // The loaded key set whose prefix `key` starts with, and the key's suffix after it; null when
  // none is loaded.
  KeySet* loaded_keys_for(std::string_view key, std::string_view& suffix);

  // A counter's deltas not yet written into batch_, and what a rollback needs.
  struct Count {
    std::int64_t delta = 0;
    bool pending = false;     // `delta` is not in batch_ yet
    std::uint64_t epoch = 0;  // the save point of its last change
  };
  using Counts = std::map<std::string, Count, std::less<>>;
  // Records the state of `it` before its first change since the save point (nullopt: created
  // since), for rollback_to_save_point().
  void remember(Counts::iterator it, bool created) const;
  // Writes the pending delta of `it` into batch_ as one merge.
  void write_out(Counts::iterator it) const;
  // Writes the pending delta of `key`, or of every key under `prefix`, before they are read or
  // overwritten.
  void settle(std::string_view key) const;
  void settle_prefix(std::string_view prefix) const;

  const ViewStore& store_;
  std::unique_ptr<rocksdb::WriteBatchWithIndex> batch_;
  std::map<std::string, KeySet, std::less<>> key_sets_;
  // Mutable: reads (const) write a key's pending delta before reading it; what the batch
  // holds, as seen through every public method, is unchanged by that.
  mutable Counts counts_;
  mutable std::vector<std::pair<Counts::iterator, std::optional<Count>>> undo_;
  std::uint64_t epoch_ = 0;
};

// Key helpers shared by every view: fixed-width big-endian numbers sort as numbers.
using events::be64;
using events::from_be64;
inline constexpr std::string_view kPositionKey{"\x00position", 9};
inline constexpr std::string_view kSetAsidePrefix{"\x00set-aside\x00", 11};
// The key layout the projectors of this build write, recorded in each store when it is
// created. Bump it with any change to a key layout or a row format that rows written before
// would not follow (a new row kept in step with others, a new key order): the runner then
// replaces a live store of another layout instead of serving and extending rows it
// misreads. Stores of builds before this mark have none and are replaced too.
inline constexpr std::string_view kLayoutKey{"\x00layout", 7};
inline constexpr std::string_view kViewsLayout{"2026-11-27.2"};

}  // namespace chorus::projections
