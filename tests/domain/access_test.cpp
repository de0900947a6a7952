// The permission table, cell by cell: as data (kPermissions against a grid written out here),
// through may() with and without service scope, and through decide() with a caller of every
// role scope on a structure holding one member of each role.

#include "domain/access.h"

#include <gtest/gtest.h>

#include <map>

#include "domain/account.h"
#include "domain/workflow.h"
#include "tests/domain/structure_fixture.h"

namespace chorus::domain {
namespace {

using access::Action;
using access::Grant;
using access::RoleScope;
using namespace structure::testing;

// The table as the issue and DOMAIN.md read, written independently of domain/access.h:
// gp, GS whole, GS services, simple user, SN1, SN2, auditor, outsider.
const std::map<Action, std::string> kExpected{
    {Action::view_structure, "YYYYYYYY"},        {Action::create_structure, "NNNNYYNN"},
    {Action::deactivate_structure, "NNNNYYNN"},  {Action::change_data, "YYNNNNNN"},
    {Action::change_identifier, "YYNNNNNN"},     {Action::request_attachment, "NNYYNNNY"},
    {Action::view_requests, "YYSNYYYN"},         {Action::decide_attachment, "YYSNNNNN"},
    {Action::attach_directly, "YYSNNNNN"},       {Action::remove_attachment, "YYNNNNNN"},
    {Action::transfer_main_manager, "YNNNYYNN"}, {Action::reset_technical_password, "YNNNNNNN"},
    {Action::enable_espace, "YYSNNNNN"},         {Action::request_subscription, "NNYYNNNN"},
    {Action::decide_subscription, "YYSNNNNN"},   {Action::view_history, "YYSNYYYN"},
    {Action::resend_activation, "YYSNYYNN"},
};

Grant from_letter(char c) { return c == 'Y' ? Grant::yes : c == 'S' ? Grant::scoped : Grant::no; }

TEST(PermissionTable, EveryCellIsAsSpecified) {
  ASSERT_EQ(kExpected.size(), access::kActions);
  for (const auto& row : access::kPermissions) {
    const std::string& cells = kExpected.at(row.action);
    for (std::size_t i = 0; i < access::kRoleScopes; ++i) {
      const RoleScope scope = access::kAllRoleScopes[i];
      EXPECT_EQ(access::grant(scope, row.action), from_letter(cells[i]))
          << row.name << " / " << access::to_string(scope);
    }
  }
}

TEST(PermissionTable, ScopedCellsHoldOnlyInsideTheScopesServices) {
  const std::vector<std::string> scope{"A", "B"};
  for (const auto& row : access::kPermissions) {
    for (RoleScope s : access::kAllRoleScopes) {
      const Grant g = access::grant(s, row.action);
      const std::vector<std::string> inside{"A"}, both{"A", "B"}, outside{"C"}, mixed{"A", "C"};
      EXPECT_EQ(access::may(s, scope, row.action, inside), g != Grant::no) << row.name;
      EXPECT_EQ(access::may(s, scope, row.action, both), g != Grant::no) << row.name;
      EXPECT_EQ(access::may(s, scope, row.action, outside), g == Grant::yes) << row.name;
      EXPECT_EQ(access::may(s, scope, row.action, mixed), g == Grant::yes) << row.name;
      // The whole structure is never inside a service scope.
      EXPECT_EQ(access::may(s, scope, row.action, {}), g == Grant::yes) << row.name;
      // A scope without services cannot be "scoped" to anything.
      EXPECT_EQ(access::may(s, {}, row.action, inside), g == Grant::yes) << row.name;
    }
  }
}

TEST(PermissionTable, AuditorsActOnlyAsAuditorsAndSupportKeepsItsLevels) {
  access::Access a{RoleScope::gp, {}, {.auditor = true}};
  EXPECT_EQ(access::scopes_of(a), std::vector<RoleScope>{RoleScope::auditor});
  EXPECT_FALSE(access::may(a, Action::change_data, {}));
  access::Access s{RoleScope::user, {"A"}, {.support_level1 = true, .auditor = true}};
  EXPECT_EQ(access::scopes_of(s), (std::vector<RoleScope>{RoleScope::user, RoleScope::support_n1}));
  EXPECT_TRUE(access::may(s, Action::transfer_main_manager, {}));
}

TEST(PermissionTable, AccessOfReadsTheStructuresOwnRoles) {
  const structure::State s = populated();
  EXPECT_EQ(structure::access_of(s, kGp).member, RoleScope::gp);
  EXPECT_EQ(structure::access_of(s, kGsWhole).member, RoleScope::gs_whole);
  const auto gsa = structure::access_of(s, kGsA);
  EXPECT_EQ(gsa.member, RoleScope::gs_services);
  EXPECT_EQ(gsa.services, std::vector<std::string>{"A"});
  EXPECT_EQ(structure::access_of(s, kUser).member, RoleScope::user);
  EXPECT_EQ(structure::access_of(s, kOutsider).member, RoleScope::outsider);
  EXPECT_EQ(structure::access_of(s, kSupport1).member, RoleScope::outsider);
}

// Runs the representative command of `action` for `caller`; true when the table let it through
// (accepted, or rejected by a rule other than who may act).
bool let_through(Action action, const Caller& caller) {
  using namespace structure;
  const State s = populated();
  auto passed = [](const auto& decided) {
    return decided ||
           (decided.error().code != errc::forbidden && decided.error().code != errc::not_found);
  };
  auto accepted = [&](const Command& c, const Context& ctx) {
    auto d = decide(s, c, caller, ctx);
    // Allowed cells must fully succeed: the commands are valid.
    if (!d && d.error().code != errc::forbidden && d.error().code != errc::not_found) {
      ADD_FAILURE() << access::to_string(action) << " by " << caller.user_id << ": "
                    << d.error().rule;
    }
    return passed(d);
  };
  AccountFacts technical = kActivePortal;
  technical.technical = true;
  switch (action) {
    case Action::create_structure: {
      State fresh;
      fresh.structure_id = "s9";
      return passed(decide(
          fresh,
          CreateStructure{"SIRET", kSiret, true, false, false, public_data(), "2024-01-01", "gp"},
          caller, context()));
    }
    case Action::deactivate_structure:
      return accepted(DeactivateStructure{"Fermeture"}, context());
    case Action::change_data:
      return accepted(ChangeData{public_data()}, context());
    case Action::change_identifier:
      return passed(workflow::change_identifier(s, {"s2", "SIRET", "73282932000082", "2024-06-01"},
                                                caller, {}));
    case Action::request_attachment:
      return accepted(RequestAttachment{"r9", {"B"}, ""}, context(kActivePortal));
    case Action::decide_attachment:
      return accepted(ValidateAttachment{"r1-1", Role::user, {}, ""}, context()) &&
             accepted(RefuseAttachment{"r1-1", "Inconnu"}, context());
    case Action::attach_directly:
      return accepted(AttachDirectly{"new", Role::user, {"A"}, "2024-06-01", ""},
                      context(kActivePortal));
    case Action::remove_attachment:
      return accepted(RemoveAttachment{"usr"}, context());
    case Action::transfer_main_manager:
      return accepted(TransferMainManager{"usr"}, context(kActivePigp));
    case Action::reset_technical_password:
      return accepted(ResetTechnicalPassword{"tech"}, context(technical));
    case Action::enable_espace:
      return accepted(EnableEspace{"Sollicitations reçues", "A", true, false}, context());
    case Action::request_subscription:
      return accepted(RequestSubscription{"q9", "Factures reçues", "A", true, true, ""},
                      context(kActivePortal));
    case Action::decide_subscription:
      return accepted(ValidateSubscription{"q1", true, true, ""}, context()) &&
             accepted(RefuseSubscription{"q1", "Non"}, context());
    case Action::resend_activation: {
      account::State holder;
      holder.user_id = "new";
      holder = account::evolve(
          holder, events::AccountCreated{"new", "new@example.fr", "N", "Ouveau", "portal", false});
      account::Context ctx;
      ctx.caller_access = access_of(s, caller);
      ctx.holder_on_structure = true;
      ctx.holder_services = {"A"};
      return passed(account::decide(holder, account::ResendActivation{}, caller, ctx));
    }
    case Action::view_structure:
    case Action::view_requests:
    case Action::view_history:
      return access::may(access_of(s, caller), action, std::vector<std::string>{"A"});
  }
  return false;
}

TEST(PermissionMatrix, EveryCommandForEveryRoleScope) {
  for (const auto& row : access::kPermissions) {
    for (RoleScope scope : access::kAllRoleScopes) {
      // The representative commands concern service A, inside the scoped GS's services.
      const bool expected = row.grants[static_cast<std::size_t>(scope)] != Grant::no;
      EXPECT_EQ(let_through(row.action, caller_for(scope)), expected)
          << row.name << " by " << access::to_string(scope);
    }
  }
}

}  // namespace
}  // namespace chorus::domain
