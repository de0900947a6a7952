// Accounts (lifecycle, 60-day reactivation) and the commands spanning several streams: SIRET
// change, deactivating a GP, PIGP import batches (seed 000: "certaines structures publiques
// pouvaient se retrouver sans gestionnaire principal").

#include <gtest/gtest.h>

#include "domain/account.h"
#include "domain/workflow.h"
#include "tests/domain/structure_fixture.h"

namespace chorus::domain {
namespace {

using namespace structure::testing;
using account::Status;

constexpr std::int64_t kDay = 24LL * 3600 * 1'000'000;
constexpr std::int64_t kT0 = 1'700'000'000'000'000;

account::State folded(account::State s, const std::vector<events::Payload>& payloads) {
  for (const auto& p : payloads) s = account::evolve(std::move(s), p);
  return s;
}

account::State account_of(const std::string& user_id, bool active = true,
                          const std::string& origin = "portal") {
  account::State s;
  s.user_id = user_id;
  s = account::evolve(
      s, events::AccountCreated{user_id, user_id + "@example.fr", "Prénom", "Nom", origin, false});
  if (active) s = account::evolve(s, events::AccountActivated{user_id});
  return s;
}

TEST(Account, CreatedThenActivatedByItsHolder) {
  account::State s;
  s.user_id = "alice";
  const Caller alice{"alice", {}};
  auto bad = account::decide(s, account::CreateAccount{"alice-at-example.fr", "A", "B"}, alice, {});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().field, "login_email");
  auto pigp =
      account::decide(s, account::CreateAccount{"a@example.fr", "A", "B", "pigp"}, alice, {});
  ASSERT_FALSE(pigp);
  EXPECT_EQ(pigp.error().rule, "account.create.pigp");
  auto tech = account::decide(
      s, account::CreateAccount{"api@example.fr", "", "ERP", "portal", true}, alice, {});
  ASSERT_FALSE(tech);
  EXPECT_EQ(tech.error().rule, "account.create.technical");
  account::Context gp;
  gp.caller_is_gp = true;
  EXPECT_TRUE(account::decide(
      s, account::CreateAccount{"api@example.fr", "", "ERP", "portal", true}, alice, gp));

  s = folded(s, *account::decide(s, account::CreateAccount{"alice@example.fr", "Alice", "Martin"},
                                 alice, {}));
  EXPECT_EQ(s.status, Status::pending_activation);
  EXPECT_FALSE(account::facts_of(s).active);
  // Someone else may not learn the account exists (as for an unknown one); support may, and
  // is told only the holder activates it.
  EXPECT_EQ(account::decide(s, account::Activate{}, Caller{"bob", {}}, {}).error().code,
            errc::not_found);
  EXPECT_EQ(
      account::decide(account::State{}, account::Activate{}, Caller{"bob", {}}, {}).error().code,
      errc::not_found);
  EXPECT_EQ(account::decide(s, account::Activate{}, kSupport1, {}).error().code, errc::forbidden);
  s = folded(s, *account::decide(s, account::Activate{}, alice, {}));
  EXPECT_EQ(s.status, Status::active);
  EXPECT_EQ(account::decide(s, account::Activate{}, alice, {}).error().code, errc::wrong_status);
}

TEST(Account, ActivationIsResentByAManagerOfTheUsersServicesOrSupport) {
  account::State s = account_of("newbie", false);
  const structure::State st = populated();
  account::Context ctx;
  ctx.holder_on_structure = true;
  ctx.holder_services = {"B"};
  ctx.caller_access = structure::access_of(st, kGsA);
  // A GS of A does not see a user of B: not found, as for an unknown account. An auditor sees
  // every account but sends nothing.
  EXPECT_EQ(account::decide(s, account::ResendActivation{}, kGsA, ctx).error().code,
            errc::not_found);
  EXPECT_EQ(account::decide(s, account::ResendActivation{}, kAuditor, ctx).error().code,
            errc::forbidden);
  ctx.holder_services = {"A"};
  EXPECT_TRUE(account::decide(s, account::ResendActivation{}, kGsA, ctx));
  EXPECT_TRUE(account::decide(s, account::ResendActivation{}, kSupport1, {}));
  EXPECT_EQ(
      account::decide(account_of("x"), account::ResendActivation{}, kSupport1, {}).error().code,
      errc::wrong_status);
}

TEST(Account, ReactivationWithinSixtyDaysThenClosedForGood) {
  const Caller alice{"alice", {}};
  account::State s = account_of("alice");
  s = folded(s, *account::decide(s, account::Deactivate{kT0, {}}, alice, {}));
  EXPECT_EQ(s.status, Status::deactivated);
  EXPECT_EQ(account::decide(s, account::Deactivate{kT0, {}}, alice, {}).error().code,
            errc::wrong_status);
  EXPECT_EQ(account::decide(s, account::Reactivate{kT0 + kDay}, Caller{"bob", {}}, {}).error().code,
            errc::not_found);
  EXPECT_EQ(account::decide(s, account::Reactivate{kT0 + kDay}, kSupport1, {}).error().code,
            errc::forbidden);
  EXPECT_TRUE(account::decide(s, account::Reactivate{kT0 + 60 * kDay}, alice, {}));
  auto late = account::decide(s, account::Reactivate{kT0 + 60 * kDay + 1}, alice, {});
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().rule, "account.reactivate.too_late");
  s = folded(s, *account::decide(s, account::Reactivate{kT0 + 10 * kDay}, alice, {}));
  EXPECT_EQ(s.status, Status::active);
}

TEST(Account, AGpNamesANewGpForEveryManagedStructure) {
  const Caller gp{"gp", {}};
  account::State s = account_of("gp");
  account::Context ctx;
  ctx.managed_structures = {"s1", "s2"};
  auto missing = account::decide(s, account::Deactivate{kT0, {{"s1", "gsw"}}}, gp, ctx);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().rule, "account.deactivate.replacement_missing");
  auto twice = account::decide(
      s, account::Deactivate{kT0, {{"s1", "gsw"}, {"s1", "usr"}, {"s2", "gsw"}}}, gp, ctx);
  ASSERT_FALSE(twice);
  auto stranger = account::decide(
      s, account::Deactivate{kT0, {{"s1", "gsw"}, {"s2", "gsw"}, {"s3", "gsw"}}}, gp, ctx);
  ASSERT_FALSE(stranger);
  EXPECT_EQ(stranger.error().rule, "account.deactivate.replacement_unmanaged");
  EXPECT_TRUE(
      account::decide(s, account::Deactivate{kT0, {{"s1", "gsw"}, {"s2", "usr"}}}, gp, ctx));
  EXPECT_EQ(account::decide(s, account::Deactivate{kT0, {}}, Caller{"other", {}}, {}).error().code,
            errc::not_found);
  EXPECT_EQ(account::decide(s, account::Deactivate{kT0, {}}, kAuditor, {}).error().code,
            errc::forbidden);
}

TEST(Workflow, DeactivatingAGpTransfersEveryStructureInOneAppend) {
  const structure::State s1 = populated();
  structure::State s2 = populated();
  s2.structure_id = "s2";
  const account::State holder = account_of("gp", true, "pigp");
  auto ok =
      workflow::deactivate_account(holder, account::Deactivate{kT0, {{"s1", "gsw"}, {"s2", "usr"}}},
                                   kGp, {{&s1, kActivePigp}, {&s2, kActivePigp}});
  ASSERT_TRUE(ok) << ok.error().message;
  ASSERT_EQ(ok->size(), 3u);
  EXPECT_EQ((*ok)[0].stream_id, "account-gp");
  EXPECT_EQ((*ok)[0].expected_version, holder.version);
  EXPECT_EQ((*ok)[1].stream_id, "structure-s1");
  EXPECT_EQ((*ok)[2].stream_id, "structure-s2");
  EXPECT_EQ(std::get<events::MainManagerTransferred>((*ok)[2].payloads[0]).to_user_id, "usr");
  // A new GP who is not PIGP on a public structure: nothing at all is written.
  auto refused =
      workflow::deactivate_account(holder, account::Deactivate{kT0, {{"s1", "gsw"}, {"s2", "usr"}}},
                                   kGp, {{&s1, kActivePigp}, {&s2, kActivePortal}});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().rule, "structure.transfer.pigp_required");
  EXPECT_NE(refused.error().message.find("s2"), std::string::npos);
}

// Each side of a GP change is mirrored on the account's own stream: the former GP's after its
// own events when the appends already write it (a deactivation), the new GP's at the version
// its decision read, so that the account's deactivation decided at the same instant conflicts.
TEST(Workflow, GpChangesAreMirroredOnTheAccountsStreams) {
  workflow::Appends appends{
      {"account-gp", 7, {events::AccountDeactivated{"gp", kT0}}},
      {"structure-s1", 4, {events::MainManagerTransferred{"s1", "gp", "heir", false}}},
      {"structure-s2", 0, {events::MainManagerTransferred{"s2", "", "heir", true}}},
  };
  EXPECT_EQ(workflow::main_manager_accounts(appends), (std::set<std::string>{"gp", "heir"}));
  workflow::record_main_manager_roles(appends, {{"heir", 12}});
  ASSERT_EQ(appends.size(), 4u);
  EXPECT_EQ(appends[0].expected_version, 7u);
  ASSERT_EQ(appends[0].payloads.size(), 2u);
  EXPECT_EQ(std::get<events::MainManagerRoleChanged>(appends[0].payloads[1]),
            (events::MainManagerRoleChanged{"gp", "s1", false}));
  EXPECT_EQ(appends[3].stream_id, "account-heir");
  EXPECT_EQ(appends[3].expected_version, 12u);
  ASSERT_EQ(appends[3].payloads.size(), 2u);
  EXPECT_EQ(std::get<events::MainManagerRoleChanged>(appends[3].payloads[0]),
            (events::MainManagerRoleChanged{"heir", "s1", true}));
  EXPECT_EQ(std::get<events::MainManagerRoleChanged>(appends[3].payloads[1]),
            (events::MainManagerRoleChanged{"heir", "s2", true}));

  // The account folds them into what it manages.
  account::State heir;
  heir.user_id = "heir";
  for (const auto& p : appends[3].payloads) heir = account::evolve(heir, p);
  EXPECT_EQ(heir.managed_structures, (std::set<std::string>{"s1", "s2"}));
  heir = account::evolve(heir, events::MainManagerRoleChanged{"heir", "s1", false});
  EXPECT_EQ(heir.managed_structures, (std::set<std::string>{"s2"}));
  EXPECT_EQ(heir.version, 3u);
}

TEST(Workflow, SiretChangeDuplicatesWithTheListedExclusions) {
  structure::State old = populated();
  auto d = public_data();
  d.service_code_required = true;
  old = apply(old, structure::ChangeData{d}, kGp);
  structure::Service a = service("A");
  workflow::IdentifierContext ctx;
  ctx.technical_users = {"tech"};
  const workflow::ChangeIdentifier c{"s2", "SIRET", "73282932000082", "2024-06-01"};
  EXPECT_EQ(workflow::change_identifier(old, c, kGsA, ctx).error().code, errc::forbidden);
  auto bad = c;
  bad.identifier_value = "73282932000083";
  EXPECT_EQ(workflow::change_identifier(old, bad, kGp, ctx).error().field, "identifier_value");
  auto same = c;
  same.identifier_value = kSiret;
  EXPECT_EQ(workflow::change_identifier(old, same, kGp, ctx).error().rule,
            "structure.change_identifier.identifier_taken");

  auto appends = workflow::change_identifier(old, c, kGp, ctx);
  ASSERT_TRUE(appends) << appends.error().message;
  ASSERT_EQ(appends->size(), 2u);
  const auto& created = (*appends)[0];
  EXPECT_EQ(created.stream_id, "structure-s2");
  EXPECT_EQ(created.expected_version, 0u);
  structure::State dup;
  dup.structure_id = "s2";
  dup = fold(dup, created.payloads);
  EXPECT_EQ(dup.origin_structure_id, "s1");
  EXPECT_EQ(dup.identifier_value, "73282932000082");
  EXPECT_EQ(dup.data.designation, old.data.designation);
  EXPECT_TRUE(dup.data.service_code_required);
  EXPECT_EQ(dup.data.vat_number, "");
  EXPECT_EQ(dup.data.pacage_number, "");
  EXPECT_EQ(dup.data.social_regime, "");
  EXPECT_FALSE(dup.data.billing_mandate);
  ASSERT_EQ(dup.services.size(), old.services.size());
  EXPECT_EQ(dup.services[1], a);
  EXPECT_EQ(dup.gp, "gp");
  EXPECT_EQ(dup.members.at("gsa").services, std::vector<std::string>{"A"});
  EXPECT_FALSE(dup.members.contains("tech"));
  EXPECT_EQ(dup.espaces.size(), old.espaces.size());

  const auto& deactivated = (*appends)[1];
  EXPECT_EQ(deactivated.stream_id, "structure-s1");
  EXPECT_EQ(deactivated.expected_version, old.version);
  structure::State after = fold(old, deactivated.payloads);
  EXPECT_EQ(after.status, structure::Status::inactive);
  EXPECT_EQ(after.successor_structure_id, "s2");
}

TEST(Workflow, PigpImportRejectsOnlyTheStructureLeftWithoutGp) {
  const Caller importer{"pigp-import", {.support_level2 = true}};
  workflow::ImportInputs in;
  auto s1 = populated();
  auto s2 = populated();
  s2.structure_id = "s2";
  auto s3 = populated();
  s3.structure_id = "s3";
  s3 = apply(s3, structure::TransferMainManager{"boss"}, kSupport2);
  in.structures = {{"s1", s1}, {"s2", s2}, {"s3", s3}};
  in.accounts = {{"gp", account_of("gp", true, "pigp")},
                 {"boss", account_of("boss", true, "pigp")},
                 {"gsw", account_of("gsw", true, "pigp")},
                 {"usr", account_of("usr", true, "portal")},
                 {"leaver", account_of("leaver", true, "pigp")}};
  // gp manages s1 and s2: a valid replacement for s1 only (usr is not PIGP). boss manages s3
  // and is replaced. leaver manages nothing.
  workflow::PigpImport batch{kT0, {"gp", "boss", "leaver"}, {{"s1", "gsw"}, {"s3", "gsw"}}};
  auto outcome = workflow::pigp_import(batch, importer, in);

  // Report: s2 without replacement, and gp's deactivation held back.
  ASSERT_EQ(outcome.report.size(), 2u);
  EXPECT_EQ(outcome.report[0].structure_id, "s2");
  EXPECT_EQ(outcome.report[0].reason.rule, "pigp_import.replacement_missing");
  EXPECT_EQ(outcome.report[1].user_id, "gp");
  EXPECT_EQ(outcome.report[1].reason.rule, "pigp_import.deactivation_held");
  // Units: s1's transfer alone; boss with s3; leaver alone. Nothing touches s2 or gp's account.
  ASSERT_EQ(outcome.units.size(), 3u);
  for (const auto& unit : outcome.units) {
    for (const auto& d : unit) {
      EXPECT_NE(d.stream_id, "structure-s2");
      EXPECT_NE(d.stream_id, "account-gp");
    }
  }
  bool boss_with_s3 = false;
  for (const auto& unit : outcome.units) {
    if (unit.size() == 2 && unit[0].stream_id == "account-boss" &&
        unit[1].stream_id == "structure-s3") {
      boss_with_s3 = true;
    }
  }
  EXPECT_TRUE(boss_with_s3);

  // A replacement the batch itself deactivates is no replacement.
  workflow::PigpImport circular{kT0, {"boss", "gsw"}, {{"s3", "gsw"}}};
  auto c = workflow::pigp_import(circular, importer, in);
  ASSERT_FALSE(c.report.empty());
  EXPECT_EQ(c.report[0].reason.rule, "structure.transfer.inactive_user");
}

}  // namespace
}  // namespace chorus::domain
