// ViewBatch::scan merges the batch's entries over the store itself (view_store.cpp says why):
// checked against a plain map after random puts, deletes and counter merges, in the store and
// in the batch, for every direction and start, including keys deleted next to the prefix.

#include "projections/view_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace chorus::projections {
namespace {

class ScratchDir {
 public:
  ScratchDir()
      : path_(std::filesystem::temp_directory_path() /
              ("chorus-view-store-" + std::to_string(::getpid()) + "-" +
               std::to_string(counter_++))) {
    std::filesystem::remove_all(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

using Model = std::map<std::string, std::string>;

// What ViewBatch::scan must visit: the model's rows of `prefix` from `start`.
std::vector<std::pair<std::string, std::string>> expected_scan(const Model& m,
                                                               const std::string& prefix,
                                                               const std::string& start,
                                                               bool reverse) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [k, v] : m) {
    if (!k.starts_with(prefix)) continue;
    if (!start.empty() && (reverse ? k > start : k < start)) continue;
    out.emplace_back(k, v);
  }
  if (reverse) std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::pair<std::string, std::string>> batch_scan(const ViewBatch& batch,
                                                            const std::string& prefix,
                                                            const std::string& start,
                                                            bool reverse) {
  std::vector<std::pair<std::string, std::string>> out;
  auto ok = batch.scan(prefix, start, reverse, [&](std::string_view k, std::string_view v) {
    out.emplace_back(k, v);
    return true;
  });
  EXPECT_TRUE(ok) << (ok ? "" : ok.error().message);
  return out;
}

std::string counter_value(const Model& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? be64(0) : it->second;
}

// Writes what `batch` folds into `store`, as the runner commits it.
void commit(const ViewStore& store, const ViewBatch& batch) {
  auto folded = batch.folded();
  ASSERT_TRUE(folded) << folded.error().message;
  auto s = store.db()->Write(rocksdb::WriteOptions(), &*folded);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

// One random change to `key`, applied to both the model and `apply` (a put, delete or add).
template <class Put, class Del, class Add>
void random_change(std::mt19937& rng, Model& m, const std::string& key, bool counter, Put put,
                   Del del, Add add) {
  const int what = static_cast<int>(rng() % 3);
  if (what == 0) {
    m.erase(key);
    del(key);
  } else if (counter) {
    const std::int64_t delta = static_cast<std::int64_t>(rng() % 7) - 3;
    const std::uint64_t before = from_be64(counter_value(m, key));
    m[key] = be64(before + static_cast<std::uint64_t>(delta));
    add(key, delta);
  } else {
    const std::string value = "v" + std::to_string(rng() % 1000);
    m[key] = value;
    put(key, value);
  }
}

TEST(ViewBatch, ScanSeesTheStoreWithTheBatchOnTopInEveryDirection) {
  ScratchDir dir;
  auto store = ViewStore::open(dir.str());
  ASSERT_TRUE(store);
  std::mt19937 rng(7);
  // Three neighbouring prefixes: "b" is scanned, "a" and "c" take the deletions that a scan
  // running out of "b" must not walk (nor show). Counters live under "bc".
  const std::vector<std::string> prefixes = {"a", "b", "bc", "c"};
  auto key_of = [&](const std::string& p) { return p + "\x01" + std::to_string(rng() % 60); };
  Model model;  // the store after each round's batch is written
  for (int round = 0; round < 12; ++round) {
    // The store: committed rows.
    {
      ViewBatch seed(**store);
      for (int i = 0; i < 150; ++i) {
        const std::string& p = prefixes[rng() % prefixes.size()];
        random_change(
            rng, model, key_of(p), p == "bc", [&](auto& k, auto& v) { seed.put(k, v); },
            [&](auto& k) { seed.del(k); }, [&](auto& k, auto d) { seed.add(k, d); });
      }
      commit(**store, seed);
    }
    // The batch on top, checked after each change: every prefix, both ways, from nowhere, from
    // a key of the prefix, before and after it.
    ViewBatch batch(**store);
    for (int i = 0; i < 120; ++i) {
      const std::string& p = prefixes[rng() % prefixes.size()];
      random_change(
          rng, model, key_of(p), p == "bc", [&](auto& k, auto& v) { batch.put(k, v); },
          [&](auto& k) { batch.del(k); }, [&](auto& k, auto d) { batch.add(k, d); });
      if (i % 10 != 9) continue;
      for (const std::string& scanned : std::initializer_list<std::string>{"b", "bc", "a", "c"}) {
        for (bool reverse : {false, true}) {
          for (const std::string& start : {std::string(), key_of(scanned), scanned + "\x01" + "5",
                                           std::string("a"), std::string("z")}) {
            // Starts outside the prefix read the whole prefix, as ViewStore::scan does when
            // the start falls before it (forward) or after it (reverse).
            std::string effective = start;
            if (!start.starts_with(scanned)) effective.clear();
            if (!start.empty() && !start.starts_with(scanned) &&
                (reverse ? start < scanned : start > scanned)) {
              continue;  // a start past the prefix in the scan's direction: nothing to say
            }
            EXPECT_EQ(batch_scan(batch, scanned, start, reverse),
                      expected_scan(model, scanned, effective, reverse))
                << "round " << round << " change " << i << " prefix " << scanned << " reverse "
                << reverse << " start " << start;
          }
        }
      }
    }
    commit(**store, batch);
  }
}

// keys_under reads a prefix's keys once, then follows the batch's own puts and deletes under
// it; a rollback drops it, and the next call reads the batch again.
TEST(ViewBatch, KeysUnderFollowTheBatchAndARollback) {
  ScratchDir dir;
  auto store = ViewStore::open(dir.str());
  ASSERT_TRUE(store);
  {
    ViewBatch seed(**store);
    for (const char* k : {"f|a", "f|c", "g|x"}) seed.put(k, "");
    commit(**store, seed);
  }
  ViewBatch batch(**store);
  batch.del("f|c");
  auto keys = batch.keys_under("f|");
  ASSERT_TRUE(keys);
  EXPECT_EQ(**keys, (ViewBatch::KeySet{"a"}));
  batch.set_save_point();
  batch.put("f|b", "");
  batch.put("g|y", "");  // under a prefix not loaded yet; rolled back below
  batch.del("f|a");
  EXPECT_EQ(**batch.keys_under("f|"), (ViewBatch::KeySet{"b"}));
  batch.rollback_to_save_point();
  EXPECT_EQ(**batch.keys_under("f|"), (ViewBatch::KeySet{"a"}));
  EXPECT_EQ(**batch.keys_under("g|"), (ViewBatch::KeySet{"x"}));
}

// A KeySetCache carries a committed batch's key sets to the next batch, which then reads
// nothing; a batch that writes under a cached prefix takes the set first, so that a batch
// dropped or rolled back leaves no stale set behind.
TEST(ViewBatch, KeySetsCarriedToTheNextBatchNeverGoStale) {
  ScratchDir dir;
  auto store = ViewStore::open(dir.str());
  ASSERT_TRUE(store);
  KeySetCache cache(100);
  {
    ViewBatch seed(**store, &cache);
    for (const char* k : {"f|a", "f|c", "g|x"}) seed.put(k, "");
    ASSERT_TRUE(seed.keys_under("f|"));
    commit(**store, seed);
    seed.commit_key_sets();
  }
  // Changed in the store behind the cache's back: a later batch must still see the committed
  // set, proving it came from the cache rather than from a read.
  ASSERT_TRUE((*store)->db()->Put(rocksdb::WriteOptions(), "f|z", "").ok());
  {
    ViewBatch batch(**store, &cache);
    EXPECT_EQ(**batch.keys_under("f|"), (KeySet{"a", "c"})) << "taken from the cache";
    batch.put("f|b", "");
    commit(**store, batch);
    batch.commit_key_sets();
  }
  ASSERT_TRUE((*store)->db()->Delete(rocksdb::WriteOptions(), "f|z").ok());
  {
    // Writes under the cached prefix without asking for it, then dropped uncommitted.
    ViewBatch dropped(**store, &cache);
    dropped.put("f|d", "");
    dropped.del("f|a");
  }
  {
    ViewBatch batch(**store, &cache);
    EXPECT_EQ(**batch.keys_under("f|"), (KeySet{"a", "b", "c"})) << "read again from the store";
    batch.set_save_point();
    batch.put("f|e", "");
    batch.rollback_to_save_point();
    commit(**store, batch);
    batch.commit_key_sets();
  }
  ViewBatch last(**store, &cache);
  EXPECT_EQ(**last.keys_under("f|"), (KeySet{"a", "b", "c"}));
}

// A store created empty: a prefix the cache never held is read from the batch alone (no seek;
// debug builds also scan and check), until a rollback or a dropped batch makes the cache
// unsure, after which sets are read from the store again.
TEST(ViewBatch, KeySetsOfAStoreCreatedEmptyComeFromTheBatchAlone) {
  ScratchDir dir;
  auto store = ViewStore::open(dir.str());
  ASSERT_TRUE(store);
  KeySetCache cache(100);
  cache.assume_empty_store();
  auto seeks_for = [&](ViewBatch& batch, std::string_view prefix) {
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
    rocksdb::get_perf_context()->Reset();
    EXPECT_TRUE(batch.keys_under(prefix));
    const auto seeks = rocksdb::get_perf_context()->seek_on_memtable_count;
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
    return seeks;
  };
#ifdef NDEBUG
  constexpr bool kReleaseBuild = true;
#else
  constexpr bool kReleaseBuild = false;
#endif
  {
    ViewBatch batch(**store, &cache);
    batch.put("f|b", "");  // written before the set is asked for: still in it
    batch.put("f|c", "");
    batch.del("f|c");
    // Under a prefix nobody asks for until the end, when the cache no longer assumes an empty
    // store (asked earlier, it would be missed: ranked lists always ask before they write).
    batch.put("g|x", "");
    const auto seeks = seeks_for(batch, "f|");
    if (kReleaseBuild) {
      EXPECT_EQ(seeks, 0u);
    }
    EXPECT_EQ(**batch.keys_under("f|"), (KeySet{"b"}));
    batch.put("f|a", "");
    commit(**store, batch);
    batch.commit_key_sets();
  }
  {
    ViewBatch batch(**store, &cache);
    EXPECT_EQ(**batch.keys_under("f|"), (KeySet{"a", "b"})) << "from the cache";
    const auto seeks = seeks_for(batch, "h|");
    if (kReleaseBuild) {
      EXPECT_EQ(seeks, 0u);
    }
    EXPECT_TRUE((*batch.keys_under("h|"))->empty());
    batch.put("h|1", "");
    commit(**store, batch);
    batch.commit_key_sets();
  }
  {
    // A rollback with no set taken since the cache was filled leaves it sure.
    ViewBatch batch(**store, &cache);
    batch.set_save_point();
    batch.put("k|1", "");
    batch.rollback_to_save_point();
    const auto seeks = seeks_for(batch, "i|");
    if (kReleaseBuild) {
      EXPECT_EQ(seeks, 0u);
    }
    commit(**store, batch);
    batch.commit_key_sets();
  }
  {
    ViewBatch dropped(**store, &cache);  // takes a set, never gives it back
    ASSERT_TRUE(dropped.keys_under("h|"));
  }
  {
    ViewBatch batch(**store, &cache);
    EXPECT_GT(seeks_for(batch, "h|"), 0u) << "the dropped batch had it: read from the store";
    EXPECT_EQ(**batch.keys_under("h|"), (KeySet{"1"}));
    EXPECT_EQ(**batch.keys_under("f|"), (KeySet{"a", "b"}));
    commit(**store, batch);
    batch.commit_key_sets();
  }
  ViewBatch last(**store, &cache);
  EXPECT_GT(seeks_for(last, "g|"), 0u) << "no longer assumed empty";
  EXPECT_EQ(**last.keys_under("g|"), (KeySet{"x"}));
}

// A rollback after sets were taken loses them: the cache stops assuming an empty store.
TEST(ViewBatch, ARollbackHoldingKeySetsEndsTheEmptyStoreAssumption) {
  ScratchDir dir;
  auto store = ViewStore::open(dir.str());
  ASSERT_TRUE(store);
  KeySetCache cache(100);
  cache.assume_empty_store();
  {
    ViewBatch batch(**store, &cache);
    ASSERT_TRUE(batch.keys_under("f|"));
    batch.put("f|a", "");
    commit(**store, batch);
    batch.commit_key_sets();
  }
  {
    ViewBatch batch(**store, &cache);
    ASSERT_TRUE(batch.keys_under("f|"));  // taken
    batch.set_save_point();
    batch.put("f|b", "");
    batch.rollback_to_save_point();
    EXPECT_EQ(**batch.keys_under("f|"), (KeySet{"a"})) << "read again from the store";
    commit(**store, batch);
    // Not given back: the set read after the rollback stays with the batch.
  }
  ViewBatch last(**store, &cache);
  EXPECT_EQ(**last.keys_under("f|"), (KeySet{"a"}));
}

// Notes are the batch's own: never committed, rolled back with its changes.
TEST(ViewBatch, NotesFollowSavePointsAndAreNeverWritten) {
  ScratchDir dir;
  auto store = ViewStore::open(dir.str());
  ASSERT_TRUE(store);
  ViewBatch batch(**store);
  batch.note("m|1", "before");
  batch.set_save_point();
  batch.note("m|1", "changed");
  batch.note("m|2", "new");
  EXPECT_EQ(batch.notes().size(), 2u);
  batch.rollback_to_save_point();
  EXPECT_EQ(batch.notes(), (ViewBatch::Notes{{"m|1", "before"}}));
  EXPECT_EQ(batch.folded()->Count(), 0u);
}

TEST(ViewBatch, ScanStopsWhenTheVisitorSaysSo) {
  ScratchDir dir;
  auto store = ViewStore::open(dir.str());
  ASSERT_TRUE(store);
  ViewBatch batch(**store);
  for (int i = 0; i < 10; ++i) batch.put("k" + std::to_string(i), "v");
  int seen = 0;
  auto ok =
      batch.scan("k", "", true, [&](std::string_view, std::string_view) { return ++seen < 3; });
  ASSERT_TRUE(ok);
  EXPECT_EQ(seen, 3);
}

// add() sums a key's deltas in memory and writes them as one merge when the key is next read,
// put or deleted, or at commit. Reads, overwrites, save points and the committed rows must be
// exactly what one merge per add gives: checked against a plain map.
TEST(ViewBatch, SummedCountersAreWhatOneMergePerAddGives) {
  ScratchDir dir;
  auto store = ViewStore::open(dir.str());
  ASSERT_TRUE(store);
  {
    ViewBatch one(**store);
    for (int i = 0; i < 1000; ++i) one.add("z", i % 2 == 0 ? 3 : -1);
    EXPECT_EQ(one.folded()->Count(), 1u) << "a thousand adds, one merge";
    EXPECT_EQ(*one.get("z"), std::optional<std::string>(be64(1000)));
  }
  std::mt19937 rng(11);
  const std::string prefix = "c\x01";
  Model model;
  {
    ViewBatch seed(**store);
    for (int i = 0; i < 20; ++i) {
      const std::string key = prefix + std::to_string(i);
      seed.add(key, i);
      model[key] = be64(static_cast<std::uint64_t>(i));
    }
    commit(**store, seed);
  }
  ViewBatch batch(**store);
  Model at_save_point = model;
  bool saved = false;
  for (int i = 0; i < 4000; ++i) {
    const std::string key = prefix + std::to_string(rng() % 30);
    const int what = static_cast<int>(rng() % 40);
    if (what < 28) {
      const std::int64_t delta = static_cast<std::int64_t>(rng() % 7) - 3;
      model[key] = be64(from_be64(counter_value(model, key)) + static_cast<std::uint64_t>(delta));
      batch.add(key, delta);
    } else if (what < 32) {
      model.erase(key);
      batch.del(key);
    } else if (what < 36) {
      model[key] = be64(rng() % 100);
      batch.put(key, model[key]);
    } else if (what < 39) {
      auto got = batch.get(key);
      ASSERT_TRUE(got);
      const auto it = model.find(key);
      EXPECT_EQ(*got, it == model.end() ? std::nullopt : std::optional<std::string>(it->second))
          << "change " << i;
    } else {
      const bool reverse = rng() % 2 == 0;
      EXPECT_EQ(batch_scan(batch, prefix, "", reverse), expected_scan(model, prefix, "", reverse))
          << "change " << i;
    }
    if (i % 23 == 22) {
      if (saved && rng() % 3 == 0) {
        batch.rollback_to_save_point();
        model = at_save_point;
      }
      batch.set_save_point();
      at_save_point = model;
      saved = true;
    }
  }
  commit(**store, batch);
  Model committed;
  ASSERT_TRUE((*store)->scan(prefix, "", false, [&](std::string_view k, std::string_view v) {
    committed.emplace(k, v);
    return true;
  }));
  Model expected;
  for (const auto& [k, v] : model) {
    if (k.starts_with(prefix)) expected.emplace(k, v);
  }
  EXPECT_EQ(committed, expected);
}

// What the runner commits, folded to one entry per key, leaves the store as the batch's own
// reads saw it: random puts (some not 8 bytes long, then counted over as CounterAdd does),
// deletes and counts over the rows of earlier rounds, checked against a plain map.
TEST(ViewBatch, FoldedLeavesTheStoreAsTheBatchReadIt) {
  ScratchDir dir;
  auto store = ViewStore::open(dir.str());
  ASSERT_TRUE(store);
  auto all_rows = [](const ViewStore& s) {
    Model rows;
    EXPECT_TRUE(s.scan("", "", false, [&](std::string_view k, std::string_view v) {
      rows.emplace(k, v);
      return true;
    }));
    return rows;
  };
  std::mt19937 rng(5);
  Model model;
  for (int round = 0; round < 20; ++round) {
    ViewBatch batch(**store);
    std::set<std::string> keys;
    for (int i = 0; i < 300; ++i) {
      const std::string key = "k" + std::to_string(rng() % 40);
      keys.insert(key);
      const int what = static_cast<int>(rng() % 6);
      const std::string value =
          rng() % 2 == 0 ? be64(rng() % 50) : std::string("v") + std::to_string(rng() % 9);
      if (what == 0) {
        batch.del(key);
        model.erase(key);
      } else if (what == 1) {
        batch.put(key, value);
        model[key] = value;
      } else {
        const std::int64_t delta = static_cast<std::int64_t>(i % 5) - 2;
        batch.add(key, delta);
        model[key] = be64(from_be64(counter_value(model, key)) + static_cast<std::uint64_t>(delta));
      }
      if (i % 50 == 49) {
        auto got = batch.get(key);
        ASSERT_TRUE(got);
        const auto it = model.find(key);
        EXPECT_EQ(*got, it == model.end() ? std::nullopt : std::optional<std::string>(it->second))
            << "round " << round;
      }
    }
    auto folded = batch.folded();
    ASSERT_TRUE(folded);
    EXPECT_LE(folded->Count(), keys.size());
    ASSERT_TRUE((*store)->db()->Write(rocksdb::WriteOptions(), &*folded).ok());
    ASSERT_EQ(all_rows(**store), model) << "round " << round;
  }
}

}  // namespace
}  // namespace chorus::projections
