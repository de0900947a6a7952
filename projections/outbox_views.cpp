#include "projections/outbox_views.h"

#include <nlohmann/json.hpp>

#include "events/codec.h"
#include "projections/ticket_views.h"

namespace chorus::projections {
namespace {

using nlohmann::json;

const std::string kPending("o\0", 2);
const std::string kIndex("oi\0", 3);

// The e-mails the seeds describe for tickets: the number on creation, an information request,
// a proposed solution.
const char* kind_of(const events::Payload& p) {
  if (std::holds_alternative<events::TicketSubmitted>(p)) return "ticket_created";
  if (std::holds_alternative<events::InformationRequested>(p)) return "information_requested";
  if (std::holds_alternative<events::SolutionProposed>(p)) return "solution_proposed";
  return nullptr;
}

}  // namespace

Result<void> OutboxViews::apply(const events::Event& event, const events::LogAddress&,
                                ViewBatch& batch) {
  if (const auto* sent = std::get_if<events::NotificationSent>(&event.payload)) {
    auto key = batch.get(kIndex + sent->notification_id);
    if (!key) return std::unexpected(key.error());
    if (key->has_value()) {
      batch.del(**key);
      batch.del(kIndex + sent->notification_id);
    }
    return {};
  }
  const char* kind = kind_of(event.payload);
  if (kind == nullptr) return {};
  const std::string& ticket_id = *ticket_id_of(event.payload);
  auto emitter = ticket_emitter(batch, ticket_id);
  if (!emitter) return std::unexpected(emitter.error());
  if (!emitter->has_value()) return fail(errc::poison, "notification for an unknown ticket");

  const std::string id = events::to_hex(event.meta.event_id) + "-" + kind;
  json row{{"notification_id", id},
           {"kind", kind},
           {"ticket_id", ticket_id},
           {"recipient_user_id", **emitter},
           {"at_us", event.meta.occurred_at_us}};
  if (const auto* submitted = std::get_if<events::TicketSubmitted>(&event.payload)) {
    row["number"] = submitted->number;
  }
  const std::string key =
      kPending + be64(static_cast<std::uint64_t>(event.meta.occurred_at_us)) + id;
  batch.put(key, row.dump());
  batch.put(kIndex + id, key);
  return {};
}

Result<std::vector<std::string>> pending_notifications(const ViewStore& store, std::size_t limit) {
  std::vector<std::string> out;
  auto ok = store.scan(kPending, "", false, [&](std::string_view, std::string_view value) {
    out.emplace_back(value);
    return out.size() < limit;
  });
  if (!ok) return std::unexpected(ok.error());
  return out;
}

Result<bool> notification_pending(const ViewStore& store, const std::string& notification_id) {
  auto key = store.get(kIndex + notification_id);
  if (!key) return std::unexpected(key.error());
  return key->has_value();
}

}  // namespace chorus::projections
