#include "domain/ticket.h"

#include <gtest/gtest.h>

namespace chorus::domain::ticket {
namespace {

const Caller kAlice{"alice", {}};
const Caller kBob{"bob", {}};
const Form kForm{"s1", "Technique", "Connexion", "Titre", "Description"};

State fold(State s, const std::vector<events::Payload>& payloads) {
  for (const auto& p : payloads) s = evolve(std::move(s), p);
  return s;
}

State fresh() {
  State s;
  s.ticket_id = "t1";
  return s;
}

TEST(Ticket, DraftThenSubmitMovesBrouillonToOuvert) {
  auto saved = decide(fresh(), SaveDraft{{"s1", "Technique", "Connexion", "", ""}}, kAlice, {true});
  ASSERT_TRUE(saved) << saved.error().message;
  State s = fold(fresh(), *saved);
  EXPECT_EQ(s.status, Status::draft);
  EXPECT_EQ(s.emitter_user_id, "alice");

  // Submitting the draft as saved lacks a title: the rule and the field say so.
  auto incomplete = decide(s, Submit{std::nullopt, "SOL-1"}, kAlice, {true});
  ASSERT_FALSE(incomplete);
  EXPECT_EQ(incomplete.error().rule, "ticket.submit.required");
  EXPECT_EQ(incomplete.error().field, "title");

  auto submitted = decide(s, Submit{kForm, "SOL-1"}, kAlice, {true});
  ASSERT_TRUE(submitted);
  s = fold(s, *submitted);
  EXPECT_EQ(s.status, Status::open);
  EXPECT_EQ(s.number, "SOL-1");
  EXPECT_EQ(s.version, 2u);
}

// Limits count characters, as their messages say: 200 accented letters are a valid title.
TEST(Ticket, LengthLimitsCountCharactersNotBytes) {
  std::string accented;
  for (int i = 0; i < 200; ++i) accented += "é";
  Form form = kForm;
  form.title = accented;
  EXPECT_TRUE(decide(fresh(), Submit{form, "SOL-1"}, kAlice, {true}));
  form.title += "é";
  EXPECT_EQ(decide(fresh(), Submit{form, "SOL-1"}, kAlice, {true}).error().rule,
            "ticket.submit.too_long");
  // A file name keeps its byte ceiling as well (a download's header carries it): 100 characters
  // of 4 bytes are over 255 bytes.
  State s = fold(fresh(), *decide(fresh(), Submit{kForm, "SOL-1"}, kAlice, {true}));
  std::string wide;
  for (int i = 0; i < 100; ++i) wide += "\U0001F600";
  auto named =
      decide(s, AddAttachment{"a1", wide, "image/png", 3, std::string(64, 'a')}, kAlice, {true});
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error().rule, "ticket.attachment.too_long");
}

TEST(Ticket, OuvertCannotBeEditedOrSubmittedAgain) {
  State s = fold(fresh(), *decide(fresh(), Submit{kForm, "SOL-1"}, kAlice, {true}));
  auto edit = decide(s, SaveDraft{kForm}, kAlice, {true});
  ASSERT_FALSE(edit);
  EXPECT_EQ(edit.error().code, errc::wrong_status);
  EXPECT_EQ(edit.error().rule, "ticket.save_draft.status");
  auto again = decide(s, Submit{kForm, "SOL-2"}, kAlice, {true});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().rule, "ticket.submit.status");
}

TEST(Ticket, SomeoneElsesDraftDoesNotExistForThem) {
  State s = fold(fresh(), *decide(fresh(), SaveDraft{kForm}, kAlice, {true}));
  auto r = decide(s, Submit{kForm, "SOL-1"}, kBob, {true});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::not_found);
}

TEST(Ticket, EmitterMustBeAttachedToTheEmittingStructure) {
  auto r = decide(fresh(), Submit{kForm, "SOL-1"}, kAlice, {false});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::forbidden);
  EXPECT_EQ(r.error().field, "emitting_structure_id");
}

// A deactivated structure's tickets stay readable (DOMAIN.md), but it emits no new one.
TEST(Ticket, AnInactiveEmittingStructureEmitsNothing) {
  Context inactive{true};
  inactive.emitting_structure_active = false;
  for (auto r : {decide(fresh(), Submit{kForm, "SOL-1"}, kAlice, inactive),
                 decide(fresh(), SaveDraft{kForm}, kAlice, inactive)}) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().field, "emitting_structure_id");
    EXPECT_TRUE(r.error().rule.ends_with(".emitting_structure_inactive")) << r.error().rule;
  }
}

TEST(Ticket, AuditorsReadButDoNotWrite) {
  auto r = decide(fresh(), SaveDraft{kForm}, Caller{"audrey", {.auditor = true}}, {true});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::forbidden);
}

TEST(Ticket, FieldLimits) {
  Form long_title = kForm;
  long_title.title = std::string(kTitleMax + 1, 'x');
  auto r = decide(fresh(), Submit{long_title, "SOL-1"}, kAlice, {true});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "ticket.submit.too_long");
  Form no_category = kForm;
  no_category.category.clear();
  EXPECT_EQ(decide(fresh(), SaveDraft{no_category}, kAlice, {true}).error().field, "category");
  EXPECT_EQ(decide(fresh(), Submit{std::nullopt, "SOL-1"}, kAlice, {true}).error().field, "form");
}

// Text is UTF-8 without control characters (line breaks and tabs are text), whatever reaches
// the rules: a NUL would cut a view key, a byte that is not UTF-8 cannot be shown. Blank is
// not filled in.
TEST(Ticket, TextFieldsArePlainText) {
  struct Case {
    std::string title;
    std::string description;
    const char* rule;  // nullptr: accepted
    const char* field;
  };
  const Case cases[] = {
      {std::string("a\0b", 3), "d", "ticket.submit.text", "title"},
      {"a\x1b[31m", "d", "ticket.submit.text", "title"},
      {"a\x7f", "d", "ticket.submit.text", "title"},
      {"a\xC2\x85", "d", "ticket.submit.text", "title"},  // C1 NEL
      {"caf\xC3", "d", "ticket.submit.text", "title"},
      {"t", "d\xED\xA0\x80", "ticket.submit.text", "description"},   // a surrogate
      {"facture\u202Egpj.exe", "d", "ticket.submit.text", "title"},  // right-to-left override
      {"t", "d\u2066isolé\u2069", "ticket.submit.text", "description"},
      {" \t\r\n", "d", "ticket.submit.required", "title"},
      // No-break, zero-width and ideographic spaces, a left-to-right mark: nothing to read.
      {"\u00a0\u200b\u3000\u200e", "d", "ticket.submit.required", "title"},
      {"t", "\ufeff\u2060 ", "ticket.submit.required", "description"},
      {"Café\tcrème", "ligne 1\r\nligne 2", nullptr, nullptr},
  };
  for (const auto& c : cases) {
    Form form = kForm;
    form.title = c.title;
    form.description = c.description;
    auto r = decide(fresh(), Submit{form, "SOL-1"}, kAlice, {true});
    if (c.rule == nullptr) {
      EXPECT_TRUE(r) << c.title;
      continue;
    }
    ASSERT_FALSE(r) << c.title;
    EXPECT_EQ(r.error().rule, c.rule) << c.title;
    EXPECT_EQ(r.error().field, c.field) << c.title;
  }
}

TEST(Ticket, RecommendedPriorityIsImpactTimesSeverity) {
  // DOMAIN.md: major+major 1; major+medium 2; medium+medium or major+minor 3; otherwise 4.
  const struct {
    const char* impact;
    const char* severity;
    int priority;
  } table[] = {{"major", "major", 1},   {"major", "medium", 2}, {"medium", "major", 2},
               {"medium", "medium", 3}, {"major", "minor", 3},  {"minor", "major", 3},
               {"medium", "minor", 4},  {"minor", "medium", 4}, {"minor", "minor", 4},
               {"huge", "minor", 0},    {"", "major", 0}};
  for (const auto& row : table) {
    EXPECT_EQ(recommended_priority(row.impact, row.severity), row.priority)
        << row.impact << " x " << row.severity;
  }
}

TEST(Ticket, FerméIsFinalForEveryCommand) {
  State s = fold(fresh(), *decide(fresh(), Submit{kForm, "SOL-1"}, kAlice, {true}));
  s = fold(s, *decide(s, Close{""}, kAlice, {true}));
  ASSERT_EQ(s.status, Status::closed);
  const Caller agent{"agent", {.support_level1 = true}};
  const std::vector<std::pair<Command, Caller>> all{
      {SaveDraft{kForm}, kAlice},
      {Submit{kForm, "SOL-2"}, kAlice},
      {DeleteDraft{}, kAlice},
      {RequestInformation{"?"}, agent},
      {ProvideInformation{"!"}, kAlice},
      {ProposeSolution{"x"}, agent},
      {AcceptSolution{}, kAlice},
      {RefuseSolution{"non"}, kAlice},
      {Close{""}, kAlice},
      {AddComment{"x"}, kAlice},
      {Take{}, agent},
      {Release{}, agent},
      {Reassign{"other"}, agent},
      {Escalate{}, agent},
      {SetPriority{"major", "major", std::nullopt, ""}, agent},
      {AddAttachment{"a1", "f.pdf", "application/pdf", 3, std::string(64, 'a')}, kAlice}};
  for (const auto& [command, caller] : all) {
    auto r = decide(s, command, caller, {true});
    ASSERT_FALSE(r) << "command #" << command.index();
    EXPECT_EQ(r.error().code, errc::wrong_status) << "command #" << command.index();
  }
}

// Reassigning names another agent: not the emitter, not the one already on it.
TEST(Ticket, ReassignNamesAnotherAgent) {
  State s = fold(fresh(), *decide(fresh(), Submit{kForm, "SOL-1"}, kAlice, {true}));
  const Caller agent{"agent", {.support_level1 = true}};
  EXPECT_EQ(decide(s, Reassign{kAlice.user_id}, agent, {true}).error().rule,
            "ticket.reassign.emitter");
  s = fold(s, *decide(s, Reassign{"agent2"}, agent, {true}));
  EXPECT_EQ(s.assignee, "agent2");
  EXPECT_EQ(decide(s, Reassign{"agent2"}, agent, {true}).error().rule, "ticket.reassign.unchanged");
}

// A support ticket held by an agent is worked by that agent: another asks for information,
// proposes a solution or escalates only once it is reassigned to them.
TEST(Ticket, AnotherAgentsTicketIsNotWorkedUntilReassigned) {
  State s = fold(fresh(), *decide(fresh(), Submit{kForm, "SOL-1"}, kAlice, {true}));
  const Caller agent{"agent", {.support_level1 = true}};
  const Caller agent2{"agent2", {.support_level1 = true}};
  s = fold(s, *decide(s, Take{}, agent, {true}));
  EXPECT_EQ(decide(s, RequestInformation{"?"}, agent2, {true}).error().rule,
            "ticket.request_information.assigned");
  EXPECT_EQ(decide(s, ProposeSolution{"fait"}, agent2, {true}).error().rule,
            "ticket.propose_solution.assigned");
  EXPECT_EQ(decide(s, Escalate{}, agent2, {true}).error().rule, "ticket.escalate.assigned");
  EXPECT_EQ(decide(s, Escalate{}, agent2, {true}).error().field, "assignee");
  // Its holder may; so may anyone once nobody holds it.
  EXPECT_TRUE(decide(s, ProposeSolution{"fait"}, agent, {true}));
  s = fold(s, *decide(s, Release{}, agent, {true}));
  EXPECT_TRUE(decide(s, ProposeSolution{"fait"}, agent2, {true}));
  EXPECT_TRUE(decide(s, Escalate{}, agent2, {true}));
}

// "Consultation" of "Sollicitations reçues": the reader sees a business ticket, so may not act
// on it (forbidden), where someone without any access is told it does not exist.
TEST(Ticket, AReaderOfReceivedTicketsActsOnNone) {
  const Form business{"s1",    "Factures émises", "M-Question pour une entité publique",
                      "Titre", "Description",     "dest"};
  State s = fold(fresh(), *decide(fresh(), Submit{business, "SOL-1"}, kAlice, {true}));
  Context reader{true};
  reader.business_reader = true;
  for (const Command& c : std::vector<Command>{Take{}, ProposeSolution{"fait"},
                                               RequestInformation{"?"}, AddComment{"vu"}}) {
    auto r = decide(s, c, kBob, reader);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::forbidden);
    EXPECT_TRUE(r.error().rule.ends_with(".read_only")) << r.error().rule;
  }
  EXPECT_EQ(decide(s, Take{}, kBob, {true}).error().code, errc::not_found);
}

// A business ticket whose holder has left its destination is taken over by another of its
// recipients; anyone else's still is not, nor is a support ticket (its agents reassign).
TEST(Ticket, ABusinessTicketWhoseHolderLeftIsTakenOver) {
  const Form business{"s1",    "Factures émises", "M-Question pour une entité publique",
                      "Titre", "Description",     "dest"};
  Context recipient{true};
  recipient.business_recipient = true;
  State s = fold(fresh(), *decide(fresh(), Submit{business, "SOL-1"}, kAlice, {true}));
  s = fold(s, *decide(s, Take{}, kBob, recipient));
  const Caller carol{"carol", {}};
  EXPECT_EQ(decide(s, Take{}, carol, recipient).error().rule, "ticket.take.assigned");
  Context left = recipient;
  left.assignee_left_destination = true;
  s = fold(s, *decide(s, Take{}, carol, left));
  EXPECT_EQ(s.assignee, "carol");

  State support = fold(fresh(), *decide(fresh(), Submit{kForm, "SOL-2"}, kAlice, {true}));
  const Caller agent{"agent", {.support_level1 = true}};
  const Caller agent2{"agent2", {.support_level1 = true}};
  support = fold(support, *decide(support, Take{}, agent, {true}));
  EXPECT_EQ(decide(support, Take{}, agent2, left).error().rule, "ticket.take.assigned");
}

// "Pièces jointes": the emitter on a draft and either side until Fermé; the description is
// checked (name, media type, size, hash), an outsider does not learn the ticket exists.
TEST(Ticket, AttachmentsUntilFerméWithACheckedDescription) {
  const AddAttachment file{"a1", "capture écran.png", "image/png", 10, std::string(64, 'b')};
  State s = fold(fresh(), *decide(fresh(), SaveDraft{kForm}, kAlice, {true}));
  const Caller agent{"agent", {.support_level1 = true}};
  EXPECT_EQ(decide(s, file, agent, {true}).error().code, errc::not_found);  // drafts are private
  auto on_draft = decide(s, file, kAlice, {true});
  ASSERT_TRUE(on_draft) << on_draft.error().message;
  s = fold(s, *on_draft);
  EXPECT_EQ(s.attachments, 1u);
  s = fold(s, *decide(s, Submit{std::nullopt, "SOL-1"}, kAlice, {true}));
  ASSERT_EQ(s.status, Status::open);
  EXPECT_TRUE(decide(s, file, agent, {true}));
  EXPECT_EQ(decide(s, file, kBob, {true}).error().code, errc::not_found);

  auto refused = [&](AddAttachment bad, const std::string& field) {
    auto r = decide(s, bad, kAlice, {true});
    ASSERT_FALSE(r) << field;
    EXPECT_EQ(r.error().code, errc::invalid_field) << field;
    EXPECT_EQ(r.error().field, field);
  };
  for (const char* name : {"", "../etc/passwd", "a\\b", "..", "a\nb"}) {
    AddAttachment bad = file;
    bad.name = name;
    refused(bad, "name");
  }
  for (const char* type : {"", "pdf", "/pdf", "text/", "text/plain\r\nX-Evil: 1"}) {
    AddAttachment bad = file;
    bad.media_type = type;
    refused(bad, "media_type");
  }
  AddAttachment with_charset = file;
  with_charset.media_type = "text/plain; charset=utf-8";
  EXPECT_TRUE(decide(s, with_charset, kAlice, {true}));
  AddAttachment empty = file;
  empty.size = 0;
  refused(empty, "size");
  AddAttachment upper = file;
  upper.sha256 = std::string(64, 'B');
  refused(upper, "sha256");

  s = fold(s, *decide(s, Close{""}, kAlice, {true}));
  auto closed = decide(s, file, kAlice, {true});
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().rule, "ticket.attachment.status");
}

}  // namespace
}  // namespace chorus::domain::ticket
