#pragma once
// The notifications outbox: every event a user must hear of by e-mail becomes a pending row a
// mailer drains (at least once), until a NotificationSent event marks it sent. Recipients are
// user ids; the mailer resolves addresses from the accounts, so no address sits here. Tickets
// (created, information requested, solution proposed) and structures (decisions on attachment
// and subscription requests, direct attachments, removals, GP transfers: "structure_id" set).
//
// Key layout:
//   o\0<occurred_at be64><notification_id>  -> notification (JSON), oldest first
//   oi\0<notification_id>                    -> the key of its pending row
// A notification id is the hex of the source event's id plus the kind: stable across rebuilds.
//
// Must be placed after TicketViews in a runner (it reads the ticket's emitter).

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "projections/projector.h"
#include "projections/ticket_views.h"

namespace chorus::projections {

class OutboxViews final : public Projector {
 public:
  Result<void> apply(const events::Event& event, const events::LogAddress& at,
                     ViewBatch& batch) override;

  // Where a ticket's emitter is read: when unset, the ticket views' rows in the batch
  // (ticket_emitter); the folded rebuild, which holds tickets in memory, sets its own. Fails as
  // ticket_emitter does. Set before the first apply().
  std::function<Result<std::optional<TicketEmitter>>(const std::string& ticket_id)> emitters;
};

// Up to `limit` pending notifications (JSON), oldest first. Thread-safe.
[[nodiscard]] Result<std::vector<std::string>> pending_notifications(const ViewStore& store,
                                                                     std::size_t limit);

// Whether `notification_id` is pending. Thread-safe.
[[nodiscard]] Result<bool> notification_pending(const ViewStore& store,
                                                const std::string& notification_id);

}  // namespace chorus::projections
