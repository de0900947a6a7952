// Categories as reference data and routing, through the HTTP API of the real server: a pair not
// in api/reference/categories.json is refused naming the field; "M-" sub-categories need a
// destination structure (optional service), are stored with it, and reach the destination's
// received-tickets queue ("Sollicitations reçues") instead of the support queues. Object-bound
// pairs name an imported reference object and go to its recipient; the received queues have
// their "unassigned" and "assigned to me" scopes.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/support/attachments.h"
#include "tests/support/server_process.h"

namespace chorus {
namespace {

using nlohmann::json;
using testing::ServerProcess;

constexpr const char* kBusiness = "M-Question pour une entité publique";

json form(const std::string& category, const std::string& sub_category,
          const std::string& destination = "", const std::string& service = "") {
  json f{{"emitting_structure_id", "emit-r"},
         {"category", category},
         {"sub_category", sub_category},
         {"title", "Où en est le paiement ?"},
         {"description", "Facture déposée le 3."}};
  if (!destination.empty()) f["destination_structure_id"] = destination;
  if (!service.empty()) f["destination_service"] = service;
  return f;
}

class TicketRouting : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() / ("chorus-routing-" + std::to_string(getpid()));
    server_ = new ServerProcess({"--data-dir", dir_.string()});
    testing::attach_users(server_->port(), "emit-r", {"alice"});
    testing::attach_users(server_->port(), "emit-gone", {"alice"});
    testing::attach_users(server_->port(), "dest-elsewhere", {"gpe"});
    token_ = testing::attach_users(server_->port(), "dest-r",
                                   {"gpd", "recv", "compta", "plain", "leaver", "reader"});
    // The destination has a service, and its "Sollicitations reçues" espace is granted (write)
    // to recv on the whole structure and to compta on COMPTA.
    client_ = server_->connect().release();
    const std::string base = "/v1/structures/dest-r";
    ok("gpd", "POST", base + "/services",
       json{{"code", "COMPTA"}, {"label", "Comptabilité"}, {"valid_from", "2020-01-01"}});
    for (const char* service : {"", "COMPTA"}) {
      json espace{{"espace", "Sollicitations reçues"}, {"read", true}, {"write", true}};
      if (*service != '\0') espace["service"] = service;
      ok("gpd", "POST", base + "/espaces", espace);
    }
    for (const auto& [user, service] :
         {std::pair{"recv", ""}, std::pair{"compta", "COMPTA"}, std::pair{"leaver", ""}}) {
      json ask{{"espace", "Sollicitations reçues"}, {"write", true}};
      if (*service != '\0') ask["service"] = service;
      const json sub = ok(user, "POST", base + "/subscription-requests", ask);
      ok("gpd", "POST",
         base + "/subscription-requests/" + sub.value("request_id", "") + "/validate",
         json{{"read", true}, {"write", true}});
    }
    // reader holds it to read ("Consultation") only, on the whole structure.
    const json sub = ok("reader", "POST", base + "/subscription-requests",
                        json{{"espace", "Sollicitations reçues"}, {"read", true}});
    ok("gpd", "POST", base + "/subscription-requests/" + sub.value("request_id", "") + "/validate",
       json{{"read", true}, {"write", false}});
    ok("recv", "GET", "/v1/me/attachments");  // the access view has seen the grants
  }
  static void TearDownTestSuite() {
    delete client_;
    delete server_;
    std::filesystem::remove_all(dir_);
  }
  struct Answer {
    int status = 0;
    json body;
  };
  static Answer act(const std::string& user, const std::string& method, const std::string& target,
                    const json& body = nullptr) {
    std::vector<std::string> roles;
    if (user.starts_with("sn1")) roles = {"support_n1"};
    if (user == "mailer" || user == "ops") roles = {"operator"};
    std::map<std::string, std::string> headers{
        {"Authorization", ServerProcess::token(user, roles)}};
    if (!token_.empty()) headers["X-Consistency-Token"] = token_;
    auto r = client_->request(method, target, body.is_null() ? "" : body.dump(), headers);
    if (!r) return {};
    Answer a{r->status, json::parse(r->body, nullptr, false)};
    if (a.body.is_object() && a.body.value("consistency_token", "") != "") {
      token_ = a.body.at("consistency_token").get<std::string>();
    }
    return a;
  }
  static json ok(const std::string& user, const std::string& method, const std::string& target,
                 const json& body = nullptr) {
    Answer a = act(user, method, target, body);
    EXPECT_LT(a.status, 300) << method << " " << target << ": " << a.body;
    return a.body;
  }
  static std::uint64_t received(const std::string& user, const std::string& query) {
    Answer a = act(user, "GET", "/v1/received/tickets?" + query);
    EXPECT_EQ(a.status, 200) << a.body;
    return a.body.value("total", std::uint64_t{0});
  }
  static std::vector<std::string> received_ids(const std::string& user, const std::string& query) {
    std::vector<std::string> out;
    for (const auto& row :
         act(user, "GET", "/v1/received/tickets?" + query).body.value("items", json::array())) {
      out.push_back(row.value("ticket_id", ""));
    }
    return out;
  }

  static inline std::filesystem::path dir_;
  static inline ServerProcess* server_ = nullptr;
  static inline std::string token_;
  static inline testing::HttpClient* client_ = nullptr;
};

TEST_F(TicketRouting, PairsOutsideTheReferenceTableAreRefusedNamingTheField) {
  auto unknown = act("alice", "POST", "/v1/tickets", form("Inconnue", "Connexion"));
  EXPECT_EQ(unknown.status, 422);
  EXPECT_EQ(unknown.body.value("rule", ""), "ticket.submit.category");
  EXPECT_EQ(unknown.body.value("field", ""), "category");
  auto mismatched = act("alice", "POST", "/v1/tickets/drafts", form("Technique", "Rattachement"));
  EXPECT_EQ(mismatched.status, 422);
  EXPECT_EQ(mismatched.body.value("rule", ""), "ticket.save_draft.sub_category");
  EXPECT_EQ(mismatched.body.value("field", ""), "sub_category");
  EXPECT_EQ(act("alice", "POST", "/v1/tickets", form("Structures", "Rattachement")).status, 201);
}

TEST_F(TicketRouting, BusinessTicketsNeedADestinationAndTechnicalOnesHaveNone) {
  auto missing = act("alice", "POST", "/v1/tickets", form("Factures émises", kBusiness));
  EXPECT_EQ(missing.status, 422);
  EXPECT_EQ(missing.body.value("field", ""), "destination_structure_id");
  EXPECT_EQ(missing.body.value("rule", ""), "ticket.submit.destination");
  auto technical = act("alice", "POST", "/v1/tickets", form("Technique", "API", "dest-r"));
  EXPECT_EQ(technical.status, 422);
  EXPECT_EQ(technical.body.value("field", ""), "destination_structure_id");
  // A draft may name its destination later; submitting it without one is refused.
  auto draft = act("alice", "POST", "/v1/tickets/drafts", form("Factures émises", kBusiness));
  ASSERT_EQ(draft.status, 201) << draft.body;
  const std::string draft_id = draft.body.value("ticket_id", "");
  EXPECT_EQ(act("alice", "POST", "/v1/tickets/" + draft_id + "/submit").body.value("field", ""),
            "destination_structure_id");

  // Only an existing structure, and one of its services, can receive it.
  auto nowhere = act("alice", "POST", "/v1/tickets", form("Factures émises", kBusiness, "nulle"));
  EXPECT_EQ(nowhere.body.value("rule", ""), "ticket.submit.destination_unknown") << nowhere.body;
  EXPECT_EQ(nowhere.body.value("field", ""), "destination_structure_id");
  auto no_service =
      act("alice", "POST", "/v1/tickets", form("Factures émises", kBusiness, "dest-r", "ACHATS"));
  EXPECT_EQ(no_service.body.value("field", ""), "destination_service") << no_service.body;

  auto sent =
      act("alice", "POST", "/v1/tickets", form("Factures émises", kBusiness, "dest-r", "COMPTA"));
  ASSERT_EQ(sent.status, 201) << sent.body;
  const std::string id = sent.body.value("ticket_id", "");
  const json detail = ok("alice", "GET", "/v1/tickets/" + id);
  EXPECT_EQ(detail.value("destination_structure_id", ""), "dest-r");
  EXPECT_EQ(detail.value("destination_service", ""), "COMPTA");
  // Support does not handle it: not in its queue, and the ticket does not exist for it.
  EXPECT_EQ(act("sn1", "GET", "/v1/tickets/" + id).status, 404);
  for (const auto& row :
       ok("sn1", "GET", "/v1/support/tickets?page_size=200").value("items", json::array())) {
    EXPECT_NE(row.value("ticket_id", ""), id);
  }
}

TEST_F(TicketRouting, TheDestinationReceivesItInItsQueuesUntilFermé) {
  const std::string whole =
      ok("alice", "POST", "/v1/tickets", form("Factures émises", kBusiness, "dest-r"))
          .value("ticket_id", "");
  const std::string to_compta =
      ok("alice", "POST", "/v1/tickets", form("Factures émises", kBusiness, "dest-r", "COMPTA"))
          .value("ticket_id", "");
  auto contains = [](const std::vector<std::string>& ids, const std::string& id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  };
  // The whole structure's queue holds both; the service's queue only the one sent to it.
  const auto all = received_ids("recv", "structure_id=dest-r&page_size=200");
  EXPECT_TRUE(contains(all, whole));
  EXPECT_TRUE(contains(all, to_compta));
  const auto compta = received_ids("compta", "structure_id=dest-r&service=COMPTA&page_size=200");
  EXPECT_FALSE(contains(compta, whole));
  EXPECT_TRUE(contains(compta, to_compta));
  // Paged and sorted like the support queues.
  const json page = ok("recv", "GET", "/v1/received/tickets?structure_id=dest-r&page_size=1");
  EXPECT_EQ(page.value("items", json::array()).size(), 1u);
  EXPECT_GE(page.value("total", 0), 2);
  // And searched like them: words of the title or description, a status.
  json marked = form("Factures émises", kBusiness, "dest-r", "COMPTA");
  marked["description"] = "Mandat introuvable.";
  const std::string searched = ok("alice", "POST", "/v1/tickets", marked).value("ticket_id", "");
  const std::vector<std::string> only{searched};
  EXPECT_EQ(received_ids("recv", "structure_id=dest-r&q=introuvable"), only);
  EXPECT_EQ(received_ids("compta", "structure_id=dest-r&service=COMPTA&q=MANDAT%20Introuvable"),
            only);
  EXPECT_EQ(received_ids("recv", "structure_id=dest-r&q=introuvable&status=Ouvert"), only);
  EXPECT_EQ(received("recv", "structure_id=dest-r&q=introuvable&status=R%C3%A9solu"), 0u);
  EXPECT_EQ(received("recv", "structure_id=dest-r&q=introuvable&status=Ferm%C3%A9"), 0u);
  EXPECT_EQ(received("recv", "structure_id=dest-r&q=paiement"), all.size() + 1);
  // Nobody else reads them: compta on the whole structure, a plain member, the emitter.
  EXPECT_EQ(act("compta", "GET", "/v1/received/tickets?structure_id=dest-r").status, 403);
  EXPECT_EQ(act("plain", "GET", "/v1/received/tickets?structure_id=dest-r").status, 403);
  EXPECT_EQ(act("alice", "GET", "/v1/received/tickets?structure_id=dest-r").status, 403);
  EXPECT_EQ(act("recv", "GET", "/v1/received/tickets").status, 400);
  EXPECT_EQ(act("plain", "GET", "/v1/tickets/" + whole).status, 404);

  // The recipient reads and answers it; once Fermé it leaves the queues.
  EXPECT_EQ(act("recv", "GET", "/v1/tickets/" + to_compta).status, 200);
  EXPECT_EQ(act("compta", "GET", "/v1/tickets/" + whole).status, 404);  // not its service
  const std::uint64_t before = received("recv", "structure_id=dest-r");
  ok("compta", "POST", "/v1/tickets/" + to_compta + "/solution", json{{"text", "Payée le 5."}});
  ok("alice", "POST", "/v1/tickets/" + to_compta + "/solution/accept");
  EXPECT_EQ(received("recv", "structure_id=dest-r"), before - 1);
  EXPECT_FALSE(contains(received_ids("compta", "structure_id=dest-r&service=COMPTA"), to_compta));
}

// "Consultation" of "Sollicitations reçues" reads the received tickets, their queue and their
// detail, and acts on none (DOMAIN.md: access per espace, to read and/or write).
TEST_F(TicketRouting, ReadersOfReceivedTicketsReadThemAndActOnNone) {
  const std::string id =
      ok("alice", "POST", "/v1/tickets", form("Factures émises", kBusiness, "dest-r"))
          .value("ticket_id", "");
  const auto listed = received_ids("reader", "structure_id=dest-r&page_size=200");
  EXPECT_NE(std::find(listed.begin(), listed.end(), id), listed.end());
  const Answer detail = act("reader", "GET", "/v1/tickets/" + id);
  ASSERT_EQ(detail.status, 200) << detail.body;
  for (const auto& [target, body] :
       {std::pair{std::string("/take"), json(nullptr)},
        std::pair{std::string("/solution"), json{{"text", "Payée."}}},
        std::pair{std::string("/information-requests"), json{{"text", "Quel mandat ?"}}}}) {
    const Answer refused = act("reader", "POST", "/v1/tickets/" + id + target, body);
    EXPECT_EQ(refused.status, 403) << target << ": " << refused.body;  // seen: not a 404
    EXPECT_TRUE(refused.body.value("rule", "").ends_with(".read_only")) << refused.body;
  }
  EXPECT_EQ(act("reader", "GET", "/v1/tickets/" + id).body, detail.body);  // nothing written
  // Its service's readers would not read another service's: plain members read nothing.
  EXPECT_EQ(act("plain", "GET", "/v1/tickets/" + id).status, 404);
  // A ticket sent elsewhere stays unknown to the reader, even through a form naming the
  // reader's own structure (its access was once read from the form: 403, which told).
  const std::string elsewhere =
      ok("alice", "POST", "/v1/tickets", form("Factures émises", kBusiness, "dest-elsewhere"))
          .value("ticket_id", "");
  EXPECT_EQ(act("reader", "GET", "/v1/tickets/" + elsewhere).status, 404);
  const json naming_mine = form("Factures émises", kBusiness, "dest-r");
  EXPECT_EQ(act("reader", "PUT", "/v1/tickets/" + elsewhere + "/draft", naming_mine).status, 404);
  EXPECT_EQ(act("reader", "POST", "/v1/tickets/" + elsewhere + "/submit", naming_mine).status, 404);
}

// A deactivated structure's tickets stay readable (DOMAIN.md), but it emits no new one.
TEST_F(TicketRouting, ADeactivatedStructureEmitsNoTicket) {
  json gone = form("Technique", "Connexion");
  gone["emitting_structure_id"] = "emit-gone";
  const std::string before = ok("alice", "POST", "/v1/tickets", gone).value("ticket_id", "");
  const std::string draft = ok("alice", "POST", "/v1/tickets/drafts", gone).value("ticket_id", "");
  ok("sn1-ops", "POST", "/v1/structures/emit-gone/deactivate", json{{"reason", "fusion"}});
  for (const auto& [target, body] :
       {std::pair{std::string("/v1/tickets"), gone},
        std::pair{std::string("/v1/tickets/drafts"), gone},
        std::pair{"/v1/tickets/" + draft + "/submit", json(nullptr)}}) {
    const Answer refused = act("alice", "POST", target, body);
    EXPECT_EQ(refused.status, 422) << target << ": " << refused.body;
    EXPECT_EQ(refused.body.value("field", ""), "emitting_structure_id") << refused.body;
  }
  EXPECT_EQ(act("alice", "GET", "/v1/tickets/" + before).status, 200);
}

// Signed-out mode: no token, an e-mail; the ticket gets a number and goes to support (or to
// its "M-" destination), its messages go to the address, and no "Tickets émis" lists it.
TEST_F(TicketRouting, SignedOutTicketsGetANumberAndAreRoutedButListedForNobody) {
  auto post = [](const json& body) {
    auto r = client_->request("POST", "/v1/public/tickets", body.dump());
    Answer a{r ? r->status : 0, r ? json::parse(r->body, nullptr, false) : json()};
    if (a.body.is_object() && a.body.value("consistency_token", "") != "") {
      token_ = a.body.at("consistency_token").get<std::string>();
    }
    return a;
  };
  json signed_out{{"email", "jean.dupont@example.fr"},
                  {"category", "Technique"},
                  {"sub_category", "Connexion"},
                  {"title", "Mot de passe oublié"},
                  {"description", "Je ne reçois pas le courriel."}};
  json bad = signed_out;
  bad["email"] = "jean.dupont";
  EXPECT_EQ(post(bad).body.value("field", ""), "email");
  bad = signed_out;
  bad["sub_category"] = "Inconnue";
  EXPECT_EQ(post(bad).body.value("field", ""), "sub_category");
  bad = signed_out;
  bad["emitting_structure_id"] = "emit-r";
  EXPECT_EQ(post(bad).status, 400);  // not a field of the signed-out form

  auto sent = post(signed_out);
  ASSERT_EQ(sent.status, 201) << sent.body;
  const std::string id = sent.body.value("ticket_id", "");
  EXPECT_TRUE(sent.body.value("number", "").starts_with("SOL-")) << sent.body;
  // Support handles it and sees the address; the number is searchable in its queue.
  const json detail = ok("sn1", "GET", "/v1/tickets/" + id);
  EXPECT_EQ(detail.value("emitter_email", ""), "jean.dupont@example.fr");
  EXPECT_EQ(detail.value("emitter_user_id", "?"), "");
  const json queue =
      ok("sn1", "GET", "/v1/support/tickets?number=" + sent.body.value("number", ""));
  EXPECT_EQ(queue.value("total", 0), 1) << queue;
  // The mailer has its creation notice, addressed to the e-mail.
  bool noticed = false;
  for (const auto& n : ok("mailer", "GET", "/v1/outbox?limit=1000").value("items", json::array())) {
    if (n.value("ticket_id", "") == id) {
      noticed = n.value("recipient_email", "") == "jean.dupont@example.fr" &&
                n.value("kind", "") == "ticket_created";
    }
  }
  EXPECT_TRUE(noticed);
  // No portal user has it among "Tickets émis"; a "M-" one goes to its destination.
  EXPECT_EQ(act("alice", "GET", "/v1/tickets/" + id).status, 404);
  json business = signed_out;
  business["category"] = "Factures émises";
  business["sub_category"] = kBusiness;
  EXPECT_EQ(post(business).body.value("field", ""), "destination_structure_id");
  business["destination_structure_id"] = "dest-r";
  auto routed = post(business);
  ASSERT_EQ(routed.status, 201) << routed.body;
  EXPECT_EQ(act("recv", "GET", "/v1/tickets/" + routed.body.value("ticket_id", "")).status, 200);
}

constexpr const char* kInvoicePair = "M-Question pour le destinataire de ma facture";

json object_form(const std::string& type, const std::string& number) {
  json f = form("Factures émises", kInvoicePair);
  if (!type.empty()) f["object_type"] = type;
  if (!number.empty()) f["object_number"] = number;
  return f;
}

bool has(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// The import of reference objects: support or operators only; each line is decided on its own
// and reported, a bad line refused with its rule and field while the others go through; a line
// already known with that recipient is unchanged.
TEST_F(TicketRouting, ReferenceObjectImportReportsEachLine) {
  const json objects{{"objects",
                      {{{"object_type", "facture"},
                        {"object_number", "FAC-IMP-1"},
                        {"issuer_structure_id", "emit-r"},
                        {"recipient_structure_id", "dest-r"},
                        {"recipient_service", "COMPTA"}},
                       {{"object_type", "demande_remboursement_tic"},
                        {"object_number", "TIC-IMP-2"},
                        {"issuer_structure_id", "emit-r"},
                        {"recipient_structure_id", "dest-r"}},
                       {{"object_type", "bon_de_commande"},
                        {"object_number", "X-3"},
                        {"issuer_structure_id", "emit-r"},
                        {"recipient_structure_id", "dest-r"}},
                       {{"object_type", "facture"},
                        {"object_number", ""},
                        {"issuer_structure_id", "emit-r"},
                        {"recipient_structure_id", "dest-r"}},
                       {{"object_type", "facture"},
                        {"object_number", "FAC-IMP-5"},
                        {"issuer_structure_id", "emit-r"},
                        {"recipient_structure_id", "nulle"}},
                       {{"object_type", "facture"},
                        {"object_number", "FAC-IMP-6"},
                        {"issuer_structure_id", "emit-r"},
                        {"recipient_structure_id", "dest-r"},
                        {"recipient_service", "ACHATS"}},
                       {{"object_type", "facture"},
                        {"object_number", "FAC-IMP-1"},
                        {"issuer_structure_id", "emit-r"},
                        {"recipient_structure_id", "dest-r"},
                        {"recipient_service", "COMPTA"}},
                       {{"object_type", "facture"},
                        {"object_number", "FAC-IMP-8"},
                        {"recipient_structure_id", "dest-r"}},
                       {{"object_type", "facture"},
                        {"object_number", "FAC-IMP-9"},
                        {"issuer_structure_id", "nulle"},
                        {"recipient_structure_id", "dest-r"}},
                       {{"object_type", "facture"},
                        {"object_number", "FAC-IMP-1"},
                        {"issuer_structure_id", "dest-r"},
                        {"recipient_structure_id", "dest-r"},
                        {"recipient_service", "COMPTA"}}}}};
  EXPECT_EQ(act("alice", "POST", "/v1/reference-object-imports", objects).status, 403);
  EXPECT_EQ(act("recv", "POST", "/v1/reference-object-imports", objects).status, 403);
  EXPECT_EQ(
      act("ops", "POST", "/v1/reference-object-imports", json{{"objects", json::array()}}).status,
      422);
  const json report = ok("sn1-ops", "POST", "/v1/reference-object-imports", objects);
  const json lines = report.value("results", json::array());
  ASSERT_EQ(lines.size(), 10u) << report;
  auto outcome = [&](std::size_t i) { return lines[i].value("outcome", ""); };
  auto field = [&](std::size_t i) {
    return lines[i].value("problem", json::object()).value("field", "");
  };
  EXPECT_EQ(outcome(0), "imported") << lines[0];
  EXPECT_EQ(outcome(1), "imported") << lines[1];
  EXPECT_EQ(outcome(2), "refused");
  EXPECT_EQ(field(2), "object_type") << lines[2];
  EXPECT_EQ(field(3), "object_number") << lines[3];
  EXPECT_EQ(field(4), "recipient_structure_id") << lines[4];
  EXPECT_EQ(field(5), "recipient_service") << lines[5];
  EXPECT_EQ(outcome(6), "unchanged") << lines[6];
  // The issuer is required and must be a known structure; another issuer replaces the first.
  EXPECT_EQ(field(7), "issuer_structure_id") << lines[7];
  EXPECT_EQ(field(8), "issuer_structure_id") << lines[8];
  EXPECT_EQ(outcome(9), "imported") << lines[9];
  EXPECT_EQ(lines[2].value("line", 0), 3);
  // An operator's script may send the same file again: nothing changes.
  const json again =
      ok("ops", "POST", "/v1/reference-object-imports", json{{"objects", {objects["objects"][1]}}});
  EXPECT_EQ(again.value("results", json::array()).at(0).value("outcome", ""), "unchanged") << again;
}

// Seed 002: a ticket about an invoice (TIC refund request, court-fee statement) names the
// object's type and number, which must exist for that type; it goes to the object's recipient.
TEST_F(TicketRouting, ObjectBoundTicketsGoToTheObjectsRecipient) {
  ok("ops", "POST", "/v1/reference-object-imports",
     json{{"objects",
           {{{"object_type", "facture"},
             {"object_number", "FAC-2024-0042"},
             {"issuer_structure_id", "emit-r"},
             {"recipient_structure_id", "dest-r"},
             {"recipient_service", "COMPTA"}}}}});
  const json counts_before = ok("alice", "GET", "/v1/me/tickets/counts");
  const std::uint64_t received_before = received("recv", "structure_id=dest-r");

  // An unknown number, a missing one, another type, an object on a pair about none: refused
  // naming the field, and nothing is written.
  auto unknown = act("alice", "POST", "/v1/tickets", object_form("facture", "FAC-2024-9999"));
  EXPECT_EQ(unknown.status, 422) << unknown.body;
  EXPECT_EQ(unknown.body.value("field", ""), "object_number");
  EXPECT_EQ(unknown.body.value("rule", ""), "ticket.submit.object_unknown");
  auto missing = act("alice", "POST", "/v1/tickets", object_form("facture", ""));
  EXPECT_EQ(missing.status, 422);
  EXPECT_EQ(missing.body.value("field", ""), "object_number") << missing.body;
  auto other_type =
      act("alice", "POST", "/v1/tickets", object_form("memoire_frais_justice", "FAC-2024-0042"));
  EXPECT_EQ(other_type.body.value("field", ""), "object_type") << other_type.body;
  json not_bound = form("Factures émises", kBusiness, "dest-r");
  not_bound["object_type"] = "facture";
  not_bound["object_number"] = "FAC-2024-0042";
  EXPECT_EQ(act("alice", "POST", "/v1/tickets", not_bound).body.value("field", ""), "object_type");
  json elsewhere = object_form("facture", "FAC-2024-0042");
  elsewhere["destination_structure_id"] = "emit-r";
  EXPECT_EQ(act("alice", "POST", "/v1/tickets", elsewhere).body.value("field", ""),
            "destination_structure_id");
  // The object was issued by emit-r: a user of another structure naming it gets exactly the
  // answer an unknown number gets, so probing numbers reveals neither the invoice nor its
  // recipient.
  json foreign = object_form("facture", "FAC-2024-0042");
  foreign["emitting_structure_id"] = "dest-r";
  auto probe = act("plain", "POST", "/v1/tickets", foreign);
  EXPECT_EQ(probe.status, 422) << probe.body;
  EXPECT_EQ(probe.body.value("rule", ""), unknown.body.value("rule", "?"));
  EXPECT_EQ(probe.body.value("field", ""), "object_number");
  EXPECT_EQ(probe.body.value("detail", ""), unknown.body.value("detail", "?")) << probe.body;
  EXPECT_EQ(act("plain", "POST", "/v1/tickets/drafts", foreign).status, 422);
  EXPECT_EQ(ok("alice", "GET", "/v1/me/tickets/counts"), counts_before);
  EXPECT_EQ(received("recv", "structure_id=dest-r"), received_before);

  // A known object: the ticket goes to its recipient (dest-r, COMPTA) and shows the object.
  auto sent = act("alice", "POST", "/v1/tickets", object_form("facture", "FAC-2024-0042"));
  ASSERT_EQ(sent.status, 201) << sent.body;
  const std::string id = sent.body.value("ticket_id", "");
  const json detail = ok("compta", "GET", "/v1/tickets/" + id);
  EXPECT_EQ(detail.value("object_type", ""), "facture");
  EXPECT_EQ(detail.value("object_number", ""), "FAC-2024-0042");
  EXPECT_EQ(detail.value("destination_structure_id", ""), "dest-r");
  EXPECT_EQ(detail.value("destination_service", ""), "COMPTA");
  EXPECT_TRUE(has(received_ids("compta", "structure_id=dest-r&service=COMPTA&page_size=200"), id));
  EXPECT_TRUE(has(received_ids("recv", "structure_id=dest-r&page_size=200"), id));
  // Not technical support's, and nobody outside the recipient reads it.
  for (const char* level : {"1"}) {
    for (const auto& row :
         ok("sn1", "GET", std::string("/v1/support/tickets?page_size=200&level=") + level)
             .value("items", json::array())) {
      EXPECT_NE(row.value("ticket_id", ""), id);
    }
  }
  EXPECT_EQ(act("sn1", "GET", "/v1/tickets/" + id).status, 404);
  EXPECT_EQ(act("plain", "GET", "/v1/tickets/" + id).status, 404);

  // A draft names its object; submitted as saved, it goes to the object's recipient too.
  auto draft = act("alice", "POST", "/v1/tickets/drafts", object_form("facture", "FAC-2024-0042"));
  ASSERT_EQ(draft.status, 201) << draft.body;
  const std::string draft_id = draft.body.value("ticket_id", "");
  EXPECT_EQ(act("alice", "POST", "/v1/tickets/" + draft_id + "/submit").status, 201);
  EXPECT_TRUE(
      has(received_ids("compta", "structure_id=dest-r&service=COMPTA&page_size=200"), draft_id));
  // Signed out, the same rule holds; and without a structure nobody is the object's issuer, so
  // a known number is refused like an unknown one.
  for (const char* number : {"FAC-2024-9999", "FAC-2024-0042"}) {
    json public_form = object_form("facture", number);
    public_form.erase("emitting_structure_id");
    public_form["email"] = "jean.dupont@example.fr";
    auto r = client_->request("POST", "/v1/public/tickets", public_form.dump());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 422) << number;
    EXPECT_EQ(json::parse(r->body, nullptr, false).value("field", ""), "object_number") << r->body;
  }
}

// The form's own reads: its category and sub-category lists, with their routing and object
// type, without a token (the signed-out form uses them too); and an object read back so that
// the form fills in "Organisation destinataire" (seed 002), for the object's issuer only.
TEST_F(TicketRouting, TheFormReadsItsCategoriesAndItsObjectsRecipient) {
  auto listed = client_->request("GET", "/v1/public/ticket-categories", "");
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->status, 200) << listed->body;
  std::map<std::string, json> pairs;  // "<category>/<sub-category>" -> the pair
  const json body = json::parse(listed->body);
  for (const auto& c : body.at("categories")) {
    for (const auto& s : c.at("sub_categories")) {
      pairs[c.value("name", "") + "/" + s.value("name", "")] = s;
    }
  }
  ASSERT_TRUE(pairs.contains(std::string("Factures émises/") + kInvoicePair)) << listed->body;
  const json& invoice = pairs[std::string("Factures émises/") + kInvoicePair];
  EXPECT_EQ(invoice.value("routing", ""), "business");
  EXPECT_EQ(invoice.value("object_type", ""), "facture");
  const json& general = pairs[std::string("Factures émises/") + kBusiness];
  EXPECT_EQ(general.value("routing", ""), "business");
  EXPECT_FALSE(general.contains("object_type")) << general;
  EXPECT_EQ(pairs["Technique/Connexion"].value("routing", ""), "support");

  ok("ops", "POST", "/v1/reference-object-imports",
     json{{"objects",
           {{{"object_type", "facture"},
             {"object_number", "FAC-2024-0777"},
             {"issuer_structure_id", "emit-r"},
             {"recipient_structure_id", "dest-r"},
             {"recipient_service", "COMPTA"}}}}});
  // A number holding '/' and '+' (invoice numbers do): an escaped '/' stays inside its
  // parameter, and a '+' in a path is a '+'.
  ok("ops", "POST", "/v1/reference-object-imports",
     json{{"objects",
           {{{"object_type", "facture"},
             {"object_number", "FA/2024+7"},
             {"issuer_structure_id", "emit-r"},
             {"recipient_structure_id", "dest-r"},
             {"recipient_service", "COMPTA"}}}}});
  const json slashed =
      ok("alice", "GET", "/v1/reference-objects/facture/FA%2F2024+7?emitting_structure_id=emit-r");
  EXPECT_EQ(slashed.value("object_number", ""), "FA/2024+7");
  const std::string path = "/v1/reference-objects/facture/FAC-2024-0777";
  const json back = ok("alice", "GET", path + "?emitting_structure_id=emit-r");
  EXPECT_EQ(back.value("object_type", ""), "facture");
  EXPECT_EQ(back.value("object_number", ""), "FAC-2024-0777");
  EXPECT_EQ(back.value("destination_structure_id", ""), "dest-r");
  EXPECT_EQ(back.value("destination_service", ""), "COMPTA");
  EXPECT_EQ(back.value("destination_designation", ""), "Structure dest-r");
  // What the form then sends goes where the read-back said.
  json sent_form = object_form("facture", "FAC-2024-0777");
  sent_form["destination_structure_id"] = back.value("destination_structure_id", "");
  sent_form["destination_service"] = back.value("destination_service", "");
  EXPECT_EQ(act("alice", "POST", "/v1/tickets", sent_form).status, 201);

  // Someone of another structure gets what an unknown number gets; a structure the caller is
  // not attached to is refused as the ticket's emitting structure would be.
  const auto unknown = act(
      "alice", "GET", "/v1/reference-objects/facture/FAC-2024-0778?emitting_structure_id=emit-r");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_EQ(unknown.body.value("field", ""), "object_number");
  const auto foreign = act("plain", "GET", path + "?emitting_structure_id=dest-r");
  EXPECT_EQ(foreign.status, 404) << foreign.body;
  EXPECT_EQ(foreign.body.value("rule", ""), unknown.body.value("rule", "?"));
  EXPECT_EQ(foreign.body.value("detail", ""), unknown.body.value("detail", "?"));
  const auto not_attached = act("plain", "GET", path + "?emitting_structure_id=emit-r");
  EXPECT_EQ(not_attached.status, 403) << not_attached.body;
  EXPECT_EQ(not_attached.body.value("field", ""), "emitting_structure_id");
  const auto unnamed = act("alice", "GET", path);
  EXPECT_EQ(unnamed.status, 400) << unnamed.body;
  EXPECT_EQ(unnamed.body.value("field", ""), "emitting_structure_id");
  const auto other_type =
      act("alice", "GET", "/v1/reference-objects/bon/FAC-2024-0777?emitting_structure_id=emit-r");
  EXPECT_EQ(other_type.status, 404) << other_type.body;
  EXPECT_EQ(other_type.body.value("field", ""), "object_type");
  auto anonymous = client_->request("GET", path + "?emitting_structure_id=emit-r", "");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
}

// "Sollicitations reçues" have "unassigned" and "assigned to me" like the support queues: a
// recipient takes a ticket ("prendre en charge") and releases it, and the lists follow.
TEST_F(TicketRouting, ReceivedQueuesHaveUnassignedAndMineScopes) {
  const std::string id =
      ok("alice", "POST", "/v1/tickets", form("Factures émises", kBusiness, "dest-r", "COMPTA"))
          .value("ticket_id", "");
  const std::string whole = "structure_id=dest-r&page_size=200&scope=";
  const std::string compta = "structure_id=dest-r&service=COMPTA&page_size=200&scope=";
  EXPECT_TRUE(has(received_ids("recv", whole + "unassigned"), id));
  EXPECT_TRUE(has(received_ids("compta", compta + "unassigned"), id));
  EXPECT_FALSE(has(received_ids("recv", whole + "mine"), id));
  EXPECT_EQ(act("recv", "GET", "/v1/received/tickets?structure_id=dest-r&scope=tous").status, 400);

  // Support does not handle business tickets, nor does a member without the espace.
  EXPECT_EQ(act("sn1", "POST", "/v1/tickets/" + id + "/take").status, 404);
  EXPECT_EQ(act("plain", "POST", "/v1/tickets/" + id + "/take").status, 404);

  ok("recv", "POST", "/v1/tickets/" + id + "/take");
  EXPECT_EQ(ok("recv", "GET", "/v1/tickets/" + id).value("assignee", ""), "recv");
  EXPECT_TRUE(has(received_ids("recv", whole + "mine"), id));
  EXPECT_FALSE(has(received_ids("recv", whole + "unassigned"), id));
  EXPECT_FALSE(has(received_ids("compta", compta + "unassigned"), id));
  EXPECT_FALSE(has(received_ids("compta", compta + "mine"), id));
  EXPECT_TRUE(has(received_ids("recv", whole + "all"), id));
  EXPECT_GE(act("compta", "POST", "/v1/tickets/" + id + "/take").status, 400);     // taken
  EXPECT_EQ(act("compta", "POST", "/v1/tickets/" + id + "/release").status, 403);  // not its

  ok("recv", "POST", "/v1/tickets/" + id + "/release");
  EXPECT_TRUE(has(received_ids("compta", compta + "unassigned"), id));
  EXPECT_FALSE(has(received_ids("recv", whole + "mine"), id));

  // The service's recipient takes it; its "mine" follows it until Fermé.
  ok("compta", "POST", "/v1/tickets/" + id + "/take");
  EXPECT_TRUE(has(received_ids("compta", compta + "mine"), id));
  const json page = ok("compta", "GET", "/v1/received/tickets?" + compta + "mine");
  EXPECT_EQ(page.value("scope", ""), "mine");
  ok("alice", "POST", "/v1/tickets/" + id + "/close", json{{"reason", "Réglé"}});
  EXPECT_FALSE(has(received_ids("compta", compta + "mine"), id));
  EXPECT_FALSE(has(received_ids("recv", whole + "unassigned"), id));
}
// A business ticket held by a recipient who then leaves the destination is not stuck: another
// recipient takes it over (nobody else could work it or release it, and managers do not
// reassign).
TEST_F(TicketRouting, ATicketHeldByARecipientWhoLeftIsTakenOver) {
  const std::string id =
      ok("alice", "POST", "/v1/tickets", form("Factures émises", kBusiness, "dest-r", "COMPTA"))
          .value("ticket_id", "");
  ok("leaver", "POST", "/v1/tickets/" + id + "/take");
  auto taken = act("compta", "POST", "/v1/tickets/" + id + "/take");
  EXPECT_EQ(taken.status, 409) << taken.body;
  EXPECT_EQ(taken.body.value("rule", ""), "ticket.take.assigned");

  ok("gpd", "DELETE", "/v1/structures/dest-r/members/leaver");
  ok("compta", "POST", "/v1/tickets/" + id + "/take");
  EXPECT_EQ(ok("compta", "GET", "/v1/tickets/" + id).value("assignee", ""), "compta");
  const std::string compta = "structure_id=dest-r&service=COMPTA&page_size=200&scope=mine";
  EXPECT_TRUE(has(received_ids("compta", compta), id));
  // Once it is the new holder's, it is theirs as any taken ticket is.
  EXPECT_EQ(act("recv", "POST", "/v1/tickets/" + id + "/take").status, 409);
}

}  // namespace
}  // namespace chorus
