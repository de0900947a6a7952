// Random command sequences (fixed seed) on a handful of structures and users, folded by
// evolve, with DOMAIN.md invariants checked after every step:
//   1. every active structure has exactly one GP once it had a first one;
//   2. service codes are unique, FACTURES_PUBLIQUES is there and unchanged;
//   4. every decision refers to a pending request and was taken by someone entitled then
//      (checked here without the permission table: GP, GS of the whole structure, or GS of
//      services covering the request and what is granted).

#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <random>
#include <set>

#include "domain/account.h"
#include "domain/workflow.h"
#include "tests/domain/structure_fixture.h"

namespace chorus::domain {
namespace {

using namespace structure::testing;
using structure::Role;

constexpr int kSteps = 4'000;
const std::vector<std::string> kUsers{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "tech"};
const std::vector<std::string> kCodes{"A", "B", "C", "FACTURES_PUBLIQUES"};
const std::vector<std::string> kEspaces{"Factures reçues", "Sollicitations reçues"};

struct World {
  std::map<std::string, structure::State> structures;
  std::map<std::string, account::State> accounts;
  std::map<std::string, bool> had_gp;
  std::map<std::string, structure::Service> public_invoices;  // as created
};

bool entitled(const structure::State& s, const std::string& user_id,
              const std::vector<std::string>& concerned) {
  auto it = s.members.find(user_id);
  if (it == s.members.end()) return false;
  const auto& m = it->second;
  if (m.role == Role::gp) return true;
  if (m.role != Role::gs) return false;
  if (m.services.empty()) return true;
  if (concerned.empty()) return false;
  for (const auto& c : concerned) {
    if (std::find(m.services.begin(), m.services.end(), c) == m.services.end()) return false;
  }
  return true;
}

// Invariant 4 for one payload about to be folded on `before`, decided by `caller`.
void check_decision(const structure::State& before, const Caller& caller, const events::Payload& p,
                    int step) {
  auto as = [](const std::string& s) {
    return s.empty() ? std::vector<std::string>{} : std::vector<std::string>{s};
  };
  if (const auto* e = std::get_if<events::AttachmentValidated>(&p)) {
    auto r = before.attachment_requests.find(e->request_id);
    ASSERT_NE(r, before.attachment_requests.end()) << "step " << step;
    EXPECT_TRUE(entitled(before, caller.user_id, as(r->second.service))) << "step " << step;
    // What is granted beyond what the user held stays inside the decider's scope too.
    auto m = before.members.find(e->user_id);
    const bool held_whole = m != before.members.end() && m->second.services.empty();
    if (!held_whole) {
      std::vector<std::string> added;
      for (const auto& sv : e->services) {
        if (m == before.members.end() ||
            std::find(m->second.services.begin(), m->second.services.end(), sv) ==
                m->second.services.end()) {
          added.push_back(sv);
        }
      }
      // An empty list grants the whole structure: only whole-structure managers do.
      if (e->services.empty() || !added.empty()) {
        EXPECT_TRUE(entitled(before, caller.user_id, added)) << "step " << step;
      }
    }
  } else if (const auto* refused = std::get_if<events::AttachmentRefused>(&p)) {
    auto r = before.attachment_requests.find(refused->request_id);
    ASSERT_NE(r, before.attachment_requests.end()) << "step " << step;
    EXPECT_TRUE(entitled(before, caller.user_id, as(r->second.service))) << "step " << step;
  } else if (const auto* sub_ok = std::get_if<events::SubscriptionValidated>(&p)) {
    auto r = before.subscription_requests.find(sub_ok->request_id);
    ASSERT_NE(r, before.subscription_requests.end()) << "step " << step;
    EXPECT_TRUE(entitled(before, caller.user_id, as(r->second.service))) << "step " << step;
  } else if (const auto* sub_no = std::get_if<events::SubscriptionRefused>(&p)) {
    auto r = before.subscription_requests.find(sub_no->request_id);
    ASSERT_NE(r, before.subscription_requests.end()) << "step " << step;
    EXPECT_TRUE(entitled(before, caller.user_id, as(r->second.service))) << "step " << step;
  }
}

void check_invariants(World& w, int step) {
  for (const auto& [id, s] : w.structures) {
    if (s.status == structure::Status::none) continue;
    // 1.
    int gps = 0;
    for (const auto& [uid, m] : s.members) {
      if (m.role == Role::gp) {
        ++gps;
        EXPECT_EQ(uid, s.gp) << id << " step " << step;
        EXPECT_TRUE(m.services.empty()) << id << " step " << step;
      }
    }
    if (!s.gp.empty()) w.had_gp[id] = true;
    if (s.status == structure::Status::active && w.had_gp[id]) {
      EXPECT_EQ(gps, 1) << id << " step " << step;
    }
    EXPECT_LE(gps, 1) << id << " step " << step;
    // 2.
    std::set<std::string> codes;
    for (const auto& sv : s.services) {
      EXPECT_TRUE(codes.insert(sv.code).second)
          << id << " duplicate " << sv.code << " step " << step;
    }
    ASSERT_FALSE(s.services.empty());
    if (!w.public_invoices.contains(id)) w.public_invoices[id] = s.services.front();
    EXPECT_EQ(s.services.front(), w.public_invoices[id]) << id << " step " << step;
    // No scoped member holds a service that does not exist (it would widen nothing, but
    // removals must not orphan rights).
    for (const auto& [uid, m] : s.members) {
      for (const auto& sv : m.services) EXPECT_TRUE(codes.contains(sv)) << uid << " " << sv;
    }
  }
}

TEST(StructureRandom, InvariantsHoldAfterEveryStep) {
  std::mt19937 rng(20240601);
  auto pick = [&](const auto& v) -> const auto& {
    return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng)];
  };
  auto coin = [&](int percent) { return std::uniform_int_distribution<int>(0, 99)(rng) < percent; };

  World w;
  for (const auto& u : kUsers) {
    account::State a;
    a.user_id = u;
    a = account::evolve(
        a, events::AccountCreated{u, u + "@example.fr", "P", "N",
                                  u == "u1" || u == "u2" || u == "u3" ? "pigp" : "portal",
                                  u == "tech"});
    a = account::evolve(a, events::AccountActivated{u});
    w.accounts[u] = a;
  }
  const std::vector<std::string> ids{"s1", "s2", "s3", "s4"};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    structure::State s;
    s.structure_id = ids[i];
    // Three structures start with a GP, the last one without (support names it later); one
    // is the State, exempt from the PIGP rule.
    if (i < 3) {
      structure::CreateStructure c{"SIRET", kSiret,        true,         i == 2,
                                   true,    public_data(), "2024-01-01", kUsers[i]};
      auto d = structure::decide(s, c, kSupport2, context(kActivePigp));
      if (!d) FAIL() << d.error().message;
      for (const auto& p : *d) s = structure::evolve(s, p);
    }
    w.structures[ids[i]] = s;
  }
  int request_counter = 0;
  int accepted = 0, rejected = 0;
  std::map<std::string, int> produced;  // by event type
  std::int64_t now_us = 1'700'000'000'000'000;

  for (int step = 0; step < kSteps; ++step) {
    now_us += 3'600'000'000;
    const std::string sid = pick(ids);
    structure::State& s = w.structures[sid];
    std::vector<Caller> callers;
    for (const auto& u : kUsers) callers.push_back(Caller{u, {}});
    callers.push_back(kSupport1);
    callers.push_back(kSupport2);
    callers.push_back(kAuditor);
    // Mostly someone of the structure, so that decisions are often allowed.
    Caller caller = pick(callers);
    if (!s.members.empty() && coin(60)) {
      auto it = s.members.begin();
      std::advance(it, std::uniform_int_distribution<std::size_t>(0, s.members.size() - 1)(rng));
      caller = Caller{it->first, {}};
    }
    const std::string target = pick(kUsers);
    const std::string code = pick(kCodes);
    std::vector<std::string> some;
    for (const auto& c : kCodes) {
      if (coin(30)) some.push_back(c);
    }
    auto pending_attachment = [&]() -> std::string {
      if (s.attachment_requests.empty() || coin(10)) return "nope";
      auto it = s.attachment_requests.begin();
      std::advance(
          it, std::uniform_int_distribution<std::size_t>(0, s.attachment_requests.size() - 1)(rng));
      return it->first;
    };
    auto pending_subscription = [&]() -> std::string {
      if (s.subscription_requests.empty() || coin(10)) return "nope";
      auto it = s.subscription_requests.begin();
      std::advance(it, std::uniform_int_distribution<std::size_t>(
                           0, s.subscription_requests.size() - 1)(rng));
      return it->first;
    };
    const Role role = coin(50) ? Role::user : coin(90) ? Role::gs : Role::gp;

    // A few commands span several streams: run them through the workflows.
    const int kind = std::uniform_int_distribution<int>(0, 19)(rng);
    if (kind == 0 && s.status == structure::Status::active && coin(30)) {
      // Deactivate an account, naming replacements for what it manages.
      account::State& holder = w.accounts[target];
      std::vector<workflow::Managed> managed;
      account::Deactivate cmd{now_us, {}};
      for (auto& [id, st] : w.structures) {
        if (st.status == structure::Status::active && st.gp == target) {
          const std::string repl = pick(kUsers);
          cmd.replacements.push_back({id, repl});
          managed.push_back({&st, account::facts_of(w.accounts[repl])});
        }
      }
      const Caller who = coin(50) ? Caller{target, {}} : kSupport1;
      auto d = workflow::deactivate_account(holder, cmd, who, managed);
      if (d) {
        ++accepted;
        for (const auto& sd : *d) {
          if (sd.stream_id.starts_with("account-")) {
            EXPECT_EQ(sd.expected_version, holder.version);
            for (const auto& p : sd.payloads) {
              holder = account::evolve(holder, p);
              ++produced[events::type_name(p)];
            }
          } else {
            auto& st = w.structures[sd.stream_id.substr(10)];
            EXPECT_EQ(sd.expected_version, st.version);
            for (const auto& p : sd.payloads) st = structure::evolve(st, p);
          }
        }
      } else {
        ++rejected;
      }
    } else if (kind == 1) {
      // Reactivate, sometimes too late.
      account::State& holder = w.accounts[target];
      auto d = account::decide(holder, account::Reactivate{now_us}, Caller{target, {}}, {});
      if (d) {
        for (const auto& p : *d) holder = account::evolve(holder, p);
      }
    } else if (kind == 2) {
      // A PIGP import batch: one or two departures, replacements for some structures.
      workflow::PigpImport batch{now_us, {pick(kUsers)}, {}};
      for (const auto& id : ids) {
        if (coin(50)) batch.replacements.push_back({id, pick(kUsers)});
      }
      workflow::ImportInputs in{w.accounts, {}};
      for (const auto& [id, st] : w.structures) {
        if (st.status != structure::Status::none) in.structures[id] = st;
      }
      auto outcome = workflow::pigp_import(batch, Caller{"pigp", {.support_level2 = true}}, in);
      for (const auto& unit : outcome.units) {
        for (const auto& sd : unit) {
          if (sd.stream_id.starts_with("account-")) {
            auto& a = w.accounts[sd.stream_id.substr(8)];
            for (const auto& p : sd.payloads) a = account::evolve(a, p);
          } else {
            auto& st = w.structures[sd.stream_id.substr(10)];
            for (const auto& p : sd.payloads) st = structure::evolve(st, p);
          }
        }
      }
    } else {
      structure::Command command;
      const int k = std::uniform_int_distribution<int>(0, 17)(rng);
      switch (k) {
        case 0:
          command = structure::CreateStructure{
              "SIRET", kSiret,        true,         coin(20),
              true,    public_data(), "2024-01-01", coin(80) ? target : ""};
          break;
        case 1:
          command = structure::AddService{service(code)};
          break;
        case 2:
          command = structure::ChangeService{service(code)};
          break;
        case 3:
          command = structure::RemoveService{code};
          break;
        case 4:
        case 5:
          caller = Caller{pick(kUsers), {}};  // mostly people not attached yet
          command =
              structure::RequestAttachment{"r" + std::to_string(++request_counter), some, "svp"};
          break;
        case 6:
        case 16:
          command = structure::ValidateAttachment{pending_attachment(), role, some, ""};
          break;
        case 7:
          command = structure::RefuseAttachment{pending_attachment(), coin(90) ? "Non" : ""};
          break;
        case 8:
          command = structure::AttachDirectly{target, role, some, "2024-02-01", ""};
          break;
        case 9:
          command = structure::RemoveAttachment{target};
          break;
        case 10:
          command = structure::TransferMainManager{target};
          break;
        case 11:
          command = structure::EnableEspace{pick(kEspaces), coin(50) ? "" : code, true, coin(50)};
          break;
        case 12:
          command = structure::RequestSubscription{"q" + std::to_string(++request_counter),
                                                   pick(kEspaces),
                                                   coin(50) ? "" : code,
                                                   true,
                                                   coin(50),
                                                   ""};
          break;
        case 13:
          command = structure::ValidateSubscription{pending_subscription(), true, coin(50), ""};
          break;
        case 14:
        case 17:  // requests of members since removed wait for a refusal
          command = structure::RefuseSubscription{pending_subscription(), "Non"};
          break;
        case 15: {
          auto d = public_data();
          d.service_code_required = coin(50);
          command = structure::ChangeData{d};
          break;
        }
      }
      structure::Context ctx = context();
      ctx.account = account::facts_of(w.accounts[target]);
      if (std::holds_alternative<structure::RequestAttachment>(command) ||
          std::holds_alternative<structure::RequestSubscription>(command)) {
        ctx.account = w.accounts.contains(caller.user_id)
                          ? account::facts_of(w.accounts[caller.user_id])
                          : structure::AccountFacts{};
      }
      auto d = structure::decide(s, command, caller, ctx);
      if (d) {
        ++accepted;
        ASSERT_FALSE(d->empty());
        for (const auto& p : *d) {
          check_decision(s, caller, p, step);
          ++produced[events::type_name(p)];
          s = structure::evolve(s, p);
        }
      } else {
        ++rejected;
        EXPECT_FALSE(d.error().rule.empty());
        EXPECT_FALSE(d.error().message.empty());
      }
    }
    check_invariants(w, step);
    if (::testing::Test::HasFailure()) FAIL() << "stopped at step " << step;
  }
  // The sequence exercised both outcomes, and every kind of decision, several times.
  EXPECT_GT(accepted, kSteps / 20);
  EXPECT_GT(rejected, kSteps / 20);
  for (const char* type :
       {"AttachmentRequested", "AttachmentValidated", "AttachmentRefused", "UserAttached",
        "AttachmentRemoved", "MainManagerTransferred", "ServiceAdded", "ServiceRemoved",
        "EspaceEnabled", "SubscriptionRequested", "SubscriptionValidated", "SubscriptionRefused",
        "AccountDeactivated"}) {
    EXPECT_GE(produced[type], 5) << type;
  }
  for (const auto& [type, n] : produced) std::cout << type << ": " << n << "\n";
}

}  // namespace
}  // namespace chorus::domain
