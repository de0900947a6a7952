// Ticket lists benchmark (issue 5): on a log of at least 2 million events written by the
// workload generator, with user-0 holding 100,000 tickets of their own, the views built by the
// real projections::Runner, then in-process latencies (no HTTP) of:
//   - a page of 50 of each "Tickets émis" tab for user-0: first, middle and last page, on every
//     sort column both ways;
//   - the counts per tab; searches by number, by words, category, status and dates (most
//     answered by the term bitmaps, list_tickets): first, middle and last page on every column
//     both ways, beside a raw scan of the list's opening-time index (what the general path reads)
//     and of the bucket sets and bitmaps; an agent's support queue (pages and a word search)
//     and the support queue of level 1;
//   - the CSV export rate of user-0's biggest tab (rows formatted as the route sends them);
// each beside raw RocksDB baselines measured in the same run on the same store: an iterator
// seek and a scan of 50 rows, and that scan plus the MultiGet of the 50 rows' state (what any
// page must read at least). Figures only; nothing here asserts a speed.
//
// Usage: ticket_list_bench [--events N] [--heavy-user-tickets N] [--samples N] [--dir DIR]
//                          [--keep] [--max-apply N] [--only TEXT]

#include <rocksdb/db.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "api/ticket_lists.h"
#include "events/embedded_log.h"
#include "ops/workload/workload.h"
#include "projections/runner.h"
#include "projections/standard_views.h"

using Clock = std::chrono::steady_clock;
using namespace chorus;

namespace {

// The ticket id of an index row's value: an opening-time index row carries the ticket's status
// and terms after it (ticket_views.h).
std::string_view row_id(const rocksdb::Slice& value) {
  const std::string_view v = value.ToStringView();
  return v.substr(0, v.find('\0'));
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The load average as /proc/loadavg gives it (1, 5 and 15 minutes).
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

struct Figure {
  double p50_ms = 0, p99_ms = 0;
};

// Runs `f` `samples` times (after a few warm-up runs) and gives p50/p99 in milliseconds.
template <class F>
Figure measure(int samples, F&& f) {
  for (int i = 0; i < 5; ++i) f();
  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(samples));
  for (int i = 0; i < samples; ++i) {
    const auto t0 = Clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return {percentile(ms, 0.5), percentile(ms, 0.99)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Ticket lists: page, count, search and export latencies beside raw RocksDB reads"};
  std::uint64_t target_events = 2'000'000, heavy = 100'000;
  int samples = 200;
  std::string dir = (std::filesystem::temp_directory_path() / "chorus-ticket-list-bench").string();
  bool keep = false;
  app.add_option("--events", target_events, "events in the log (at least)");
  app.add_option("--heavy-user-tickets", heavy, "tickets of user-0");
  app.add_option("--samples", samples, "timed runs per figure");
  app.add_option("--dir", dir, "scratch directory (removed at the end unless --keep)");
  app.add_flag("--keep", keep, "keep the log and views for a later run");
  std::uint64_t max_apply = 0;
  app.add_option("--max-apply", max_apply,
                 "stop projecting after this many more events (0: the whole log); with --keep, "
                 "a later run goes on from the views kept");
  std::string only;
  app.add_option("--only", only,
                 "run only the searches whose description holds this text (for a profiler): no "
                 "pages, counts, queue or export");
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows when piped to a file

  const std::string log_dir = dir + "/log";
  std::uint64_t have = 0;
  {
    auto existing = events::open_embedded_log({.dir = log_dir, .read_only = true});
    if (existing) {
      if (auto end = (*existing)->end()) have = end->next.empty() ? 0 : end->next[0];
    }
  }
  if (have < target_events) {
    std::filesystem::remove_all(dir);
    auto log = events::open_embedded_log({.dir = log_dir, .sync = false});
    if (!log) return 1;
    ops::WorkloadOptions o;
    const std::uint64_t tickets = target_events * 10 / 44 + 1;  // about 4.4 events a ticket
    o.tickets = tickets > heavy ? tickets - heavy : 0;
    o.heavy_user_tickets = heavy;
    o.users = 50'000;
    o.in_flight = 5'000;
    const auto t0 = Clock::now();
    auto summary = ops::fill_log(**log, o);
    if (!summary) {
      std::fprintf(stderr, "fill: %s\n", summary.error().message.c_str());
      return 1;
    }
    have = summary->events;
    std::printf("workload: %llu events of %llu tickets (user-0: %llu) written in %.1f s\n",
                static_cast<unsigned long long>(summary->events),
                static_cast<unsigned long long>(summary->tickets),
                static_cast<unsigned long long>(heavy), seconds_since(t0));
  } else {
    std::printf("workload: reusing %llu events in %s\n", static_cast<unsigned long long>(have),
                log_dir.c_str());
  }

  auto log = events::open_embedded_log({.dir = log_dir, .sync = false});
  if (!log) return 1;
  projections::StandardViews views;
  auto runner = projections::Runner::open(**log, dir, views.list());
  if (!runner) return 1;
  {
    const auto t0 = Clock::now();
    std::uint64_t applied = 0;
    while (true) {
      auto n = (*runner)->step(std::chrono::milliseconds(0));
      if (!n) {
        std::fprintf(stderr, "projection: %s\n", n.error().message.c_str());
        return 1;
      }
      if (*n == 0) break;
      applied += *n;
      if (max_apply > 0 && applied >= max_apply) break;
    }
    if (applied > 0) {
      std::printf("views: %llu events applied by projections::Runner in %.1f s (%.0f events/s)\n",
                  static_cast<unsigned long long>(applied), seconds_since(t0),
                  static_cast<double>(applied) / seconds_since(t0));
    }
  }
  // Compacted, as a store that has been serving for a while is; the figures then do not
  // depend on how many memtables the build happened to leave.
  auto store = (*runner)->store();
  {
    const auto t0 = Clock::now();
    rocksdb::CompactRangeOptions c;
    (void)store->db()->CompactRange(c, nullptr, nullptr);
    std::printf("views compacted in %.1f s\n", seconds_since(t0));
  }

  const std::string user = "user-0";
  std::printf(
      "\nconditions: %llu events in the log, views at position %s, %d samples per "
      "figure, pages of 50, in-process calls, load average %s\n",
      static_cast<unsigned long long>(have), store->position().value_or("?").c_str(), samples,
      load_average().c_str());
  for (const char* tab : projections::kTicketTabs) {
    std::printf("  user-0 %-16s %8llu rows\n", tab,
                static_cast<unsigned long long>(
                    *projections::list_count(*store, *projections::emitted_list(user, tab))));
  }

  // --- Raw baselines on the same store ---------------------------------------------------
  const std::string biggest = *projections::emitted_list(user, "clotures");
  std::string index_prefix("x\0", 2);
  index_prefix += biggest + std::string("\0o\0", 3);
  std::mt19937_64 rng(7);
  std::vector<std::string> seek_keys;
  {
    // Start keys spread over the index (what first, middle and last pages touch).
    std::vector<std::string> all;
    (void)store->scan(index_prefix, "", false, [&](std::string_view k, std::string_view) {
      all.emplace_back(k);
      return true;
    });
    for (int i = 0; i < 64 && !all.empty(); ++i) seek_keys.push_back(all[rng() % all.size()]);
  }
  std::size_t next_seek = 0;
  std::vector<std::string> ids;
  const Figure raw_scan = measure(samples, [&] {
    ids.clear();
    std::unique_ptr<rocksdb::Iterator> it(store->db()->NewIterator({}));
    for (it->Seek(seek_keys[next_seek++ % seek_keys.size()]); it->Valid() && ids.size() < 50;
         it->Next()) {
      ids.emplace_back(row_id(it->value()));
    }
  });
  const Figure raw_page = measure(samples, [&] {
    ids.clear();
    std::unique_ptr<rocksdb::Iterator> it(store->db()->NewIterator({}));
    for (it->Seek(seek_keys[next_seek++ % seek_keys.size()]); it->Valid() && ids.size() < 50;
         it->Next()) {
      ids.emplace_back(row_id(it->value()));
    }
    std::vector<std::string> keys;
    for (const auto& id : ids) keys.push_back(std::string("s\0", 2) + id);
    (void)store->multi_get(keys);
  });
  std::printf(
      "\nraw RocksDB, same store: seek + scan of 50 index rows   p50 %.3f ms  p99 %.3f ms\n",
      raw_scan.p50_ms, raw_scan.p99_ms);
  std::printf("raw RocksDB, same store: that + MultiGet of 50 states  p50 %.3f ms  p99 %.3f ms\n",
              raw_page.p50_ms, raw_page.p99_ms);

  // --- Pages --------------------------------------------------------------------------------
  std::printf("\npages of 50 for user-0, p50/p99 in ms (first | middle | last):\n");
  const char* const sorts[] = {"number",       "title",  "category",
                               "sub_category", "status", "opened_at"};
  double worst_p99 = 0, sum_first = 0, sum_last = 0;
  int combos = 0;
  for (const char* tab : projections::kTicketTabs) {
    if (!only.empty()) break;
    const std::string list = *projections::emitted_list(user, tab);
    const std::uint64_t total = *projections::list_count(*store, list);
    const std::size_t last = std::max<std::size_t>(1, (total + 49) / 50);
    for (const char* sort : sorts) {
      for (bool descending : {false, true}) {
        projections::TicketQuery q;
        q.sort = *projections::parse_ticket_sort(sort);
        q.descending = descending;
        q.page_size = 50;
        Figure f[3];
        const std::size_t pages[3] = {1, std::max<std::size_t>(1, last / 2), last};
        for (int i = 0; i < 3; ++i) {
          q.page = pages[i];
          f[i] = measure(samples, [&] {
            auto page = projections::list_tickets(*store, list, q);
            if (!page || (total > 0 && page->rows.empty())) std::abort();
          });
          worst_p99 = std::max(worst_p99, f[i].p99_ms);
        }
        sum_first += f[0].p99_ms;
        sum_last += f[2].p99_ms;
        ++combos;
        std::printf("  %-16s %-12s %-4s  %.3f/%.3f | %.3f/%.3f | %.3f/%.3f\n", tab, sort,
                    descending ? "desc" : "asc", f[0].p50_ms, f[0].p99_ms, f[1].p50_ms, f[1].p99_ms,
                    f[2].p50_ms, f[2].p99_ms);
      }
    }
  }
  std::printf(
      "worst page p99: %.3f ms (%.1fx the raw page baseline's p99); mean p99 first page "
      "%.3f ms, last page %.3f ms\n",
      worst_p99, worst_p99 / raw_page.p99_ms, sum_first / combos, sum_last / combos);

  // --- Counts, search, queue ----------------------------------------------------------------
  const Figure counts = measure(samples, [&] {
    for (const char* tab : projections::kTicketTabs) {
      (void)projections::list_count(*store, *projections::emitted_list(user, tab));
    }
  });
  std::printf("\ncounts of the 5 tabs: p50 %.3f ms  p99 %.3f ms\n", counts.p50_ms, counts.p99_ms);

  auto first_row = projections::list_tickets(*store, biggest, projections::TicketQuery{});
  const std::string number =
      first_row && !first_row->rows.empty()
          ? nlohmann::json::parse(first_row->rows[0])["number"].get<std::string>()
          : "";
  // Opening times a third into "Tous" and 5,000 rows further: a date range of a few weeks.
  auto opened_at_rank = [&](std::size_t rank) -> std::int64_t {
    projections::TicketQuery q;
    q.descending = false;
    q.page_size = 1;
    q.page = rank + 1;
    auto page = projections::list_tickets(*store, *projections::emitted_list(user, "tous"), q);
    if (!page || page->rows.empty()) std::abort();
    return nlohmann::json::parse(page->rows[0])["opened_at_us"].get<std::int64_t>();
  };
  const std::uint64_t tous_rows =
      *projections::list_count(*store, *projections::emitted_list(user, "tous"));
  const std::int64_t range_from = opened_at_rank(tous_rows / 3);
  const std::int64_t range_to = opened_at_rank(tous_rows / 3 + 5000);
  struct Search {
    const char* what;
    const char* tab;
    projections::TicketSearch criteria;
    bool every_sort = false;  // else opening time and title
  };
  auto criteria = [](auto set) {
    projections::TicketSearch c;
    set(c);
    return c;
  };
  double worst_search_p99 = 0;
  const Search searches[] = {
      {"number", "clotures", criteria([&](auto& c) { c.number = number; })},
      {"word 'facture' (in most tickets)", "tous", criteria([](auto& c) { c.words = "facture"; }),
       true},
      {"word 'facture' (in most tickets)", "clotures",
       criteria([](auto& c) { c.words = "facture"; })},
      {"words 'rejet paiement mandat'", "tous",
       criteria([](auto& c) { c.words = "rejet paiement mandat"; }), true},
      {"words 'rejet paiement mandat'", "clotures",
       criteria([](auto& c) { c.words = "rejet paiement mandat"; })},
      {"word 'facture', status 'Fermé'", "clotures", criteria([](auto& c) {
         c.words = "facture";
         c.status = "Fermé";
       })},
      {"word 'facture', status 'Résolu'", "tous", criteria([](auto& c) {
         c.words = "facture";
         c.status = "Résolu";
       })},
      {"word 'facture' (in most tickets)", "brouillons",
       criteria([](auto& c) { c.words = "facture"; })},
      {"category 'Technique'", "tous", criteria([](auto& c) { c.category = "Technique"; }), true},
      {"category 'Technique'", "clotures", criteria([](auto& c) { c.category = "Technique"; })},
      {"word 'facture', category 'Technique'", "tous", criteria([](auto& c) {
         c.words = "facture";
         c.category = "Technique";
       }),
       true},
      {"dates (5,000 rows of Tous)", "tous", criteria([&](auto& c) {
         c.opened_from_us = range_from;
         c.opened_before_us = range_to;
       })},
      {"word 'facture', dates", "tous", criteria([&](auto& c) {
         c.words = "facture";
         c.opened_from_us = range_from;
         c.opened_before_us = range_to;
       })},
  };
  // Each search: the first, a middle and the last page of 50 on opening time both ways and on
  // title both ways, two searches on every column (every call also counts the matches: the total
  // shown with the page).
  // Raw baselines: what the general path reads for an exact total, the list's opening-time
  // index (each row carrying the ticket's terms); for several terms, the bucket sets and term
  // bitmaps the bitmap path reads instead; in raw iterator scans (nothing decoded, nothing
  // matched).
  std::printf("\nsearches, pages of 50, p50/p99 in ms (first | middle | last):\n");
  for (const auto& s : searches) {
    if (!std::string_view(s.what).contains(only)) continue;
    const std::string list = *projections::emitted_list(user, s.tab);
    const int n = std::max(20, samples / 5);
    std::size_t raw_rows = 0;
    const Figure raw = measure(n, [&] {
      std::size_t rows = 0;
      std::vector<std::string> prefixes{std::string("x\0", 2) + list + std::string("\0o\0", 3)};
      if (!s.criteria.number.empty()) prefixes.resize(0);
      for (const auto& prefix : prefixes) {
        std::unique_ptr<rocksdb::Iterator> it(store->db()->NewIterator({}));
        for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) ++rows;
      }
      raw_rows = rows;
    });
    std::printf(
        "  %-34s in %-9s raw scan of the list's rows and their terms (%zu keys): p50 %.3f ms  "
        "p99 %.3f ms\n",
        s.what, s.tab, raw_rows, raw.p50_ms, raw.p99_ms);
    // Several terms page from the user's term bitmaps and the list's bucket sets
    // (ticket_views.h): their raw scan, on opening time.
    std::vector<std::string> terms;
    std::istringstream term_words(s.criteria.words);
    for (std::string w; term_words >> w;) terms.push_back(projections::fold_text(w));
    if (!s.criteria.category.empty()) {
      terms.push_back(std::string("\x01") + "c" + projections::fold_text(s.criteria.category));
    }
    if (terms.size() >= 2 && s.criteria.number.empty() && s.criteria.status.empty()) {
      std::vector<std::string> prefixes{std::string("kb\0", 3) + list + std::string("\0o\0", 3)};
      for (const auto& t : terms)
        prefixes.push_back(std::string("tb\0", 3) + user + '\0' + t + '\0');
      std::size_t keys = 0, bytes = 0;
      const Figure bits = measure(n, [&] {
        keys = bytes = 0;
        for (const auto& prefix : prefixes) {
          std::unique_ptr<rocksdb::Iterator> it(store->db()->NewIterator({}));
          for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
            ++keys;
            bytes += it->value().size();
          }
        }
      });
      std::printf(
          "  %-34s in %-9s raw scan of the bucket sets and term bitmaps (%zu keys, %zu kB): "
          "p50 %.3f ms  p99 %.3f ms\n",
          s.what, s.tab, keys, bytes / 1024, bits.p50_ms, bits.p99_ms);
    }
    const std::vector<const char*> search_sorts =
        s.every_sort ? std::vector<const char*>{"opened_at", "title",        "number",
                                                "category",  "sub_category", "status"}
                     : std::vector<const char*>{"opened_at", "title"};
    for (const char* sort : search_sorts) {
      for (bool descending : {true, false}) {
        projections::TicketQuery q;
        q.page_size = 50;
        q.search = s.criteria;
        q.sort = *projections::parse_ticket_sort(sort);
        q.descending = descending;
        q.page = 1;
        auto first = projections::list_tickets(*store, list, q);
        if (!first) std::abort();
        const std::uint64_t matches = first->total;
        const std::size_t last = std::max<std::size_t>(1, (matches + 49) / 50);
        const std::size_t pages[3] = {1, std::max<std::size_t>(1, last / 2), last};
        Figure f[3];
        for (int i = 0; i < 3; ++i) {
          q.page = pages[i];
          f[i] = measure(n, [&] {
            auto page = projections::list_tickets(*store, list, q);
            if (!page || page->total != matches) std::abort();
          });
          worst_search_p99 = std::max(worst_search_p99, f[i].p99_ms);
        }
        std::printf("  %-34s in %-9s %7llu matches, %-9s %-4s %.3f/%.3f | %.3f/%.3f | %.3f/%.3f\n",
                    s.what, s.tab, static_cast<unsigned long long>(matches), sort,
                    descending ? "desc" : "asc", f[0].p50_ms, f[0].p99_ms, f[1].p50_ms, f[1].p99_ms,
                    f[2].p50_ms, f[2].p99_ms);
        if (!s.criteria.number.empty()) break;
      }
      if (!s.criteria.number.empty()) break;
    }
  }
  std::printf("worst search page p99: %.3f ms\n\n", worst_search_p99);

  if (!only.empty()) {
    if (!keep) std::filesystem::remove_all(dir);
    return 0;
  }
  {
    // A support queue of about the size DOMAIN.md gives for the worst stock of open tickets
    // (2,000): the agent queue ("assigned to me") nearest to it. Queues keep an index per
    // column, as the emitted lists do.
    const std::string queue_counts("c\0q\0", 4);
    std::string queue;
    std::uint64_t rows = 0;
    (void)store->scan(queue_counts, "", false, [&](std::string_view key, std::string_view value) {
      const std::uint64_t n = projections::from_be64(value);
      const auto distance = [](std::uint64_t x) { return x > 2000 ? x - 2000 : 2000 - x; };
      if (queue.empty() || distance(n) < distance(rows)) {
        queue.assign(key.substr(2));
        rows = n;
      }
      return true;
    });
    for (const char* sort : {"opened_at", "title", "category", "word"}) {
      projections::TicketQuery q;
      q.page_size = 50;
      // A word search in the queue: a scan of its opening-time index, whose rows carry each
      // ticket's terms, then a walk of the sort's index (ticket_views.h).
      if (std::string_view(sort) == "word") {
        q.search.words = "facture";
      } else {
        q.sort = *projections::parse_ticket_sort(sort);
      }
      Figure f[2];
      for (int i = 0; i < 2; ++i) {
        q.page = i == 0 ? 1 : std::max<std::uint64_t>(1, (rows + 49) / 50);
        f[i] = measure(samples, [&] { (void)projections::list_tickets(*store, queue, q); });
      }
      std::printf(
          "support queue of one agent (%llu rows), on %-9s first page p50 %.3f ms p99 %.3f ms, "
          "last page p50 %.3f ms p99 %.3f ms\n",
          static_cast<unsigned long long>(rows), sort, f[0].p50_ms, f[0].p99_ms, f[1].p50_ms,
          f[1].p99_ms);
    }
  }
  {
    const std::string queue = *projections::support_queue(1, projections::QueueScope::all, "");
    const std::uint64_t total = *projections::list_count(*store, queue);
    projections::TicketQuery q;
    q.page_size = 50;
    q.page = std::max<std::uint64_t>(1, (total + 49) / 50);
    const Figure f = measure(samples, [&] { (void)projections::list_tickets(*store, queue, q); });
    std::printf("support queue level 1 (%llu rows), last page: p50 %.3f ms  p99 %.3f ms\n",
                static_cast<unsigned long long>(total), f.p50_ms, f.p99_ms);
  }

  // --- CSV export ------------------------------------------------------------------------------
  {
    projections::TicketQuery q;
    const auto t0 = Clock::now();
    auto response = api::ticket_csv_response(store, biggest, q, "bench.csv");
    std::string chunk;
    std::uint64_t bytes = 0, chunks = 0;
    api::StreamStep step = api::StreamStep::more;
    while (step == api::StreamStep::more) {
      chunk.clear();
      step = response.stream(chunk);
      bytes += chunk.size();
      ++chunks;
    }
    const double s = seconds_since(t0);
    const std::uint64_t rows = *projections::list_count(*store, biggest);
    std::printf(
        "\nCSV export of user-0's clotures: %llu rows, %.1f MB in %.2f s: %.0f rows/s "
        "(%llu chunks, largest held at once ~%.0f kB)\n",
        static_cast<unsigned long long>(rows), static_cast<double>(bytes) / 1e6, s,
        static_cast<double>(rows) / s, static_cast<unsigned long long>(chunks),
        static_cast<double>(bytes) / static_cast<double>(chunks) / 1e3);
    // Raw: the same index walked and every state read, 500 at a time, nothing formatted.
    const auto t1 = Clock::now();
    std::uint64_t raw_rows = 0;
    std::unique_ptr<rocksdb::Iterator> it(store->db()->NewIterator({}));
    std::vector<std::string> keys;
    for (it->Seek(index_prefix); it->Valid() && it->key().starts_with(index_prefix); it->Next()) {
      keys.push_back(std::string("s\0", 2).append(row_id(it->value())));
      if (keys.size() == 500) {
        raw_rows += keys.size();
        (void)store->multi_get(keys);
        keys.clear();
      }
    }
    raw_rows += keys.size();
    (void)store->multi_get(keys);
    const double raw_s = seconds_since(t1);
    std::printf(
        "raw RocksDB walk of the same index + MultiGet of the states: %.0f rows/s "
        "(export at %.0f%% of raw)\n",
        static_cast<double>(raw_rows) / raw_s, 100.0 * raw_s / s);
  }

  std::printf("load average at the end: %s\n", load_average().c_str());
  store.reset();
  runner->reset();
  log->reset();
  if (!keep) std::filesystem::remove_all(dir);
  return 0;
}
