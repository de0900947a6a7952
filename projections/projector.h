#pragma once
// A projector turns events into view rows. Projectors are stateless: every row they need
// lives in the store (and what they defer to a batch's end, in the batch's notes), so the same
// projector serves the live store and a rebuild.

#include "events/event.h"
#include "events/event_log.h"
#include "projections/view_store.h"

namespace chorus::projections {

class Projector {
 public:
  virtual ~Projector() = default;
  // Adds the changes `event` (stored at `at`) makes to this projector's views into `batch`.
  // Events of other aggregates are ignored. A poison failure (the event cannot be applied, a
  // row it needs is malformed) sets the event aside: the runner rolls back this event's
  // changes, records why, and goes on. Any other failure (io_error: the store failed) fails
  // the whole batch, as finish()'s does. Projectors are not meant to throw; an exception that
  // escapes anyway (a bug, a library's) sets the event aside as poison does, rather than
  // stopping the runner at the same event on every start. Not thread-safe per batch.
  [[nodiscard]] virtual Result<void> apply(const events::Event& event, const events::LogAddress& at,
                                           ViewBatch& batch) = 0;
  // Called once per batch, after its last event and before it is committed: the work apply()
  // deferred to the batch's end through batch.notes() (a ticket's moves between lists, made
  // once per batch whatever its events). A failure fails the whole batch: nothing of it is
  // committed and the runner tries it again. Not thread-safe per batch.
  [[nodiscard]] virtual Result<void> finish(ViewBatch& batch) {
    (void)batch;
    return {};
  }
};

}  // namespace chorus::projections
