// The rules of the structure aggregate (seed 003, DOMAIN.md), each allowed and refused.

#include "domain/structure.h"

#include <gtest/gtest.h>

#include "tests/domain/structure_fixture.h"

namespace chorus::domain::structure {
namespace {

using namespace testing;

// The rejection of `command`; the test fails when it is accepted.
Rejection refused(const State& s, const Command& command, const Caller& caller,
                  const Context& ctx = context()) {
  auto decided = decide(s, command, caller, ctx);
  EXPECT_FALSE(decided) << "accepted";
  return decided ? Rejection{} : decided.error();
}

TEST(Siret, FourteenDigitsAndLuhn) {
  EXPECT_TRUE(is_siret("73282932000074"));
  EXPECT_TRUE(is_siret("73282932000082"));
  EXPECT_FALSE(is_siret("73282932000075"));   // Luhn
  EXPECT_FALSE(is_siret("7328293200007"));    // 13 digits
  EXPECT_FALSE(is_siret("732829320000740"));  // 15 digits
  EXPECT_FALSE(is_siret("7328293200007A"));
  EXPECT_FALSE(is_siret(""));
}

TEST(Structure, CreatedBySupportWithFacturesPubliquesAndItsFirstGp) {
  State s = created();
  EXPECT_EQ(s.status, Status::active);
  ASSERT_EQ(s.services.size(), 1u);
  EXPECT_EQ(s.services[0].code, kPublicInvoices);
  EXPECT_EQ(s.services[0].valid_from, "2024-01-01");
  EXPECT_EQ(s.gp, "gp");
  EXPECT_EQ(s.members.at("gp").role, Role::gp);

  State fresh;
  fresh.structure_id = "s2";
  CreateStructure c{"SIRET", "73282932000075", true, false, false, public_data(), "2024-01-01", ""};
  EXPECT_EQ(refused(fresh, c, kSupport1).rule, "structure.create.identifier");
  c.identifier_value = kSiret;
  Context taken = context();
  taken.identifier_taken = true;
  EXPECT_EQ(refused(fresh, c, kSupport1, taken).rule, "structure.create.identifier_taken");
  EXPECT_EQ(refused(fresh, c, kGp).code, errc::forbidden);
  EXPECT_TRUE(decide(fresh, c, kSupport1, context()));  // without a GP: named later
  EXPECT_EQ(refused(s, c, kSupport1).rule, "structure.create_structure.exists");
  // A first GP follows the transfer rules: PIGP for a public structure.
  c.first_gp_user_id = "someone";
  EXPECT_EQ(refused(fresh, c, kSupport1, context(kActivePortal)).rule,
            "structure.create.pigp_required");
}

TEST(Structure, MoaModeOnlyForPublicStructures) {
  State fresh;
  fresh.structure_id = "s2";
  CreateStructure c{"SIRET", kSiret, false, false, false, public_data(), "2024-01-01", ""};
  EXPECT_EQ(refused(fresh, c, kSupport1).rule, "structure.data.moa_private");
  c.data.moa_mode = 0;
  EXPECT_TRUE(decide(fresh, c, kSupport1, context()));
  c.is_public = true;
  EXPECT_EQ(refused(fresh, c, kSupport1).rule, "structure.data.moa_mode");
}

TEST(Structure, OnlyManagersChangeTheCardAndRequiredFieldsAreChecked) {
  State s = populated();
  auto d = public_data();
  d.designation = "Mairie de Test (nouveau nom)";
  State after = apply(s, ChangeData{d}, kGsWhole);
  EXPECT_EQ(after.data.designation, "Mairie de Test (nouveau nom)");
  EXPECT_EQ(refused(s, ChangeData{d}, kUser).code, errc::forbidden);
  EXPECT_EQ(refused(s, ChangeData{d}, kGsA).code, errc::forbidden);
  d.address_line1.clear();
  EXPECT_EQ(refused(s, ChangeData{d}, kGp).field, "address_line1");
}

TEST(Structure, ServiceCodeRequiredOnlyWithAnotherService) {
  State s = created();
  auto d = public_data();
  d.service_code_required = true;
  EXPECT_EQ(refused(s, ChangeData{d}, kGp).rule, "structure.data.service_code_required");
  s = apply(s, AddService{service("A")}, kGp);
  s = apply(s, ChangeData{d}, kGp);
  EXPECT_TRUE(s.data.service_code_required);
  // The last other service cannot go while the parameter is set.
  EXPECT_EQ(refused(s, RemoveService{"A"}, kGp).rule, "structure.service.code_required");
}

TEST(Structure, ServicesCodesAreUniqueAndBounded) {
  State s = created();
  s = apply(s, AddService{service("A")}, kGp);
  EXPECT_EQ(refused(s, AddService{service("A")}, kGp).rule, "structure.service.duplicate_code");
  EXPECT_EQ(refused(s, AddService{service(std::string(kPublicInvoices))}, kGp).rule,
            "structure.service.duplicate_code");
  Service long_code = service(std::string(kCodeMax + 1, 'X'));
  EXPECT_EQ(refused(s, AddService{long_code}, kGp).rule, "structure.service.too_long");
  Service longest = service(std::string(kCodeMax, 'X'));
  longest.label = std::string(kCodeMax, 'x');
  EXPECT_TRUE(decide(s, AddService{longest}, kGp, context()));
  Service long_label = service("L");
  long_label.label = std::string(kCodeMax + 1, 'x');
  EXPECT_EQ(refused(s, AddService{long_label}, kGp).field, "label");
  Service no_start = service("N");
  no_start.valid_from.clear();
  EXPECT_EQ(refused(s, AddService{no_start}, kGp).rule, "structure.service.valid_from");
  Service ends_before = service("E");
  ends_before.valid_to = "2023-01-01";
  EXPECT_EQ(refused(s, AddService{ends_before}, kGp).rule, "structure.service.valid_to");
  // The same code on another structure is fine.
  State other = created();
  other.structure_id = "s2";
  EXPECT_TRUE(decide(other, AddService{service("A")}, kGp, context()));
}

TEST(Structure, FacturesPubliquesCanBeNeitherChangedNorRemoved) {
  State s = populated();
  Service fp = service(std::string(kPublicInvoices));
  EXPECT_EQ(refused(s, ChangeService{fp}, kGp).rule, "structure.service.public_invoices");
  EXPECT_EQ(refused(s, RemoveService{std::string(kPublicInvoices)}, kGp).rule,
            "structure.service.public_invoices");
  Service b = service("B");
  b.label = "Bâtiments";
  State after = apply(s, ChangeService{b}, kGp);
  EXPECT_EQ(after.services[2].label, "Bâtiments");
  EXPECT_EQ(refused(s, ChangeService{service("Z")}, kGp).code, errc::not_found);
}

TEST(Structure, AServiceSomeoneHoldsIsNotRemoved) {
  State s = populated();
  // A is held by gsa and usr: removing it would widen their scope to the whole structure.
  EXPECT_EQ(refused(s, RemoveService{"A"}, kGp).rule, "structure.service.in_use");
  State after = apply(s, RemoveService{"B"}, kGp);
  EXPECT_EQ(after.services.size(), 2u);
}

TEST(Attachment, RequestIsPendingPerServiceThenValidatedKeepingWhatWasGranted) {
  State s = populated();
  s = apply(s, RequestAttachment{"r2", {"A", "B"}, "Merci"}, Caller{"newbie", {}},
            context(kActivePortal));
  ASSERT_TRUE(s.attachment_requests.contains("r2-1"));
  ASSERT_TRUE(s.attachment_requests.contains("r2-2"));
  EXPECT_EQ(s.attachment_requests.at("r2-2").service, "B");
  // The same service twice while pending, an unknown service, a reused id.
  EXPECT_EQ(
      refused(s, RequestAttachment{"r3", {"A"}, ""}, Caller{"newbie", {}}, context(kActivePortal))
          .rule,
      "structure.request_attachment.pending");
  EXPECT_EQ(
      refused(s, RequestAttachment{"r3", {"Z"}, ""}, Caller{"newbie", {}}, context(kActivePortal))
          .rule,
      "structure.request_attachment.service");
  EXPECT_EQ(
      refused(s, RequestAttachment{"r2-1", {}, ""}, Caller{"other", {}}, context(kActivePortal))
          .rule,
      "structure.request_attachment.request_id");
  // An account not activated yet cannot ask.
  EXPECT_EQ(refused(s, RequestAttachment{"r4", {}, ""}, Caller{"other", {}}, context({})).rule,
            "structure.request_attachment.inactive_account");

  s = apply(s, ValidateAttachment{"r2-1", Role::user, {}, "Bienvenue"}, kGp);
  EXPECT_EQ(s.members.at("newbie").services, std::vector<std::string>{"A"});
  s = apply(s, ValidateAttachment{"r2-2", Role::gs, {}, ""}, kGp);
  EXPECT_EQ(s.members.at("newbie").services, (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(s.members.at("newbie").role, Role::gs);
  EXPECT_TRUE(s.attachment_requests.empty() || !s.attachment_requests.contains("r2-2"));
  // Already attached to A: asking again is refused.
  EXPECT_EQ(
      refused(s, RequestAttachment{"r5", {"A"}, ""}, Caller{"newbie", {}}, context(kActivePortal))
          .rule,
      "structure.request_attachment.already");
}

TEST(Attachment, RefusalNeedsAReasonAndValidationCannotMakeAGp) {
  State s = populated();
  EXPECT_EQ(refused(s, RefuseAttachment{"r1-1", ""}, kGp).rule,
            "structure.refuse_attachment.required");
  EXPECT_EQ(refused(s, ValidateAttachment{"r1-1", Role::gp, {}, ""}, kGp).rule,
            "structure.validate_attachment.role");
  State after = apply(s, RefuseAttachment{"r1-1", "Inconnu du service"}, kGp);
  EXPECT_FALSE(after.attachment_requests.contains("r1-1"));
  EXPECT_FALSE(after.members.contains("out"));
  // Decided once: a second decision finds no pending request.
  EXPECT_EQ(refused(after, ValidateAttachment{"r1-1", Role::user, {}, ""}, kGp).code,
            errc::not_found);
}

// Seed 000: "une anomalie sur le cloisonnement des demandes par service".
TEST(Attachment, AGsScopedToServicesSeesAndDecidesOnlyTheirRequests) {
  State s = populated();
  s = apply(s, RequestAttachment{"rb", {"B"}, ""}, Caller{"bob", {}}, context(kActivePortal));
  s = apply(s, RequestAttachment{"rw", {}, ""}, Caller{"wendy", {}}, context(kActivePortal));
  // Requests for B and for the whole structure do not exist for the GS of A.
  EXPECT_EQ(refused(s, ValidateAttachment{"rb-1", Role::user, {}, ""}, kGsA).code, errc::not_found);
  EXPECT_EQ(refused(s, RefuseAttachment{"rb-1", "Non"}, kGsA).code, errc::not_found);
  EXPECT_EQ(refused(s, ValidateAttachment{"rw", Role::user, {}, ""}, kGsA).code, errc::not_found);
  // A request for A: decided, but nothing outside A may be granted.
  EXPECT_EQ(refused(s, ValidateAttachment{"r1-1", Role::user, {"A", "B"}, ""}, kGsA).rule,
            "structure.validate_attachment.scope");
  State after = apply(s, ValidateAttachment{"r1-1", Role::user, {"A"}, ""}, kGsA);
  EXPECT_EQ(after.members.at("out").services, std::vector<std::string>{"A"});
  // The GS of the whole structure decides everything.
  EXPECT_TRUE(decide(s, ValidateAttachment{"rb-1", Role::user, {}, ""}, kGsWhole, context()));
  EXPECT_TRUE(decide(s, ValidateAttachment{"rw", Role::user, {}, ""}, kGsWhole, context()));
  // A scoped GS changes no role that reaches beyond their services.
  s = apply(s, AttachDirectly{"multi", Role::user, {"A", "B"}, "2024-01-01", ""}, kGp,
            context(kActivePortal));
  EXPECT_EQ(refused(s, AttachDirectly{"multi", Role::gs, {"A"}, "2024-01-01", ""}, kGsA,
                    context(kActivePortal))
                .rule,
            "structure.attach_directly.role_scope");
}

TEST(Attachment, BulkDecisionsReportAResultPerRequest) {
  State s = populated();
  s = apply(s, RequestAttachment{"rb", {"B"}, ""}, Caller{"bob", {}}, context(kActivePortal));
  const std::vector<Command> bulk{
      ValidateAttachment{"r1-1", Role::user, {}, ""}, RefuseAttachment{"rb-1", "Non"},
      ValidateAttachment{"nope", Role::user, {}, ""}, RefuseAttachment{"r1-1", "déjà décidée"}};
  // As GS of A: r1-1 yes; rb-1 and nope unknown; r1-1 again, already decided.
  BulkOutcome gsa = decide_each(s, bulk, kGsA, context());
  ASSERT_EQ(gsa.results.size(), 4u);
  EXPECT_FALSE(gsa.results[0]);
  EXPECT_EQ(gsa.results[1]->code, errc::not_found);
  EXPECT_EQ(gsa.results[2]->code, errc::not_found);
  EXPECT_EQ(gsa.results[3]->code, errc::not_found);
  EXPECT_EQ(gsa.payloads.size(), 1u);
  BulkOutcome gp = decide_each(s, bulk, kGp, context());
  EXPECT_FALSE(gp.results[0]);
  EXPECT_FALSE(gp.results[1]);
  EXPECT_EQ(gp.payloads.size(), 2u);
  // Bulk removal, the GP among them.
  BulkOutcome removal =
      decide_each(s, {RemoveAttachment{"usr"}, RemoveAttachment{"gp"}, RemoveAttachment{"gsa"}},
                  kGp, context());
  EXPECT_FALSE(removal.results[0]);
  EXPECT_EQ(removal.results[1]->rule, "structure.remove_attachment.gp");
  EXPECT_FALSE(removal.results[2]);
}

TEST(Attachment, DirectAttachmentAndTechnicalAccounts) {
  State s = populated();
  EXPECT_EQ(
      refused(s, AttachDirectly{"x", Role::user, {}, "", ""}, kGp, context(kActivePortal)).rule,
      "structure.attach_directly.start_date");
  EXPECT_EQ(
      refused(s, AttachDirectly{"x", Role::user, {}, "2024-01-01", ""}, kGp, context({})).rule,
      "structure.attach_directly.account");
  EXPECT_EQ(refused(s, AttachDirectly{"gp", Role::user, {}, "2024-01-01", ""}, kGp, context()).rule,
            "structure.attach_directly.gp");
  // The same attachment twice: the second changes nothing and is refused; another start date
  // or role is a change.
  s = apply(s, AttachDirectly{"again", Role::user, {}, "2024-01-01", ""}, kGp,
            context(kActivePortal));
  EXPECT_EQ(refused(s, AttachDirectly{"again", Role::user, {}, "2024-01-01", "bis"}, kGp,
                    context(kActivePortal))
                .rule,
            "structure.attach_directly.unchanged");
  EXPECT_TRUE(decide(s, AttachDirectly{"again", Role::user, {}, "2024-02-01", ""}, kGp,
                     context(kActivePortal)));
  EXPECT_TRUE(decide(s, AttachDirectly{"again", Role::gs, {}, "2024-01-01", ""}, kGp,
                     context(kActivePortal)));
  AccountFacts technical = kActivePortal;
  technical.technical = true;
  EXPECT_EQ(refused(s, AttachDirectly{"t2", Role::user, {}, "2024-01-01", ""}, kGsWhole,
                    context(technical))
                .rule,
            "structure.attach_directly.technical");
  // The GP resets the technical account's password: recorded, nothing secret.
  auto reset = decide(s, ResetTechnicalPassword{"tech"}, kGp, context(technical));
  ASSERT_TRUE(reset);
  EXPECT_EQ(std::get<events::PasswordResetRecorded>(reset->front()).user_id, "tech");
  EXPECT_EQ(refused(s, ResetTechnicalPassword{"usr"}, kGp, context()).code, errc::not_found);
}

TEST(Transfer, TheFormerGpStaysAsSimpleUserInTheSameEvent) {
  State s = populated();
  auto decided = decide(s, TransferMainManager{"gsw"}, kGp, context(kActivePigp));
  ASSERT_TRUE(decided);
  ASSERT_EQ(decided->size(), 1u);
  const auto& e = std::get<events::MainManagerTransferred>(decided->front());
  EXPECT_EQ(e.from_user_id, "gp");
  EXPECT_FALSE(e.by_support);
  s = fold(s, *decided);
  EXPECT_EQ(s.gp, "gsw");
  EXPECT_EQ(s.members.at("gsw").role, Role::gp);
  EXPECT_EQ(s.members.at("gp").role, Role::user);
  EXPECT_TRUE(s.members.at("gp").services.empty());
  // A newcomer is attached by the transfer itself.
  s = apply(s, TransferMainManager{"newgp"}, Caller{"gsw", {}}, context(kActivePigp));
  EXPECT_EQ(s.members.at("newgp").role, Role::gp);
}

TEST(Transfer, PigpRuleForPublicStructuresExceptStateAndMoaOnly) {
  State s = populated();
  EXPECT_EQ(refused(s, TransferMainManager{"usr"}, kGp, context(kActivePortal)).rule,
            "structure.transfer.pigp_required");
  AccountFacts inactive = kActivePigp;
  inactive.active = false;
  EXPECT_EQ(refused(s, TransferMainManager{"usr"}, kGp, context(inactive)).rule,
            "structure.transfer.inactive_user");
  EXPECT_EQ(refused(s, TransferMainManager{"nobody"}, kGp, context({})).rule,
            "structure.transfer.unknown_user");
  EXPECT_EQ(refused(s, TransferMainManager{"gp"}, kGp, context()).rule, "structure.transfer.same");
  State state = s;
  state.is_state = true;
  EXPECT_TRUE(decide(state, TransferMainManager{"usr"}, kGp, context(kActivePortal)));
  State moa = s;
  moa.data.moa_mode = 3;
  EXPECT_TRUE(decide(moa, TransferMainManager{"usr"}, kGp, context(kActivePortal)));
  State priv = created(false);
  EXPECT_TRUE(decide(priv, TransferMainManager{"usr"}, kGp, context(kActivePortal)));
}

// Seed 000: support lacked the right to transfer the GP role in the launch month.
TEST(Transfer, SupportTransfersOnTheStructuresBehalfAndGsCannot) {
  State s = populated();
  for (const Caller& agent : {kSupport1, kSupport2}) {
    auto decided = decide(s, TransferMainManager{"gsw"}, agent, context(kActivePigp));
    ASSERT_TRUE(decided) << agent.user_id;
    EXPECT_TRUE(std::get<events::MainManagerTransferred>(decided->front()).by_support);
  }
  EXPECT_EQ(refused(s, TransferMainManager{"gsw"}, kGsWhole).code, errc::forbidden);
  EXPECT_EQ(refused(s, TransferMainManager{"gsw"}, kAuditor).code, errc::forbidden);
}

TEST(Espaces, EnableRequestValidateRefuse) {
  State s = populated();
  EXPECT_EQ(refused(s, EnableEspace{"Factures émises", "", false, false}, kGp).rule,
            "structure.enable_espace.rights");
  EXPECT_EQ(refused(s, EnableEspace{"Factures émises", "", true, false}, kGsA).code,
            errc::forbidden);  // the whole structure is outside service A
  // Not enabled for B.
  EXPECT_EQ(refused(s, RequestSubscription{"q2", "Factures reçues", "B", true, false, ""},
                    Caller{"gsa", {}}, context(kActivePortal))
                .code,
            errc::forbidden);
  EXPECT_EQ(refused(s, RequestSubscription{"q2", "Sollicitations reçues", "A", true, false, ""},
                    kUser, context(kActivePortal))
                .rule,
            "structure.request_subscription.espace");
  // Validated with adjusted rights.
  EXPECT_EQ(refused(s, ValidateSubscription{"q1", false, false, ""}, kGp).rule,
            "structure.validate_subscription.rights");
  auto v = decide(s, ValidateSubscription{"q1", true, true, "Accordé"}, kGsA, context());
  ASSERT_TRUE(v);
  const auto& e = std::get<events::SubscriptionValidated>(v->front());
  EXPECT_TRUE(e.write);
  EXPECT_EQ(e.user_id, "usr");
  State after = fold(s, *v);
  EXPECT_TRUE(after.subscription_requests.empty());
  ASSERT_EQ(after.subscriptions.size(), 1u);
  EXPECT_EQ(refused(s, RefuseSubscription{"q1", ""}, kGp).rule,
            "structure.refuse_subscription.required");
  EXPECT_TRUE(decide(s, RefuseSubscription{"q1", "Non"}, kGp, context()));
}

// Found by an adversarial run: a member removed while their subscription request waited was
// still granted the espace, and then read and answered the structure's received tickets.
TEST(Espaces, RightsGoOnlyToMembersWithinWhatTheEspaceIsOpenedWith) {
  State s = populated();
  // Opened read-only on A: asking for, or granting, write is refused, field write.
  s = apply(s, EnableEspace{"Sollicitations reçues", "A", true, false}, kGp);
  EXPECT_EQ(refused(s, RequestSubscription{"q2", "Sollicitations reçues", "A", true, true, ""},
                    kUser, context(kActivePortal))
                .field,
            "write");
  s = apply(s, RequestSubscription{"q2", "Sollicitations reçues", "A", true, false, ""}, kUser,
            context(kActivePortal));
  const auto over = refused(s, ValidateSubscription{"q2", true, true, ""}, kGsWhole);
  EXPECT_EQ(over.rule, "structure.validate_subscription.rights");
  EXPECT_EQ(over.field, "write");
  EXPECT_TRUE(decide(s, ValidateSubscription{"q2", true, false, ""}, kGsWhole, context()));
  // The requester's account deactivated since: refused, never granted.
  Context deactivated = context();
  deactivated.deactivated_requesters = {"usr"};
  EXPECT_EQ(refused(s, ValidateSubscription{"q2", true, false, ""}, kGp, deactivated).rule,
            "structure.validate_subscription.account_deactivated");
  // The requester removed since: refused; the refusal still clears the request.
  State removed = apply(s, RemoveAttachment{"usr"}, kGp);
  const auto gone = refused(removed, ValidateSubscription{"q2", true, false, ""}, kGp);
  EXPECT_EQ(gone.rule, "structure.validate_subscription.not_member");
  EXPECT_EQ(gone.field, "request_id");
  EXPECT_EQ(gone.code, errc::wrong_status);
  EXPECT_TRUE(decide(removed, RefuseSubscription{"q2", "Parti"}, kGp, context()));
  // Narrowed to another service since: refused as well.
  State narrowed = apply(s, AddService{service("C")}, kGp);
  narrowed = apply(narrowed, AttachDirectly{"usr", Role::user, {"C"}, "2024-03-01", ""}, kGp,
                   context(kActivePortal));
  // (services already validated stay granted: usr keeps A; a removal and a new attachment
  // narrow for real)
  narrowed = apply(narrowed, RemoveAttachment{"usr"}, kGp);
  narrowed = apply(narrowed, AttachDirectly{"usr", Role::user, {"C"}, "2024-03-01", ""}, kGp,
                   context(kActivePortal));
  EXPECT_EQ(refused(narrowed, ValidateSubscription{"q2", true, false, ""}, kGp).rule,
            "structure.validate_subscription.not_member");
}

TEST(Attachment, ARequestOfADeactivatedAccountIsNotValidated) {
  State s = populated();
  Context deactivated = context();
  deactivated.deactivated_requesters = {"out"};
  EXPECT_EQ(refused(s, ValidateAttachment{"r1-1", Role::user, {"A"}, ""}, kGp, deactivated).rule,
            "structure.validate_attachment.account_deactivated");
  EXPECT_TRUE(decide(s, RefuseAttachment{"r1-1", "Compte désactivé"}, kGp, deactivated));
  EXPECT_TRUE(decide(s, ValidateAttachment{"r1-1", Role::user, {"A"}, ""}, kGp, context()));
}

TEST(Attachment, ATechnicalAccountServesTheStructureThatAttachedIt) {
  State s = populated();
  AccountFacts technical = kActivePortal;
  technical.technical = true;
  Context elsewhere = context(technical);
  elsewhere.account_attached_elsewhere = true;
  const auto r = refused(s, AttachDirectly{"t9", Role::user, {}, "2024-01-01", ""}, kGp, elsewhere);
  EXPECT_EQ(r.rule, "structure.attach_directly.technical_elsewhere");
  EXPECT_EQ(r.field, "user_id");
  // Its own structure may still change its attachment.
  EXPECT_TRUE(decide(s, AttachDirectly{"tech", Role::user, {}, "2024-05-01", ""}, kGp, elsewhere));
  // One created since its structure is recorded is that structure's, whatever the views say
  // (another structure's GP once took it between its creation and its first attachment), and
  // the structure a SIRET change made of it.
  AccountFacts homed = technical;
  homed.technical_structure_id = "s0";
  EXPECT_EQ(
      refused(s, AttachDirectly{"t8", Role::user, {}, "2024-01-01", ""}, kGp, context(homed)).rule,
      "structure.attach_directly.technical_elsewhere");
  homed.technical_structure_id = "s1";
  EXPECT_TRUE(
      decide(s, AttachDirectly{"t8", Role::user, {}, "2024-01-01", ""}, kGp, context(homed)));
  State successor = s;
  successor.structure_id = "s2";
  successor.origin_structure_id = "s1";
  EXPECT_TRUE(decide(successor, AttachDirectly{"t8", Role::user, {}, "2024-01-01", ""}, kGp,
                     context(homed)));
  // Nor does a technical account ask to be attached anywhere.
  EXPECT_EQ(refused(s, RequestAttachment{"r8", {}, ""}, Caller{"t9", {}}, context(technical)).rule,
            "structure.request_attachment.technical");
  // A portal account may be attached to several structures.
  Context portal = context(kActivePortal);
  portal.account_attached_elsewhere = true;
  EXPECT_TRUE(decide(s, AttachDirectly{"p9", Role::user, {}, "2024-01-01", ""}, kGp, portal));
}

TEST(Structure, DatesAreDaysOfTheCalendar) {
  for (const char* good : {"2024-02-29", "2026-12-31", "2026-04-30", "2000-02-29"}) {
    EXPECT_TRUE(is_date(good)) << good;
  }
  for (const char* bad : {"2026-02-29", "2026-02-30", "2026-04-31", "1900-02-29", "2026-13-01",
                          "2026-00-10", "2026-01-00", "2026-1-01", "2026/01/01", ""}) {
    EXPECT_FALSE(is_date(bad)) << bad;
  }
}

TEST(Attachment, ServicesNoLongerActiveAreNotGranted) {
  State s = populated();
  Service old = service("OLD");
  old.valid_to = "2024-03-31";  // the fixture's today is 2024-06-01
  s = apply(s, AddService{old}, kGp);
  EXPECT_EQ(refused(s, AttachDirectly{"x", Role::user, {"OLD"}, "2024-01-01", ""}, kGp,
                    context(kActivePortal))
                .rule,
            "structure.attach_directly.service");
  EXPECT_EQ(refused(s, ValidateAttachment{"r1-1", Role::user, {"OLD"}, ""}, kGp).rule,
            "structure.validate_attachment.service");
  // Nor espaces on them: asked, or validated once the service expired.
  Context before_expiry = context(kActivePortal);
  before_expiry.today = "2024-03-01";
  s = apply(s, AttachDirectly{"usr", Role::user, {"OLD"}, "2024-01-01", ""}, kGp, before_expiry);
  s = apply(s, EnableEspace{"Factures reçues", "OLD", true, false}, kGp);
  EXPECT_EQ(refused(s, RequestSubscription{"q7", "Factures reçues", "OLD", true, false, ""}, kUser,
                    context(kActivePortal))
                .rule,
            "structure.request_subscription.service");
  s = apply(s, RequestSubscription{"q7", "Factures reçues", "OLD", true, false, ""}, kUser,
            before_expiry);
  EXPECT_EQ(refused(s, ValidateSubscription{"q7", true, false, ""}, kGp).rule,
            "structure.validate_subscription.service");
}

TEST(Structure, IdentifierTypesHaveOneSpelling) {
  EXPECT_TRUE(is_identifier_type("SIRET"));
  EXPECT_TRUE(is_identifier_type("HORS_UE"));
  EXPECT_TRUE(is_identifier_type("TVA2"));
  for (const char* bad : {"siret", "Siret", "SIRET ", " SIRET", "", "_X", "2X", "É", "SI-RET"}) {
    EXPECT_FALSE(is_identifier_type(bad)) << bad;
  }
  State s;
  s.structure_id = "s2";
  CreateStructure c{"siret", "55982366906140", false,        false,
                    false,   public_data(),    "2024-01-01", ""};
  c.data.moa_mode = 0;
  const auto r = refused(s, c, kSupport2);
  EXPECT_EQ(r.rule, "structure.create.identifier_type");
  EXPECT_EQ(r.field, "identifier_type");
}

TEST(Structure, LeavingMoaOnlyKeepsThePigpRuleOfItsGp) {
  State s = created();  // public, GP "gp"
  events::StructureData only = s.data;
  only.moa_mode = 3;
  s = apply(s, ChangeData{only}, kGp);
  // A portal GP, allowed while "exclusivement MOA".
  Context portal_gp = context();
  portal_gp.gp_is_pigp = false;
  events::StructureData with_moa = s.data;
  with_moa.moa_mode = 2;
  const auto r = refused(s, ChangeData{with_moa}, kGp, portal_gp);
  EXPECT_EQ(r.rule, "structure.change_data.pigp_required");
  EXPECT_EQ(r.field, "moa_mode");
  EXPECT_TRUE(decide(s, ChangeData{with_moa}, kGp, context()));  // a PIGP GP
  // Already out of "exclusivement MOA" (with a portal GP an earlier build let through): other
  // changes are not held back.
  State out = apply(s, ChangeData{with_moa}, kGp);
  events::StructureData moved = out.data;
  moved.city = "Lyon";
  EXPECT_TRUE(decide(out, ChangeData{moved}, kGp, portal_gp));
  // Other changes that keep "exclusivement MOA" need nothing of the GP.
  events::StructureData renamed = s.data;
  renamed.designation = "Autre nom";
  EXPECT_TRUE(decide(s, ChangeData{renamed}, kGp, portal_gp));
}

TEST(Structure, ADeactivatedStructureTakesNoCommand) {
  const State before = populated();
  auto closed = decide(before, DeactivateStructure{"Fermeture"}, kSupport2, context());
  ASSERT_TRUE(closed);
  // What was pending is refused in the same append, each requester told why: nothing is left
  // that no one could decide any more (an adversarial run found such requests in the inboxes).
  ASSERT_EQ(closed->size(), 3u);
  EXPECT_TRUE(std::holds_alternative<events::StructureDeactivated>((*closed)[0]));
  const auto& refused_attachment = std::get<events::AttachmentRefused>((*closed)[1]);
  EXPECT_EQ(refused_attachment.request_id, "r1-1");
  EXPECT_EQ(refused_attachment.reason, "Structure désactivée : Fermeture");
  EXPECT_EQ(std::get<events::SubscriptionRefused>((*closed)[2]).user_id, "usr");
  State s = fold(before, *closed);
  EXPECT_TRUE(s.attachment_requests.empty());
  EXPECT_TRUE(s.subscription_requests.empty());
  EXPECT_EQ(s.status, Status::inactive);
  EXPECT_EQ(refused(s, ChangeData{public_data()}, kGp).code, errc::wrong_status);
  EXPECT_EQ(refused(s, TransferMainManager{"gsw"}, kSupport2).code, errc::wrong_status);
  State none;
  EXPECT_EQ(refused(none, ChangeData{public_data()}, kGp).code, errc::not_found);
  // A request left pending by a deactivation of an earlier build (no closing refusals) can
  // still be refused, never validated.
  const State old_build = evolve(before, events::StructureDeactivated{"s1", "", "Fermeture"});
  EXPECT_EQ(refused(old_build, ValidateAttachment{"r1-1", Role::user, {"A"}, ""}, kGp).code,
            errc::wrong_status);
  EXPECT_TRUE(decide(old_build, RefuseAttachment{"r1-1", "Structure fermée"}, kGp, context()));
}

}  // namespace
}  // namespace chorus::domain::structure
