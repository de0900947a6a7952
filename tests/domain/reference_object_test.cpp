// Reference objects and the object-bound pairs of the ticket form (seed 002), as pure rules.

#include "domain/reference_object.h"

#include <gtest/gtest.h>

#include "domain/ticket.h"

namespace chorus::domain {
namespace {

const Caller kSupport{"sn1", {.support_level1 = true}};
const Caller kAlice{"alice", {}};

TEST(ReferenceObject, ImportRecordsTheRecipientOnceAndRefusesBadLines) {
  namespace ro = reference_object;
  const ro::Import line{"facture", "FAC-1", "dest", "COMPTA", "s1"};
  ro::Context known{.recipient_exists = true, .issuer_exists = true};
  auto first = ro::decide({}, line, kSupport, known);
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ(first->size(), 1u);
  ro::State s = ro::evolve({}, first->front());
  EXPECT_EQ(s.recipient_service, "COMPTA");
  EXPECT_EQ(s.issuer_structure_id, "s1");
  // The same line again writes nothing; another recipient replaces it.
  EXPECT_TRUE(ro::decide(s, line, kSupport, known)->empty());
  EXPECT_EQ(ro::decide(s, {"facture", "FAC-1", "dest", "", "s1"}, kSupport, known)->size(), 1u);
  EXPECT_EQ(ro::decide(s, {"facture", "FAC-1", "dest", "COMPTA", "s2"}, kSupport, known)->size(),
            1u);

  EXPECT_EQ(ro::decide({}, line, kAlice, known).error().code, errc::forbidden);
  EXPECT_EQ(ro::decide({}, {"devis", "D-1", "dest", "", "s1"}, kSupport, known).error().field,
            "object_type");
  EXPECT_EQ(ro::decide({}, {"facture", "", "dest", "", "s1"}, kSupport, known).error().field,
            "object_number");
  EXPECT_EQ(ro::decide({}, {"facture", "F", "dest", ""}, kSupport, known).error().field,
            "issuer_structure_id");
  EXPECT_EQ(ro::decide({}, line, kSupport, {.recipient_exists = true}).error().field,
            "issuer_structure_id");
  EXPECT_EQ(ro::decide({}, line, kSupport, {.issuer_exists = true}).error().field,
            "recipient_service");
  // Any number gives a valid stream id, and two objects never share one.
  EXPECT_EQ(ro::stream_id("facture", "F1"), "object-facture-F1");
  EXPECT_NE(ro::stream_id("facture", "F-1"), ro::stream_id("facture", "F_1"));
  EXPECT_TRUE(ro::stream_id("facture", "F 1/2").starts_with("object-~"));
}

TEST(ReferenceObject, ABoundPairGoesToItsObjectsRecipient) {
  ticket::Categories categories;
  categories.add("Factures émises", "M-Question pour le destinataire de ma facture", "facture");
  categories.add("Factures émises", "M-Question pour une entité publique");
  ticket::Form form{"s1",    "Factures émises", "M-Question pour le destinataire de ma facture",
                    "Titre", "Description",     "",
                    "",      "facture",         "FAC-1"};
  ticket::State fresh;
  fresh.ticket_id = "t1";
  ticket::Context context{.attached_to_emitting_structure = true, .categories = &categories};

  auto unknown = ticket::decide(fresh, ticket::Submit{form, "SOL-1"}, kAlice, context);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().field, "object_number");
  EXPECT_EQ(unknown.error().rule, "ticket.submit.object_unknown");

  // Known, but issued by another structure (or by none recorded): the same answer as unknown.
  for (const char* issuer : {"s2", ""}) {
    context.object = ticket::Context::ObjectRecipient{"dest", "COMPTA", issuer};
    auto foreign = ticket::decide(fresh, ticket::Submit{form, "SOL-1"}, kAlice, context);
    ASSERT_FALSE(foreign);
    EXPECT_EQ(foreign.error().rule, unknown.error().rule);
    EXPECT_EQ(foreign.error().message, unknown.error().message);
  }

  context.object = ticket::Context::ObjectRecipient{"dest", "COMPTA", "s1"};
  auto sent = ticket::decide(fresh, ticket::Submit{form, "SOL-1"}, kAlice, context);
  ASSERT_TRUE(sent) << sent.error().message;
  const auto& e = std::get<events::TicketSubmitted>(sent->front());
  EXPECT_EQ(e.destination_structure_id, "dest");
  EXPECT_EQ(e.destination_service, "COMPTA");
  EXPECT_EQ(e.object_number, "FAC-1");
  const ticket::State s = ticket::evolve(fresh, sent->front());
  EXPECT_EQ(s.object_type, "facture");

  // The recipient takes and releases it; support does not handle it.
  ticket::Context recipient{.business_recipient = true};
  const Caller kRecv{"recv", {}};
  auto taken = ticket::decide(s, ticket::Take{}, kRecv, recipient);
  ASSERT_TRUE(taken) << taken.error().message;
  EXPECT_EQ(ticket::decide(ticket::evolve(s, taken->front()), ticket::Release{}, kRecv, recipient)
                ->size(),
            1u);
  EXPECT_EQ(ticket::decide(s, ticket::Take{}, kSupport, {}).error().code, errc::not_found);
  EXPECT_EQ(ticket::decide(s, ticket::Escalate{}, kRecv, recipient).error().code, errc::forbidden);

  // Object fields on a pair about no object, or another type: refused naming the field.
  form.sub_category = "M-Question pour une entité publique";
  form.destination_structure_id = "dest";
  EXPECT_EQ(ticket::decide(fresh, ticket::Submit{form, "SOL-2"}, kAlice, context).error().field,
            "object_type");
  form.sub_category = "M-Question pour le destinataire de ma facture";
  form.destination_structure_id.clear();
  form.object_type = "memoire_frais_justice";
  EXPECT_EQ(ticket::decide(fresh, ticket::Submit{form, "SOL-3"}, kAlice, context).error().field,
            "object_type");
}

}  // namespace
}  // namespace chorus::domain
