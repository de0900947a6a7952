#pragma once
// The ticket views folded in memory, for a rebuild into an empty store (folded_rebuild.h).
//
// The live projector (TicketViews) reads and rewrites a ticket's state, detail and words rows
// at each event, and moves the ticket between its lists, bucket sets and term bitmaps once per
// batch: on a log of millions of tickets that is tens of microseconds an event, most of it
// reading back what it wrote. Here each ticket is kept in memory as its events leave it (the
// same step, ticket_rows.h), and every row that changes with the ticket's life (state, detail,
// words, the lists sorted on each column with their fences and bucket counts, list counts,
// emitted counts, bucket sets, term bitmaps) is written once, at the end, in key order. Rows
// written once whatever happens (activity history, numbers, contents named) go out as their
// events come. The views it leaves are the ones TicketViews leaves over the same events
// (tests/projections/folded_rebuild_test.cpp compares them row by row).
//
// Memory: every ticket's state, detail and words (about 1 KB a ticket), and at the end the
// tickets' places in their lists (a pointer each) and, one list at a time, that list's rows.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "projections/errc.h"
#include "projections/ticket_views.h"

namespace chorus::projections {

// Where the folded views' final rows go: several streams of rows, each in strictly ascending
// key order, whose key ranges do not overlap one another (one kind of row each: "x", "f", ...).
class SortedRowSink {
 public:
  virtual ~SortedRowSink() = default;
  // Adds a row to `stream`, after the rows given to that stream before (a greater key). Fails
  // with io_error (the files failed, or a key out of order: a bug of the writer).
  [[nodiscard]] virtual Result<void> add(unsigned stream, std::string_view key,
                                         std::string_view value) = 0;
};

// A row the fold writes as its event comes (a history entry, a number, a content named), or
// deletes (the history of a deleted draft): `erase` then, `value` empty.
struct DirectRow {
  std::string key;
  std::string value;
  bool erase = false;
};

class TicketFold {
 public:
  TicketFold();
  ~TicketFold();
  TicketFold(const TicketFold&) = delete;
  TicketFold& operator=(const TicketFold&) = delete;

  // Works out what `event` does to its ticket, as TicketViews::apply would, and holds it until
  // commit() or drop(); a stage not committed is dropped by the next. Returns false, staging
  // nothing, for an event of no ticket. Fails with poison where TicketViews::apply does (the
  // runner sets such an event aside): nothing is staged then. May throw what the step throws
  // (a library's exception), staging nothing. Not thread-safe.
  [[nodiscard]] Result<bool> stage(const events::Event& event);
  // The emitter of `ticket_id` as the staged event (if of that ticket) leaves it; nullopt when
  // the ticket is unknown (never formed, or its draft deleted). For the outbox, which the
  // runner applies after the tickets. Changes nothing; not thread-safe.
  [[nodiscard]] std::optional<TicketEmitter> emitter(const std::string& ticket_id) const;
  // Keeps the staged change, and appends the rows it writes once (history entry, number,
  // content; a deleted draft's history deletions) to `direct`, to be written in that order
  // for a same key. Without a stage, nothing. Not thread-safe.
  void commit(std::vector<DirectRow>& direct);
  // Forgets the staged change. Not thread-safe.
  void drop();

  // Writes every other row of the ticket views, as the tickets stand, to `sink`: streams
  // 0 to kStreams - 1, one per kind of row. Fails with what `sink` fails with (the rows
  // written so far stay in it). Changes nothing in the fold; not thread-safe.
  static constexpr unsigned kStreams = 10;
  [[nodiscard]] Result<void> write_rows(SortedRowSink& sink) const;

  // Tickets held (drafts deleted since excluded). Not thread-safe.
  [[nodiscard]] std::size_t tickets() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chorus::projections
