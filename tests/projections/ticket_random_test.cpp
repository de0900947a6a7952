// Randomized: thousands of random ticket commands by several users (emitters and support
// agents), through the real command handler on a real embedded log, with the standard views.
// After every step the views must match a model folded by the same domain code, and every
// 100 steps (and at the end) a fresh rebuild from the log must equal the live views.
// Nobody's list ever holds someone else's ticket.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "api/command_handler.h"
#include "domain/ticket.h"
#include "events/embedded_log.h"
#include "projections/runner.h"
#include "projections/standard_views.h"
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
                                            {"sn2", {.support_level2 = true}}};
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
    const ticket::Form form{"s1", "Technique", "Connexion", "Titre " + id, "Description"};
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
        pick = &callers[3 + rng() % 2];
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
    auto expected = ticket::decide(before, command, caller, {true, false});
    try {
      auto outcome = handler.run(
          ticket::stream_id(id),
          api::CommandMeta{caller, "user", "cmd-" + std::to_string(step), "corr"},
          api::Aggregate<ticket::State>{initial, &ticket::evolve, [&](const ticket::State& s) {
                                          return ticket::decide(s, command, caller, {true, false});
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

}  // namespace
}  // namespace chorus
