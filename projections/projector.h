#pragma once
// A projector turns events into view rows. Projectors are stateless: every row they need
// lives in the store, so the same projector serves the live store and a rebuild.

#include "events/event.h"
#include "events/event_log.h"
#include "projections/view_store.h"

namespace chorus::projections {

class Projector {
 public:
  virtual ~Projector() = default;
  // Adds the changes `event` (stored at `at`) makes to this projector's views into `batch`.
  // Events of other aggregates are ignored. A failure sets the event aside: the runner rolls
  // back this event's changes, records why, and goes on. Not thread-safe per batch.
  [[nodiscard]] virtual Result<void> apply(const events::Event& event, const events::LogAddress& at,
                                           ViewBatch& batch) = 0;
};

}  // namespace chorus::projections
