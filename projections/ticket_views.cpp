#include "projections/ticket_views.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace chorus::projections {
namespace {

using nlohmann::json;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

std::string key_of(std::initializer_list<std::string_view> parts) {
  std::string key;
  for (auto p : parts) {
    key.append(p);
    key.push_back('\0');
  }
  key.pop_back();
  return key;
}

std::string state_key(std::string_view id) { return key_of({"s", id}); }
std::string detail_key(std::string_view id) { return key_of({"t", id}); }
std::string history_prefix(std::string_view id) { return key_of({"h", id}) + '\0'; }
std::string tab_prefix(std::string_view user, std::string_view tab) {
  return key_of({"e", user, tab}) + '\0';
}
std::string count_key(std::string_view user, std::string_view tab) {
  return key_of({"c", user, tab});
}

// Statuses as users see them, and their one-byte codes in the state row.
struct StatusInfo {
  char code;
  const char* label;
  std::vector<std::string_view> tabs;
};
const StatusInfo kStatuses[] = {
    {'B', "Brouillon", {"brouillons"}},
    {'O', "Ouvert", {"en_cours", "tous"}},
    {'W', "En attente d'informations", {"actions_requises", "tous"}},
    {'R', "Résolu", {"actions_requises", "tous"}},
    {'F', "Fermé", {"clotures"}},
};
const StatusInfo& status_of(char code) {
  for (const auto& s : kStatuses) {
    if (s.code == code) return s;
  }
  return kStatuses[0];
}

// What applying an event needs to know of the ticket so far: enough to find its list rows.
struct TicketState {
  char status = 0;
  std::uint64_t opened_at_us = 0;
  std::string emitter;

  std::string encode() const { return std::string(1, status) + be64(opened_at_us) + emitter; }
  static std::optional<TicketState> decode(std::string_view v) {
    if (v.size() < 9) return std::nullopt;
    return TicketState{v[0], from_be64(v.substr(1, 8)), std::string(v.substr(9))};
  }
};

std::string list_key(const TicketState& s, std::string_view tab, std::string_view id) {
  return tab_prefix(s.emitter, tab) + be64(s.opened_at_us) + std::string(id);
}

}  // namespace

const std::string* ticket_id_of(const events::Payload& payload) noexcept {
  return std::visit(
      [](const auto& e) -> const std::string* {
        if constexpr (requires { e.ticket_id; }) {
          return &e.ticket_id;
        } else {
          return nullptr;
        }
      },
      payload);
}

Result<std::optional<std::string>> ticket_emitter(const ViewBatch& batch,
                                                  const std::string& ticket_id) {
  auto stored = batch.get(state_key(ticket_id));
  if (!stored) return std::unexpected(stored.error());
  if (!stored->has_value()) return std::optional<std::string>{};
  auto state = TicketState::decode(**stored);
  if (!state) return fail(errc::poison, "ticket state row is malformed");
  return std::optional<std::string>{state->emitter};
}

Result<void> TicketViews::apply(const events::Event& event, const events::LogAddress&,
                                ViewBatch& batch) {
  const std::string* ticket_id = ticket_id_of(event.payload);
  if (ticket_id == nullptr) return {};  // not a ticket event
  const std::string& id = *ticket_id;
  auto stored = batch.get(state_key(id));
  if (!stored) return std::unexpected(stored.error());
  std::optional<TicketState> before;
  if (stored->has_value()) {
    before = TicketState::decode(**stored);
    if (!before) return fail(errc::poison, "ticket state row is malformed");
    for (auto tab : status_of(before->status).tabs) {
      batch.del(list_key(*before, tab, id));
      batch.add(count_key(before->emitter, tab), -1);
    }
  }

  // A deleted draft leaves no row behind.
  if (std::holds_alternative<events::TicketDraftDeleted>(event.payload)) {
    batch.del(state_key(id));
    batch.del(detail_key(id));
    for (std::uint64_t v = 1; v < event.version; ++v) batch.del(history_prefix(id) + be64(v));
    return {};
  }

  TicketState after;
  json detail;
  auto form = [&](const auto& e) {
    after.emitter = e.emitter_user_id;
    detail = json{{"ticket_id", e.ticket_id},
                  {"emitter_user_id", e.emitter_user_id},
                  {"emitting_structure_id", e.emitting_structure_id},
                  {"category", e.category},
                  {"sub_category", e.sub_category},
                  {"title", e.title},
                  {"description", e.description}};
  };
  // Events after submission change the status only: the rest comes from the stored rows.
  auto moved_to = [&](char status) -> Result<void> {
    if (!before) return fail(errc::poison, "action on a ticket that was never submitted");
    auto row = batch.get(detail_key(id));
    if (!row) return std::unexpected(row.error());
    if (!row->has_value()) return fail(errc::poison, "ticket detail row is missing");
    detail = json::parse(**row, nullptr, false);
    if (detail.is_discarded()) return fail(errc::poison, "ticket detail row is not JSON");
    after = *before;
    if (status != 0) after.status = status;
    return {};
  };
  std::string text;
  Result<void> ok = std::visit(
      Overloaded{
          [&](const events::TicketDraftSaved& e) -> Result<void> {
            form(e);
            after.status = 'B';
            after.opened_at_us = before ? before->opened_at_us
                                        : static_cast<std::uint64_t>(event.meta.occurred_at_us);
            detail["number"] = "";
            return {};
          },
          [&](const events::TicketSubmitted& e) -> Result<void> {
            form(e);
            after.status = 'O';
            after.opened_at_us = static_cast<std::uint64_t>(event.meta.occurred_at_us);
            detail["number"] = e.number;  // "Ouvert le": the submission
            detail["support_level"] = 1;
            detail["assignee"] = "";
            return {};
          },
          [&](const events::TicketDraftDeleted&) -> Result<void> { return {}; },
          [&](const events::InformationRequested& e) {
            text = e.text;
            return moved_to('W');
          },
          [&](const events::InformationProvided& e) {
            text = e.text;
            return moved_to('O');
          },
          [&](const events::SolutionProposed& e) {
            text = e.text;
            return moved_to('R');
          },
          [&](const events::SolutionAccepted&) { return moved_to('F'); },
          [&](const events::SolutionRefused& e) {
            text = e.reason;
            return moved_to('O');
          },
          [&](const events::TicketClosed& e) {
            text = e.reason;
            return moved_to('F');
          },
          [&](const events::CommentAdded& e) {
            text = e.text;
            return moved_to(0);
          },
          [&](const events::TicketAssigned& e) -> Result<void> {
            if (auto r = moved_to(0); !r) return r;
            detail["assignee"] = e.agent_user_id;  // "En cours de traitement" when not empty
            return {};
          },
          [&](const events::TicketEscalated&) -> Result<void> {
            if (auto r = moved_to(0); !r) return r;
            detail["support_level"] = 2;  // "Envoyé au support"
            detail["assignee"] = "";
            return {};
          },
          [&](const events::NotificationSent&) -> Result<void> { return {}; },
          // Events of other aggregates (structures, accounts): apply() returned before. A
          // ticket event without its own case fails here at compile time.
          [&](const auto& e) -> Result<void> {
            static_assert(
                !requires { e.ticket_id; }, "every ticket event needs its own case");
            return {};
          },
          [&](const events::PrioritySet& e) -> Result<void> {
            if (auto r = moved_to(0); !r) return r;
            detail["priority"] = e.priority;
            detail["priority_recommended"] = e.recommended;
            detail["impact"] = e.impact;
            detail["severity"] = e.severity;
            if (e.priority != e.recommended) text = e.reason;
            return {};
          },
      },
      event.payload);
  if (!ok) return ok;

  const StatusInfo& status = status_of(after.status);
  detail["status"] = status.label;
  detail["opened_at_us"] = after.opened_at_us;
  detail["updated_at_us"] = event.meta.occurred_at_us;
  detail["version"] = event.version;

  const std::string summary = json{
      {"ticket_id", id},
      {"number", detail["number"]},
      {"title", detail["title"]},
      {"category", detail["category"]},
      {"sub_category", detail["sub_category"]},
      {"status", status.label},
      {"opened_at_us",
       after.opened_at_us}}.dump();
  for (auto tab : status.tabs) {
    batch.put(list_key(after, tab, id), summary);
    batch.add(count_key(after.emitter, tab), 1);
  }
  batch.put(state_key(id), after.encode());
  batch.put(detail_key(id), detail.dump());
  json entry{{"action", events::type_name(event.payload)},
             {"author", event.meta.actor.user_id},
             {"role", event.meta.actor.role},
             {"at_us", event.meta.occurred_at_us}};
  if (!event.meta.actor.on_behalf_of.empty()) entry["on_behalf_of"] = event.meta.actor.on_behalf_of;
  if (!text.empty()) entry["text"] = text;
  batch.put(history_prefix(id) + be64(event.version), entry.dump());
  return {};
}

Result<TicketPage> list_emitted_tickets(const ViewStore& store, const std::string& user_id,
                                        const std::string& tab, std::size_t page,
                                        std::size_t page_size) {
  if (std::find_if(std::begin(kTicketTabs), std::end(kTicketTabs),
                   [&](const char* t) { return tab == t; }) == std::end(kTicketTabs)) {
    return fail(errc::invalid_argument, "unknown tab " + tab);
  }
  TicketPage out;
  auto count = store.get(count_key(user_id, tab));
  if (!count) return std::unexpected(count.error());
  out.total = count->has_value() ? from_be64(**count) : 0;
  std::size_t skip = (std::max<std::size_t>(page, 1) - 1) * page_size;
  auto ok = store.scan(tab_prefix(user_id, tab), "", /*reverse=*/true,
                       [&](std::string_view, std::string_view value) {
                         if (skip > 0) {
                           --skip;
                           return true;
                         }
                         out.rows.emplace_back(value);
                         return out.rows.size() < page_size;
                       });
  if (!ok) return std::unexpected(ok.error());
  return out;
}

Result<std::optional<std::string>> ticket_detail(const ViewStore& store,
                                                 const std::string& ticket_id) {
  auto row = store.get(detail_key(ticket_id));
  if (!row || !row->has_value()) return row;
  json detail = json::parse(**row, nullptr, false);
  if (detail.is_discarded()) return fail(errc::io_error, "ticket detail row is not JSON");
  json history = json::array();
  auto ok = store.scan(history_prefix(ticket_id), "", false,
                       [&](std::string_view, std::string_view value) {
                         history.push_back(json::parse(value, nullptr, false));
                         return true;
                       });
  if (!ok) return std::unexpected(ok.error());
  detail["history"] = std::move(history);
  return std::optional<std::string>{detail.dump()};
}

}  // namespace chorus::projections
