// Replay benchmark (issue 7): on a log of many events written by the workload generator,
//   - one stream's history through the tool's own path (stream index, chain check, decode),
//     beside raw RocksDB reads of the same events (index scan and point reads);
//   - the full verify rate, beside a raw RocksDB scan of the whole log;
//   - the view rebuild rate on a prefix of the log (the tool's folded rebuild, or the server's
//     runner), beside the rows the rebuilt store ends with written through raw WriteBatches,
//     and beside the floor of any rebuild of these views: those rows written as sorted SST
//     files and ingested; with --compare, the other path too and the two stores row by row.
// Figures only; nothing here asserts a speed.
//
// Usage: replay_bench [--events N] [--rebuild-events M] [--dir DIR] [--keep]
//                     [--parts verify,history,rebuild,walk] [--runs K]
//                     [--rebuild-path folded|runner] [--compare]
//   --keep leaves the log in DIR, and a later run reuses it when it holds enough events; a
//   reused log is never removed (it may be someone's 8-minute 10M-event log).
//   --parts picks the measures (default: verify,history,rebuild); `walk` adds the tool's read
//   path alone (walk_log, no check), to tell reading from checking.
//   --runs repeats the raw scan and the verify K times and prints the medians too: the
//   machine is shared, one run says little.

#include <rocksdb/db.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/write_batch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <random>

#include "events/big_endian.h"
#include "events/embedded_log.h"
#include "ops/workload/workload.h"
#include "projections/view_store.h"
#include "replay/audit.h"
#include "replay/timeline.h"
#include "replay/views_at.h"

using Clock = std::chrono::steady_clock;
using namespace chorus;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// CPU seconds used by the whole process (every thread) so far: on a shared machine the wall
// time of a run depends on the others' load, its CPU time much less.
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// The floor of any view rebuild: writing the rows a rebuilt store ends with, already sorted,
// by RocksDB's cheapest path (SST files built outside the DB, no memtable, no WAL, no bloom
// filter, ingested whole), with nothing computed. A rebuild writing these views cannot go
// faster than this, however it derives the rows. The rows are read into memory a file's worth
// at a time, untimed; only the writer's calls and the ingestion are timed.
struct Floor {
  std::uint64_t rows = 0, bytes = 0;
  double read_s = 0;     // reading the rows into memory (left out)
  double write_s = 0;    // SST files written and ingested
  double write_cpu = 0;  // likewise, CPU seconds
  // The same rows through RocksDB WriteBatches of 100,000 rows in key order, into a fresh store
  // opened as the views' own (its merge operator and options), written as the runner writes:
  // the raw baseline of a rebuild that writes its final rows only.
  double batch_s = 0;
  double batch_cpu = 0;
};
std::optional<Floor> write_floor(const std::string& views_dir, const std::string& floor_dir,
                                 const std::string& batch_dir) {
  auto store = projections::ViewStore::open(views_dir, projections::ViewStore::OpenMode::read_only);
  if (!store) {
    std::fprintf(stderr, "floor: %s\n", store.error().message.c_str());
    return std::nullopt;
  }
  struct Scratch {
    std::string dir;
    ~Scratch() { std::filesystem::remove_all(dir); }
  } scratch{floor_dir};
  std::filesystem::remove_all(floor_dir);
  std::filesystem::create_directories(floor_dir + "/sst");
  auto fail = [](const rocksdb::Status& st) -> std::optional<Floor> {
    std::fprintf(stderr, "floor: %s\n", st.ToString().c_str());
    return std::nullopt;
  };
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw_db = nullptr;
  if (auto st = rocksdb::DB::Open(options, floor_dir + "/db", &raw_db); !st.ok()) return fail(st);
  std::unique_ptr<rocksdb::DB> db(raw_db);
  struct BatchScratch {
    std::string dir;
    ~BatchScratch() { std::filesystem::remove_all(dir); }
  } batch_scratch{batch_dir};
  std::filesystem::remove_all(batch_dir);
  auto batch_store = projections::ViewStore::open(batch_dir);
  if (!batch_store) {
    std::fprintf(stderr, "raw batches: %s\n", batch_store.error().message.c_str());
    return std::nullopt;
  }
  Floor f;
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it((*store)->db()->NewIterator(ro));
  it->SeekToFirst();
  std::vector<std::string> files;
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), options);
  constexpr std::size_t kRowsPerFile = 2'000'000;
  std::string arena;                                    // one file's keys and values
  std::vector<std::pair<std::size_t, std::size_t>> at;  // key start, key size; value follows
  std::vector<std::size_t> value_sizes;
  while (true) {
    // Untimed: a file's rows into memory.
    const auto r0 = Clock::now();
    arena.clear();
    at.clear();
    value_sizes.clear();
    for (; it->Valid() && at.size() < kRowsPerFile; it->Next()) {
      at.emplace_back(arena.size(), it->key().size());
      arena.append(it->key().data(), it->key().size());
      arena.append(it->value().data(), it->value().size());
      value_sizes.push_back(it->value().size());
    }
    if (!it->status().ok()) return fail(it->status());
    f.read_s += seconds_since(r0);
    if (at.empty()) break;
    f.rows += at.size();
    f.bytes += arena.size();
    // Timed: the writer alone.
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    files.push_back(floor_dir + "/sst/" + std::to_string(files.size()) + ".sst");
    if (auto st = writer.Open(files.back()); !st.ok()) return fail(st);
    for (std::size_t i = 0; i < at.size(); ++i) {
      const auto [start, key_size] = at[i];
      const rocksdb::Slice key(arena.data() + start, key_size);
      const rocksdb::Slice value(arena.data() + start + key_size, value_sizes[i]);
      if (auto st = writer.Put(key, value); !st.ok()) return fail(st);
    }
    if (auto st = writer.Finish(); !st.ok()) return fail(st);
    f.write_s += seconds_since(t0);
    f.write_cpu += cpu_seconds() - c0;
    // Timed apart: the same rows through WriteBatches.
    const auto b0 = Clock::now();
    const double bc0 = cpu_seconds();
    rocksdb::WriteOptions wo;
    wo.sync = false;  // as projections::Runner writes
    for (std::size_t from = 0; from < at.size(); from += 100'000) {
      rocksdb::WriteBatch wb;
      for (std::size_t i = from; i < std::min(at.size(), from + 100'000); ++i) {
        const auto [start, key_size] = at[i];
        (void)wb.Put(rocksdb::Slice(arena.data() + start, key_size),
                     rocksdb::Slice(arena.data() + start + key_size, value_sizes[i]));
      }
      if (auto st = (*batch_store)->db()->Write(wo, &wb); !st.ok()) return fail(st);
    }
    f.batch_s += seconds_since(b0);
    f.batch_cpu += cpu_seconds() - bc0;
  }
  const auto t0 = Clock::now();
  const double c0 = cpu_seconds();
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;
  if (!files.empty()) {
    if (auto st = db->IngestExternalFile(files, ingest); !st.ok()) return fail(st);
  }
  f.write_s += seconds_since(t0);
  f.write_cpu += cpu_seconds() - c0;
  return f;
}

// The raw store under the log, opened read-only, for the baselines.
struct RawLog {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // default, log, streams, heads
  ~RawLog() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  }
};

std::unique_ptr<RawLog> open_raw(const std::string& dir) {
  auto raw = std::make_unique<RawLog>();
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs{
      {rocksdb::kDefaultColumnFamilyName, {}}, {"log", {}}, {"streams", {}}, {"heads", {}}};
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir, cfs, &raw->handles, &db).ok()) {
    return nullptr;
  }
  raw->db.reset(db);
  return raw;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Replay: history latency, verify and rebuild rates, beside raw RocksDB reads"};
  std::uint64_t target_events = 10'000'000, rebuild_events = 1'000'000;
  std::string dir = (std::filesystem::temp_directory_path() / "chorus-replay-bench").string();
  bool keep = false;
  app.add_option("--events", target_events, "events in the log (at least)");
  app.add_option("--rebuild-events", rebuild_events, "events of the prefix the views rebuild");
  app.add_option("--dir", dir, "scratch directory");
  app.add_flag("--keep", keep, "keep the log for a later run");
  std::string parts = "verify,history,rebuild";
  int runs = 1;
  app.add_option("--parts", parts, "measures to run: verify, history, rebuild, walk");
  std::string rebuild_path = "folded";
  bool compare_paths = false;
  app.add_option("--rebuild-path", rebuild_path, "how the views are rebuilt: folded or runner")
      ->check(CLI::IsMember({"folded", "runner"}));
  app.add_flag("--compare", compare_paths,
               "rebuild the prefix by the other path too, and compare the two stores row by row");
  app.add_option("--runs", runs, "times the raw scan and the verify are repeated")
      ->check(CLI::Range(1, 20));
  CLI11_PARSE(app, argc, argv);
  auto wanted = [&](std::string_view part) {
    return ("," + parts + ",").find("," + std::string(part) + ",") != std::string::npos;
  };

  const std::string log_dir = dir + "/log";
  bool reused = false;
  {
    // Reuse a kept log when it is big enough; else write a fresh one.
    auto existing = events::open_embedded_log({.dir = log_dir, .read_only = true});
    std::uint64_t have = 0;
    if (existing) {
      if (auto end = (*existing)->end()) have = end->next.empty() ? 0 : end->next[0];
    }
    if (have < target_events) {
      existing = std::unexpected(events::Error{});
      std::filesystem::remove_all(dir);
      auto log = events::open_embedded_log({.dir = log_dir});
      if (!log) return 1;
      ops::WorkloadOptions o;
      o.tickets = target_events * 10 / 44 + 1;  // about 4.4 events a ticket
      o.users = 50'000;
      o.in_flight = 5'000;
      const auto t0 = Clock::now();
      auto summary = ops::fill_log(**log, o);
      if (!summary) {
        std::fprintf(stderr, "fill: %s\n", summary.error().message.c_str());
        return 1;
      }
      std::printf("workload: %llu events of %llu tickets written in %.1f s (%.0f events/s)\n",
                  static_cast<unsigned long long>(summary->events),
                  static_cast<unsigned long long>(summary->tickets), seconds_since(t0),
                  static_cast<double>(summary->events) / seconds_since(t0));
    } else {
      reused = true;
      std::printf("workload: reusing %llu events in %s\n", static_cast<unsigned long long>(have),
                  log_dir.c_str());
    }
  }

  auto opened = events::open_embedded_log({.dir = log_dir, .read_only = true});
  if (!opened) return 1;
  auto& log = **opened;
  auto raw = open_raw(log_dir);
  if (!raw) return 1;

  // --- Raw scan of the whole log: the floor of any walk, beside the verify ----------------
  std::uint64_t events_total = 0;
  std::vector<double> raw_rates, verify_rates;
  for (int run = 0; run < (wanted("verify") || wanted("walk") ? runs : 0); ++run) {
    std::uint64_t bytes_total = 0;
    events_total = 0;
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    // The read options of the tool's scan (events/embedded_log.cpp, EmbeddedScan): a baseline
    // with the default ones (block cache filled with blocks read once, no read-ahead) costs about
    // 1.5x the CPU, and would flatter the tool.
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    ro.readahead_size = 4 << 20;
    std::unique_ptr<rocksdb::Iterator> it(raw->db->NewIterator(ro, raw->handles[1]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++events_total;
      bytes_total += it->value().size();
    }
    const double s = seconds_since(t0);
    raw_rates.push_back(static_cast<double>(events_total) / s);
    std::printf(
        "raw RocksDB scan of the log: %llu events, %.0f MB in %.2f s: %.0f events/s (CPU %.1f "
        "s)\n",
        static_cast<unsigned long long>(events_total), bytes_total / 1e6, s, raw_rates.back(),
        cpu_seconds() - c0);
    if (wanted("walk")) {
      const auto tw = Clock::now();
      const double cw = cpu_seconds();
      std::uint64_t walked = 0;
      auto ok = replay::walk_log(
          log, {}, [&](std::vector<events::RecordedEvent>& batch) { walked += batch.size(); });
      if (!ok) return 1;
      const double w = seconds_since(tw);
      std::printf("walk (the tool's read path, no check): %.2f s: %.0f events/s (CPU %.1f s)\n", w,
                  static_cast<double>(walked) / w, cpu_seconds() - cw);
    }
    if (!wanted("verify")) continue;
    const auto t1 = Clock::now();
    const double c1 = cpu_seconds();
    auto report = replay::verify_log(log);
    if (!report) return 1;
    const double v = seconds_since(t1);
    verify_rates.push_back(static_cast<double>(report->events) / v);
    std::printf(
        "verify (hashes, chains, invariants): %.2f s: %.0f events/s, %.1f%% of raw scan, "
        "%s (CPU %.1f s, all threads)\n",
        v, verify_rates.back(), 100.0 * s / v, report->intact() ? "intact" : "DAMAGED",
        cpu_seconds() - c1);
    std::fflush(stdout);
  }
  if (runs > 1 && !verify_rates.empty()) {
    const double raw_p50 = percentile(raw_rates, 0.5), verify_p50 = percentile(verify_rates, 0.5);
    std::printf("medians of %d runs: raw scan %.0f events/s, verify %.0f events/s (%.1f%%)\n", runs,
                raw_p50, verify_p50, 100.0 * verify_p50 / raw_p50);
  }
  if (events_total == 0) {
    if (auto end = log.end(); end && !end->next.empty()) events_total = end->next[0];
  }

  // --- One stream's history --------------------------------------------------------------------
  if (wanted("history")) {
    // Streams picked evenly across the heads index.
    std::vector<std::string> streams;
    std::unique_ptr<rocksdb::Iterator> it(raw->db->NewIterator({}, raw->handles[3]));
    std::uint64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++n) {
      if (n % 997 == 0) streams.emplace_back(it->key().ToStringView());
    }
    std::shuffle(streams.begin(), streams.end(), std::mt19937(7));
    if (streams.size() > 2'000) streams.resize(2'000);
    std::vector<double> ours, baseline;
    std::uint64_t events_read = 0;
    for (const auto& stream : streams) {
      auto t0 = Clock::now();
      auto history = replay::read_history(log, stream);
      ours.push_back(seconds_since(t0) * 1e3);
      if (!history) return 1;
      events_read += history->size();
      // Raw: the same index scan and point reads, no decoding, no hashing.
      t0 = Clock::now();
      std::unique_ptr<rocksdb::Iterator> idx(raw->db->NewIterator({}, raw->handles[2]));
      const std::string prefix = stream + '\0';
      std::string value;
      for (idx->Seek(prefix); idx->Valid() && idx->key().starts_with(prefix); idx->Next()) {
        if (!raw->db->Get({}, raw->handles[1], idx->value(), &value).ok()) return 1;
      }
      baseline.push_back(seconds_since(t0) * 1e3);
    }
    std::printf(
        "history of one ticket (%zu streams, %.1f events each): p50 %.3f ms, p99 %.3f ms; raw "
        "index scan + reads p50 %.3f ms, p99 %.3f ms\n",
        streams.size(), static_cast<double>(events_read) / static_cast<double>(streams.size()),
        percentile(ours, 0.5), percentile(ours, 0.99), percentile(baseline, 0.5),
        percentile(baseline, 0.99));
  }

  // --- Views rebuilt from the log --------------------------------------------------------------
  if (wanted("rebuild")) {
    const std::uint64_t n = std::min(rebuild_events, events_total);
    const std::string views_dir = dir + "/views-rebuild";
    std::filesystem::remove_all(views_dir);
    const auto path =
        rebuild_path == "runner" ? replay::RebuildPath::runner : replay::RebuildPath::folded;
    // The runner's WriteBatches are kept (their bytes, in memory) and replayed afterwards into
    // a fresh store opened as the views' own, with the runner's write options: the raw floor of
    // writing the same rows in the same batches.
    std::vector<std::string> written;
    std::uint64_t rows = 0, bytes = 0;
    // Rows by kind (the key's first part and its list's kind, ticket_views.h and
    // structure_views.h) and operation, to show where the writes go.
    struct KindCounter final : rocksdb::WriteBatch::Handler {
      std::map<std::string, std::uint64_t> rows;
      static std::string kind(const rocksdb::Slice& key) {
        const std::string_view k = key.ToStringView();
        const auto end = k.find('\0');
        std::string out(k.substr(0, end));
        if (end != std::string_view::npos && end + 1 < k.size() &&
            (out == "x" || out == "k" || out == "f" || out == "kb" || out == "c")) {
          out += ' ';
          out += k[end + 1];  // e, q or d: emitted, support or received lists
        }
        return out.empty() ? "(store)" : out;
      }
      void Put(const rocksdb::Slice& key, const rocksdb::Slice&) override {
        ++rows[kind(key) + " put"];
      }
      void Delete(const rocksdb::Slice& key) override { ++rows[kind(key) + " delete"]; }
      rocksdb::Status MergeCF(std::uint32_t, const rocksdb::Slice& key,
                              const rocksdb::Slice&) override {
        ++rows[kind(key) + " merge"];
        return rocksdb::Status::OK();
      }
    } kinds;
    auto observe = [&](std::string_view rep) {
      rocksdb::WriteBatch batch{std::string(rep)};
      rows += batch.Count();
      (void)batch.Iterate(&kinds);
      bytes += rep.size();
      written.emplace_back(rep);
    };
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    auto reached = replay::rebuild_views(log, events::LogPosition{{n}}, views_dir, {}, path,
                                         path == replay::RebuildPath::runner
                                             ? std::function<void(std::string_view)>(observe)
                                             : nullptr);
    if (!reached) {
      std::fprintf(stderr, "rebuild: %s\n", reached.error().message.c_str());
      return 1;
    }
    const double s = seconds_since(t0);
    const double rebuild_cpu = cpu_seconds() - c0;
    std::printf("views rebuilt (%s) over the first %llu events: %.1f s: %.0f events/s (CPU %.1f s)",
                rebuild_path.c_str(), static_cast<unsigned long long>(n), s,
                static_cast<double>(n) / s, rebuild_cpu);
    if (reached->folded) {
      const auto& f = *reached->folded;
      std::printf(
          "; %llu tickets held, %llu rows written at the end; seconds: reading the log %.1f, "
          "tickets %.1f, other views %.1f, writing batches %.1f, final rows %.1f (tickets' "
          "half %.1f, lists' half %.1f), ingesting %.1f",
          static_cast<unsigned long long>(f.tickets), static_cast<unsigned long long>(f.final_rows),
          f.seconds.reading, f.seconds.tickets, f.seconds.other_views, f.seconds.writing,
          f.seconds.final_rows, f.seconds.final_rows_tickets, f.seconds.final_rows_lists,
          f.seconds.ingesting);
    }
    if (path == replay::RebuildPath::runner) {
      std::printf("; %llu rows written in %zu batches (%.0f MB)\n",
                  static_cast<unsigned long long>(rows), written.size(),
                  static_cast<double>(bytes) / 1e6);
      std::vector<std::pair<std::uint64_t, std::string>> by_count;
      for (const auto& [kind, count] : kinds.rows) by_count.emplace_back(count, kind);
      std::sort(by_count.rbegin(), by_count.rend());
      std::printf("  rows by kind:");
      for (std::size_t i = 0; i < by_count.size() && i < 14; ++i) {
        std::printf("%s %s %.1f%%", i == 0 ? "" : ",", by_count[i].second.c_str(),
                    100.0 * static_cast<double>(by_count[i].first) / static_cast<double>(rows));
      }
    }
    std::printf("\n");
    std::fflush(stdout);

    auto store_dir = replay::live_views_dir(views_dir);
    if (!store_dir) {
      std::fprintf(stderr, "floor: %s\n", store_dir.error().message.c_str());
      return 1;
    }
    if (compare_paths) {
      // The same prefix through the other path, and the two stores row by row.
      const std::string other_dir = dir + "/views-compare";
      std::filesystem::remove_all(other_dir);
      const auto other = path == replay::RebuildPath::runner ? replay::RebuildPath::folded
                                                             : replay::RebuildPath::runner;
      const auto o0 = Clock::now();
      auto again = replay::rebuild_views(log, events::LogPosition{{n}}, other_dir, {}, other);
      if (!again) {
        std::fprintf(stderr, "rebuild to compare: %s\n", again.error().message.c_str());
        return 1;
      }
      const double o = seconds_since(o0);
      auto left = replay::open_live_views(views_dir);
      auto right = replay::open_live_views(other_dir);
      if (!left || !right) {
        std::fprintf(stderr, "compare: cannot open the stores\n");
        return 1;
      }
      std::uint64_t more = 0;
      auto differences = replay::compare_views(**left, **right, 5, more);
      if (!differences) {
        std::fprintf(stderr, "compare: %s\n", differences.error().message.c_str());
        return 1;
      }
      std::printf("  the other path (%s): %.1f s: %.0f events/s; rows that differ: %llu\n",
                  other == replay::RebuildPath::runner ? "runner" : "folded", o,
                  static_cast<double>(n) / o,
                  static_cast<unsigned long long>(differences->size() + more));
      for (const auto& d : *differences) {
        std::printf("    %s: %s | %s\n", d.key.c_str(), d.left.substr(0, 80).c_str(),
                    d.right.substr(0, 80).c_str());
      }
      std::fflush(stdout);
      left->reset();
      right->reset();
      std::filesystem::remove_all(other_dir);
    }
    if (auto floor = write_floor(*store_dir, dir + "/views-floor", dir + "/views-raw"); !floor) {
      return 1;
    } else {
      std::printf(
          "floor of any rebuild of these views: the %llu rows the rebuilt store holds (%.0f MB), "
          "written in key order to SST files and ingested into a fresh store: %.1f s (CPU %.1f "
          "s; reading them back, not counted: %.1f s): %.0f events/s-equivalent; rebuild at "
          "%.1f%% of it\n",
          static_cast<unsigned long long>(floor->rows), static_cast<double>(floor->bytes) / 1e6,
          floor->write_s, floor->write_cpu, floor->read_s,
          static_cast<double>(n) / std::max(floor->write_s, 1e-9), 100.0 * floor->write_s / s);
      std::printf(
          "raw RocksDB WriteBatch of the same %llu rows, in key order, batches of 100,000 rows: "
          "%.1f s: %.0f events/s-equivalent (CPU %.1f s); rebuild at %.1f%% of raw\n",
          static_cast<unsigned long long>(floor->rows), floor->batch_s,
          static_cast<double>(n) / std::max(floor->batch_s, 1e-9), floor->batch_cpu,
          100.0 * floor->batch_s / s);
      std::fflush(stdout);
    }
    std::filesystem::remove_all(views_dir);
    if (path != replay::RebuildPath::runner) {
      // (The folded path writes no batch to replay.)
    } else {
      const std::string raw_dir = dir + "/views-raw";
      std::filesystem::remove_all(raw_dir);
      auto store = projections::ViewStore::open(raw_dir);
      if (!store) {
        std::fprintf(stderr, "raw store: %s\n", store.error().message.c_str());
        return 1;
      }
      rocksdb::WriteOptions wo;
      wo.sync = false;  // as projections::Runner writes
      const auto t1 = Clock::now();
      const double c1 = cpu_seconds();
      std::uint64_t replayed = 0;
      for (auto& rep : written) {
        rocksdb::WriteBatch wb(std::move(rep));
        replayed += wb.Count();
        if (auto st = (*store)->db()->Write(wo, &wb); !st.ok()) {
          std::fprintf(stderr, "raw write: %s\n", st.ToString().c_str());
          return 1;
        }
      }
      const double r = seconds_since(t1);
      std::printf(
          "raw RocksDB WriteBatch of the runner's %llu rows in its batches: %.1f s: %.0f "
          "events/s-equivalent (CPU %.1f s); rebuild at %.1f%% of raw\n",
          static_cast<unsigned long long>(replayed), r, static_cast<double>(n) / r,
          cpu_seconds() - c1, 100.0 * r / s);
      store->reset();
      std::filesystem::remove_all(raw_dir);
    }
  }

  raw.reset();
  opened->reset();
  if (!keep && !reused) std::filesystem::remove_all(dir);
  return 0;
}
