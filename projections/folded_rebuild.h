#pragma once
// A rebuild of every standard view into an empty store, folded: the ticket views and the
// outbox are kept in memory as the events leave them (ticket_fold.h, OutboxFold) and written
// once at the end, sorted, as SST files ingested into the store; the other views (structures,
// reference objects: few events) are applied by their projectors in batches, as the runner
// does. The store it leaves holds the rows a Runner applying the same events would (compared
// row by row in tests/projections/runner_test.cpp and ticket_random_test.cpp).
//
// Used where views are built from nothing and nobody reads them before the end: the replay
// tool's views at a moment. The server's own rebuild (Runner::rebuild) keeps the live path,
// which also catches up with a log that is still being written.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "events/event_log.h"
#include "projections/errc.h"

namespace chorus::projections {

struct FoldedRebuild {
  events::LogPosition reached;   // the log's end when the rebuild read it (its applied position)
  std::uint64_t events = 0;      // applied or set aside
  std::uint64_t set_aside = 0;   // recorded as the runner records them (kSetAsidePrefix)
  std::uint64_t tickets = 0;     // held in memory at the end
  std::uint64_t final_rows = 0;  // written at the end as sorted files
  // Where the time went (wall seconds), for the benchmark.
  struct Seconds {
    double reading = 0;      // polling and decoding the log
    double tickets = 0;      // the fold's steps
    double other_views = 0;  // the other projectors, into their batches
    double writing = 0;      // those batches into the store
    double final_rows = 0;   // the fold's final rows into sorted files, in two halves at once:
    double final_rows_tickets = 0;  // each ticket's rows, counts, term bitmaps; the outbox
    double final_rows_lists = 0;    // the lists
    double ingesting = 0;           // those files into the store, and the last flush
  } seconds;
};

// Applies every event of `log`, from its start to the end it has when the rebuild starts, to
// a new store in `dir` (created; must not hold a store), recorded under this build's layout
// (kViewsLayout) with that end as its position. `progress`, when set, is called with the
// events applied so far and the total. An event that cannot be applied is set aside as the
// runner sets it aside (the same row). Fails with log_error (the log cannot be read),
// io_error (the store or its files failed; also out of memory) or invalid_argument (`dir`
// holds a store), exceptions included; `dir` is then left half-written, for the caller to
// remove. The store is whole only once this succeeds (written without a write-ahead log, its
// position recorded last): a caller must not serve nor extend it before (replay's rebuild_views
// builds it aside and moves it into place). Not thread-safe (one rebuild per directory); the
// log may be appended to meanwhile.
[[nodiscard]] Result<FoldedRebuild> rebuild_folded(
    events::EventLog& log, const std::string& dir,
    const std::function<void(std::uint64_t done, std::uint64_t total)>& progress = {});

}  // namespace chorus::projections
