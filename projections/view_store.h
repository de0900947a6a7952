#pragma once
// The RocksDB database that holds every view, and the batch a projector writes into.
// Keys are laid out by each view's own header (ticket_views.h, ...); this file knows none.
// Reserved prefix: "\x00" (the store's own rows: applied position, set-aside events).

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <memory_resource>
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
class Snapshot;
class Statistics;
class WriteBatch;
}  // namespace rocksdb

namespace chorus::projections {

class ViewStore {
 public:
  enum class OpenMode { read_write, read_only };
  // Opens or creates the store in `dir`. read_only opens an existing store without taking its
  // lock (a server may hold it), as it stands at that moment; writing to it then fails.
  // Fails with io_error (missing store in read_only mode, locked or unreadable files) or
  // corruption (damaged files; in read_only mode, a write-ahead log damaged before its last
  // record too, which read_write lets go with what follows, the views catching up from the
  // log).
  [[nodiscard]] static Result<std::shared_ptr<ViewStore>> open(
      const std::string& dir, OpenMode mode = OpenMode::read_write);
  ~ViewStore();

  // One moment of the store that several reads share, for an answer made of several rows
  // that must agree (a ticket's detail, its state row and its history): reads given it see
  // the store as it stood when it was taken, whatever batches commit meanwhile. Must not
  // outlive the store. Thread-safe.
  class Snapshot {
   public:
    ~Snapshot();
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;

   private:
    friend class ViewStore;
    Snapshot(rocksdb::DB* db, const rocksdb::Snapshot* at) : db_(db), at_(at) {}
    rocksdb::DB* db_;
    const rocksdb::Snapshot* at_;
  };
  // Takes a snapshot of the store as it stands. Never fails. Thread-safe.
  [[nodiscard]] std::unique_ptr<Snapshot> snapshot() const;

  // Point read (as of `at` when given). nullopt when absent. Thread-safe.
  [[nodiscard]] Result<std::optional<std::string>> get(std::string_view key,
                                                       const Snapshot* at = nullptr) const;

  // Visits rows whose key starts with `prefix`, from `start` (a full key; empty: the first or,
  // when reverse, the last row of the prefix), in key order or reverse key order, until
  // `visit` returns false. Thread-safe; sees one consistent snapshot (`at` when given).
  [[nodiscard]] Result<void> scan(
      std::string_view prefix, std::string_view start, bool reverse,
      const std::function<bool(std::string_view key, std::string_view value)>& visit,
      const Snapshot* at = nullptr) const;

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

// A set of key suffixes under one prefix (ViewBatch::keys_under).
using KeySet = std::set<std::string, std::less<>>;

// The key sets of ViewBatch::keys_under carried from one committed batch to the next, so that
// a list's fences are read from the store once rather than once per batch: each set is what
// the store holds once the batch that last had it is committed. A batch takes a set out of
// the cache when it reads or writes under its prefix and gives it back only when it is
// committed (ViewBatch::commit_key_sets), so a dropped or rolled-back batch leaves nothing
// stale behind. Holds at most `max_keys` keys (beyond, it is emptied and refills). One per
// store, whose only writer is the batch using it; one batch at a time. Not thread-safe.
class KeySetCache {
 public:
  explicit KeySetCache(std::size_t max_keys) : max_keys_(max_keys) {}

  // Tells the cache that its store holds no key yet under any prefix a batch will ask
  // keys_under for (a store just created: a rebuild's, a first start's). While that stays
  // known, a prefix the cache has never held is read from the batch alone, without a scan of
  // the store: a rebuild meets each of its users' lists for the first time, and that scan was
  // a tenth of its time (perf, replay_bench --parts rebuild). It stops being known, for good,
  // when the cache is emptied (over max_keys), or when a batch holding sets taken from it rolls
  // back to a save point or is dropped without commit_key_sets. Requires what ranked lists
  // do: a key under such a prefix is written by a batch that asked keys_under for that prefix
  // first (debug builds check every such read against a scan). Not thread-safe.
  void assume_empty_store() { complete_ = true; }

 private:
  friend class ViewBatch;
  std::map<std::string, KeySet, std::less<>> sets_;
  std::size_t keys_ = 0;
  std::size_t max_keys_;
  // While true, a prefix with a key in the store is in sets_ or taken by the batch using the
  // cache.
  bool complete_ = false;
  // first_bytes_[b]: some cached prefix starts with byte b (most writes are under none).
  bool first_bytes_[256] = {};
};

// The changes of one batch of events, with read-your-writes: get() and scan() see the batch's
// own puts, deletes and counts over the store. The batch keeps one entry per key it touched,
// already folded (the last put or delete, and the sum of the counts added over it), in key
// order: reads look a key up once instead of walking every change made to it, and what is
// committed is one entry per key. Not thread-safe; one per runner.
class ViewBatch {
 public:
  // `key_sets`, when given, must be the store's own and outlive the batch.
  explicit ViewBatch(const ViewStore& store, KeySetCache* key_sets = nullptr);
  ~ViewBatch();
  // The row as the batch leaves it: its own put, delete or count over the store's row.
  // nullopt when absent. Fails with io_error when the store fails. Changes nothing.
  [[nodiscard]] Result<std::optional<std::string>> get(std::string_view key) const;
  // As ViewStore::scan, over the store with this batch's changes on top (counts resolved).
  // Never steps outside the prefix, however many keys the batch deleted next to it.
  // Fails with io_error when the store fails. Changes nothing. Not thread-safe.
  [[nodiscard]] Result<void> scan(
      std::string_view prefix, std::string_view start, bool reverse,
      const std::function<bool(std::string_view key, std::string_view value)>& visit) const;
  // The keys under `prefix` (their suffixes after it), read once per batch with scan() and then
  // kept in step with this batch's put() and del() under it: for small key sets that are looked
  // up many times a batch (a ranked list's fences, ranked_list.cpp), where each lookup would
  // otherwise be a seek through every level of the store. Prefixes asked for must not nest (no
  // one is a prefix of another). The set stays valid until the next call that may change the
  // batch's rows (put, del, rollback). With a KeySetCache, a set committed by an earlier
  // batch is taken from it instead of read, and a set the cache never held, in a store it
  // assumes empty (KeySetCache::assume_empty_store), is read from this batch's rows alone.
  // Fails with io_error when the store fails. Not thread-safe.
  using KeySet = projections::KeySet;
  [[nodiscard]] Result<const KeySet*> keys_under(std::string_view prefix);
  // Once folded() has been written to the store: gives the batch's key sets to its
  // KeySetCache for the next batch. Without a cache, nothing. The batch must not be used after.
  void commit_key_sets();
  void put(std::string_view key, std::string_view value);
  void del(std::string_view key);
  // Adds `delta` to a counter row (8-byte big-endian, absent = 0), without reading it: a
  // list's bucket count, moved up and down by many tickets of a batch, is one sum in memory and
  // one merge operand at commit. The row ends as the views' merge operator
  // (CounterAdd) would leave it after one merge per call: it exists, 0 included, once any
  // delta was added.
  void add(std::string_view key, std::int64_t delta);
  // Marks the batch as it stands, for rollback_to_save_point(); replaces the previous mark.
  void set_save_point();
  // Drops every change since the last save point (and the key sets of keys_under, read again
  // on the next call; when it had taken any, the KeySetCache no longer assumes an empty store). One
  // level: without a save point left (none set, or already rolled back to), nothing changes.
  void rollback_to_save_point();
  // What the runner commits: one entry per key, in key order, which leaves the store as the
  // batch's reads saw it. A key put or deleted, then counted, is the put of its count; a key
  // only counted is one merge of the summed delta. The memtable takes the entries in order
  // (each insert starts where the one before ended). The batch itself is unchanged. Fails
  // with io_error when RocksDB refuses an entry (a key or value beyond its limits); nothing is
  // then to be written.
  [[nodiscard]] Result<rocksdb::WriteBatch> folded() const;
  // Notes a projector keeps for the batch's end (Projector::finish), never written to the
  // store: rolled back with the batch's changes, gone with the batch. note() on a key already
  // noted since the save point replaces its value.
  using Notes = std::map<std::string, std::string, std::less<>>;
  void note(std::string_view key, std::string_view value);
  [[nodiscard]] const Notes& notes() const { return notes_; }
  // The number of keys the batch holds, for a caller that bounds its memory. Thread-safe as
  // any const read.
  [[nodiscard]] std::size_t key_count() const { return entries_.size(); }

 private:
  // The loaded key set whose prefix `key` starts with, and the key's suffix after it; null when
  // none is loaded.
  KeySet* loaded_keys_for(std::string_view key, std::string_view& suffix);

  // One key's changes, folded.
  struct Entry {
    enum class Base : std::uint8_t { store, put, del };
    Base base = Base::store;  // store: the row as the store holds it
    bool counted = false;     // `count` is added over the base
    std::string value;        // when base is put
    std::int64_t count = 0;
    std::uint64_t epoch = 0;  // the save point of its last change
  };
  // Keys and tree nodes live in the batch's arena: a batch only grows (a rollback's few
  // erased entries wait for the batch's end), and is dropped whole.
  // The row as `e` leaves it over `stored` (the store's row; ignored unless e's base is the
  // store); a count is made in `scratch`.
  static std::optional<std::string_view> resolved(const Entry& e,
                                                  std::optional<std::string_view> stored,
                                                  std::string& scratch);
  using Entries = std::pmr::map<std::pmr::string, Entry, std::less<>>;
  // The entry of `key`, created when absent, with its state before its first change since the
  // save point recorded for rollback_to_save_point(). `overwrite`: the caller replaces the
  // entry's value, so the record may take it instead of a copy.
  Entry& change(std::string_view key, bool overwrite);

  const ViewStore& store_;
  KeySetCache* cache_;
  std::pmr::monotonic_buffer_resource arena_;  // before entries_: outlives them
  Entries entries_{&arena_};
  std::map<std::string, KeySet, std::less<>> key_sets_;
  std::vector<std::pair<Entries::iterator, std::optional<Entry>>> undo_;
  Notes notes_;
  std::vector<std::pair<Notes::iterator, std::optional<std::string>>> notes_undo_;
  std::uint64_t epoch_ = 0;
  bool save_point_ = false;
};

// A counter row at 0 (ViewBatch::add) reads as no row: a list's count, a bucket's rows. Two
// stores hold the same views when they differ by such rows only: a ticket that entered and left
// a list in live batches leaves its counts there at 0, where a rebuild that saw it only where it
// ended has no row. View comparisons skip them (replay's compare_views, the tests'). Pure.
[[nodiscard]] inline bool is_zero_count(std::string_view value) {
  return value == std::string_view("\0\0\0\0\0\0\0\0", 8);
}

// Key helpers shared by every view: fixed-width big-endian numbers sort as numbers.
using events::be32;
using events::be64;
using events::from_be32;
using events::from_be64;
// The parts joined by '\0', the separator of every view key's parts (the layouts are in
// ticket_views.h and structure_views.h). Pure.
[[nodiscard]] inline std::string key_of(std::initializer_list<std::string_view> parts) {
  std::string key;
  for (auto p : parts) {
    key.append(p);
    key.push_back('\0');
  }
  if (!key.empty()) key.pop_back();
  return key;
}
inline constexpr std::string_view kPositionKey{"\x00position", 9};
inline constexpr std::string_view kSetAsidePrefix{"\x00set-aside\x00", 11};
// The key layout the projectors of this build write, recorded in each store when it is
// created. Bump it with any change to a key layout or a row format that rows written before
// would not follow (a new row kept in step with others, a new key order): the runner then
// replaces a live store of another layout instead of serving and extending rows it
// misreads. Stores of builds before this mark have none and are replaced too.
inline constexpr std::string_view kLayoutKey{"\x00layout", 7};
inline constexpr std::string_view kViewsLayout{"2026-11-28.16"};

}  // namespace chorus::projections
