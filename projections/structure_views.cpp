#include "projections/structure_views.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "events/codec.h"
#include "projections/json_text.h"
#include "projections/ranked_list.h"
#include "projections/ticket_views.h"

namespace chorus::projections {
namespace {

using nlohmann::json;

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
// A group's pending rows as a ranked list (ranked_list.h): a deep page is found by rank. Fences
// are chosen by the request id (after the 8-byte time in the suffix). Counts are read and
// rewritten: every new request lands in the last bucket (see Applier::bump).
bool pending_fence(std::string_view suffix, std::string_view) {
  return suffix.size() > 8 && is_fence_id(suffix.substr(8));
}
RankedList pending_list(std::string_view s, std::string_view service) {
  return RankedList{pending_prefix(s, service),
                    key_of({"sf", s, service}) + '\0',
                    key_of({"sb", s, service}) + '\0',
                    &pending_fence,
                    false,
                    key_of({"sl", s, service})};
}
std::string pending_suffix(std::int64_t at_us, std::string_view rid) {
  return be64(static_cast<std::uint64_t>(at_us)) + std::string(rid);
}
std::string pending_word_prefix(std::string_view s, std::string_view service) {
  return key_of({"sx", s, service}) + '\0';
}
// Search tokens of a text: folded (fold_text), split on anything but letters, digits and the
// characters of identifiers ("-", "_", ".", "@"), cut at 40 bytes. With `parts`, each token's
// pieces between those characters too: "asker-990" gives "asker-990", "asker" and "990", so a
// search finds an id by its beginning and by any of its pieces.
constexpr std::size_t kWordMax = 40;
std::set<std::string> search_tokens(std::string_view text, bool parts) {
  std::set<std::string> out;
  auto is_joiner = [](char c) { return c == '-' || c == '_' || c == '.' || c == '@'; };
  auto add = [&](std::string word) {
    if (word.empty()) return;
    if (parts) {
      std::string piece;
      for (char c : word) {
        if (is_joiner(c)) {
          if (!piece.empty()) out.insert(piece.substr(0, kWordMax));
          piece.clear();
        } else {
          piece.push_back(c);
        }
      }
      if (!piece.empty()) out.insert(piece.substr(0, kWordMax));
    }
    if (word.size() > kWordMax) word.resize(kWordMax);
    out.insert(std::move(word));
  };
  std::string word;
  for (char c : fold_text(text)) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u >= 0x80 || is_joiner(c)) {
      word.push_back(c);
    } else {
      add(std::move(word));
      word.clear();
    }
  }
  add(std::move(word));
  return out;
}
// The words a pending row (its JSON) is filed under: its ids, service, espace and comment.
std::set<std::string> pending_words(const json& row) {
  std::string text;
  for (const char* field : {"request_id", "user_id", "service", "espace", "comment"}) {
    text += row.value(field, "");
    text += ' ';
  }
  return search_tokens(text, true);
}
std::string pending_index_key(std::string_view s, std::string_view rid) {
  return key_of({"sq", s, rid});
}
// Structures with pending requests, for support's inbox across structures.
std::string pending_structure_key(std::string_view s) { return key_of({"sa", s}); }
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
// The stream version of the history row at an ordinal (1 = the oldest): page N is one point
// read and one scan of a page, not a scan of every newer row.
std::string history_ordinal_key(std::string_view s, std::uint64_t ordinal) {
  return key_of({"so", s}) + '\0' + be64(ordinal);
}
std::string service_history_ordinal_key(std::string_view s, std::string_view service,
                                        std::uint64_t ordinal) {
  return key_of({"su", s, service}) + '\0' + be64(ordinal);
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
    auto after = bumped(key, delta);
    if (!after) return std::unexpected(after.error());
    return {};
  }
  // As bump; the counter's new value.
  Result<std::uint64_t> bumped(const std::string& key, std::int64_t delta) {
    auto v = batch_.get(key);
    if (!v) return std::unexpected(v.error());
    const std::uint64_t before = v->has_value() && (*v)->size() == 8 ? from_be64(**v) : 0;
    const std::uint64_t after = before + static_cast<std::uint64_t>(delta);
    // A structure without pending requests leaves support's list (other counters stay).
    if (after == 0 && key.starts_with(std::string_view("sa\0", 3))) {
      batch_.del(key);
    } else {
      batch_.put(key, be64(after));
    }
    return after;
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
    const std::string text = json_text(row);
    batch_.put(history_prefix(s) + be64(event_.version), text);
    // A row about one service is also filed under it, for a GS scoped to services.
    if (const std::string service = row.value("service", ""); !service.empty()) {
      batch_.put(service_history_prefix(s, service) + be64(event_.version), text);
      auto n = bumped(service_history_count_key(s, service), 1);
      if (!n) return std::unexpected(n.error());
      batch_.put(service_history_ordinal_key(s, service, *n), be64(event_.version));
    }
    auto n = bumped(history_count_key(s), 1);
    if (!n) return std::unexpected(n.error());
    batch_.put(history_ordinal_key(s, *n), be64(event_.version));
    return {};
  }

  Result<void> update_detail(const std::string& s, const std::function<void(json&)>& change) {
    auto row = read_json(batch_, detail_key(s));
    if (!row) return std::unexpected(row.error());
    if (!row->has_value()) return fail(errc::poison, "event for an unknown structure");
    change(**row);
    batch_.put(detail_key(s), json_text(**row));
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
    batch_.put(access_key(user, s), json_text(a));
    auto member = read_json(batch_, member_key(s, user));
    if (!member) return std::unexpected(member.error());
    json m = member->value_or(json{{"user_id", user}, {"start_date", start_date}});
    m["role"] = role;
    m["services"] = services;
    if (!start_date.empty()) m["start_date"] = start_date;
    batch_.put(member_key(s, user), json_text(m));
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
    const std::string suffix = pending_suffix(event_.meta.occurred_at_us, rid);
    const std::string key = pending_prefix(s, service) + suffix;
    const std::string text = json_text(row);
    batch_.put(key, text);
    batch_.put(pending_index_key(s, rid), key);
    batch_.put(user_request_key(user, s, rid), text);
    for (const auto& word : pending_words(row)) {
      batch_.put(pending_word_prefix(s, service) + word + '\0' + suffix, row.value("kind", ""));
    }
    if (auto ok = ranked_insert(batch_, pending_list(s, service), suffix, text); !ok) return ok;
    if (auto ok = bump(pending_structure_key(s), 1); !ok) return ok;
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
    const std::string service = r.value("service", "");
    const std::string suffix = (**key).substr(pending_prefix(s, service).size());
    batch_.del(**key);
    batch_.del(pending_index_key(s, rid));
    for (const auto& word : pending_words(r)) {
      batch_.del(pending_word_prefix(s, service) + word + '\0' + suffix);
    }
    if (auto ok = ranked_remove(batch_, pending_list(s, service), suffix, ""); !ok) {
      return std::unexpected(ok.error());
    }
    if (auto ok = bump(pending_count_key(s, service), -1); !ok) {
      return std::unexpected(ok.error());
    }
    if (auto ok = bump(pending_structure_key(s), -1); !ok) return std::unexpected(ok.error());
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
           {"services", json::array({json{{"code", events::kPublicInvoicesCode},
                                          {"label", events::kPublicInvoicesLabel},
                                          {"description", events::kPublicInvoicesDescription},
                                          {"valid_from", e.created_on},
                                          {"valid_to", ""},
                                          {"commitment_required", false}}})},
           {"espaces", json::array()}};
    batch_.put(detail_key(e.structure_id), json_text(d));
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
    batch_.put(access_key(e.user_id, e.structure_id), json_text(a));
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
    batch_.put(account_key(e.user_id), json_text(json{{"status", "En cours d'activation"},
                                                      {"login_email", e.login_email},
                                                      {"first_name", e.first_name},
                                                      {"last_name", e.last_name},
                                                      {"origin", e.origin},
                                                      {"technical", e.technical}}));
    return {};
  }
  Result<void> account_status(const std::string& user, const char* status) {
    auto row = read_json(batch_, account_key(user));
    if (!row) return std::unexpected(row.error());
    if (!row->has_value()) return fail(errc::poison, "event for an unknown account");
    (**row)["status"] = status;
    batch_.put(account_key(user), json_text(**row));
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

Result<bool> account_deactivated(const ViewStore& store, const std::string& user_id) {
  auto v = store.get(account_key(user_id));
  if (!v) return std::unexpected(v.error());
  if (!v->has_value()) return false;
  json a = json::parse(**v, nullptr, false);
  if (a.is_discarded()) return fail(errc::io_error, "unreadable account row");
  return a.value("status", "") == "Désactivé";
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

bool may_read_espace(const AccessRow& access, std::string_view espace,
                     std::string_view service) noexcept {
  return std::ranges::any_of(access.espaces, [&](const EspaceRight& r) {
    return r.espace == espace && (r.read || r.write) && (r.service.empty() || r.service == service);
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

namespace {

std::string hex_of(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::optional<std::string> bytes_of_hex(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const int hi = digit(text[i]);
    const int lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

// Whether every query word begins one of the row's words.
bool has_words(const std::set<std::string>& query, const std::set<std::string>& row) {
  return std::ranges::all_of(query, [&](const std::string& w) {
    auto it = row.lower_bound(w);
    return it != row.end() && it->starts_with(w);
  });
}

// A matching row of a filtered page, in page order.
struct Match {
  std::size_t group;
  std::string suffix;
  std::string row;
};

}  // namespace

std::string pending_cursor(std::string_view row) {
  json r = json::parse(row, nullptr, false);
  if (r.is_discarded() || !r.is_object()) return "";
  std::string raw = r.value("structure_id", "");
  raw += '\0';
  raw += r.value("service", "");
  raw += '\0';
  raw += pending_suffix(r.value("at_us", std::int64_t{0}), r.value("request_id", ""));
  return hex_of(raw);
}

std::optional<PendingCursor> parse_pending_cursor(std::string_view text) {
  if (text.size() > 2048) return std::nullopt;
  auto raw = bytes_of_hex(text);
  if (!raw) return std::nullopt;
  const auto a = raw->find('\0');
  if (a == std::string::npos) return std::nullopt;
  const auto b = raw->find('\0', a + 1);
  if (b == std::string::npos || raw->size() - b - 1 <= 8) return std::nullopt;
  return PendingCursor{raw->substr(0, a), raw->substr(a + 1, b - a - 1), raw->substr(b + 1)};
}

bool is_searchable(std::string_view text) { return !search_tokens(text, false).empty(); }

Result<std::vector<std::pair<std::string, std::uint64_t>>> structures_with_pending(
    const ViewStore& store) {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  const std::string prefix = std::string("sa") + '\0';
  auto ok = store.scan(prefix, "", false, [&](std::string_view key, std::string_view value) {
    const std::uint64_t n = value.size() == 8 ? from_be64(value) : 0;
    if (n > 0) out.emplace_back(std::string(key.substr(prefix.size())), n);
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  return out;
}

Result<RowPage> pending_page(const ViewStore& store, const std::string& structure_id,
                             const PendingQuery& q) {
  RowPage out;
  const std::string& s = structure_id;
  // The groups to read, in service order, with their pending counts.
  auto counts = pending_counts(store, s);
  if (!counts) return std::unexpected(counts.error());
  std::vector<std::pair<std::string, std::uint64_t>> groups;
  if (q.services) {
    std::vector<std::string> wanted = *q.services;
    std::ranges::sort(wanted);
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    for (const auto& service : wanted) {
      auto it = std::ranges::find(*counts, service, &std::pair<std::string, std::uint64_t>::first);
      if (it != counts->end()) groups.push_back(*it);
    }
  } else {
    groups = std::move(*counts);
  }
  // The first group at or after the cursor's.
  const std::size_t cursor_group =
      q.after ? static_cast<std::size_t>(
                    std::ranges::lower_bound(groups, q.after->service, {},
                                             &std::pair<std::string, std::uint64_t>::first) -
                    groups.begin())
              : 0;
  // Whether a row of group `g` at `suffix` comes after the cursor in page order.
  auto after_cursor = [&](std::size_t g, const std::string& suffix) {
    if (!q.after) return true;
    if (g != cursor_group) return g > cursor_group;
    if (groups[g].first != q.after->service) return true;  // the cursor's group is gone
    return q.newest_first ? suffix < q.after->suffix : suffix > q.after->suffix;
  };

  if (q.words.empty() && q.kind.empty()) {
    for (const auto& [service, n] : groups) out.total += n;
    if (q.limit == 0) return out;
    // Where the page starts: a group and, in it, a key (inclusive, or the cursor's, excluded).
    std::size_t g = cursor_group;
    std::string start;
    std::string excluded;
    if (q.after) {
      if (g < groups.size() && groups[g].first == q.after->service) {
        start = pending_prefix(s, groups[g].first) + q.after->suffix;
        excluded = start;
      }
    } else {
      std::uint64_t passed = 0;
      for (g = 0; g < groups.size() && passed + groups[g].second <= q.offset; ++g) {
        passed += groups[g].second;
      }
      if (g < groups.size()) {
        const std::uint64_t n = groups[g].second;
        const std::uint64_t rank = q.offset - passed;
        auto key = ranked_key_at(store, pending_list(s, groups[g].first),
                                 q.newest_first ? n - 1 - rank : rank, n);
        if (!key) return std::unexpected(key.error());
        if (!*key) return out;  // counts and rows disagree: a batch is being applied
        start = std::move(**key);
      }
    }
    for (; g < groups.size() && out.rows.size() < q.limit; ++g) {
      auto ok = store.scan(pending_prefix(s, groups[g].first), start, q.newest_first,
                           [&](std::string_view key, std::string_view value) {
                             if (key == excluded) return true;
                             out.rows.emplace_back(value);
                             return out.rows.size() < q.limit;
                           });
      if (!ok) return std::unexpected(ok.error());
      start.clear();
      if (!q.newest_first && g + 1 < groups.size() && out.rows.size() < q.limit) {
        // The next group from its first live row, past its head's tombstones.
        auto key =
            ranked_key_at(store, pending_list(s, groups[g + 1].first), 0, groups[g + 1].second);
        if (!key) return std::unexpected(key.error());
        if (*key) start = std::move(**key);
      }
    }
    return out;
  }

  // Filtered: the matches of every group, in page order, then the page among them.
  const std::set<std::string> words = search_tokens(q.words, false);
  auto keep = [&](const json& r) {
    if (!q.kind.empty() && r.value("kind", "") != q.kind) return false;
    return words.empty() || has_words(words, pending_words(r));
  };
  std::vector<Match> matches;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const std::string rows_prefix = pending_prefix(s, groups[g].first);
    if (words.empty()) {
      // A kind alone: every row of the group is read.
      auto ok = store.scan(
          rows_prefix, "", q.newest_first, [&](std::string_view key, std::string_view value) {
            json r = json::parse(value, nullptr, false);
            if (!r.is_discarded() && keep(r)) {
              matches.push_back(
                  Match{g, std::string(key.substr(rows_prefix.size())), std::string(value)});
            }
            return true;
          });
      if (!ok) return std::unexpected(ok.error());
      continue;
    }
    // The candidates: the rows filed under the rarest prefix. Each scan stops once it holds more
    // than the best so far, and a first round stops at kProbe postings, so that a common word
    // ("rattachement") is not read whole when a rare one is beside it.
    constexpr std::size_t kProbe = 512;
    std::optional<std::map<std::string, std::string>> best;  // suffix -> kind
    const std::string words_prefix = pending_word_prefix(s, groups[g].first);
    for (const std::size_t cap : {kProbe, SIZE_MAX}) {
      for (const auto& w : words) {
        std::map<std::string, std::string> found;
        std::size_t postings = 0;
        const std::size_t bound = best ? best->size() : cap;
        auto ok = store.scan(words_prefix + w, "", false,
                             [&](std::string_view key, std::string_view kind) {
                               const auto end = key.find('\0', words_prefix.size());
                               if (end != std::string_view::npos) {
                                 found.emplace(key.substr(end + 1), kind);
                               }
                               return ++postings <= bound;
                             });
        if (!ok) return std::unexpected(ok.error());
        if (postings <= bound && (!best || found.size() < best->size())) best = std::move(found);
        if (best && best->empty()) break;
      }
      if (best) break;
    }
    if (!best || best->empty()) continue;
    std::vector<Match> group_matches;
    if (words.size() == 1) {
      // One word: its postings are the matches (their value is the kind); rows are read for
      // the page only.
      for (auto& [suffix, kind] : *best) {
        if (q.kind.empty() || kind == q.kind) group_matches.push_back(Match{g, suffix, ""});
      }
    } else {
      // Several: each candidate row is read and checked against the other words.
      std::vector<std::string> keys;
      keys.reserve(best->size());
      for (const auto& [suffix, kind] : *best) keys.push_back(rows_prefix + suffix);
      auto rows = store.multi_get(keys);
      if (!rows) return std::unexpected(rows.error());
      std::size_t i = 0;
      for (const auto& [suffix, kind] : *best) {
        const auto& row = (*rows)[i++];
        if (!row) continue;
        json r = json::parse(*row, nullptr, false);
        if (!r.is_discarded() && keep(r)) group_matches.push_back(Match{g, suffix, *row});
      }
    }
    if (q.newest_first) std::ranges::reverse(group_matches);
    std::ranges::move(group_matches, std::back_inserter(matches));
  }
  out.total = matches.size();
  std::size_t first = 0;
  if (q.after) {
    while (first < matches.size() && !after_cursor(matches[first].group, matches[first].suffix)) {
      ++first;
    }
  } else {
    first = static_cast<std::size_t>(std::min<std::uint64_t>(q.offset, matches.size()));
  }
  const std::size_t last = std::min(matches.size(), first + q.limit);
  // Rows not read yet (one-word searches): one multi-get for the page.
  std::vector<std::string> keys;
  for (std::size_t i = first; i < last; ++i) {
    if (matches[i].row.empty()) {
      keys.push_back(pending_prefix(s, groups[matches[i].group].first) + matches[i].suffix);
    }
  }
  auto read = store.multi_get(keys);
  if (!read) return std::unexpected(read.error());
  std::size_t k = 0;
  for (std::size_t i = first; i < last; ++i) {
    if (!matches[i].row.empty()) {
      out.rows.push_back(std::move(matches[i].row));
    } else if (const auto& row = (*read)[k++]; row) {
      out.rows.push_back(*row);
    }
  }
  return out;
}

namespace {
// The stream version an ordinal row names; nullopt in a store written before ordinals were
// kept (the caller then counts rows as it did).
Result<std::optional<std::uint64_t>> history_start(const ViewStore& store,
                                                   const std::string& ordinal_key) {
  auto v = store.get(ordinal_key);
  if (!v) return std::unexpected(v.error());
  if (!v->has_value() || (*v)->size() != 8) return std::optional<std::uint64_t>{};
  return std::optional<std::uint64_t>{from_be64(**v)};
}
}  // namespace

Result<RowPage> history_page(const ViewStore& store, const std::string& structure_id,
                             std::size_t page, std::size_t page_size, std::uint64_t before) {
  RowPage out;
  auto total = store.get(history_count_key(structure_id));
  if (!total) return std::unexpected(total.error());
  out.total = total->has_value() && (*total)->size() == 8 ? from_be64(**total) : 0;
  std::uint64_t skip = static_cast<std::uint64_t>(page - 1) * page_size;
  const std::string prefix = history_prefix(structure_id);
  if (before == 1) return out;  // nothing is older than the first event
  std::string start = before == 0 ? "" : prefix + be64(before - 1);
  if (before == 0 && skip > 0) {
    if (skip >= out.total) return out;
    auto version = history_start(store, history_ordinal_key(structure_id, out.total - skip));
    if (!version) return std::unexpected(version.error());
    if (*version) {
      start = prefix + be64(**version);
      skip = 0;
    }
  }
  std::uint64_t seen = 0;
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
  std::set<std::string> distinct(services.begin(), services.end());
  distinct.erase("");
  if (distinct.size() == 1 && before == 0) {
    // One service: its own ordinals find page N as for the whole structure.
    const std::string& service = *distinct.begin();
    auto count = store.get(service_history_count_key(structure_id, service));
    if (!count) return std::unexpected(count.error());
    out.total = count->has_value() && (*count)->size() == 8 ? from_be64(**count) : 0;
    const std::uint64_t skip = static_cast<std::uint64_t>(page - 1) * page_size;
    if (skip >= out.total) return out;
    auto version =
        history_start(store, service_history_ordinal_key(structure_id, service, out.total - skip));
    if (!version) return std::unexpected(version.error());
    if (*version) {
      const std::string prefix = service_history_prefix(structure_id, service);
      auto ok = store.scan(prefix, prefix + be64(**version), true,
                           [&](std::string_view, std::string_view value) {
                             out.rows.emplace_back(value);
                             return out.rows.size() < page_size;
                           });
      if (!ok) return std::unexpected(ok.error());
      return out;
    }
    out.total = 0;  // a store written before the ordinals: merged below
  }
  const std::uint64_t wanted = static_cast<std::uint64_t>(page) * page_size;
  // Each service's newest `wanted` rows, merged newest first: the page is among them. With
  // several services, page N reads up to N pages of each.
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
    std::string row = json_text(m);
    if (keep(row)) out.push_back(std::move(row));
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  if (failed) return std::unexpected(*failed);
  return out;
}

}  // namespace chorus::projections
