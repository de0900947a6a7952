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

std::string detail_key(std::string_view ticket_id) { return key_of({"t", ticket_id}); }
std::string tab_prefix(std::string_view user, std::string_view tab) {
  return key_of({"e", user, tab}) + '\0';
}
std::string count_key(std::string_view user, std::string_view tab) {
  return key_of({"c", user, tab});
}

std::vector<std::string_view> tabs_of(std::string_view status) {
  if (status == "Brouillon") return {"brouillons"};
  if (status == "Ouvert") return {"en_cours", "tous"};
  if (status == "En attente d'informations" || status == "Résolu")
    return {"actions_requises", "tous"};
  if (status == "Fermé") return {"clotures"};
  return {};
}

json summary_of(const json& t) {
  return json{{"ticket_id", t["ticket_id"]},
              {"number", t["number"]},
              {"title", t["title"]},
              {"category", t["category"]},
              {"sub_category", t["sub_category"]},
              {"status", t["status"]},
              {"opened_at_us", t["opened_at_us"]}};
}

// Removes the ticket's list rows and counts as they are (before a change).
Result<void> unlist(const json& t, ViewBatch& batch) {
  const std::string user = t["emitter_user_id"];
  const std::string id = t["ticket_id"];
  for (auto tab : tabs_of(t["status"].get<std::string>())) {
    batch.del(tab_prefix(user, tab) + be64(t["opened_at_us"].get<std::uint64_t>()) + id);
    if (auto ok = batch.add(count_key(user, tab), -1); !ok) return ok;
  }
  return {};
}

Result<void> list(const json& t, ViewBatch& batch) {
  const std::string user = t["emitter_user_id"];
  const std::string id = t["ticket_id"];
  const std::string row = summary_of(t).dump();
  for (auto tab : tabs_of(t["status"].get<std::string>())) {
    batch.put(tab_prefix(user, tab) + be64(t["opened_at_us"].get<std::uint64_t>()) + id, row);
    if (auto ok = batch.add(count_key(user, tab), 1); !ok) return ok;
  }
  return {};
}

}  // namespace

Result<void> TicketViews::apply(const events::Event& event, const events::LogAddress&,
                                ViewBatch& batch) {
  auto fill_form = [](json& t, const auto& e) {
    t["ticket_id"] = e.ticket_id;
    t["emitter_user_id"] = e.emitter_user_id;
    t["emitting_structure_id"] = e.emitting_structure_id;
    t["category"] = e.category;
    t["sub_category"] = e.sub_category;
    t["title"] = e.title;
    t["description"] = e.description;
  };
  const std::string* ticket_id =
      std::visit([](const auto& e) -> const std::string* { return &e.ticket_id; }, event.payload);
  auto current = batch.get(detail_key(*ticket_id));
  if (!current) return std::unexpected(current.error());
  json t = current->has_value() ? json::parse(**current, nullptr, false) : json::object();
  if (t.is_discarded()) return fail(errc::poison, "ticket row is not JSON");
  if (!t.empty()) {
    if (auto ok = unlist(t, batch); !ok) return ok;
  }
  std::visit(Overloaded{
                 [&](const events::TicketDraftSaved& e) {
                   fill_form(t, e);
                   t["status"] = "Brouillon";
                   t["number"] = "";
                   if (!t.contains("opened_at_us")) t["opened_at_us"] = event.meta.occurred_at_us;
                 },
                 [&](const events::TicketSubmitted& e) {
                   fill_form(t, e);
                   t["status"] = "Ouvert";
                   t["number"] = e.number;
                   t["opened_at_us"] = event.meta.occurred_at_us;  // "Ouvert le"
                 },
             },
             event.payload);
  t["version"] = event.version;
  t["updated_at_us"] = event.meta.occurred_at_us;
  json& history = t["history"];
  if (!history.is_array()) history = json::array();
  history.push_back(json{{"action", events::type_name(event.payload)},
                         {"author", event.meta.actor.user_id},
                         {"at_us", event.meta.occurred_at_us}});
  batch.put(detail_key(*ticket_id), t.dump());
  return list(t, batch);
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
  return store.get(detail_key(ticket_id));
}

}  // namespace chorus::projections
