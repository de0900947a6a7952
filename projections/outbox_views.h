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
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "projections/projector.h"
#include "projections/sorted_row_sink.h"
#include "projections/ticket_views.h"

namespace chorus::projections {

class OutboxViews final : public Projector {
 public:
  Result<void> apply(const events::Event& event, const events::LogAddress& at,
                     ViewBatch& batch) override;
};

// The outbox folded in memory for the folded rebuild (folded_rebuild.h): the notifications
// pending as the events so far leave them, written once at the end, sorted, instead of a put
// and a memtable insert per row (and a delete when sent). The same rows as OutboxViews over the
// same events.
class OutboxFold {
 public:
  using Emitters =
      std::function<Result<std::optional<TicketEmitter>>(const std::string& ticket_id)>;
  OutboxFold();
  ~OutboxFold();
  OutboxFold(const OutboxFold&) = delete;
  OutboxFold& operator=(const OutboxFold&) = delete;

  // Works out the notifications `event` adds, or the one it marks sent, as OutboxViews::apply
  // would, reading tickets' emitters from `emitters`; holds them until commit() or drop() (a
  // stage not committed is dropped by the next). Fails with poison where OutboxViews::apply
  // does (a notification for an unknown ticket), or with what `emitters` fails with; nothing
  // is staged then. Not thread-safe.
  [[nodiscard]] Result<void> stage(const events::Event& event, const Emitters& emitters);
  // Keeps the staged change; without one, nothing. Not thread-safe.
  void commit();
  // Forgets the staged change. Not thread-safe.
  void drop();
  // Writes the pending notifications (o rows) to stream `first` of `sink` and their index (oi
  // rows) to stream `first` + 1. Fails with what `sink` fails with. Changes nothing; not
  // thread-safe against the other methods.
  static constexpr unsigned kStreams = 2;
  [[nodiscard]] Result<void> write_rows(SortedRowSink& sink, unsigned first) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Up to `limit` pending notifications (JSON), oldest first. Thread-safe.
[[nodiscard]] Result<std::vector<std::string>> pending_notifications(const ViewStore& store,
                                                                     std::size_t limit);

// Whether `notification_id` is pending. Thread-safe.
[[nodiscard]] Result<bool> notification_pending(const ViewStore& store,
                                                const std::string& notification_id);

}  // namespace chorus::projections
