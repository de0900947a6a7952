// Randomized: thousands of random ticket commands by several users (emitters and support
// agents), through the real command handler on a real embedded log, with the standard views.
// After every step the views must match a model folded by the same domain code, and every
// 100 steps (and at the end) a fresh rebuild from the log must equal the live views, and every
// list (tabs and support queues) equals the model on every sort column both ways, page by page.
// Nobody's list ever holds someone else's ticket.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "api/command_handler.h"
#include "domain/ticket.h"
#include "events/embedded_log.h"
#include "projections/ranked_list.h"
#include "projections/runner.h"
#include "projections/standard_views.h"
#include "projections/ticket_views.h"
#include "tests/projections/view_compare.h"

namespace chorus {
namespace {

namespace ticket = domain::ticket;
using nlohmann::json;
using namespace std::chrono_literals;

const char* tab_of(ticket::Status s, bool& second_tab) {
  second_tab = false;
  switch (s) {
    case ticket::Status::draft:
      return "brouillons";
    case ticket::Status::open:
      second_tab = true;
      return "en_cours";
    case ticket::Status::waiting_for_information:
    case ticket::Status::resolved:
      second_tab = true;
      return "actions_requises";
    case ticket::Status::closed:
      return "clotures";
    default:
      return nullptr;
  }
}

bool in_tab(const ticket::State& st, const std::string& tab) {
  bool tous = false;
  const char* t = tab_of(st.status, tous);
  return t != nullptr && (tab == t || (tous && tab == "tous"));
}

// The support queue lists a ticket is in, as "<level>/<scope>" ("1/all", "2/mine:sn2", ...), and
// the received queues of a business ticket's destination, as "d/<structure>/<service>/<scope>"
// (the whole structure's with an empty service holds those sent to its services too).
std::set<std::string> queues_of(const ticket::State& st) {
  const bool waiting = st.status == ticket::Status::open ||
                       st.status == ticket::Status::waiting_for_information ||
                       st.status == ticket::Status::resolved;
  if (!waiting) return {};
  if (ticket::is_business(st.sub_category)) {
    std::set<std::string> out;
    for (const std::string& service : {std::string(), st.destination_service}) {
      const std::string d = "d/" + st.destination_structure_id + "/" + service;
      out.insert(d + "/all");
      out.insert(d + (st.assignee.empty() ? "/unassigned" : "/mine:" + st.assignee));
    }
    return out;
  }
  const std::string level = std::to_string(st.level);
  return {level + "/all", level + (st.assignee.empty() ? "/unassigned" : "/mine:" + st.assignee)};
}

const char* const kSortNames[] = {"number",       "title",  "category",
                                  "sub_category", "status", "opened_at"};

// The sort value of a listed ticket as the views order it.
std::string sort_value(const ticket::State& st, const std::string& sort) {
  if (sort == "number") return st.number;
  if (sort == "title") return projections::fold_text(st.title).substr(0, 64);
  if (sort == "category") return projections::fold_text(st.category).substr(0, 64);
  if (sort == "sub_category") return projections::fold_text(st.sub_category).substr(0, 64);
  if (sort == "status") return projections::fold_text(ticket::to_string(st.status));
  return "";
}

// `ids` in the order of a list sorted on `sort`: (column value, opening time, id).
std::vector<std::string> in_sort_order(const std::map<std::string, ticket::State>& model,
                                       const std::map<std::string, std::int64_t>& opened,
                                       const std::vector<std::string>& ids, const char* sort,
                                       bool descending) {
  std::vector<std::tuple<std::string, std::int64_t, std::string>> keys;
  for (const auto& id : ids) {
    const auto at = opened.find(id);
    keys.emplace_back(sort_value(model.at(id), sort), at == opened.end() ? 0 : at->second, id);
  }
  std::sort(keys.begin(), keys.end());
  if (descending) std::reverse(keys.begin(), keys.end());
  std::vector<std::string> out;
  for (const auto& k : keys) out.push_back(std::get<2>(k));
  return out;
}

// Every page of `list` (page size `size`), joined.
std::vector<json> every_page(const projections::ViewStore& store, const std::string& list,
                             projections::TicketQuery q, std::size_t size) {
  std::vector<json> out;
  q.page_size = size;
  for (q.page = 1;; ++q.page) {
    auto page = projections::list_tickets(store, list, q);
    EXPECT_TRUE(page);
    if (!page || page->rows.empty()) break;
    for (const auto& r : page->rows) out.push_back(json::parse(r));
  }
  return out;
}

// The columns of an emitted list whose buckets keep sets of ordinals (ticket_views.h).
const char* const kBucketSetColumns[] = {"n", "t", "c", "s", "o"};

// The sets of ordinals of an emitted list's buckets on `column` (ticket_views.h), recounted
// from the list's rows: each row's ordinal (the last 4 bytes of its key) in the bucket of the
// nearest fence at or before it, "" before the first; and each row's ticket has the bit of its
// ordinal in the user's bitmap of a term exactly when the term is among its words (its words
// row), as the row carries them in the opening-time index. A user who has emitted few tickets
// has neither sets nor bits. Empty when the stored sets and bits agree; else what differs.
std::string bucket_set_errors(const projections::ViewStore& store, const std::string& list,
                              const char* column) {
  using projections::key_of;
  const std::string sorted = key_of({list, column});
  const std::string fences_at = key_of({"f", sorted, ""});
  const std::string rows_at = key_of({"x", sorted, ""});
  std::set<std::string> fences;
  auto fenced = store.scan(fences_at, "", false, [&](std::string_view key, std::string_view) {
    fences.emplace(key.substr(fences_at.size()));
    return true;
  });
  if (!fenced) return "reading the fences: " + fenced.error().message;
  std::map<std::string, std::set<std::uint32_t>> sets_recounted, sets_stored;  // by fence
  std::map<std::uint32_t, std::set<std::string>> words_of;                     // by ordinal
  std::string errors;
  auto walked = store.scan(rows_at, "", false, [&](std::string_view key, std::string_view value) {
    // The opening-time index's rows carry the status and terms after the id.
    const std::string_view id = value.substr(0, value.find('\0'));
    const std::string suffix(key.substr(rows_at.size()));
    auto after = fences.upper_bound(suffix);
    const std::string bucket = after == fences.begin() ? "" : *std::prev(after);
    const std::uint32_t ordinal = projections::from_be32(key.substr(key.size() - 4));
    sets_recounted[bucket].insert(ordinal);
    auto& own = words_of[ordinal];
    auto words = store.get(key_of({"tw", id}));
    if (!words || !*words) {
      errors += "no words row for " + std::string(id) + "\n";
      return true;
    }
    if (std::string_view(column) == "o" &&
        (value.size() < id.size() + 2 || value.substr(id.size() + 2) != **words)) {
      errors += "the terms of " + std::string(id) + "'s row differ from its words row\n";
    }
    std::string_view rest = **words;
    while (!rest.empty()) {
      const auto end = std::min(rest.find('\0'), rest.size());
      own.emplace(rest.substr(0, end));
      rest.remove_prefix(std::min(end + 1, rest.size()));
    }
    return true;
  });
  if (!walked) return "reading the index: " + walked.error().message;
  const std::string user = list.substr(2, list.find('\0', 2) - 2);
  auto keeps = projections::keeps_term_bitmaps(store, user);
  if (!keeps) return "reading the emitted count: " + keeps.error().message;
  if (!*keeps) {
    sets_recounted.clear();
    words_of.clear();
  }
  const std::string sets_at = key_of({"kb", sorted, ""});
  auto read_sets = store.scan(sets_at, "", false, [&](std::string_view key, std::string_view v) {
    auto& set = sets_stored[std::string(key.substr(sets_at.size()))];
    for (std::size_t at = 0; at + 4 <= v.size(); at += 4) {
      set.insert(projections::from_be32(v.substr(at, 4)));
    }
    return true;
  });
  if (!read_sets) return "reading the bucket sets: " + read_sets.error().message;
  if (sets_stored != sets_recounted) errors += "the buckets' sets of ordinals differ\n";
  // The user's term bitmaps, against the words of this list's tickets.
  const std::string bits_at = key_of({"tb", user, ""});
  std::set<std::pair<std::string, std::uint32_t>> bits;  // (term, ordinal) of this list's rows
  auto read_bits = store.scan(bits_at, "", false, [&](std::string_view key, std::string_view v) {
    const std::string_view rest = key.substr(bits_at.size());
    const std::string term(rest.substr(0, rest.size() - 5));
    const std::uint32_t base = projections::from_be32(rest.substr(rest.size() - 4)) * 4096;
    for (std::size_t i = 0; i < v.size() * 8; ++i) {
      if ((static_cast<unsigned char>(v[i / 8]) >> (i % 8)) & 1) {
        const auto ordinal = static_cast<std::uint32_t>(base + i);
        if (words_of.contains(ordinal)) bits.emplace(term, ordinal);
      }
    }
    return true;
  });
  if (!read_bits) return "reading the term bitmaps: " + read_bits.error().message;
  std::set<std::pair<std::string, std::uint32_t>> bits_recounted;
  for (const auto& [ordinal, words] : words_of) {
    for (const auto& w : words) bits_recounted.emplace(w, ordinal);
  }
  if (bits != bits_recounted) errors += "the term bitmaps differ from the tickets' words\n";
  return errors;
}

// Every list of `store` against the model, on every column both ways and paged: the same
// tickets, in the order of (column value, opening time, id), nobody's ticket in another's list,
// no business ticket and nothing outside its level in a support queue.
void check_lists(const projections::ViewStore& store,
                 const std::map<std::string, ticket::State>& model,
                 const std::vector<std::string>& users, const std::vector<std::string>& agents,
                 std::size_t page_size) {
  std::map<std::string, std::int64_t> opened;
  std::vector<std::pair<std::string, std::function<bool(const ticket::State&)>>> lists;
  for (const auto& user : users) {
    for (const char* tab : projections::kTicketTabs) {
      lists.emplace_back(*projections::emitted_list(user, tab),
                         [user, tab](const ticket::State& st) {
                           return st.emitter_user_id == user && in_tab(st, tab);
                         });
    }
    // The lists of one status no tab shows, that searches on a status read.
    for (const auto status : {ticket::Status::waiting_for_information, ticket::Status::resolved}) {
      lists.emplace_back(*projections::emitted_status_list(user, ticket::to_string(status)),
                         [user, status](const ticket::State& st) {
                           return st.emitter_user_id == user && st.status == status;
                         });
    }
  }
  for (int level : {1, 2}) {
    const std::string l = std::to_string(level);
    lists.emplace_back(*projections::support_queue(level, projections::QueueScope::all, ""),
                       [l](const ticket::State& st) { return queues_of(st).contains(l + "/all"); });
    lists.emplace_back(
        *projections::support_queue(level, projections::QueueScope::unassigned, ""),
        [l](const ticket::State& st) { return queues_of(st).contains(l + "/unassigned"); });
    for (const auto& agent : agents) {
      lists.emplace_back(*projections::support_queue(level, projections::QueueScope::mine, agent),
                         [l, agent](const ticket::State& st) {
                           return queues_of(st).contains(l + "/mine:" + agent);
                         });
    }
  }
  // The received queues of the one destination the random tickets use, whole and per service.
  for (const std::string service : {"", "S1"}) {
    const std::string d = "d/dest-1/" + service;
    lists.emplace_back(*projections::received_queue("dest-1", service),
                       [d](const ticket::State& st) { return queues_of(st).contains(d + "/all"); });
    lists.emplace_back(
        *projections::received_queue("dest-1", service, projections::QueueScope::unassigned),
        [d](const ticket::State& st) { return queues_of(st).contains(d + "/unassigned"); });
    for (const auto& agent : agents) {
      lists.emplace_back(
          *projections::received_queue("dest-1", service, projections::QueueScope::mine, agent),
          [d, agent](const ticket::State& st) {
            return queues_of(st).contains(d + "/mine:" + agent);
          });
    }
  }
  for (const auto& [list, belongs] : lists) {
    std::vector<std::string> expected_ids;
    for (const auto& [id, st] : model) {
      if (belongs(st)) expected_ids.push_back(id);
    }
    projections::TicketQuery q;
    const auto newest_first = every_page(store, list, q, page_size);
    for (const auto& r : newest_first) opened[r["ticket_id"]] = r["opened_at_us"];
    for (const char* sort : kSortNames) {
      for (bool descending : {false, true}) {
        const auto want = in_sort_order(model, opened, expected_ids, sort, descending);
        q.sort = *projections::parse_ticket_sort(sort);
        q.descending = descending;
        std::vector<std::string> got;
        for (const auto& r : every_page(store, list, q, page_size)) got.push_back(r["ticket_id"]);
        ASSERT_EQ(got, want) << "list " << list.size() << " bytes, sort " << sort
                             << (descending ? " desc" : " asc");
      }
    }
    // The count shown beside the tab or queue.
    ASSERT_EQ(*projections::list_count(store, list), expected_ids.size());
    if (list.starts_with(std::string_view("e\0", 2))) {
      for (const char* column : kBucketSetColumns) {
        ASSERT_EQ(bucket_set_errors(store, list, column), "")
            << "list " << list.size() << " bytes, column " << column;
      }
    }
  }
}

TEST(TicketRandom, ViewsFollowTheModelAndEqualAFreshRebuild) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("chorus-random-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  auto log = events::open_embedded_log({(dir / "log").string(), true});
  ASSERT_TRUE(log);
  projections::StandardViews views;
  auto runner = projections::Runner::open(**log, dir.string(), views.list());
  ASSERT_TRUE(runner);
  api::CommandHandler handler(**log);

  const std::vector<domain::Caller> callers{{"alice", {}},
                                            {"bob", {}},
                                            {"carol", {}},
                                            {"sn1", {.support_level1 = true}},
                                            {"sn2", {.support_level2 = true}},
                                            // holds "Sollicitations reçues" (write) on dest-1
                                            {"recv", {}}};
  std::mt19937 rng(20261124);  // repeatable
  std::map<std::string, ticket::State> model;
  std::vector<std::string> ids;
  int accepted = 0, refused = 0;
#ifdef __SANITIZE_ADDRESS__
  constexpr int kSteps = 600;  // the same checks, fewer steps: sanitizers are slow
#else
  constexpr int kSteps = 3000;
#endif

  for (int step = 0; step < kSteps; ++step) {
    std::string id;
    // Mostly tickets still in play; Fermé and deleted ones now and then, to check refusals.
    std::vector<std::string> live;
    for (const auto& t : ids) {
      const auto st = model[t].status;
      if (st != ticket::Status::closed && st != ticket::Status::deleted) live.push_back(t);
    }
    const bool fresh_ticket = ids.empty() || live.size() < 5 || rng() % 8 == 0;
    if (fresh_ticket) {
      id = "r" + std::to_string(ids.size());
    } else if (!live.empty() && rng() % 6 != 0) {
      id = live[rng() % live.size()];
    } else {
      id = ids[rng() % ids.size()];
    }
    // One form in three is a business ("M-") one, sent to dest-1 or its service S1.
    const int kind = static_cast<int>(rng() % 6);
    const ticket::Form form =
        kind < 4 ? ticket::Form{"s1", "Technique", "Connexion", "Titre " + id, "Description"}
                 : ticket::Form{"s1",
                                "Factures émises",
                                "M-Question pour une entité publique",
                                "Titre " + id,
                                "Description",
                                "dest-1",
                                kind == 5 ? "S1" : ""};
    ticket::Command command;
    switch (fresh_ticket ? rng() % 2 : rng() % 15) {
      case 0:
        command = ticket::SaveDraft{form};
        break;
      case 1:
        command = ticket::Submit{rng() % 2 ? std::optional(form) : std::nullopt, "SOL-" + id};
        break;
      case 2:
        command = ticket::DeleteDraft{};
        break;
      case 3:
        command = ticket::RequestInformation{"?"};
        break;
      case 4:
        command = ticket::ProvideInformation{"!"};
        break;
      case 5:
        command = ticket::ProposeSolution{"solution"};
        break;
      case 6:
        command = ticket::AcceptSolution{};
        break;
      case 7:
        command = ticket::RefuseSolution{rng() % 4 ? "non" : ""};
        break;
      case 8:
        command = ticket::Close{""};
        break;
      case 9:
        command = ticket::AddComment{"mot"};
        break;
      case 10:
        command = ticket::Take{};
        break;
      case 11:
        command = ticket::Release{};
        break;
      case 12:
        command = ticket::Reassign{"sn1"};
        break;
      case 13:
        command = ticket::Escalate{};
        break;
      default:
        command = ticket::SetPriority{"major", "minor", std::nullopt, ""};
        break;
    }
    // Mostly the right person for the command, sometimes anyone: both paths get exercised.
    const bool support_command = command.index() == 3 || command.index() == 5 ||
                                 (command.index() >= 10 && command.index() <= 14);
    const domain::Caller* pick = &callers[rng() % callers.size()];
    if (rng() % 5 != 0) {
      if (support_command) {
        pick = &callers[3 + rng() % 3];
        // Mostly its holder, when someone holds it: another agent is refused.
        if (model.contains(id) && rng() % 3 != 0) {
          for (const auto& c : callers) {
            if (c.user_id == model[id].assignee) pick = &c;
          }
        }
      } else if (model.contains(id)) {
        for (const auto& c : callers) {
          if (c.user_id == model[id].emitter_user_id) pick = &c;
        }
      }
    }
    const domain::Caller& caller = *pick;
    ticket::State initial;
    initial.ticket_id = id;
    const bool known = model.contains(id);
    const ticket::State before = known ? model[id] : initial;
    // The model decides with the same domain code the handler runs.
    const ticket::Context context{true, caller.user_id == "recv"};
    auto expected = ticket::decide(before, command, caller, context);
    try {
      auto outcome = handler.run(
          ticket::stream_id(id),
          api::CommandMeta{caller, "user", "cmd-" + std::to_string(step), "corr"},
          api::Aggregate<ticket::State>{initial, &ticket::evolve, [&](const ticket::State& s) {
                                          return ticket::decide(s, command, caller, context);
                                        }});
      ASSERT_TRUE(expected.has_value()) << "step " << step << ": accepted, the model refused";
      ticket::State after = before;
      for (const auto& p : *expected) after = ticket::evolve(std::move(after), p);
      model[id] = after;
      if (!known) ids.push_back(id);
      ++accepted;
      while (*(*runner)->step(0ms) > 0) {
      }
      ASSERT_TRUE(
          (*runner)->applied().covers(*events::LogPosition::from_token(outcome.consistency_token)));
    } catch (const api::Problem& p) {
      ASSERT_FALSE(expected.has_value())
          << "step " << step << ": refused (" << p.rule << "), the model accepted";
      EXPECT_EQ(p.rule, expected.error().rule) << "step " << step;
      ++refused;
    }

    // Views against the model: counts per tab for every user, the detail's status.
    auto store = (*runner)->store();
    std::map<std::pair<std::string, std::string>, std::uint64_t> counts;
    for (const auto& [tid, st] : model) {
      bool tous = false;
      if (const char* tab = tab_of(st.status, tous)) {
        ++counts[{st.emitter_user_id, tab}];
        if (tous) ++counts[{st.emitter_user_id, "tous"}];
      }
      auto detail = projections::ticket_detail(*store, tid);
      ASSERT_TRUE(detail);
      if (st.status == ticket::Status::deleted) {
        EXPECT_FALSE(detail->has_value()) << tid << " deleted but still shown";
      } else {
        ASSERT_TRUE(detail->has_value()) << tid;
        auto row = json::parse(**detail);
        EXPECT_EQ(row["status"], ticket::to_string(st.status)) << tid << " at step " << step;
        EXPECT_EQ(row["version"], st.version) << tid;
        // Composed from the state row and the last history entry (ticket_detail).
        if (st.status == ticket::Status::draft) {
          EXPECT_FALSE(row.contains("assignee") || row.contains("support_level")) << tid;
        } else {
          EXPECT_EQ(row["assignee"], st.assignee) << tid << " at step " << step;
          EXPECT_EQ(row["support_level"], st.level) << tid << " at step " << step;
        }
        EXPECT_EQ(row["history"].size(), st.version) << tid;
        EXPECT_EQ(row["attachments"].size(), st.attachments) << tid;
      }
    }
    for (const auto& caller_row : callers) {
      for (const char* tab : projections::kTicketTabs) {
        auto page = projections::list_emitted_tickets(*store, caller_row.user_id, tab, 1, 1000);
        ASSERT_TRUE(page);
        const std::uint64_t want = counts[{caller_row.user_id, tab}];
        ASSERT_EQ(page->total, want) << caller_row.user_id << " " << tab << " at step " << step;
        ASSERT_EQ(page->rows.size(), want) << caller_row.user_id << " " << tab;
        for (const auto& r : page->rows) {
          const std::string tid = json::parse(r)["ticket_id"];
          ASSERT_EQ(model[tid].emitter_user_id, caller_row.user_id)
              << "someone else's ticket listed";
        }
      }
    }
    // Every list on every column both ways, pages of 7; search by number finds a ticket for its
    // emitter only. Every 500 steps: a full check reads each list 13 times.
    if (step % 500 == 499 || step == kSteps - 1) {
      check_lists(*store, model, {"alice", "bob", "carol"}, {"sn1", "sn2", "recv"}, 7);
      for (const auto& [tid, st] : model) {
        if (st.number.empty() || st.status == ticket::Status::deleted) continue;
        for (const char* user : {"alice", "bob", "carol"}) {
          projections::TicketQuery q;
          q.search.number = st.number;
          auto found = projections::list_tickets(
              *store,
              *projections::emitted_list(user, in_tab(st, "clotures") ? "clotures" : "tous"), q);
          ASSERT_TRUE(found);
          ASSERT_EQ(found->total, st.emitter_user_id == user ? 1u : 0u) << tid << " " << user;
        }
      }
    }
    if (step % 100 == 99 || step == kSteps - 1) {
      const auto fresh_dir = dir / ("fresh-" + std::to_string(step));
      auto fresh = projections::Runner::open(**log, fresh_dir.string(), views.list());
      ASSERT_TRUE(fresh);
      while (*(*fresh)->step(0ms) > 0) {
      }
      ASSERT_EQ(projections::testing::differences(*store, *(*fresh)->store()), "")
          << "step " << step;
      fresh->reset();
      std::filesystem::remove_all(fresh_dir);
      // The folded rebuild (the replay tool's) leaves the same rows.
      ASSERT_EQ(projections::testing::folded_differences(**log, *store, (dir / "folded").string()),
                "")
          << "step " << step;
    }
  }
  std::printf("[ random ] %d steps: %d accepted, %d refused, %zu tickets\n", kSteps, accepted,
              refused, ids.size());
  EXPECT_GT(accepted, kSteps / 5);
  EXPECT_GT(refused, kSteps / 5);
  runner->reset();
  log->reset();
  std::filesystem::remove_all(dir);
}

// One emitter with a long history, paged from both ends on every column: what the bucket
// counts (fences every 64 rows or so) are for. Tickets move between tabs and queues in several
// rounds, so fences join and leave lists; after each round every page equals the slice of the
// list sorted in memory, and at the end the views equal a fresh rebuild. Many equal titles and
// categories: ties sort by opening time.
TEST(TicketLists, EveryPageOfALongListFromEitherEnd) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("chorus-long-list-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  auto log = events::open_embedded_log({(dir / "log").string(), false});
  ASSERT_TRUE(log);
  projections::StandardViews views;
  auto runner = projections::Runner::open(**log, dir.string(), views.list());
  ASSERT_TRUE(runner);
  api::CommandHandler handler(**log);
  std::mt19937 rng(20261126);
#ifdef __SANITIZE_ADDRESS__
  constexpr int kTickets = 400;
#else
  constexpr int kTickets = 1500;
#endif
  const char* const titles[] = {"Connexion", "connexion", "Élan", "elan", "API", "Zèbre", "Bloqué"};
  const char* const subs[] = {"Connexion", "API", "Dépôt de facture",
                              "M-Question pour une entité publique"};
  const domain::Caller heavy{"heavy", {}};
  const domain::Caller sn1{"sn1", {.support_level1 = true}};
  const domain::Caller sn2{"sn2", {.support_level2 = true}};
  std::map<std::string, ticket::State> model;
  int step = 0;
  auto run = [&](const std::string& id, const domain::Caller& caller,
                 const ticket::Command& command) {
    ticket::State initial;
    initial.ticket_id = id;
    const ticket::State before = model.contains(id) ? model[id] : initial;
    auto expected = ticket::decide(before, command, caller, {true, false});
    if (!expected) return;
    (void)handler.run(
        ticket::stream_id(id),
        api::CommandMeta{caller, "user", "long-" + std::to_string(step++), "corr"},
        api::Aggregate<ticket::State>{initial, &ticket::evolve, [&](const ticket::State& s) {
                                        return ticket::decide(s, command, caller, {true, false});
                                      }});
    ticket::State after = before;
    for (const auto& p : *expected) after = ticket::evolve(std::move(after), p);
    model[id] = after;
  };
  auto random_form = [&] {
    ticket::Form form{"s1", rng() % 2 ? "Technique" : "Facturation", subs[rng() % 4],
                      titles[rng() % 7], "Description"};
    // "M-" tickets go to a business destination, which they must name to be submitted.
    if (ticket::is_business(form.sub_category)) form.destination_structure_id = "dest-1";
    return form;
  };
  // One random action on ticket `i` (refused ones write nothing).
  auto act = [&](int i) {
    const std::string id = "long-" + std::to_string(i);
    switch (rng() % 10) {
      case 0:
        run(id, sn1, ticket::RequestInformation{"?"});
        break;
      case 1:
        run(id, heavy, ticket::ProvideInformation{"!"});
        break;
      case 2:
        run(id, sn1, ticket::ProposeSolution{"solution"});
        break;
      case 3:
        run(id, heavy,
            rng() % 2 ? ticket::Command{ticket::AcceptSolution{}}
                      : ticket::Command{ticket::RefuseSolution{"non"}});
        break;
      case 4:
        run(id, heavy, ticket::Close{""});
        break;
      case 5:
        run(id, sn1, ticket::Take{});
        break;
      case 6:
        run(id, sn1, ticket::Escalate{});
        break;
      case 7:
        run(id, sn2, ticket::Take{});
        break;
      case 8:
        run(id, heavy, ticket::SaveDraft{random_form()});  // a draft's words and category
        break;
      default:
        run(id, heavy, ticket::DeleteDraft{});
        break;
    }
  };
  for (int i = 0; i < kTickets; ++i) {
    // Batches of 100 tickets: heavy's 256th ticket comes when the lists hold 200, in a batch
    // where older tickets move, change their words and go too (the bucket sets and term bitmaps
    // are then made from the rows as they stood before the batch).
    if (i % 100 == 0) {
      while (*(*runner)->step(0ms) > 0) {
      }
    }
    if (i == 230) {
      for (int j = 0; j < 200; ++j) act(j);
    }
    const std::string id = "long-" + std::to_string(i);
    const ticket::Form form = random_form();
    if (rng() % 10 == 0) {
      run(id, heavy, ticket::SaveDraft{form});
    } else {
      run(id, heavy, ticket::Submit{form, ticket::number_for(id)});
    }
  }
  while (*(*runner)->step(0ms) > 0) {
  }
  check_lists(*(*runner)->store(), model, {"heavy"}, {"sn1", "sn2"}, 50);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kTickets; ++i) act(i);
    while (*(*runner)->step(0ms) > 0) {
    }
    check_lists(*(*runner)->store(), model, {"heavy"}, {"sn1", "sn2"}, 50);
    if (::testing::Test::HasFatalFailure()) break;
  }
  const auto fresh_dir = dir / "fresh";
  auto fresh = projections::Runner::open(**log, fresh_dir.string(), views.list());
  ASSERT_TRUE(fresh);
  while (*(*fresh)->step(0ms) > 0) {
  }
  EXPECT_EQ(projections::testing::differences(*(*runner)->store(), *(*fresh)->store()), "");
  EXPECT_EQ(projections::testing::folded_differences(**log, *(*runner)->store(),
                                                     (dir / "folded").string()),
            "");
  std::vector<std::string> emitted;
  for (const char* tab : projections::kTicketTabs) {
    emitted.push_back(*projections::emitted_list("heavy", tab));
  }
  for (const char* status : {"Résolu", "En attente d'informations"}) {
    emitted.push_back(*projections::emitted_status_list("heavy", status));
  }
  for (const auto& list : emitted) {
    for (const char* column : kBucketSetColumns) {
      EXPECT_EQ(bucket_set_errors(*(*fresh)->store(), list, column), "")
          << "rebuilt, list " << list.size() << " bytes, column " << column;
    }
  }
  fresh->reset();
  runner->reset();
  log->reset();
  std::filesystem::remove_all(dir);
}

// Searches of "Tickets émis" and of support queues against the model, on data made so that
// every path of list_tickets runs (ticket_views.h): one word alone, in nine tickets of ten, one
// in three, about 1%, or only the oldest third (for heavy, who keeps term bitmaps: they and the
// bucket sets give the total and the bucket holding the page, for one term or several, with a
// category or a sub-category too; for other, and in the queues, which both tickets fill, a scan
// of the opening-time index whose rows carry each ticket's status and terms); two words, words
// with a status, a category (one longer than an index keeps, with another one equal on its
// first 64 bytes), a sub-category or dates; criteria without words (one category, sub-category
// or status alone: a range of that column's index read at its ranks); a status searched in
// "Tous" (read from the list of that status); a status no row of a tab has; every list, every
// column both ways, pages of 13 to one past the end, the total on each page, and the export.
// Some drafts change words before being submitted or deleted; some statuses change in a later
// batch than the submission, the ticket staying in its queues.
TEST(TicketSearch, EveryPathAnswersAsTheModel) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("chorus-search-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  auto log = events::open_embedded_log({(dir / "log").string(), false});
  ASSERT_TRUE(log);
  projections::StandardViews views;
  auto runner = projections::Runner::open(**log, dir.string(), views.list());
  ASSERT_TRUE(runner);
  api::CommandHandler handler(**log);
  std::mt19937 rng(20261126);
#ifdef __SANITIZE_ADDRESS__
  constexpr int kTickets = 500;
#else
  constexpr int kTickets = 1200;
#endif
  const std::string long_a(70, 'a');
  const std::string long_b = std::string(64, 'a') + "bbbbbb";  // equal to long_a on 64 bytes
  const std::string categories[] = {"Technique", "Facturation", long_a, long_b};
  const char* const subs[] = {"Connexion", "API", "Dépôt de facture"};
  const domain::Caller heavy{"heavy", {}};
  const domain::Caller other{"other", {}};
  const domain::Caller sn1{"sn1", {.support_level1 = true}};
  ticket::Context context;
  context.attached_to_emitting_structure = true;
  std::map<std::string, ticket::State> model;
  std::map<std::string, std::set<std::string>> words;  // of each ticket
  int step = 0;
  auto run = [&](const std::string& id, const domain::Caller& caller,
                 const ticket::Command& command) {
    ticket::State initial;
    initial.ticket_id = id;
    const ticket::State before = model.contains(id) ? model[id] : initial;
    auto expected = ticket::decide(before, command, caller, context);
    if (!expected) return;
    (void)handler.run(
        ticket::stream_id(id),
        api::CommandMeta{caller, "user", "search-" + std::to_string(step++), "corr"},
        api::Aggregate<ticket::State>{initial, &ticket::evolve, [&](const ticket::State& s) {
                                        return ticket::decide(s, command, caller, context);
                                      }});
    ticket::State after = before;
    for (const auto& p : *expected) after = ticket::evolve(std::move(after), p);
    model[id] = after;
  };
  for (int i = 0; i < kTickets; ++i) {
    if (i % 100 == 0) {  // heavy's lists hold rows when its term bitmaps start
      while (*(*runner)->step(0ms) > 0) {
      }
    }
    const std::string id = "search-" + std::to_string(i);
    std::set<std::string> w{"texte"};
    if (rng() % 10 != 0) w.insert("commun");
    if (rng() % 3 == 0) w.insert("moyen");
    if (i % 97 == 5) w.insert("rare");
    // In the oldest third only: a walk from the newest end finds none for a long while.
    if (i < kTickets / 3) w.insert("ancien");
    auto form_of = [&](const std::set<std::string>& with) {
      std::string title = "Titre", description;
      for (const auto& x : with) (rng() % 2 ? title : description) += " " + x;
      if (with.contains("commun") && rng() % 4 == 0) title += " COMMUN";  // folded, counted once
      return ticket::Form{"s1", categories[rng() % 4], subs[rng() % 3], title, description};
    };
    const domain::Caller& emitter = i % 7 == 0 ? other : heavy;
    ticket::Form form = form_of(w);
    words[id] = w;
    switch (rng() % 20) {
      case 0:
      case 1:
        run(id, emitter, ticket::SaveDraft{form});
        continue;
      case 2: {
        // A draft whose words change (the words' counts in "Brouillons" follow), then is
        // submitted, or deleted (its terms and bits go).
        run(id, emitter, ticket::SaveDraft{form});
        std::set<std::string> edited = w;
        if (!edited.erase("commun")) edited.insert("commun");
        if (!edited.erase("moyen")) edited.insert("moyen");
        form = form_of(edited);
        run(id, emitter, ticket::SaveDraft{form});
        words[id] = edited;
        if (rng() % 3 == 0) {
          run(id, emitter, ticket::DeleteDraft{});
          model.erase(id);
          continue;
        }
        if (rng() % 2 == 0) continue;
        break;
      }
      default:
        break;
    }
    run(id, emitter, ticket::Submit{form, ticket::number_for(id)});
    if (i % 3 == 1) run(id, sn1, ticket::Take{});  // into sn1's "assigned to me"
    switch (rng() % 5) {
      case 0:
        run(id, sn1, ticket::RequestInformation{"?"});
        break;
      case 1:
        run(id, sn1, ticket::ProposeSolution{"solution"});
        break;
      case 2:
        run(id, emitter, ticket::Close{""});
        break;
      default:
        break;
    }
  }
  while (*(*runner)->step(0ms) > 0) {
  }
  // Statuses that change in a later batch than the submission, the ticket staying in its
  // queues (and in "Tous"), and drafts whose words alone change in a later batch than their
  // first save: their rows there are rewritten in place.
  for (auto& [id, st] : std::map(model)) {
    const auto pick = std::hash<std::string>{}(id) % 4;
    const domain::Caller& emitter = st.emitter_user_id == "heavy" ? heavy : other;
    if (pick == 0 && st.status == ticket::Status::open) {
      run(id, sn1, ticket::RequestInformation{"?"});
    }
    if (pick == 0 && st.status == ticket::Status::waiting_for_information) {
      run(id, emitter, ticket::ProvideInformation{"!"});
    }
    if (pick != 0 && st.status == ticket::Status::draft) {
      std::set<std::string> edited = words[id];
      if (!edited.erase("moyen")) edited.insert("moyen");
      std::string title = "Titre";
      for (const auto& w : edited) title += " " + w;
      run(id, emitter, ticket::SaveDraft{{"s1", st.category, st.sub_category, title, ""}});
      words[id] = edited;
    }
  }
  while (*(*runner)->step(0ms) > 0) {
  }
  auto store = (*runner)->store();
  // A word search reads heavy's term bitmaps, and other's lists, which have none, without them.
  ASSERT_TRUE(*projections::keeps_term_bitmaps(*store, "heavy"));
  ASSERT_FALSE(*projections::keeps_term_bitmaps(*store, "other"));
  const char* const users[] = {"heavy", "other"};

  // Opening times as the views show them, and dates cutting the list at a third and a bit
  // further (few rows between).
  std::map<std::string, std::int64_t> opened;
  for (const char* user : users) {
    for (const char* tab : projections::kTicketTabs) {
      for (const auto& r : every_page(*store, *projections::emitted_list(user, tab), {}, 500)) {
        opened[r["ticket_id"]] = r["opened_at_us"];
      }
    }
  }
  std::vector<std::int64_t> times;
  for (const auto& [id, t] : opened) times.push_back(t);
  std::sort(times.begin(), times.end());
  ASSERT_GT(times.size(), 100u);
  const std::int64_t third = times[times.size() / 3], a_bit_later = times[times.size() / 3 + 40];
  // Bounds on the opening times of fences (rows that start a bucket, ranked_list.h): a range that
  // starts on one, just before or after it, or after the last, so that the buckets at a range's
  // ends and those wholly inside it are all met.
  std::vector<std::int64_t> fence_times;
  for (const auto& [id, t] : opened) {
    if (projections::is_fence_id(id)) fence_times.push_back(t);
  }
  std::sort(fence_times.begin(), fence_times.end());
  // About one ticket in 64 (7 or so with the sanitizers' 500 tickets).
  ASSERT_GE(fence_times.size(), 4u);
  const std::int64_t fence = fence_times[fence_times.size() / 2 - 1];
  const std::int64_t fence_later = fence_times[fence_times.size() / 2 + 1];
  const std::int64_t last_fence = fence_times.back();
  const std::int64_t spread_from = times[times.size() / 4],
                     spread_to = times[times.size() / 4 + 300];

  struct Case {
    std::string name;
    projections::TicketSearch search;
  };
  auto with = [](auto set) {
    projections::TicketSearch s;
    set(s);
    return s;
  };
  const Case cases[] = {
      {"common word", with([](auto& s) { s.words = "Commun"; })},
      {"rare word", with([](auto& s) { s.words = "rare"; })},
      {"word in a third", with([](auto& s) { s.words = "moyen"; })},
      {"word of the oldest", with([](auto& s) { s.words = "Ancien"; })},
      {"common word, status Fermé", with([](auto& s) {
         s.words = "commun";
         s.status = "Fermé";
       })},
      {"common word, status Brouillon", with([](auto& s) {
         s.words = "commun";
         s.status = "brouillon";
       })},
      {"two common words", with([](auto& s) { s.words = "commun moyen"; })},
      {"rare and common words", with([](auto& s) { s.words = "commun RARE"; })},
      {"unknown word", with([](auto& s) { s.words = "absent"; })},
      {"word and status", with([](auto& s) {
         s.words = "commun";
         s.status = "résolu";
       })},
      {"word and category", with([](auto& s) {
         s.words = "moyen";
         s.category = "facturation";
       })},
      {"word and long category", with([&](auto& s) {
         s.words = "commun";
         s.category = long_a;
       })},
      {"word and sub-category", with([](auto& s) {
         s.words = "commun";
         s.sub_category = "depot de facture";
       })},
      {"word and dates", with([&](auto& s) {
         s.words = "commun";
         s.opened_from_us = third;
         s.opened_before_us = a_bit_later;
       })},
      {"rare word and dates", with([&](auto& s) {
         s.words = "rare";
         s.opened_from_us = third;
       })},
      {"status only", with([](auto& s) { s.status = "En attente d'informations"; })},
      {"status of one tab only", with([](auto& s) { s.status = "ouvert"; })},
      {"common word, status of one tab", with([](auto& s) {
         s.words = "commun";
         s.status = "Ouvert";
       })},
      {"category only", with([&](auto& s) { s.category = long_b; })},
      {"short category only", with([&](auto& s) { s.category = "TECHNIQUE"; })},
      {"sub-category only", with([&](auto& s) { s.sub_category = "api"; })},
      {"category and status", with([&](auto& s) {
         s.category = "Technique";
         s.status = "Résolu";
       })},
      {"dates only", with([&](auto& s) { s.opened_before_us = third; })},
      {"dates over many buckets", with([&](auto& s) {
         s.opened_from_us = spread_from;
         s.opened_before_us = spread_to;
       })},
      {"word, dates over many buckets", with([&](auto& s) {
         s.words = "commun";
         s.opened_from_us = spread_from;
         s.opened_before_us = spread_to;
       })},
      {"dates from a fence", with([&](auto& s) {
         s.opened_from_us = fence;
         s.opened_before_us = fence_later;
       })},
      {"dates from just before a fence", with([&](auto& s) {
         s.opened_from_us = fence - 1;
         s.opened_before_us = fence_later + 1;
       })},
      {"word, dates from just after a fence", with([&](auto& s) {
         s.words = "moyen";
         s.opened_from_us = fence + 1;
         s.opened_before_us = fence_later - 1;
       })},
      {"dates after the last fence", with([&](auto& s) { s.opened_from_us = last_fence + 1; })},
      {"dates from 0", with([&](auto& s) {
         s.opened_from_us = 0;
         s.opened_before_us = third;
       })},
      {"dates from a negative time", with([&](auto& s) {
         s.opened_from_us = -5;
         s.opened_before_us = third;
       })},
      {"dates before 0", with([&](auto& s) { s.opened_before_us = 0; })},
      {"dates before a negative time", with([&](auto& s) { s.opened_before_us = -1; })},
      {"empty date range", with([&](auto& s) {
         s.opened_from_us = third;
         s.opened_before_us = third;
       })},
      {"inverted date range", with([&](auto& s) {
         s.words = "commun";
         s.opened_from_us = a_bit_later;
         s.opened_before_us = third;
       })},
      {"status and dates", with([&](auto& s) {
         s.status = "Résolu";
         s.opened_from_us = third;
       })},
  };
  auto matches = [&](const std::string& id, const ticket::State& st,
                     const projections::TicketSearch& s) {
    for (const auto& w : {std::string("commun"), std::string("moyen"), std::string("rare"),
                          std::string("absent"), std::string("ancien")}) {
      if (projections::fold_text(s.words).find(w) != std::string::npos && !words[id].contains(w)) {
        return false;
      }
    }
    auto fold = [](const std::string& t) { return projections::fold_text(t); };
    if (!s.status.empty() && fold(ticket::to_string(st.status)) != fold(s.status)) return false;
    if (!s.category.empty() && fold(st.category) != fold(s.category)) return false;
    if (!s.sub_category.empty() && fold(st.sub_category) != fold(s.sub_category)) return false;
    if (s.opened_from_us && opened[id] < *s.opened_from_us) return false;
    if (s.opened_before_us && opened[id] >= *s.opened_before_us) return false;
    return true;
  };
  // Every tab of both users, and sn1's queues, whose rows come from both.
  struct Listed {
    std::string name, list;
    std::function<bool(const ticket::State&)> holds;
  };
  std::vector<Listed> listed;
  for (const std::string user : users) {
    for (const std::string tab : projections::kTicketTabs) {
      listed.push_back({user + "/" + tab, *projections::emitted_list(user, tab),
                        [user, tab](const ticket::State& st) {
                          return st.emitter_user_id == user && in_tab(st, tab);
                        }});
    }
  }
  for (const auto& [name, scope] : {std::pair{"1/all", projections::QueueScope::all},
                                    {"1/unassigned", projections::QueueScope::unassigned},
                                    {"1/mine:sn1", projections::QueueScope::mine}}) {
    listed.push_back({name, *projections::support_queue(1, scope, "sn1"),
                      [name](const ticket::State& st) { return queues_of(st).contains(name); }});
  }
  std::size_t checked = 0;
  for (const auto& [tab, list, holds] : listed) {
    for (const auto& c : cases) {
      std::vector<std::string> expected_ids;
      for (const auto& [id, st] : model) {
        if (holds(st) && matches(id, st, c.search)) expected_ids.push_back(id);
      }
      for (const char* sort : kSortNames) {
        for (bool descending : {false, true}) {
          const auto want = in_sort_order(model, opened, expected_ids, sort, descending);
          projections::TicketQuery q;
          q.sort = *projections::parse_ticket_sort(sort);
          q.descending = descending;
          q.search = c.search;
          q.page_size = 13;
          std::vector<std::string> got;
          for (q.page = 1; q.page <= want.size() / 13 + 2; ++q.page) {
            auto page = projections::list_tickets(*store, list, q);
            ASSERT_TRUE(page);
            ASSERT_EQ(page->total, want.size()) << tab << ", " << c.name << ", page " << q.page;
            for (const auto& r : page->rows) got.push_back(json::parse(r)["ticket_id"]);
          }
          ASSERT_EQ(got, want) << tab << ", " << c.name << ", " << sort
                               << (descending ? " desc" : " asc");
          auto cursor = projections::export_tickets(store, list, q);
          ASSERT_TRUE(cursor);
          std::vector<projections::TicketRow> rows;
          while (*(*cursor)->next(100, rows) > 0) {
          }
          std::vector<std::string> exported;
          for (const auto& r : rows) exported.push_back(r.ticket_id);
          ASSERT_EQ(exported, want) << "export: " << tab << ", " << c.name << ", " << sort;
          ++checked;
        }
      }
      if ((tab == "heavy/tous" || tab == "1/all") && c.name == "common word") {
        // Most of the tickets, also with the sanitizers' fewer tickets.
        EXPECT_GT(expected_ids.size(), static_cast<std::size_t>(kTickets) / 4) << tab;
      }
      if (tab.starts_with("1/") && c.name == "common word") {
        EXPECT_GT(expected_ids.size(), 20u) << tab;  // each queue holds some of both users'
      }
    }
  }
  EXPECT_EQ(checked, listed.size() * std::size(cases) * 12);

  // The sets and bitmaps the searches read equal a recount, and a rebuild's (its batches end
  // elsewhere).
  auto fresh = projections::Runner::open(**log, (dir / "fresh").string(), views.list());
  ASSERT_TRUE(fresh);
  while (*(*fresh)->step(0ms) > 0) {
  }
  EXPECT_EQ(projections::testing::differences(*store, *(*fresh)->store()), "");
  EXPECT_EQ(projections::testing::folded_differences(**log, *store, (dir / "folded").string()), "");
  for (const char* user : users) {
    std::vector<std::string> lists;
    for (const char* tab : projections::kTicketTabs) {
      lists.push_back(*projections::emitted_list(user, tab));
    }
    // The lists of one status that a status sort or a narrowed status search reads.
    for (const char* status : {"Résolu", "En attente d'informations"}) {
      lists.push_back(*projections::emitted_status_list(user, status));
    }
    for (const auto& list : lists) {
      for (const char* column : kBucketSetColumns) {
        EXPECT_EQ(bucket_set_errors(*store, list, column), "")
            << user << ", list " << list.size() << " bytes, column " << column;
      }
    }
  }
  fresh->reset();
  store.reset();
  runner->reset();
  log->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chorus
