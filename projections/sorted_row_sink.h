#pragma once
// Where a fold's final rows go (ticket_fold.h, outbox_views.h): sorted streams, written as SST
// files by the folded rebuild (folded_rebuild.h).

#include <string_view>

#include "projections/errc.h"

namespace chorus::projections {

// Where the folded views' final rows go: several streams of rows, each in strictly ascending
// key order, whose key ranges do not overlap one another (one kind of row each: "x", "f", ...).
class SortedRowSink {
 public:
  virtual ~SortedRowSink() = default;
  // Adds a row to `stream`, after the rows given to that stream before (a greater key). Fails
  // with io_error (the files failed, or a key out of order: a bug of the writer). Calls for
  // different streams may come from different threads at once; one stream, one thread.
  [[nodiscard]] virtual Result<void> add(unsigned stream, std::string_view key,
                                         std::string_view value) = 0;
};

}  // namespace chorus::projections
