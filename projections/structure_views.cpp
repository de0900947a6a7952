#include "projections/structure_views.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

#include "events/codec.h"

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

std::string access_key(std::string_view user, std::string_view s) {
  return key_of({"ua", user, s});
}
std::string user_request_key(std::string_view user, std::string_view s, std::string_view rid) {
  return key_of({"ur", user, s, rid});
}
std::string detail_key(std::string_view s) { return key_of({"sd", s}); }
std::string member_key(std::string_view s, std::string_view user) {
  return key_of({"sm", s, user});
}
std::string pending_prefix(std::string_view s, std::string_view service) {
  return key_of({"sp", s, service}) + '\0';
}
std::string pending_index_key(std::string_view s, std::string_view rid) {
  return key_of({"sq", s, rid});
}
std::string pending_count_key(std::string_view s, std::string_view service) {
  return key_of({"sc", s, service});
}
std::string history_prefix(std::string_view s) { return key_of({"sh", s}) + '\0'; }
std::string history_count_key(std::string_view s) { return key_of({"sk", s}); }
std::string service_history_prefix(std::string_view s, std::string_view service) {
  return key_of({"sv", s, service}) + '\0';
}
std::string service_history_count_key(std::string_view s, std::string_view service) {
  return key_of({"sw", s, service});
}
std::string identifier_key(std::string_view type, std::string_view value) {
  return key_of({"si", type, value});
}
std::string fold(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
std::string name_key(std::string_view designation, std::string_view s) {
  return key_of({"sn", fold(designation), s});
}
std::string account_key(std::string_view user) { return key_of({"ac", user}); }

Result<std::optional<json>> read_json(const ViewBatch& batch, const std::string& key) {
  auto v = batch.get(key);
  if (!v) return std::unexpected(v.error());
  if (!v->has_value()) return std::optional<json>{};
  json j = json::parse(**v, nullptr, false);
  if (j.is_discarded()) return fail(errc::poison, "unreadable view row");
  return std::optional<json>{std::move(j)};
}

json data_json(const events::StructureData& d) {
  return json{{"designation", d.designation},
              {"address_line1", d.address_line1},
              {"address_line2", d.address_line2},
              {"postal_code", d.postal_code},
              {"city", d.city},
              {"country", d.country},
              {"payment_status_hidden", d.payment_status_hidden},
              {"service_code_required", d.service_code_required},
              {"commitment_required", d.commitment_required},
              {"commitment_or_service_required", d.commitment_or_service_required},
              {"moa_mode", d.moa_mode},
              {"vat_number", d.vat_number},
              {"pacage_number", d.pacage_number},
              {"social_regime", d.social_regime},
              {"billing_mandate", d.billing_mandate}};
}

template <class ServiceEvent>
json service_json(const ServiceEvent& e) {
  return json{{"code", e.code},
              {"label", e.label},
              {"description", e.description},
              {"valid_from", e.valid_from},
              {"valid_to", e.valid_to},
              {"commitment_required", e.commitment_required}};
}

class Applier {
 public:
  Applier(const events::Event& event, ViewBatch& batch) : event_(event), batch_(batch) {}

  // Adds `delta` to a counter row. Read and rewritten rather than merged: a structure's
  // counters change with every request, and a chain of merge operands not yet compacted makes
  // every page read slow (tests/bench/structure_views_bench.cpp); one point read per event
  // is cheaper.
  Result<void> bump(const std::string& key, std::int64_t delta) {
    auto v = batch_.get(key);
    if (!v) return std::unexpected(v.error());
    const std::uint64_t before = v->has_value() && (*v)->size() == 8 ? from_be64(**v) : 0;
    batch_.put(key, be64(before + static_cast<std::uint64_t>(delta)));
    return {};
  }

  // The history row of this event; `kind`: attachment, subscription, transfer, data.
  Result<void> history(const std::string& s, json row) {
    row["at_us"] = event_.meta.occurred_at_us;
    row["by_user_id"] = event_.meta.actor.user_id;
    row["by_role"] = event_.meta.actor.role;
    row["event"] = events::type_name(event_.payload);
    row["seq"] = event_.version;  // the cursor of the next page (?before=)
    // Every event naming the structure is in its stream: the version orders them, also within
    // one command (whose events share a time).
    const std::string text = row.dump();
    batch_.put(history_prefix(s) + be64(event_.version), text);
    // A row about one service is also filed under it, for a GS scoped to services.
    if (const std::string service = row.value("service", ""); !service.empty()) {
      batch_.put(service_history_prefix(s, service) + be64(event_.version), text);
      if (auto ok = bump(service_history_count_key(s, service), 1); !ok) return ok;
    }
    return bump(history_count_key(s), 1);
  }

  Result<void> update_detail(const std::string& s, const std::function<void(json&)>& change) {
    auto row = read_json(batch_, detail_key(s));
    if (!row) return std::unexpected(row.error());
    if (!row->has_value()) return fail(errc::poison, "event for an unknown structure");
    change(**row);
    batch_.put(detail_key(s), (*row)->dump());
    return {};
  }

  // The user's role and services on `s` (keeping their espace rights).
  Result<void> set_member(const std::string& s, const std::string& user, const std::string& role,
                          const std::vector<std::string>& services, const std::string& start_date) {
    auto row = read_json(batch_, access_key(user, s));
    if (!row) return std::unexpected(row.error());
    json a = row->value_or(json{{"structure_id", s}, {"espaces", json::array()}});
    a["role"] = role;
    a["services"] = services;
    batch_.put(access_key(user, s), a.dump());
    auto member = read_json(batch_, member_key(s, user));
    if (!member) return std::unexpected(member.error());
    json m = member->value_or(json{{"user_id", user}, {"start_date", start_date}});
    m["role"] = role;
    m["services"] = services;
    if (!start_date.empty()) m["start_date"] = start_date;
    batch_.put(member_key(s, user), m.dump());
    return {};
  }

  void remove_member(const std::string& s, const std::string& user) {
    batch_.del(access_key(user, s));
    batch_.del(member_key(s, user));
  }

  Result<void> add_pending(const std::string& s, const std::string& rid, const std::string& user,
                           const std::string& service, json row) {
    row["structure_id"] = s;
    row["request_id"] = rid;
    row["user_id"] = user;
    row["service"] = service;
    row["at_us"] = event_.meta.occurred_at_us;
    const std::string key = pending_prefix(s, service) +
                            be64(static_cast<std::uint64_t>(event_.meta.occurred_at_us)) + rid;
    const std::string text = row.dump();
    batch_.put(key, text);
    batch_.put(pending_index_key(s, rid), key);
    batch_.put(user_request_key(user, s, rid), text);
    return bump(pending_count_key(s, service), 1);
  }

  // Removes a decided request from every pending list; its row, for the history.
  Result<json> take_pending(const std::string& s, const std::string& rid) {
    auto key = batch_.get(pending_index_key(s, rid));
    if (!key) return std::unexpected(key.error());
    if (!key->has_value()) return fail(errc::poison, "decision on an unknown request");
    auto row = read_json(batch_, **key);
    if (!row) return std::unexpected(row.error());
    if (!row->has_value()) return fail(errc::poison, "pending index without its row");
    json r = std::move(**row);
    batch_.del(**key);
    batch_.del(pending_index_key(s, rid));
    if (auto ok = bump(pending_count_key(s, r.value("service", "")), -1); !ok) {
      return std::unexpected(ok.error());
    }
    batch_.del(user_request_key(r.value("user_id", ""), s, rid));
    return r;
  }

  Result<void> operator()(const events::StructureCreated& e) {
    json d{{"structure_id", e.structure_id},
           {"identifier_type", e.identifier_type},
           {"identifier_value", e.identifier_value},
           {"is_public", e.is_public},
           {"is_state", e.is_state},
           {"pigp_managed", e.pigp_managed},
           {"created_on", e.created_on},
           {"origin_structure_id", e.origin_structure_id},
           {"status", "active"},
           {"successor_structure_id", ""},
           {"gp_user_id", ""},
           {"data", data_json(e.data)},
           {"services", json::array({json{{"code", "FACTURES_PUBLIQUES"},
                                          {"label", "FACTURES_PUBLIQUES"},
                                          {"description", ""},
                                          {"valid_from", e.created_on},
                                          {"valid_to", ""},
                                          {"commitment_required", false}}})},
           {"espaces", json::array()}};
    batch_.put(detail_key(e.structure_id), d.dump());
    batch_.put(identifier_key(e.identifier_type, e.identifier_value), e.structure_id);
    batch_.put(name_key(e.data.designation, e.structure_id), e.structure_id);
    return history(e.structure_id,
                   json{{"kind", "data"},
                        {"outcome", "Créée"},
                        {"detail", e.origin_structure_id.empty()
                                       ? "Création"
                                       : "Duplication de " + e.origin_structure_id}});
  }
  Result<void> operator()(const events::StructureDataChanged& e) {
    std::string old_designation;
    auto ok = update_detail(e.structure_id, [&](json& d) {
      old_designation = d["data"].value("designation", "");
      d["data"] = data_json(e.data);
    });
    if (!ok) return ok;
    batch_.del(name_key(old_designation, e.structure_id));
    batch_.put(name_key(e.data.designation, e.structure_id), e.structure_id);
    return history(
        e.structure_id,
        json{{"kind", "data"}, {"outcome", "Modifiée"}, {"detail", "Données de la structure"}});
  }
  Result<void> operator()(const events::StructureDeactivated& e) {
    auto ok = update_detail(e.structure_id, [&](json& d) {
      d["status"] = "inactive";
      d["successor_structure_id"] = e.successor_structure_id;
    });
    if (!ok) return ok;
    return history(e.structure_id, json{{"kind", "data"},
                                        {"outcome", "Désactivée"},
                                        {"comment", e.reason},
                                        {"detail", e.successor_structure_id}});
  }
  Result<void> operator()(const events::ServiceAdded& e) {
    auto ok =
        update_detail(e.structure_id, [&](json& d) { d["services"].push_back(service_json(e)); });
    if (!ok) return ok;
    return history(e.structure_id,
                   json{{"kind", "data"}, {"outcome", "Service ajouté"}, {"service", e.code}});
  }
  Result<void> operator()(const events::ServiceChanged& e) {
    auto ok = update_detail(e.structure_id, [&](json& d) {
      for (auto& s : d["services"]) {
        if (s.value("code", "") == e.code) s = service_json(e);
      }
    });
    if (!ok) return ok;
    return history(e.structure_id,
                   json{{"kind", "data"}, {"outcome", "Service modifié"}, {"service", e.code}});
  }
  Result<void> operator()(const events::ServiceRemoved& e) {
    auto ok = update_detail(e.structure_id, [&](json& d) {
      auto& services = d["services"];
      for (auto it = services.begin(); it != services.end(); ++it) {
        if (it->value("code", "") == e.code) {
          services.erase(it);
          break;
        }
      }
    });
    if (!ok) return ok;
    return history(e.structure_id,
                   json{{"kind", "data"}, {"outcome", "Service supprimé"}, {"service", e.code}});
  }
  Result<void> operator()(const events::EspaceEnabled& e) {
    auto ok = update_detail(e.structure_id, [&](json& d) {
      auto& espaces = d["espaces"];
      for (auto& x : espaces) {
        if (x.value("espace", "") == e.espace && x.value("service", "") == e.service) {
          x["read"] = e.read;
          x["write"] = e.write;
          return;
        }
      }
      espaces.push_back(
          json{{"espace", e.espace}, {"service", e.service}, {"read", e.read}, {"write", e.write}});
    });
    if (!ok) return ok;
    return history(e.structure_id, json{{"kind", "data"},
                                        {"outcome", "Espace activé"},
                                        {"espace", e.espace},
                                        {"service", e.service}});
  }
  Result<void> operator()(const events::AttachmentRequested& e) {
    return add_pending(e.structure_id, e.request_id, e.user_id, e.service,
                       json{{"kind", "attachment"}, {"comment", e.comment}});
  }
  Result<void> operator()(const events::AttachmentValidated& e) {
    auto request = take_pending(e.structure_id, e.request_id);
    if (!request) return std::unexpected(request.error());
    if (auto ok = set_member(e.structure_id, e.user_id, e.role, e.services, ""); !ok) return ok;
    return history(e.structure_id, json{{"kind", "attachment"},
                                        {"outcome", "Validée"},
                                        {"request_id", e.request_id},
                                        {"user_id", e.user_id},
                                        {"service", request->value("service", "")},
                                        {"role", e.role},
                                        {"services", e.services},
                                        {"comment", e.comment}});
  }
  Result<void> operator()(const events::AttachmentRefused& e) {
    auto request = take_pending(e.structure_id, e.request_id);
    if (!request) return std::unexpected(request.error());
    return history(e.structure_id, json{{"kind", "attachment"},
                                        {"outcome", "Refusée"},
                                        {"request_id", e.request_id},
                                        {"user_id", e.user_id},
                                        {"service", request->value("service", "")},
                                        {"comment", e.reason}});
  }
  Result<void> operator()(const events::UserAttached& e) {
    if (auto ok = set_member(e.structure_id, e.user_id, e.role, e.services, e.start_date); !ok) {
      return ok;
    }
    return history(e.structure_id, json{{"kind", "attachment"},
                                        {"outcome", "Validée"},
                                        {"user_id", e.user_id},
                                        {"role", e.role},
                                        {"services", e.services},
                                        {"comment", e.comment},
                                        {"detail", e.direct ? "Rattachement direct" : "Reprise"}});
  }
  Result<void> operator()(const events::AttachmentRemoved& e) {
    remove_member(e.structure_id, e.user_id);
    return history(e.structure_id,
                   json{{"kind", "attachment"}, {"outcome", "Supprimée"}, {"user_id", e.user_id}});
  }
  Result<void> operator()(const events::MainManagerTransferred& e) {
    // The former GP stays a simple user of the whole structure.
    if (!e.from_user_id.empty()) {
      if (auto ok = set_member(e.structure_id, e.from_user_id, "user", {}, ""); !ok) return ok;
    }
    if (auto ok = set_member(e.structure_id, e.to_user_id, "gp", {}, ""); !ok) return ok;
    if (auto ok = update_detail(e.structure_id, [&](json& d) { d["gp_user_id"] = e.to_user_id; });
        !ok) {
      return ok;
    }
    return history(e.structure_id, json{{"kind", "transfer"},
                                        {"outcome", "Transféré"},
                                        {"user_id", e.to_user_id},
                                        {"from_user_id", e.from_user_id},
                                        {"by_support", e.by_support}});
  }
  Result<void> operator()(const events::SubscriptionRequested& e) {
    return add_pending(e.structure_id, e.request_id, e.user_id, e.service,
                       json{{"kind", "subscription"},
                            {"espace", e.espace},
                            {"read", e.read},
                            {"write", e.write},
                            {"comment", e.comment}});
  }
  Result<void> operator()(const events::SubscriptionValidated& e) {
    auto request = take_pending(e.structure_id, e.request_id);
    if (!request) return std::unexpected(request.error());
    auto row = read_json(batch_, access_key(e.user_id, e.structure_id));
    if (!row) return std::unexpected(row.error());
    json a = row->value_or(json{{"structure_id", e.structure_id},
                                {"role", ""},
                                {"services", json::array()},
                                {"espaces", json::array()}});
    bool merged = false;
    for (auto& x : a["espaces"]) {
      if (x.value("espace", "") == e.espace && x.value("service", "") == e.service) {
        x["read"] = e.read;
        x["write"] = e.write;
        merged = true;
      }
    }
    if (!merged) {
      a["espaces"].push_back(
          json{{"espace", e.espace}, {"service", e.service}, {"read", e.read}, {"write", e.write}});
    }
    batch_.put(access_key(e.user_id, e.structure_id), a.dump());
    return history(e.structure_id, json{{"kind", "subscription"},
                                        {"outcome", "Validée"},
                                        {"request_id", e.request_id},
                                        {"user_id", e.user_id},
                                        {"espace", e.espace},
                                        {"service", e.service},
                                        {"read", e.read},
                                        {"write", e.write},
                                        {"comment", e.comment}});
  }
  Result<void> operator()(const events::SubscriptionRefused& e) {
    auto request = take_pending(e.structure_id, e.request_id);
    if (!request) return std::unexpected(request.error());
    return history(e.structure_id, json{{"kind", "subscription"},
                                        {"outcome", "Désactivée"},
                                        {"request_id", e.request_id},
                                        {"user_id", e.user_id},
                                        {"espace", request->value("espace", "")},
                                        {"service", request->value("service", "")},
                                        {"comment", e.reason}});
  }
  Result<void> operator()(const events::AccountCreated& e) {
    batch_.put(account_key(e.user_id), json{{"status", "En cours d'activation"},
                                            {"login_email", e.login_email},
                                            {"first_name", e.first_name},
                                            {"last_name", e.last_name},
                                            {"origin", e.origin},
                                            {"technical", e.technical}}
                                           .dump());
    return {};
  }
  Result<void> account_status(const std::string& user, const char* status) {
    auto row = read_json(batch_, account_key(user));
    if (!row) return std::unexpected(row.error());
    if (!row->has_value()) return fail(errc::poison, "event for an unknown account");
    (**row)["status"] = status;
    batch_.put(account_key(user), (*row)->dump());
    return {};
  }
  Result<void> operator()(const events::AccountActivated& e) {
    return account_status(e.user_id, "Actif");
  }
  Result<void> operator()(const events::AccountReactivated& e) {
    return account_status(e.user_id, "Actif");
  }
  Result<void> operator()(const events::AccountDeactivated& e) {
    return account_status(e.user_id, "Désactivé");
  }
  template <class Other>
  Result<void> operator()(const Other&) {
    return {};
  }

 private:
  const events::Event& event_;
  ViewBatch& batch_;
};

AccessRow access_from(const json& a) {
  AccessRow row;
  row.structure_id = a.value("structure_id", "");
  row.role = a.value("role", "");
  row.services = a.value("services", std::vector<std::string>{});
  for (const auto& x : a.value("espaces", json::array())) {
    row.espaces.push_back(EspaceRight{x.value("espace", ""), x.value("service", ""),
                                      x.value("read", false), x.value("write", false)});
  }
  return row;
}

}  // namespace

Result<void> StructureViews::apply(const events::Event& event, const events::LogAddress&,
                                   ViewBatch& batch) {
  Applier applier(event, batch);
  return std::visit([&](const auto& payload) { return applier(payload); }, event.payload);
}

Result<std::optional<AccessRow>> structure_access(const ViewStore& store,
                                                  const std::string& user_id,
                                                  const std::string& structure_id) {
  auto v = store.get(access_key(user_id, structure_id));
  if (!v) return std::unexpected(v.error());
  if (!v->has_value()) return std::optional<AccessRow>{};
  json a = json::parse(**v, nullptr, false);
  if (a.is_discarded()) return fail(errc::io_error, "unreadable access row");
  return std::optional<AccessRow>{access_from(a)};
}

Result<std::vector<AccessRow>> user_accesses(const ViewStore& store, const std::string& user_id) {
  std::vector<AccessRow> out;
  auto ok = store.scan(key_of({"ua", user_id}) + '\0', "", false,
                       [&](std::string_view, std::string_view value) {
                         json a = json::parse(value, nullptr, false);
                         if (!a.is_discarded()) out.push_back(access_from(a));
                         return true;
                       });
  if (!ok) return std::unexpected(ok.error());
  return out;
}

bool may_write_espace(const AccessRow& access, std::string_view espace,
                      std::string_view service) noexcept {
  return std::ranges::any_of(access.espaces, [&](const EspaceRight& r) {
    return r.espace == espace && r.write && (r.service.empty() || r.service == service);
  });
}

Result<std::vector<std::string>> user_pending_requests(const ViewStore& store,
                                                       const std::string& user_id) {
  std::vector<std::string> out;
  auto ok = store.scan(key_of({"ur", user_id}) + '\0', "", false,
                       [&](std::string_view, std::string_view value) {
                         out.emplace_back(value);
                         return true;
                       });
  if (!ok) return std::unexpected(ok.error());
  return out;
}

Result<std::optional<std::string>> structure_detail(const ViewStore& store,
                                                    const std::string& structure_id) {
  return store.get(detail_key(structure_id));
}

Result<std::optional<std::string>> structure_by_identifier(const ViewStore& store,
                                                           const std::string& identifier_type,
                                                           const std::string& identifier_value) {
  return store.get(identifier_key(identifier_type, identifier_value));
}

Result<std::vector<std::string>> structures_by_name(const ViewStore& store,
                                                    const std::string& prefix, std::size_t limit) {
  std::vector<std::string> out;
  if (limit == 0) return out;
  auto ok = store.scan(key_of({"sn", fold(prefix)}), "", false,
                       [&](std::string_view, std::string_view value) {
                         out.emplace_back(value);
                         return out.size() < limit;
                       });
  if (!ok) return std::unexpected(ok.error());
  return out;
}

Result<std::vector<std::pair<std::string, std::uint64_t>>> pending_counts(
    const ViewStore& store, const std::string& structure_id) {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  const std::string prefix = key_of({"sc", structure_id}) + '\0';
  auto ok = store.scan(prefix, "", false, [&](std::string_view key, std::string_view value) {
    const std::uint64_t n = value.size() == 8 ? from_be64(value) : 0;
    if (n > 0) out.emplace_back(std::string(key.substr(prefix.size())), n);
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  return out;
}

Result<RowPage> pending_page(const ViewStore& store, const std::string& structure_id,
                             const std::optional<std::vector<std::string>>& services,
                             bool newest_first, std::uint64_t offset, std::size_t limit,
                             const std::function<bool(const std::string& row)>& keep) {
  RowPage out;
  const std::uint64_t skip = offset;
  const std::size_t page_size = limit;
  if (!keep && limit == 0) return out;
  std::uint64_t seen = 0;
  bool full = false;
  auto visit = [&](std::string_view, std::string_view value) {
    if (!keep) {
      // No filter: the counters give the total; stop once the page is read.
      if (seen++ >= skip) out.rows.emplace_back(value);
      full = out.rows.size() >= page_size;
      return !full;
    }
    std::string row(value);
    if (!keep(row)) return true;
    if (out.total >= skip && out.rows.size() < page_size) out.rows.push_back(std::move(row));
    ++out.total;
    return true;
  };
  std::vector<std::string> groups;
  if (services) {
    groups = *services;
    std::ranges::sort(groups);
  } else {
    auto counts = pending_counts(store, structure_id);
    if (!counts) return std::unexpected(counts.error());
    for (auto& [service, n] : *counts) groups.push_back(service);
  }
  for (const auto& service : groups) {
    if (full) break;
    auto ok = store.scan(pending_prefix(structure_id, service), "", newest_first, visit);
    if (!ok) return std::unexpected(ok.error());
  }
  return out;
}

Result<RowPage> history_page(const ViewStore& store, const std::string& structure_id,
                             std::size_t page, std::size_t page_size, std::uint64_t before) {
  RowPage out;
  auto total = store.get(history_count_key(structure_id));
  if (!total) return std::unexpected(total.error());
  out.total = total->has_value() && (*total)->size() == 8 ? from_be64(**total) : 0;
  const std::uint64_t skip = static_cast<std::uint64_t>(page - 1) * page_size;
  std::uint64_t seen = 0;
  const std::string prefix = history_prefix(structure_id);
  if (before == 1) return out;  // nothing is older than the first event
  const std::string start = before == 0 ? "" : prefix + be64(before - 1);
  auto ok = store.scan(prefix, start, true, [&](std::string_view, std::string_view value) {
    if (seen++ >= skip) out.rows.emplace_back(value);
    return out.rows.size() < page_size;
  });
  if (!ok) return std::unexpected(ok.error());
  return out;
}

Result<RowPage> service_history_page(const ViewStore& store, const std::string& structure_id,
                                     const std::vector<std::string>& services, std::size_t page,
                                     std::size_t page_size, std::uint64_t before) {
  RowPage out;
  if (before == 1) return out;
  const std::uint64_t wanted = static_cast<std::uint64_t>(page) * page_size;
  // Each service's newest `wanted` rows, merged newest first: the page is among them.
  std::vector<std::pair<std::uint64_t, std::string>> rows;
  std::set<std::string> seen_services;
  for (const auto& service : services) {
    if (service.empty() || !seen_services.insert(service).second) continue;
    auto count = store.get(service_history_count_key(structure_id, service));
    if (!count) return std::unexpected(count.error());
    out.total += count->has_value() && (*count)->size() == 8 ? from_be64(**count) : 0;
    const std::string prefix = service_history_prefix(structure_id, service);
    const std::string start = before == 0 ? "" : prefix + be64(before - 1);
    std::uint64_t taken = 0;
    auto ok = store.scan(prefix, start, true, [&](std::string_view key, std::string_view value) {
      rows.emplace_back(from_be64(key.substr(prefix.size())), std::string(value));
      return ++taken < wanted;
    });
    if (!ok) return std::unexpected(ok.error());
  }
  std::ranges::sort(rows, std::greater<>{}, &std::pair<std::uint64_t, std::string>::first);
  for (std::size_t i = (page - 1) * page_size; i < rows.size() && out.rows.size() < page_size;
       ++i) {
    out.rows.push_back(std::move(rows[i].second));
  }
  return out;
}

Result<std::vector<std::string>> structure_members(
    const ViewStore& store, const std::string& structure_id,
    const std::function<bool(const std::string& row)>& keep) {
  std::vector<std::string> out;
  std::optional<Error> failed;
  const std::string prefix = key_of({"sm", structure_id}) + '\0';
  auto ok = store.scan(prefix, "", false, [&](std::string_view key, std::string_view value) {
    json m = json::parse(value, nullptr, false);
    if (m.is_discarded()) return true;
    auto account = store.get(account_key(key.substr(prefix.size())));
    if (!account) {
      failed = account.error();
      return false;
    }
    if (account->has_value()) {
      json a = json::parse(**account, nullptr, false);
      if (!a.is_discarded()) m.update(a);
    }
    std::string row = m.dump();
    if (keep(row)) out.push_back(std::move(row));
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  if (failed) return std::unexpected(*failed);
  return out;
}

}  // namespace chorus::projections
