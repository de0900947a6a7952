#include "projections/outbox_views.h"

#include <nlohmann/json.hpp>

#include "events/codec.h"
#include "projections/json_text.h"
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

// The e-mails of seed 003 on structures: every decision on a request, every direct attachment
// and removal, and a GP transfer (to the new GP and to the former one). Kind and recipient.
std::vector<std::pair<const char*, std::string>> structure_notices(const events::Payload& p) {
  using Out = std::vector<std::pair<const char*, std::string>>;
  return std::visit(
      [](const auto& e) -> Out {
        using E = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<E, events::AttachmentValidated>) {
          return {{"attachment_validated", e.user_id}};
        } else if constexpr (std::is_same_v<E, events::AttachmentRefused>) {
          return {{"attachment_refused", e.user_id}};
        } else if constexpr (std::is_same_v<E, events::UserAttached>) {
          if (!e.direct) return {};  // copied by a SIRET change: nothing new for the user
          return {{"user_attached", e.user_id}};
        } else if constexpr (std::is_same_v<E, events::AttachmentRemoved>) {
          return {{"attachment_removed", e.user_id}};
        } else if constexpr (std::is_same_v<E, events::SubscriptionValidated>) {
          return {{"subscription_validated", e.user_id}};
        } else if constexpr (std::is_same_v<E, events::SubscriptionRefused>) {
          return {{"subscription_refused", e.user_id}};
        } else if constexpr (std::is_same_v<E, events::MainManagerTransferred>) {
          Out out{{"main_manager_named", e.to_user_id}};
          if (!e.from_user_id.empty()) out.emplace_back("main_manager_replaced", e.from_user_id);
          return out;
        } else {
          return {};
        }
      },
      p);
}

const std::string* structure_id_of(const events::Payload& p) {
  return std::visit(
      [](const auto& e) -> const std::string* {
        if constexpr (requires { e.structure_id; }) {
          return &e.structure_id;
        } else {
          return nullptr;
        }
      },
      p);
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
  for (const auto& [kind, recipient] : structure_notices(event.payload)) {
    const std::string id = events::to_hex(event.meta.event_id) + "-" + kind;
    json row{{"notification_id", id},
             {"kind", kind},
             {"structure_id", *structure_id_of(event.payload)},
             {"recipient_user_id", recipient},
             {"at_us", event.meta.occurred_at_us}};
    const std::string key =
        kPending + be64(static_cast<std::uint64_t>(event.meta.occurred_at_us)) + id;
    batch.put(key, json_text(row));
    batch.put(kIndex + id, key);
  }
  const char* kind = kind_of(event.payload);
  if (kind == nullptr) return {};
  const std::string& ticket_id = *ticket_id_of(event.payload);
  auto emitter = emitters ? emitters(ticket_id) : ticket_emitter(batch, ticket_id);
  if (!emitter) return std::unexpected(emitter.error());
  if (!emitter->has_value()) return fail(errc::poison, "notification for an unknown ticket");

  const std::string id = events::to_hex(event.meta.event_id) + "-" + kind;
  json row{{"notification_id", id},
           {"kind", kind},
           {"ticket_id", ticket_id},
           {"recipient_user_id", (*emitter)->user_id},
           {"at_us", event.meta.occurred_at_us}};
  if (const auto* submitted = std::get_if<events::TicketSubmitted>(&event.payload)) {
    row["number"] = submitted->number;
  }
  // A signed-out ticket's messages go to the address it was filed with (no account).
  if (!(*emitter)->email.empty()) row["recipient_email"] = (*emitter)->email;
  const std::string key =
      kPending + be64(static_cast<std::uint64_t>(event.meta.occurred_at_us)) + id;
  batch.put(key, json_text(row));
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
