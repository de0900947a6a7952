#include "projections/outbox_views.h"

#include <algorithm>
#include <unordered_map>

#include "events/codec.h"
#include "projections/json_text.h"
#include "projections/ticket_views.h"

namespace chorus::projections {
namespace {

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

// One pending notification: its id, its row's key (o) and the row.
struct Notice {
  std::string id;
  std::string key;
  std::string row;
};

// The notifications `event` adds to the outbox; a ticket's recipient from `emitter_of`.
// Fails with poison for a notification of a ticket the views do not know.
Result<std::vector<Notice>> notices_of(
    const events::Event& event,
    const std::function<Result<std::optional<TicketEmitter>>(const std::string&)>& emitter_of) {
  std::vector<Notice> out;
  const std::int64_t at = event.meta.occurred_at_us;
  auto notice = [&](const char* kind, std::vector<JsonMember> members) {
    std::string id = events::to_hex(event.meta.event_id) + "-" + kind;
    members.push_back({"notification_id", id});
    members.push_back({"kind", kind});
    members.push_back({"at_us", at});
    std::string row = json_object_text(std::move(members));
    std::string key = kPending + be64(static_cast<std::uint64_t>(at)) + id;
    out.push_back({std::move(id), std::move(key), std::move(row)});
  };
  for (const auto& [kind, recipient] : structure_notices(event.payload)) {
    notice(kind,
           {{"structure_id", *structure_id_of(event.payload)}, {"recipient_user_id", recipient}});
  }
  const char* kind = kind_of(event.payload);
  if (kind == nullptr) return out;
  const std::string& ticket_id = *ticket_id_of(event.payload);
  auto emitter = emitter_of(ticket_id);
  if (!emitter) return std::unexpected(emitter.error());
  if (!emitter->has_value()) return fail(errc::poison, "notification for an unknown ticket");
  std::vector<JsonMember> members{{"ticket_id", ticket_id},
                                  {"recipient_user_id", (*emitter)->user_id}};
  if (const auto* submitted = std::get_if<events::TicketSubmitted>(&event.payload)) {
    members.push_back({"number", submitted->number});
  }
  // A signed-out ticket's messages go to the address it was filed with (no account).
  if (!(*emitter)->email.empty()) members.push_back({"recipient_email", (*emitter)->email});
  notice(kind, std::move(members));
  return out;
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
  auto notices = notices_of(
      event, [&](const std::string& ticket_id) { return ticket_emitter(batch, ticket_id); });
  if (!notices) return std::unexpected(notices.error());
  for (const auto& n : *notices) {
    batch.put(n.key, n.row);
    batch.put(kIndex + n.id, n.key);
  }
  return {};
}

struct OutboxFold::Impl {
  // Pending notifications by id: their row's key and the row.
  std::unordered_map<std::string, std::pair<std::string, std::string>> pending;
  struct Staged {
    bool active = false;
    std::string sent;  // a NotificationSent's id
    std::vector<Notice> notices;
  } staged;
};

OutboxFold::OutboxFold() : impl_(std::make_unique<Impl>()) {}
OutboxFold::~OutboxFold() = default;

Result<void> OutboxFold::stage(const events::Event& event, const Emitters& emitters) {
  auto& staged = impl_->staged;
  staged.active = false;
  staged.sent.clear();
  staged.notices.clear();
  if (const auto* sent = std::get_if<events::NotificationSent>(&event.payload)) {
    staged.sent = sent->notification_id;
    staged.active = true;
    return {};
  }
  auto notices = notices_of(event, emitters);
  if (!notices) return std::unexpected(notices.error());
  staged.notices = std::move(*notices);
  staged.active = !staged.notices.empty();
  return {};
}

void OutboxFold::commit() {
  auto& staged = impl_->staged;
  if (!staged.active) return;
  staged.active = false;
  if (!staged.sent.empty()) impl_->pending.erase(staged.sent);
  for (auto& n : staged.notices) {
    impl_->pending[std::move(n.id)] = {std::move(n.key), std::move(n.row)};
  }
}

void OutboxFold::drop() { impl_->staged.active = false; }

Result<void> OutboxFold::write_rows(SortedRowSink& sink, unsigned first) const {
  using Entry = std::pair<const std::string, std::pair<std::string, std::string>>;
  std::vector<const Entry*> by_key, by_id;
  by_key.reserve(impl_->pending.size());
  for (const auto& e : impl_->pending) by_key.push_back(&e);
  by_id = by_key;
  std::ranges::sort(
      by_key, [](const Entry* a, const Entry* b) { return a->second.first < b->second.first; });
  for (const Entry* e : by_key) {
    if (auto r = sink.add(first, e->second.first, e->second.second); !r) return r;
  }
  std::ranges::sort(by_id, [](const Entry* a, const Entry* b) { return a->first < b->first; });
  for (const Entry* e : by_id) {
    if (auto r = sink.add(first + 1, kIndex + e->first, e->second.first); !r) return r;
  }
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
