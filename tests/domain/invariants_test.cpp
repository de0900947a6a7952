// domain/invariants.h: each check holds on states the rules produce, and names the breach on
// states only a forged log could hold.

#include "domain/invariants.h"

#include <gtest/gtest.h>

#include "domain/ticket.h"
#include "tests/domain/structure_fixture.h"

namespace chorus::domain::structure::testing {
namespace {

namespace inv = invariants;

const events::Actor kGpActor{"gp", "user", ""};

TEST(Invariants, HoldOnWhatTheRulesProduce) {
  const State s = populated();
  EXPECT_EQ(inv::one_main_manager(s, true), std::nullopt);
  EXPECT_EQ(inv::services_sound(s, s.services.front()), std::nullopt);
  EXPECT_EQ(
      inv::decision_entitled(s, events::AttachmentRefused{"s1", "r1-1", "out", "non"}, kGpActor),
      std::nullopt);
}

TEST(Invariants, OneMainManager) {
  State s = populated();
  State none = evolve(s, events::AttachmentRemoved{"s1", "gp"});
  EXPECT_EQ(inv::one_main_manager(none, true), "it has no GP");
  EXPECT_EQ(inv::one_main_manager(none, false), std::nullopt);  // before the first GP
  State two = s;
  two.members["gsw"].role = Role::gp;
  EXPECT_EQ(inv::one_main_manager(two, true), "2 GPs");
  State inactive = evolve(none, events::StructureDeactivated{"s1", "", "fermée"});
  EXPECT_EQ(inv::one_main_manager(inactive, true), std::nullopt);  // only active ones
}

TEST(Invariants, ServicesSound) {
  const State s = populated();
  const Service public_invoices = s.services.front();
  State twice = evolve(s, events::ServiceAdded{"s1", "A", "Encore A", "", "2024-01-01", "", false});
  EXPECT_EQ(inv::services_sound(twice, public_invoices), "service code A appears twice");
  State changed = s;
  changed.services.front().label = "Autre";
  EXPECT_EQ(inv::services_sound(changed, public_invoices), "FACTURES_PUBLIQUES changed");
  State gone = evolve(s, events::ServiceRemoved{"s1", std::string(kPublicInvoices)});
  EXPECT_EQ(inv::services_sound(gone, public_invoices), "FACTURES_PUBLIQUES is missing");
}

TEST(Invariants, DecisionsReferToPendingRequestsByEntitledDeciders) {
  const State s = populated();
  // r1 asks for service A (pending as r1-1): the GS scoped to A may decide it, the simple user may
  // not.
  EXPECT_EQ(inv::decision_entitled(s, events::AttachmentRefused{"s1", "r1-1", "out", "non"},
                                   {"gsa", "user", ""}),
            std::nullopt);
  EXPECT_EQ(inv::decision_entitled(s, events::AttachmentRefused{"s1", "r1-1", "out", "non"},
                                   {"usr", "user", ""}),
            "usr was not entitled to decide request r1-1");
  EXPECT_EQ(
      inv::decision_entitled(s, events::AttachmentRefused{"s1", "r9", "out", "non"}, kGpActor),
      "decides request r9, which is not pending");
  EXPECT_EQ(inv::decision_entitled(s,
                                   events::SubscriptionValidated{
                                       "s1", "q1", "usr", "Factures reçues", "A", true, false, ""},
                                   {"sn1", "support_n1", ""}),
            "sn1 was not entitled to decide request q1");
  EXPECT_EQ(inv::decision_entitled(s, events::CommentAdded{"t", "x"}, kGpActor), std::nullopt);
  // A grant to someone removed while the request waited (what an adversarial run got through
  // the API before decide() refused it): reported, whoever decided.
  const events::SubscriptionValidated grant{"s1", "q1", "usr", "Factures reçues",
                                            "A",  true, false, ""};
  EXPECT_EQ(inv::decision_entitled(s, grant, kGpActor), std::nullopt);
  // Support deactivating the structure closes its requests: entitled to that, not to decide.
  const events::AttachmentRefused closing{"s1", "r1-1", "out", "Structure désactivée"};
  const events::Actor support{"sn2", "support_n2", ""};
  EXPECT_EQ(inv::decision_entitled(s, closing, support),
            "sn2 was not entitled to decide request r1-1");
  const State deactivated = evolve(s, events::StructureDeactivated{"s1", "", "Fermeture"});
  EXPECT_EQ(inv::decision_entitled(deactivated, closing, support), std::nullopt);
  // Only right after the deactivation: later, support is no decider.
  const State later = evolve(deactivated, events::PasswordResetRecorded{"s1", "tech"});
  EXPECT_EQ(inv::decision_entitled(later, closing, support),
            "sn2 was not entitled to decide request r1-1");
  const State removed = evolve(s, events::AttachmentRemoved{"s1", "usr"});
  EXPECT_EQ(inv::decision_entitled(removed, grant, kGpActor),
            "request q1 granted an espace to usr, who was not a member of the structure");
}

// Invariant 3: transition() says what the status table allows, and where evolve() goes.
TEST(Invariants, TicketTransitionsFollowTheStatusTableAndAgreeWithEvolve) {
  using ticket::Status;
  const std::vector<events::Payload> every_ticket_event{
      events::TicketDraftSaved{},     events::TicketSubmitted{},     events::TicketDraftDeleted{},
      events::InformationRequested{}, events::InformationProvided{}, events::SolutionProposed{},
      events::SolutionAccepted{},     events::SolutionRefused{},     events::TicketClosed{},
      events::CommentAdded{},         events::TicketAssigned{},      events::TicketEscalated{},
      events::PrioritySet{},          events::FileAttached{}};
  int allowed = 0;
  for (Status from : {Status::none, Status::draft, Status::open, Status::waiting_for_information,
                      Status::resolved, Status::closed, Status::deleted}) {
    for (const auto& p : every_ticket_event) {
      auto to = ticket::transition(from, p);
      if (from == Status::closed || from == Status::deleted) {
        EXPECT_FALSE(to.has_value()) << "Fermé is final: " << events::type_name(p);
      }
      if (!to) {
        EXPECT_EQ(to.error().rule, "ticket.invariant.transition");
        continue;
      }
      ++allowed;
      ticket::State state;
      state.status = from;
      EXPECT_EQ(ticket::evolve(state, p).status, *to)
          << events::type_name(p) << " from " << ticket::to_string(from);
    }
  }
  // The rows of the table, support handling, comments, and files (also on a draft) included.
  EXPECT_EQ(allowed, 28);
  EXPECT_EQ(ticket::transition(Status::open, events::NotificationSent{}).error().rule,
            "ticket.invariant.foreign_event");
}

}  // namespace
}  // namespace chorus::domain::structure::testing
