// Structure views benchmark (issue 6): latency of an approvals inbox page and of a history page
// for one structure with 10,000 pending requests and 100,000 history rows, beside a raw
// RocksDB baseline measured in the same run on the same store: an iterator that seeks to the
// same prefix and reads the same number of rows. The views are built by the real runner from
// a real embedded log. Figures are printed, never asserted.
//
// Usage: structure_views_bench [--pending N] [--history N] [--samples N] [--dir DIR]

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "events/big_endian.h"
#include "events/embedded_log.h"
#include "projections/runner.h"
#include "projections/structure_views.h"

using Clock = std::chrono::steady_clock;
using namespace chorus;

namespace {

constexpr int kServices = 10;

std::string service_code(int i) { return "SERVICE-" + std::to_string(i % kServices); }

struct Quantiles {
  double p50_ms = 0;
  double p99_ms = 0;
};

Quantiles measure(int samples, const std::function<bool(int)>& run) {
  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(samples));
  for (int i = 0; i < samples; ++i) {
    const auto t0 = Clock::now();
    if (!run(i)) {
      std::fprintf(stderr, "query failed\n");
      std::exit(1);
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)]};
}

// The raw baseline: seek to `prefix` (from its end when reverse) and read `rows` values.
bool raw_scan(rocksdb::DB* db, const std::string& prefix, bool reverse, std::size_t skip,
              std::size_t rows) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  std::string upper = prefix;
  upper.back() = static_cast<char>(upper.back() + 1);
  if (reverse) {
    it->SeekForPrev(upper);
  } else {
    it->Seek(prefix);
  }
  std::size_t seen = 0, read = 0, bytes = 0;
  for (; it->Valid() && it->key().starts_with(prefix) && read < rows;
       reverse ? it->Prev() : it->Next()) {
    if (seen++ < skip) continue;
    bytes += it->value().size();
    ++read;
  }
  return bytes > 0 && it->status().ok();
}

void print(const char* what, Quantiles ours, Quantiles raw) {
  std::printf("%-52s p50 %7.3f ms  p99 %7.3f ms   | raw p50 %7.3f ms  p99 %7.3f ms\n", what,
              ours.p50_ms, ours.p99_ms, raw.p50_ms, raw.p99_ms);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Approvals inbox and history page latency beside a raw RocksDB scan"};
  int pending = 10'000;
  int history = 100'000;
  int samples = 2'000;
  std::string dir =
      (std::filesystem::temp_directory_path() / "chorus-structure-views-bench").string();
  app.add_option("--pending", pending, "pending requests on the structure");
  app.add_option("--history", history, "history rows on the structure");
  app.add_option("--samples", samples, "queries per figure");
  app.add_option("--dir", dir, "scratch directory");
  CLI11_PARSE(app, argc, argv);
  std::filesystem::remove_all(dir);

  // One structure's stream: creation, services, then decided requests (one history row each)
  // and the pending ones, written as the command side would.
  auto log = events::open_embedded_log({dir + "/log", false});
  if (!log) return 1;
  const std::string s = "bench-s";
  const std::string stream = "structure-" + s;
  std::uint64_t version = 0;
  std::int64_t at = 1'700'000'000'000'000;
  std::uint64_t counter = 0;
  std::vector<events::NewEvent> pending_events;
  auto add = [&](events::Payload p) {
    events::NewEvent e;
    ++counter;
    for (int i = 0; i < 8; ++i) e.meta.event_id[i] = static_cast<std::uint8_t>(counter >> (8 * i));
    e.meta.occurred_at_us = at++;
    e.meta.actor = events::Actor{"bench-gp", "user", ""};
    e.payload = std::move(p);
    pending_events.push_back(std::move(e));
    if (pending_events.size() == 1000) {
      std::vector<events::StreamAppend> batch{{stream, version, std::move(pending_events)}};
      if (!(*log)->append(batch)) std::exit(1);
      version += 1000;
      pending_events.clear();
    }
  };
  events::StructureData data;
  data.designation = "Structure du banc";
  add(events::StructureCreated{s, "SIRET", "73282932000074", false, false, false, "2020-01-01", "",
                               data});
  for (int i = 0; i < kServices; ++i) {
    add(events::ServiceAdded{s, service_code(i), "Service", "", "2020-01-01", "", false});
  }
  add(events::MainManagerTransferred{s, "", "bench-gp", true});
  const int decided = std::max(0, history - kServices - 2);
  for (int i = 0; i < decided; ++i) {
    const std::string rid = "done-" + std::to_string(i);
    const std::string user = "user-" + std::to_string(i);
    if (i % 2 == 0) {
      // A direct attachment: one event, one history row.
      add(events::UserAttached{s, user, "user", {service_code(i)}, "2020-01-01", "", true});
    } else {
      add(events::AttachmentRequested{s, rid, user, service_code(i), "Merci"});
      add(events::AttachmentRefused{s, rid, user, "Hors périmètre"});
    }
  }
  for (int i = 0; i < pending; ++i) {
    add(events::AttachmentRequested{s, "req-" + std::to_string(i), "asker-" + std::to_string(i),
                                    service_code(i), "Rattachement demandé"});
  }
  if (!pending_events.empty()) {
    std::vector<events::StreamAppend> batch{{stream, version, std::move(pending_events)}};
    if (!(*log)->append(batch)) return 1;
  }

  projections::StructureViews views;
  auto runner = projections::Runner::open(**log, dir + "/views", {&views});
  if (!runner) return 1;
  const auto b0 = Clock::now();
  while (true) {
    auto n = (*runner)->step(std::chrono::milliseconds(0));
    if (!n || *n == 0) break;
  }
  const double build_s = std::chrono::duration<double>(Clock::now() - b0).count();
  auto store = (*runner)->store();
  auto counts = projections::pending_counts(*store, s);
  auto total = projections::history_page(*store, s, 1, 1);
  if (!counts || !total) return 1;
  std::uint64_t pending_total = 0;
  for (const auto& [service, n] : *counts) pending_total += n;
  std::printf(
      "structure with %llu pending requests over %d services, %llu history rows "
      "(views built in %.2f s); %d samples per figure, page size 20\n",
      static_cast<unsigned long long>(pending_total), kServices,
      static_cast<unsigned long long>(total->total), build_s, samples);

  rocksdb::DB* db = store->db();
  const std::string inbox_prefix = std::string("sp\0", 3) + s + '\0';
  const std::string history_prefix = std::string("sh\0", 3) + s + '\0';
  const std::string one_service = inbox_prefix + service_code(3) + '\0';
  const std::string service_history = std::string("sv\0", 3) + s + '\0' + service_code(3) + '\0';

  // Every figure, with `n` samples each.
  auto figures = [&](int n) {
    auto inbox = [&](std::optional<std::vector<std::string>> groups, std::uint64_t offset) {
      return [&store, &s, groups, offset](int) {
        projections::PendingQuery q;
        q.services = groups;
        q.offset = offset;
        auto c = projections::pending_counts(*store, s);
        auto page = projections::pending_page(*store, s, q);
        return c && page && page->rows.size() == 20;
      };
    };
    print("inbox page 1, manager of the whole structure", measure(n, inbox(std::nullopt, 0)),
          measure(n, [&](int) { return raw_scan(db, inbox_prefix, false, 0, 20); }));
    print("inbox page 1, GS scoped to one service",
          measure(n, inbox(std::vector<std::string>{service_code(3)}, 0)),
          measure(n, [&](int) { return raw_scan(db, one_service, false, 0, 20); }));
    print("inbox page 250 (rows 4,980-5,000), whole structure",
          measure(n, inbox(std::nullopt, 4'980)),
          measure(n / 10, [&](int) { return raw_scan(db, inbox_prefix, false, 4'980, 20); }));
    print("inbox page 500 (the last), whole structure", measure(n, inbox(std::nullopt, 9'980)),
          measure(n / 10, [&](int) { return raw_scan(db, inbox_prefix, false, 9'980, 20); }));
    {
      // The same rows from the cursor of page 249's last row (?after=): one seek.
      projections::PendingQuery q;
      q.offset = 4'979;
      q.limit = 1;
      auto last = projections::pending_page(*store, s, q);
      if (!last || last->rows.size() != 1) std::exit(1);
      auto cursor = projections::parse_pending_cursor(projections::pending_cursor(last->rows[0]));
      if (!cursor) std::exit(1);
      print("inbox page 250 from its cursor (?after=)",
            measure(n,
                    [&](int) {
                      projections::PendingQuery from;
                      from.after = cursor;
                      auto page = projections::pending_page(*store, s, from);
                      return page && page->rows.size() == 20;
                    }),
            measure(n, [&](int) {
              const std::string from = inbox_prefix + cursor->service + '\0' + cursor->suffix;
              std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
              std::size_t read = 0, bytes = 0;
              for (it->Seek(from); it->Valid() && it->key().starts_with(inbox_prefix) && read < 21;
                   it->Next()) {
                bytes += it->value().size();
                ++read;
              }
              return read == 21 && bytes > 0;
            }));
    }
    print("inbox search q=asker-99 (111 matches; raw: every row read)",
          measure(n,
                  [&](int) {
                    projections::PendingQuery q;
                    q.words = "asker-99";
                    auto page = projections::pending_page(*store, s, q);
                    return page.has_value() && page->total == 111 && page->rows.size() == 20;
                  }),
          measure(n / 20, [&](int) {
            return raw_scan(db, inbox_prefix, false, 0, static_cast<std::size_t>(pending));
          }));
    print("inbox search q=\"rattachement asker-1234\" (1 match)",
          measure(n,
                  [&](int) {
                    projections::PendingQuery q;
                    q.words = "Rattachement asker-1234";
                    auto page = projections::pending_page(*store, s, q);
                    return page.has_value() && page->total == 1;
                  }),
          measure(n, [&](int) { return raw_scan(db, inbox_prefix, false, 0, 20); }));
    print("history page 1, newest first",
          measure(n,
                  [&](int) {
                    auto page = projections::history_page(*store, s, 1, 20);
                    return page && page->rows.size() == 20;
                  }),
          measure(n, [&](int) { return raw_scan(db, history_prefix, true, 0, 20); }));
    print("history page 100 (rows 1,980-2,000)",
          measure(n,
                  [&](int) {
                    auto page = projections::history_page(*store, s, 100, 20);
                    return page && page->rows.size() == 20;
                  }),
          measure(n, [&](int) { return raw_scan(db, history_prefix, true, 1'980, 20); }));
    print("history page 1, GS scoped to one service",
          measure(n,
                  [&](int) {
                    auto page =
                        projections::service_history_page(*store, s, {service_code(3)}, 1, 20);
                    return page && page->rows.size() == 20;
                  }),
          measure(n, [&](int) { return raw_scan(db, service_history, true, 0, 20); }));
    // The same rows from the cursor of page 99's last row (?before=): one page read.
    auto page99 = projections::history_page(*store, s, 99, 20);
    if (!page99 || page99->rows.empty()) std::exit(1);
    const std::string& last = page99->rows.back();
    const std::uint64_t before = std::stoull(last.substr(last.find("\"seq\":") + 6));
    const std::string cursor_key = history_prefix + events::be64(before - 1);
    print("history page 100 from its cursor (?before=)",
          measure(n,
                  [&](int) {
                    auto page = projections::history_page(*store, s, 1, 20, before);
                    return page && page->rows.size() == 20;
                  }),
          measure(n, [&](int) {
            std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
            std::size_t read = 0;
            for (it->SeekForPrev(cursor_key); it->Valid() && read < 20; it->Prev()) ++read;
            return read == 20;
          }));
  };
  std::printf(
      "-- as written (memtable and fresh files: the tombstones of the decided requests "
      "not compacted yet)\n");
  figures(std::max(20, samples / 10));
  if (!db->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr).ok()) return 1;
  std::printf("-- after a full compaction (the steady state the background compactions reach)\n");
  figures(samples);
  store.reset();
  runner->reset();
  log->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
