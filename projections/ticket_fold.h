#pragma once
// The ticket views folded in memory, for a rebuild into an empty store (folded_rebuild.h).
//
// The live projector (TicketViews) reads and rewrites a ticket's state, detail and words rows
// at each event, and moves the ticket between its lists, bucket sets and term bitmaps once per
// batch: on a log of millions of tickets that is tens of microseconds an event, most of it
// reading back what it wrote. Here each ticket is kept in memory as its events leave it (the
// same step, ticket_rows.h), and every row that changes with the ticket's life (state, detail,
// words, the lists sorted on each column with their fences and bucket counts, list counts,
// emitted counts, bucket sets, term bitmaps) is written once, at the end, in key order; so are
// the rows written once whatever happens (activity history, numbers, contents named), which
// would otherwise go through the memtable, the write-ahead log and compactions. The views it
// leaves are the ones TicketViews leaves over the same events (compared row by row in
// tests/projections/runner_test.cpp and at every fresh rebuild of ticket_random_test.cpp).
//
// Memory: every ticket's state, detail, words and history (about 1 KB a ticket and 150 bytes an
// event: some 3.5 GB for replay_bench's 10M-event log of 2.2M tickets), and at the end the
// tickets' places in their lists (a pointer each) and, one list at a time, that list's rows.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "projections/errc.h"
#include "projections/sorted_row_sink.h"
#include "projections/ticket_views.h"

namespace chorus::projections {

class TicketFold {
 public:
  TicketFold();
  ~TicketFold();
  TicketFold(const TicketFold&) = delete;
  TicketFold& operator=(const TicketFold&) = delete;

  // Works out what `event` does to its ticket, as TicketViews::apply would, and holds it until
  // commit() or drop(), which `event` must outlive; a stage not committed is dropped by the
  // next. Returns false, staging
  // nothing, for an event of no ticket. Fails with poison where TicketViews::apply does (the
  // runner sets such an event aside): nothing is staged then. May throw what the step throws
  // (a library's exception), staging nothing. Not thread-safe.
  [[nodiscard]] Result<bool> stage(const events::Event& event);
  // The emitter of `ticket_id` as the staged event (if of that ticket) leaves it; nullopt when
  // the ticket is unknown (never formed, or its draft deleted). For the outbox, which the
  // runner applies after the tickets. Changes nothing; not thread-safe.
  [[nodiscard]] std::optional<TicketEmitter> emitter(const std::string& ticket_id) const;
  // Keeps the staged change. Without a stage, nothing. Not thread-safe.
  void commit();
  // Forgets the staged change. Not thread-safe.
  void drop();

  // Write every other row of the ticket views, as the tickets stand, to `sink`, in streams 0
  // to kStreams - 1, one per kind of row: the rows of each ticket (state, detail, words,
  // history), the emitted counts, numbers and contents named; the term bitmaps; and the lists
  // (their rows sorted on each column, fences, bucket counts, bucket sets, list counts). Each
  // writes its own streams, and they may run at once on different threads into a sink whose
  // streams are independent. Fail with what `sink` fails with (the rows written so far stay in
  // it). Change nothing in the fold; thread-safe against each other, not against the other
  // methods.
  static constexpr unsigned kStreams = 13;
  [[nodiscard]] Result<void> write_ticket_rows(SortedRowSink& sink) const;
  [[nodiscard]] Result<void> write_term_bitmaps(SortedRowSink& sink) const;
  [[nodiscard]] Result<void> write_list_rows(SortedRowSink& sink) const;

  // Tickets held (drafts deleted since excluded). Not thread-safe.
  [[nodiscard]] std::size_t tickets() const;

 private:
  // Whether `user` keeps term bitmaps and bucket sets (kTermBitmapsFrom tickets emitted).
  [[nodiscard]] bool keeps(const std::string& user) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chorus::projections
