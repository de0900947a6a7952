// Structures, accounts, attachments, GP transfer, espaces and approvals through the HTTP API of
// the real server (issue 6): the launch-month incidents of seed 000, each handled, and the
// permission matrix: every command and query against every role and scope, allowed, 403, or
// 404 where existence itself must not leak.

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/attachments.h"
#include "tests/support/server_process.h"

namespace chorus {
namespace {

using nlohmann::json;
using testing::ServerProcess;

struct Answer {
  int status = 0;
  json body;
  std::map<std::string, std::string> headers;
  std::string raw;  // the body as sent (CSV exports)
};

json structure_body(const std::string& id, const std::string& gp, bool is_public = false) {
  json data{{"designation", "Structure " + id},
            {"address_line1", "1 rue de la Paix"},
            {"postal_code", "75002"},
            {"city", "Paris"},
            {"country", "FR"}};
  if (is_public) data["moa_mode"] = 1;
  return json{{"structure_id", id},
              {"identifier_type", "SIRET"},
              {"identifier_value", testing::siret_for(id)},
              {"is_public", is_public},
              {"pigp_managed", is_public},
              {"data", data},
              {"first_gp_user_id", gp}};
}

class StructureApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ =
        std::filesystem::temp_directory_path() / ("chorus-structures-" + std::to_string(getpid()));
    server_ = new ServerProcess({"--data-dir", dir_.string()});
  }
  static void TearDownTestSuite() {
    delete server_;
    std::filesystem::remove_all(dir_);
  }
  void SetUp() override { client_ = server_->connect(); }

  // Sends as `user` ("sn1..." level-1 support, "sn2..." level 2, "aud..." auditor, "mailer"
  // operator), after the views have seen the last write of this test.
  Answer act(const std::string& user, const std::string& method, const std::string& target,
             const json& body = nullptr) {
    std::vector<std::string> roles;
    if (user.starts_with("sn1")) roles = {"support_n1"};
    if (user.starts_with("sn2")) roles = {"support_n2"};
    if (user.starts_with("aud")) roles = {"auditor"};
    if (user == "mailer") roles = {"operator"};
    std::map<std::string, std::string> headers{
        {"Authorization", ServerProcess::token(user, roles)}};
    if (!token_.empty()) headers["X-Consistency-Token"] = token_;
    auto r = client_->request(method, target, body.is_null() ? "" : body.dump(), headers);
    if (!r) return {};
    Answer a{r->status, json::parse(r->body, nullptr, false), r->headers, r->body};
    if (a.body.is_object() && a.body.value("consistency_token", "") != "") {
      token_ = a.body["consistency_token"];
    }
    return a;
  }
  // Expects success and returns the body.
  json ok(const std::string& user, const std::string& method, const std::string& target,
          const json& body = nullptr) {
    auto a = act(user, method, target, body);
    EXPECT_LT(a.status, 300) << user << " " << method << " " << target << ": " << a.body;
    return a.body;
  }
  // Active accounts for `users` (each creates its own).
  void accounts(const std::vector<std::string>& users, bool activate = true) {
    for (const auto& u : users) {
      ok(u, "POST", "/v1/accounts",
         json{{"login_email", u + "@example.test"}, {"first_name", "T"}, {"last_name", u}});
      if (activate) ok(u, "POST", "/v1/accounts/" + u + "/activate");
    }
  }
  std::string request_attachment(const std::string& user, const std::string& s,
                                 const std::vector<std::string>& services) {
    auto b = ok(user, "POST", "/v1/structures/" + s + "/attachment-requests",
                json{{"services", services}, {"comment", "Merci"}});
    return b["request_ids"][0];
  }

  static inline std::filesystem::path dir_;
  static inline ServerProcess* server_ = nullptr;
  std::unique_ptr<testing::HttpClient> client_;
  std::string token_;
};

TEST_F(StructureApi, LaunchMonthIncidentsAreHandled) {
  // A private structure with two services, a GS of the whole structure and one scoped to COMPTA.
  accounts({"lm-gp", "lm-gsw", "lm-gss", "lm-a", "lm-b", "lm-c"});
  ok("sn1", "POST", "/v1/structures", structure_body("lm-s", "lm-gp"));
  for (const char* code : {"COMPTA", "ACHATS"}) {
    ok("lm-gp", "POST", "/v1/structures/lm-s/services",
       json{{"code", code}, {"label", code}, {"valid_from", "2020-01-01"}});
  }
  ok("lm-gp", "POST", "/v1/structures/lm-s/members", json{{"user_id", "lm-gsw"}, {"role", "gs"}});
  ok("lm-gp", "POST", "/v1/structures/lm-s/members",
     json{{"user_id", "lm-gss"}, {"role", "gs"}, {"services", {"COMPTA"}}});
  const std::string a = request_attachment("lm-a", "lm-s", {"COMPTA"});
  const std::string b = request_attachment("lm-b", "lm-s", {"ACHATS"});
  const std::string c = request_attachment("lm-c", "lm-s", {});

  // 1. "Cloisonnement des demandes par service": the scoped GS sees and decides only COMPTA.
  auto scoped = ok("lm-gss", "GET", "/v1/approvals");
  ASSERT_EQ(scoped["total"], 1) << scoped;
  EXPECT_EQ(scoped["items"][0]["request_id"], a);
  EXPECT_EQ(scoped["items"][0]["service"], "COMPTA");
  EXPECT_EQ(scoped["counts"][0]["pending"], 1);
  auto whole = ok("lm-gsw", "GET", "/v1/approvals?structure_id=lm-s");
  EXPECT_EQ(whole["total"], 3);
  EXPECT_EQ(whole["counts"][0]["pending"], 3);
  EXPECT_EQ(ok("lm-gsw", "GET", "/v1/approvals?q=lm-b")["total"], 1);
  EXPECT_EQ(ok("lm-gsw", "GET", "/v1/approvals?page=2&page_size=2")["items"].size(), 1u);
  // A keyset cursor: page 2 from page 1's next_cursor is page 2 by number.
  auto first = ok("lm-gsw", "GET", "/v1/approvals?page_size=2");
  ASSERT_TRUE(first.contains("next_cursor")) << first;
  EXPECT_EQ(ok("lm-gsw", "GET",
               "/v1/approvals?page_size=2&after=" + first.value("next_cursor", ""))["items"],
            ok("lm-gsw", "GET", "/v1/approvals?page=2&page_size=2")["items"]);
  EXPECT_EQ(act("lm-gsw", "GET", "/v1/approvals?after=zz").status, 400);
  EXPECT_EQ(act("lm-gsw", "GET", "/v1/approvals?q=%21%21").status, 400);
  // Search: case- and accent-insensitive, by the beginning of a word or an id.
  EXPECT_EQ(ok("lm-gsw", "GET", "/v1/approvals?q=MERCI")["total"], 3);
  EXPECT_EQ(ok("lm-gsw", "GET", "/v1/approvals?q=lm-")["total"], 3);
  EXPECT_EQ(ok("lm-gss", "GET", "/v1/approvals?q=lm-")["total"], 1);
  // Support sees every structure with pending requests, each with its count, and pages
  // through them by number or by cursor alike.
  auto support = ok("sn1", "GET", "/v1/approvals?page_size=200");
  bool listed = false;
  for (const auto& count : support["counts"]) {
    listed =
        listed || (count.value("structure_id", "") == "lm-s" && count.value("pending", 0) == 3);
  }
  EXPECT_TRUE(listed) << support;
  std::vector<std::string> by_page, by_cursor;
  for (int p = 1; p <= 200; ++p) {
    auto page = ok("sn1", "GET", "/v1/approvals?page_size=2&page=" + std::to_string(p));
    for (const auto& item : page["items"]) by_page.push_back(item.value("request_id", ""));
    if (page["items"].size() < 2) break;
  }
  std::string cursor;
  for (int p = 1; p <= 200; ++p) {
    auto page =
        ok("sn1", "GET", "/v1/approvals?page_size=2" + (cursor.empty() ? "" : "&after=" + cursor));
    for (const auto& item : page["items"]) by_cursor.push_back(item.value("request_id", ""));
    cursor = page.value("next_cursor", "");
    if (cursor.empty()) break;
  }
  EXPECT_EQ(by_page, by_cursor);
  EXPECT_EQ(by_page.size(), support.value("total", 0u));
  EXPECT_EQ(
      act("lm-gss", "POST", "/v1/structures/lm-s/attachment-requests/" + b + "/validate").status,
      404);
  EXPECT_EQ(act("lm-gss", "POST", "/v1/structures/lm-s/attachment-requests/" + c + "/refuse",
                json{{"reason", "Non"}})
                .status,
            404);
  // In bulk, a result per request: COMPTA accepted, the others unknown to this manager.
  auto bulk = ok("lm-gss", "POST", "/v1/structures/lm-s/attachment-requests/decisions",
                 json{{"decisions",
                       {{{"request_id", a}, {"decision", "validate"}, {"role", "user"}},
                        {{"request_id", b}, {"decision", "refuse"}, {"reason", "Non"}}}}});
  EXPECT_EQ(bulk["results"][0]["outcome"], "accepted") << bulk;
  EXPECT_EQ(bulk["results"][1]["outcome"], "refused");
  EXPECT_EQ(bulk["results"][1]["problem"]["status"], 404);
  EXPECT_EQ(ok("lm-gss", "GET", "/v1/approvals")["total"], 0);
  ok("lm-gsw", "POST", "/v1/structures/lm-s/attachment-requests/" + b + "/refuse",
     json{{"reason", "Service fermé"}});
  // The history: validated and refused, with who and the comment; the scoped GS sees COMPTA's.
  auto history = ok("lm-gp", "GET", "/v1/structures/lm-s/history?page_size=2");
  EXPECT_EQ(history["items"][0]["outcome"], "Refusée") << history;
  EXPECT_EQ(history["items"][0]["by_user_id"], "lm-gsw");
  EXPECT_EQ(history["items"][0]["comment"], "Service fermé");
  EXPECT_EQ(history["items"][1]["outcome"], "Validée");
  // The next page from the cursor is the second page.
  auto next = ok("lm-gp", "GET",
                 "/v1/structures/lm-s/history?page_size=2&before=" + history["next_before"].dump());
  auto second = ok("lm-gp", "GET", "/v1/structures/lm-s/history?page_size=2&page=2");
  EXPECT_EQ(next["items"], second["items"]);
  EXPECT_EQ(next["items"].size(), 2u);
  const json scoped_history = ok("lm-gss", "GET", "/v1/structures/lm-s/history");
  for (const auto& row : scoped_history["items"]) {
    EXPECT_EQ(row["service"], "COMPTA") << row;
  }
  // Its rows come from COMPTA's own range: the service added, the request validated.
  EXPECT_EQ(scoped_history["total"], 2) << scoped_history;
  EXPECT_EQ(scoped_history["items"].size(), 2u);

  // 2. PIGP import (FAR1002): GPs deactivated; the structure without a replacement is reported
  // and keeps its GP, the rest goes through.
  ok("sn2", "POST", "/v1/pigp-imports",
     json{{"accounts",
           {{{"user_id", "pg-a"},
             {"login_email", "a@pigp.test"},
             {"first_name", "A"},
             {"last_name", "A"}},
            {{"user_id", "pg-b"},
             {"login_email", "b@pigp.test"},
             {"first_name", "B"},
             {"last_name", "B"}},
            {{"user_id", "pg-r"},
             {"login_email", "r@pigp.test"},
             {"first_name", "R"},
             {"last_name", "R"}}}}});
  for (const char* u : {"pg-a", "pg-b", "pg-r"}) {
    ok(u, "POST", std::string("/v1/accounts/") + u + "/activate");
  }
  // A file beyond 10,000 lines (all kinds together) is refused whole: nothing is applied.
  {
    json too_many = json::array();
    for (int i = 0; i < 10001; ++i) too_many.push_back("pg-x" + std::to_string(i));
    auto refused = act("sn2", "POST", "/v1/pigp-imports", json{{"deactivate_user_ids", too_many}});
    EXPECT_EQ(refused.status, 422) << refused.raw;
    EXPECT_EQ(refused.body.value("rule", ""), "request.bulk_size");
  }
  ok("sn1", "POST", "/v1/structures", structure_body("pub-1", "pg-a", true));
  ok("sn1", "POST", "/v1/structures", structure_body("pub-2", "pg-b", true));
  auto import =
      ok("sn2", "POST", "/v1/pigp-imports",
         json{{"deactivate_user_ids", {"pg-a", "pg-b"}},
              {"replacements", {{{"structure_id", "pub-1"}, {"new_gp_user_id", "pg-r"}}}}});
  bool reported = false;
  for (const auto& line : import["report"]) {
    EXPECT_NE(line.value("structure_id", ""), "pub-1") << line;
    reported = reported || line.value("structure_id", "") == "pub-2" ||
               line.value("user_id", "") == "pg-b";
  }
  EXPECT_TRUE(reported) << import;
  EXPECT_EQ(ok("sn1", "GET", "/v1/structures/pub-1")["gp_user_id"], "pg-r");
  EXPECT_EQ(ok("sn1", "GET", "/v1/structures/pub-2")["gp_user_id"], "pg-b");
  auto transfer = ok("sn1", "GET", "/v1/structures/pub-1/history")["items"][0];
  EXPECT_EQ(transfer["kind"], "transfer");
  EXPECT_EQ(transfer["by_support"], true);
  EXPECT_EQ(transfer["from_user_id"], "pg-a");
  // pg-a left; pg-b is still active (it can still act as GP).
  EXPECT_EQ(act("pg-a", "POST", "/v1/accounts/pg-a/reactivate").status, 201);
  EXPECT_EQ(act("pg-b", "POST", "/v1/accounts/pg-b/reactivate").status, 409);

  // 3. Support transfers the GP role of a structure whose GP left; a GS cannot.
  EXPECT_EQ(
      act("lm-gsw", "POST", "/v1/structures/lm-s/main-manager", json{{"new_gp_user_id", "lm-gsw"}})
          .status,
      403);
  ok("sn2", "POST", "/v1/structures/lm-s/main-manager", json{{"new_gp_user_id", "lm-a"}});
  auto mine = ok("lm-a", "GET", "/v1/me/attachments");
  ASSERT_EQ(mine["items"].size(), 1u);
  EXPECT_EQ(mine["items"][0]["role"], "gp");
  EXPECT_EQ(ok("lm-gp", "GET", "/v1/me/attachments")["items"][0]["role"], "user");

  // Every decision, direct attachment and transfer waits in the outbox for the mailer.
  std::map<std::string, int> kinds;
  const json outbox = ok("mailer", "GET", "/v1/outbox?limit=1000");
  for (const auto& n : outbox["items"]) {
    if (n.value("structure_id", "") == "lm-s") ++kinds[n["kind"].get<std::string>()];
  }
  EXPECT_EQ(kinds["attachment_validated"], 1);
  EXPECT_EQ(kinds["attachment_refused"], 1);
  EXPECT_EQ(kinds["user_attached"], 2);
  EXPECT_EQ(kinds["main_manager_named"], 2);  // the first GP, then lm-a
  EXPECT_EQ(kinds["main_manager_replaced"], 1);

  // 4. Two accounts on one keep-alive connection each see only their own data, every time.
  for (int round = 0; round < 3; ++round) {
    auto gss = act("lm-gss", "GET", "/v1/me/attachments");
    auto c_user = act("lm-c", "GET", "/v1/me/attachments");
    ASSERT_EQ(gss.body["items"].size(), 1u);
    EXPECT_EQ(gss.body["items"][0]["services"], json({"COMPTA"}));
    EXPECT_EQ(c_user.body["items"].size(), 0u);
    ASSERT_EQ(c_user.body["pending_requests"].size(), 1u);
    EXPECT_EQ(c_user.body["pending_requests"][0]["request_id"], c);
    EXPECT_EQ(gss.headers["cache-control"], "no-store");
    EXPECT_EQ(act("lm-c", "GET", "/v1/approvals").body["total"], 0);
    EXPECT_EQ(act("lm-gss", "GET", "/v1/approvals").body["total"], 0);
  }
}

TEST_F(StructureApi, TicketsNeedAnAttachmentToTheEmittingStructure) {
  accounts({"tk-gp", "tk-out"});
  ok("sn1", "POST", "/v1/structures", structure_body("tk-s", "tk-gp"));
  const json form{{"emitting_structure_id", "tk-s"},
                  {"category", "Technique"},
                  {"sub_category", "Connexion"},
                  {"title", "Connexion impossible"},
                  {"description", "Mot de passe refusé."}};
  EXPECT_EQ(act("tk-gp", "POST", "/v1/tickets", form).status, 201);
  auto refused = act("tk-out", "POST", "/v1/tickets", form);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.body["rule"], "ticket.submit.emitting_structure");
  ok("tk-gp", "POST", "/v1/structures/tk-s/members", json{{"user_id", "tk-out"}});
  EXPECT_EQ(act("tk-out", "POST", "/v1/tickets", form).status, 201);
  ok("tk-gp", "DELETE", "/v1/structures/tk-s/members/tk-out");
  EXPECT_EQ(act("tk-out", "POST", "/v1/tickets/drafts", form).status, 403);
}

TEST_F(StructureApi, AccountsAndStructureCommands) {
  accounts({"ac-gp", "ac-heir", "ac-tech-owner"});
  ok("sn1", "POST", "/v1/structures", structure_body("ac-s", "ac-gp"));
  ok("sn1", "POST", "/v1/structures", structure_body("ac-s2", "ac-gp"));
  // The same identifier twice: refused.
  auto twice = structure_body("ac-s3", "ac-gp");
  twice["identifier_value"] = testing::siret_for("ac-s");
  EXPECT_EQ(act("sn1", "POST", "/v1/structures", twice).status, 422);
  // A batch import: one line refused (bad SIRET), the others created.
  auto bad = structure_body("imp-2", "");
  bad["identifier_value"] = "12345678901234";
  auto imported = ok("sn1", "POST", "/v1/structure-imports",
                     json{{"structures", {structure_body("imp-1", ""), bad}}});
  EXPECT_EQ(imported["results"][0]["outcome"], "created") << imported;
  EXPECT_EQ(imported["results"][1]["outcome"], "refused");
  EXPECT_EQ(imported["results"][1]["problem"]["field"], "identifier_value");
  // Search by identifier and by name.
  EXPECT_EQ(ok("ac-gp", "GET",
               "/v1/structures?identifier_value=" +
                   testing::siret_for("imp-1"))["items"][0]["structure_id"],
            "imp-1");
  EXPECT_GE(ok("ac-gp", "GET", "/v1/structures?name=structure%20ac-")["items"].size(), 2u);
  // Data and services.
  auto data = structure_body("ac-s", "")["data"];
  data["designation"] = "Nouvelle désignation";
  ok("ac-gp", "PUT", "/v1/structures/ac-s/data", data);
  ok("ac-gp", "POST", "/v1/structures/ac-s/services",
     json{{"code", "RH"}, {"label", "RH"}, {"valid_from", "2020-01-01"}});
  ok("ac-gp", "PUT", "/v1/structures/ac-s/services/RH",
     json{{"label", "Ressources humaines"}, {"valid_from", "2020-01-01"}});
  EXPECT_EQ(act("ac-gp", "DELETE", "/v1/structures/ac-s/services/FACTURES_PUBLIQUES").status, 422);
  ok("ac-gp", "DELETE", "/v1/structures/ac-s/services/RH");
  auto detail = ok("ac-gp", "GET", "/v1/structures/ac-s");
  EXPECT_EQ(detail["data"]["designation"], "Nouvelle désignation");
  EXPECT_EQ(detail["services"].size(), 1u);
  // A GP leaves: a new GP for each structure managed, in the same command.
  auto missing =
      act("ac-gp", "POST", "/v1/accounts/ac-gp/deactivate",
          json{{"replacements", {{{"structure_id", "ac-s"}, {"new_gp_user_id", "ac-heir"}}}}});
  EXPECT_EQ(missing.status, 422) << missing.body;
  EXPECT_EQ(missing.body["rule"], "account.deactivate.replacement_missing");
  ok("ac-gp", "POST", "/v1/accounts/ac-gp/deactivate",
     json{{"replacements",
           {{{"structure_id", "ac-s"}, {"new_gp_user_id", "ac-heir"}},
            {{"structure_id", "ac-s2"}, {"new_gp_user_id", "ac-heir"}}}}});
  EXPECT_EQ(ok("ac-heir", "GET", "/v1/structures/ac-s")["gp_user_id"], "ac-heir");
  EXPECT_EQ(ok("ac-heir", "GET", "/v1/structures/ac-s2")["gp_user_id"], "ac-heir");
  // Deactivated, its token still valid: it acts no more, as a member or a manager, and reads
  // nothing, but may reactivate itself.
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/structures/ac-s/members"},
           {"GET", "/v1/me/attachments"},
           {"POST", "/v1/structures/ac-s/attachment-requests"}}) {
    auto refused = act("ac-gp", method, target, method == "POST" ? json::object() : json());
    EXPECT_EQ(refused.status, 403) << target << " " << refused.raw;
    EXPECT_EQ(refused.body.value("rule", ""), "account.deactivated") << target;
  }
  ok("ac-gp", "POST", "/v1/accounts/ac-gp/reactivate");
  EXPECT_EQ(act("ac-gp", "GET", "/v1/me/attachments").status, 200);
  // Activation e-mail resent by a manager of a structure the user belongs to.
  accounts({"ac-new"}, false);
  ok("ac-heir", "POST", "/v1/structures/ac-s/members", json{{"user_id", "ac-new"}});
  ok("ac-heir", "POST", "/v1/accounts/ac-new/activation-resend", json{{"structure_id", "ac-s"}});
  // The former GP, now a simple user, does not see the structure's users: told 404, as for an
  // unknown account (existence must not leak).
  EXPECT_EQ(
      act("ac-gp", "POST", "/v1/accounts/ac-new/activation-resend", json{{"structure_id", "ac-s"}})
          .status,
      404);
  // A technical account, created and attached by the GP, its password reset recorded.
  auto tech = ok("ac-heir", "POST", "/v1/accounts",
                 json{{"technical", true},
                      {"structure_id", "ac-s"},
                      {"login_email", "api@example.test"},
                      {"last_name", "API"}});
  const std::string tech_id = tech["user_id"];
  ok("ac-heir", "POST", "/v1/structures/ac-s/members", json{{"user_id", tech_id}});
  ok("ac-heir", "POST", "/v1/structures/ac-s/members/" + tech_id + "/password-reset");
  // Users of the structure, searched and exported.
  auto users = ok("ac-heir", "GET", "/v1/structures/ac-s/members?q=ac-new");
  ASSERT_EQ(users["items"].size(), 1u);
  EXPECT_EQ(users["items"][0]["status"], "En cours d'activation");
  EXPECT_EQ(act("ac-heir", "GET", "/v1/structures/ac-s/members?format=xml").status, 400);
  auto csv = act("ac-heir", "GET", "/v1/structures/ac-s/members?format=csv");
  EXPECT_EQ(csv.status, 200);
  EXPECT_EQ(csv.headers["content-type"], "text/csv; charset=utf-8");
  // The tickets' dialect: BOM, ';', quoted cells, French headers.
  EXPECT_TRUE(csv.raw.starts_with("\xEF\xBB\xBF\"Identifiant\";\"Adresse e-mail\";")) << csv.raw;
  EXPECT_NE(csv.raw.find("\"ac-new\";"), std::string::npos) << csv.raw;
  // SIRET change: a duplicate under the new identifier, the old one deactivated.
  auto changed = ok("ac-heir", "POST", "/v1/structures/ac-s/identifier",
                    json{{"identifier_value", testing::siret_for("ac-s-new")}});
  const std::string successor = changed["new_structure_id"];
  auto old_detail = ok("ac-heir", "GET", "/v1/structures/ac-s");
  EXPECT_EQ(old_detail["status"], "inactive");
  EXPECT_EQ(old_detail["successor_structure_id"], successor);
  auto new_detail = ok("ac-heir", "GET", "/v1/structures/" + successor);
  EXPECT_EQ(new_detail["origin_structure_id"], "ac-s");
  EXPECT_EQ(new_detail["gp_user_id"], "ac-heir");
  // The technical account is not copied.
  const json successor_members = ok("ac-heir", "GET", "/v1/structures/" + successor + "/members");
  for (const auto& m : successor_members["items"]) {
    EXPECT_NE(m["user_id"], tech_id);
  }
  // Its GP attaches it again there: the deactivated origin holds it no more.
  ok("ac-heir", "POST", "/v1/structures/" + successor + "/members", json{{"user_id", tech_id}});
  // Espaces and subscriptions, with the history's "Désactivée".
  ok("ac-heir", "POST", "/v1/structures/ac-s2/espaces",
     json{{"espace", "Factures reçues"}, {"read", true}, {"write", true}});
  ok("ac-heir", "POST", "/v1/structures/ac-s2/members", json{{"user_id", "ac-new"}});
  ok("ac-new", "POST", "/v1/accounts/ac-new/activate");
  auto sub = ok("ac-new", "POST", "/v1/structures/ac-s2/subscription-requests",
                json{{"espace", "Factures reçues"}, {"write", true}, {"comment", "svp"}});
  ok("ac-heir", "POST",
     "/v1/structures/ac-s2/subscription-requests/" + sub["request_id"].get<std::string>() +
         "/validate",
     json{{"read", true}, {"write", false}});
  auto rights = ok("ac-new", "GET", "/v1/me/attachments")["items"];
  bool granted = false;
  for (const auto& s : rights) {
    for (const auto& e : s["espaces"]) {
      granted =
          granted || (e["espace"] == "Factures reçues" && e["read"] == true && e["write"] == false);
    }
  }
  EXPECT_TRUE(granted) << rights;
  auto sub2 = ok("ac-new", "POST", "/v1/structures/ac-s2/subscription-requests",
                 json{{"espace", "Factures reçues"}, {"write", true}});
  // A bulk line takes the single route's fields, no more: a role on a subscription is refused,
  // not ignored, and nothing is decided.
  auto with_role =
      act("ac-heir", "POST", "/v1/structures/ac-s2/subscription-requests/decisions",
          json{{"decisions",
                {{{"request_id", sub2["request_id"]}, {"decision", "validate"}, {"role", "gs"}}}}});
  EXPECT_EQ(with_role.status, 400) << with_role.raw;
  EXPECT_EQ(with_role.body.value("rule", ""), "request.unknown_field");
  ok("ac-heir", "POST", "/v1/structures/ac-s2/subscription-requests/decisions",
     json{{"decisions",
           {{{"request_id", sub2["request_id"]}, {"decision", "refuse"}, {"reason", "Non"}}}}});
  EXPECT_EQ(ok("ac-heir", "GET", "/v1/structures/ac-s2/history")["items"][0]["outcome"],
            "Désactivée");
  // Removal in bulk: a result per user, never the GP.
  auto removals = ok("ac-heir", "POST", "/v1/structures/ac-s2/members/removals",
                     json{{"user_ids", {"ac-new", "ac-heir"}}});
  EXPECT_EQ(removals["results"][0]["outcome"], "accepted");
  EXPECT_EQ(removals["results"][1]["outcome"], "refused");
  EXPECT_EQ(removals["results"][1]["problem"]["rule"], "structure.remove_attachment.gp");
  EXPECT_EQ(ok("ac-heir", "GET", "/v1/structures/ac-s2/history")["items"][0]["outcome"],
            "Supprimée");
  // Idempotency: the same key answers the first run and writes nothing more.
  auto key = [&](const std::string& user, const json& body) {
    std::map<std::string, std::string> headers{{"Authorization", ServerProcess::token(user)},
                                               {"Idempotency-Key", "same-key"}};
    auto r = client_->request("POST", "/v1/structures/ac-s2/espaces", body.dump(), headers);
    return r ? r->status : 0;
  };
  const json espace{{"espace", "Sollicitations reçues"}, {"write", true}};
  EXPECT_EQ(key("ac-heir", espace), 201);
  EXPECT_EQ(key("ac-heir", espace), 200);
}

// Found by an adversarial run through HTTP: a member removed while their subscription request
// waited was still granted "Sollicitations reçues" and then answered the structure's received
// tickets; another structure's GP attached a technical account and reset its password; a
// lower-case identifier type skipped the SIRET check and held a second copy of a SIRET.
TEST_F(StructureApi, RightsGoToMembersAndATechnicalAccountToItsOwnStructure) {
  accounts({"rm-gp", "rm-u", "rm-evil"});
  ok("sn1", "POST", "/v1/structures", structure_body("rm-s", "rm-gp"));
  ok("sn1", "POST", "/v1/structures", structure_body("rm-e", "rm-evil"));
  ok("rm-gp", "POST", "/v1/structures/rm-s/espaces",
     json{{"espace", "Sollicitations reçues"}, {"read", true}, {"write", true}});
  ok("rm-gp", "POST", "/v1/structures/rm-s/members", json{{"user_id", "rm-u"}});
  const std::string rid =
      ok("rm-u", "POST", "/v1/structures/rm-s/subscription-requests",
         json{{"espace", "Sollicitations reçues"}, {"write", true}})["request_id"];
  ok("rm-gp", "DELETE", "/v1/structures/rm-s/members/rm-u");
  auto late = act("rm-gp", "POST", "/v1/structures/rm-s/subscription-requests/" + rid + "/validate",
                  json{{"read", true}, {"write", true}});
  EXPECT_EQ(late.status, 409) << late.raw;
  EXPECT_EQ(late.body.value("rule", ""), "structure.validate_subscription.not_member");
  EXPECT_EQ(late.body.value("field", ""), "request_id");
  EXPECT_EQ(ok("rm-u", "GET", "/v1/me/attachments")["items"].size(), 0u);
  EXPECT_EQ(act("rm-u", "GET", "/v1/received/tickets?structure_id=rm-s").status, 403);
  ok("rm-gp", "POST", "/v1/structures/rm-s/subscription-requests/" + rid + "/refuse",
     json{{"reason", "Parti"}});

  // An espace opened read-only grants no write, asked or validated.
  ok("rm-gp", "POST", "/v1/structures/rm-s/espaces",
     json{{"espace", "Factures reçues"}, {"read", true}, {"write", false}});
  ok("rm-gp", "POST", "/v1/structures/rm-s/members", json{{"user_id", "rm-u"}});
  auto asked = act("rm-u", "POST", "/v1/structures/rm-s/subscription-requests",
                   json{{"espace", "Factures reçues"}, {"write", true}});
  EXPECT_EQ(asked.status, 422) << asked.raw;
  EXPECT_EQ(asked.body.value("field", ""), "write");

  // The technical account of rm-s is rm-s's: rm-e's GP attaches it nowhere, resets nothing.
  const std::string tech = ok("rm-gp", "POST", "/v1/accounts",
                              json{{"technical", true},
                                   {"structure_id", "rm-s"},
                                   {"login_email", "api-rm@example.test"},
                                   {"last_name", "API"}})["user_id"];
  // Between its creation and its first attachment too: it is rm-s's from its creation.
  auto early = act("rm-evil", "POST", "/v1/structures/rm-e/members", json{{"user_id", tech}});
  EXPECT_EQ(early.status, 403) << early.raw;
  ok("rm-gp", "POST", "/v1/structures/rm-s/members", json{{"user_id", tech}});
  auto taken = act("rm-evil", "POST", "/v1/structures/rm-e/members", json{{"user_id", tech}});
  EXPECT_EQ(taken.status, 403) << taken.raw;
  EXPECT_EQ(taken.body.value("rule", ""), "structure.attach_directly.technical_elsewhere");
  EXPECT_EQ(
      act("rm-evil", "POST", "/v1/structures/rm-e/members/" + tech + "/password-reset").status,
      404);

  // One spelling per identifier type: "siret" is refused, not a second copy of a SIRET.
  auto lower = structure_body("rm-dup", "");
  lower["identifier_type"] = "siret";
  lower["identifier_value"] = testing::siret_for("rm-s");
  auto dup = act("sn1", "POST", "/v1/structures", lower);
  EXPECT_EQ(dup.status, 422) << dup.raw;
  EXPECT_EQ(dup.body.value("rule", ""), "structure.create.identifier_type");
}

// A structure deactivated, or replaced by a SIRET change, refuses what was pending on it in the
// same append: no request stays in an inbox where no one can decide it any more (an
// adversarial run found them there, every validation answering 409), and each requester is
// told, by a refusal in "Mes rattachements" and its e-mail.
TEST_F(StructureApi, ADeactivatedStructureLeavesNoRequestPending) {
  accounts({"dz-gp", "dz-u", "dz-v"});
  ok("sn1", "POST", "/v1/structures", structure_body("dz-s", "dz-gp"));
  ok("sn1", "POST", "/v1/structures", structure_body("dz-t", "dz-gp"));
  request_attachment("dz-u", "dz-s", {});
  request_attachment("dz-v", "dz-t", {});
  EXPECT_EQ(ok("dz-gp", "GET", "/v1/approvals")["total"], 2);
  ok("sn1", "POST", "/v1/structures/dz-s/deactivate", json{{"reason", "Fermeture"}});
  ok("dz-gp", "POST", "/v1/structures/dz-t/identifier",
     json{{"identifier_value", testing::siret_for("dz-t-new")}});
  EXPECT_EQ(ok("dz-gp", "GET", "/v1/approvals")["total"], 0);
  for (const char* user : {"dz-u", "dz-v"}) {
    EXPECT_EQ(ok(user, "GET", "/v1/me/attachments")["pending_requests"].size(), 0u) << user;
  }
  const json history = ok("dz-gp", "GET", "/v1/structures/dz-s/history")["items"];
  ASSERT_FALSE(history.empty());
  EXPECT_NE(history.dump().find("Structure désactivée : Fermeture"), std::string::npos) << history;
}

// Identifier uniqueness is a guarantee of the log, not of a view: two creations of one SIRET
// sent at the same instant on two connections (both pass the view's check, which sees
// neither) each append their IdentifierReserved at expected version 0; exactly one wins, the
// other decides again and is told the identifier is taken. Several rounds, so that the two
// requests overlap in most of them; so does a SIRET change racing a creation.
TEST_F(StructureApi, OneIdentifierIsTakenOnceEvenByRacingCreations) {
  accounts({"race-gp"});
  ok("sn1", "POST", "/v1/structures", structure_body("race-origin", "race-gp"));
  for (int round = 0; round < 6; ++round) {
    const std::string siret = testing::siret_for("race-" + std::to_string(round));
    std::atomic<int> ready{0};
    std::array<Answer, 2> answers;
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&, i] {
        auto client = server_->connect();
        std::string target = "/v1/structures";
        std::string user = "sn1-race";
        json body = structure_body("race-" + std::to_string(round) + "-" + std::to_string(i), "");
        body["identifier_value"] = siret;
        if (round % 2 == 1 && i == 1) {
          // The GP changes the SIRET of their structure to the same one.
          target = "/v1/structures/race-origin/identifier";
          user = "race-gp";
          body = json{{"identifier_value", siret}};
        }
        ++ready;
        while (ready.load() < 2) std::this_thread::yield();
        auto r = client->request(
            "POST", target, body.dump(),
            {{"Authorization",
              ServerProcess::token(user, user == "race-gp"
                                             ? std::vector<std::string>{}
                                             : std::vector<std::string>{"support_n1"})}});
        if (r)
          answers[static_cast<std::size_t>(i)] =
              Answer{r->status, json::parse(r->body, nullptr, false), {}, r->body};
      });
    }
    for (auto& t : threads) t.join();
    int won = 0;
    for (const auto& a : answers) {
      if (a.status == 201) {
        ++won;
      } else {
        EXPECT_EQ(a.status, 422) << a.body;
        EXPECT_TRUE(a.body.value("rule", "").ends_with("identifier_taken")) << a.body;
      }
    }
    EXPECT_EQ(won, 1) << "round " << round << ": " << answers[0].body << " " << answers[1].body;
    if (round % 2 == 1 && answers[1].status == 201) {
      // The SIRET change won: the origin is now inactive; later rounds create only.
      break;
    }
  }
}

// A PIGP batch whose units write one account in turn: a replacement named for the structures
// of two departing GPs (two units write the replacement's account), and a departure held for a
// structure without replacement, whose valid transfers go as units of their own (each writes
// the departing account). Each unit writes after the ones before, not at the version loaded.
TEST_F(StructureApi, APigpBatchWhoseUnitsShareAnAccountAppliesThemAll) {
  accounts({"pb-d1", "pb-d2", "pb-d3", "pb-r", "pb-r3"});
  for (const auto& [s, gp] :
       std::vector<std::pair<std::string, std::string>>{{"pb-s1", "pb-d1"},
                                                        {"pb-s2", "pb-d2"},
                                                        {"pb-s3a", "pb-d3"},
                                                        {"pb-s3b", "pb-d3"},
                                                        {"pb-s3c", "pb-d3"}}) {
    ok("sn1", "POST", "/v1/structures", structure_body(s, gp));
  }
  auto import = ok("sn2", "POST", "/v1/pigp-imports",
                   json{{"deactivate_user_ids", {"pb-d1", "pb-d2", "pb-d3"}},
                        {"replacements",
                         {{{"structure_id", "pb-s1"}, {"new_gp_user_id", "pb-r"}},
                          {{"structure_id", "pb-s2"}, {"new_gp_user_id", "pb-r"}},
                          {{"structure_id", "pb-s3a"}, {"new_gp_user_id", "pb-r3"}},
                          {{"structure_id", "pb-s3b"}, {"new_gp_user_id", "pb-r3"}}}}});
  EXPECT_EQ(import["applied"].size(), 4u) << import.dump(2);
  std::set<std::string> rules;
  for (const auto& line : import["report"]) rules.insert(line.value("rule", ""));
  EXPECT_EQ(rules, (std::set<std::string>{"pigp_import.replacement_missing",
                                          "pigp_import.deactivation_held"}))
      << import.dump(2);
  EXPECT_EQ(ok("sn1", "GET", "/v1/structures/pb-s1")["gp_user_id"], "pb-r");
  EXPECT_EQ(ok("sn1", "GET", "/v1/structures/pb-s2")["gp_user_id"], "pb-r");
  EXPECT_EQ(ok("sn1", "GET", "/v1/structures/pb-s3a")["gp_user_id"], "pb-r3");
  EXPECT_EQ(ok("sn1", "GET", "/v1/structures/pb-s3b")["gp_user_id"], "pb-r3");
  EXPECT_EQ(ok("sn1", "GET", "/v1/structures/pb-s3c")["gp_user_id"], "pb-d3");
  // pb-r now leaves: it manages pb-s1 and pb-s2 (by its stream and by the views), both need a
  // new GP.
  auto missing =
      act("pb-r", "POST", "/v1/accounts/pb-r/deactivate",
          json{{"replacements", {{{"structure_id", "pb-s1"}, {"new_gp_user_id", "pb-r3"}}}}});
  EXPECT_EQ(missing.status, 422) << missing.raw;
  EXPECT_EQ(missing.body.value("rule", ""), "account.deactivate.replacement_missing");
  EXPECT_NE(missing.body.value("detail", "").find("pb-s2"), std::string::npos) << missing.raw;
  EXPECT_EQ(act("pb-d1", "GET", "/v1/structures/pb-s1").status, 403);   // deactivated
  EXPECT_EQ(act("pb-d3", "GET", "/v1/structures/pb-s3c").status, 200);  // held
}

// Retries under an Idempotency-Key get their first answer and write nothing, whatever changed
// since: a PIGP import (each unit found on its own stream), a transfer and a departure retried
// by a holder who has left since (any other command of theirs is refused).
TEST_F(StructureApi, RetriesAreAnsweredFromTheirFirstRunWhateverChangedSince) {
  accounts({"ir-g", "ir-x", "ir-a", "ir-y", "ir-h", "ir-b"});
  ok("sn1", "POST", "/v1/structures", structure_body("ir-s", "ir-g"));
  ok("sn1", "POST", "/v1/structures", structure_body("ir-t", "ir-a"));
  auto keyed = [&](const std::string& user, const std::string& target, const json& body,
                   const std::string& key) {
    std::vector<std::string> roles;
    if (user.starts_with("sn2")) roles = {"support_n2"};
    auto r = client_->request(
        "POST", target, body.dump(),
        {{"Authorization", ServerProcess::token(user, roles)}, {"Idempotency-Key", key}});
    Answer a{
        r ? r->status : 0, r ? json::parse(r->body, nullptr, false) : json(), {}, r ? r->body : ""};
    if (a.body.is_object() && !a.body.value("consistency_token", "").empty()) {
      token_ = a.body["consistency_token"];
    }
    return a;
  };
  // A PIGP transfer, undone by the new GP, then the same import again: nothing is redone.
  const json transfer{{"replacements", {{{"structure_id", "ir-s"}, {"new_gp_user_id", "ir-x"}}}}};
  auto first = keyed("sn2-ir", "/v1/pigp-imports", transfer, "ir-k1");
  EXPECT_EQ(first.body["applied"].size(), 1u) << first.raw;
  ok("ir-x", "POST", "/v1/structures/ir-s/main-manager", json{{"new_gp_user_id", "ir-g"}});
  auto again = keyed("sn2-ir", "/v1/pigp-imports", transfer, "ir-k1");
  EXPECT_EQ(again.status, 200) << again.raw;
  EXPECT_TRUE(again.body["applied"].empty()) << again.raw;
  EXPECT_EQ(again.body["replayed"], json::array({"structure-ir-s"})) << again.raw;
  EXPECT_EQ(ok("sn1", "GET", "/v1/structures/ir-s")["gp_user_id"], "ir-g");
  // A PIGP departure, undone by the holder's reactivation: not deactivated again.
  const json departure{{"deactivate_user_ids", {"ir-a"}},
                       {"replacements", {{{"structure_id", "ir-t"}, {"new_gp_user_id", "ir-y"}}}}};
  first = keyed("sn2-ir", "/v1/pigp-imports", departure, "ir-k2");
  EXPECT_EQ(first.body["applied"].size(), 1u) << first.raw;
  ok("ir-a", "POST", "/v1/accounts/ir-a/reactivate");
  again = keyed("sn2-ir", "/v1/pigp-imports", departure, "ir-k2");
  EXPECT_TRUE(again.body["applied"].empty()) << again.raw;
  EXPECT_EQ(again.body["replayed"], json::array({"account-ir-a"})) << again.raw;
  EXPECT_TRUE(again.body["report"].empty()) << again.raw;
  // Its token covers the first run's whole write (the structure's transfer, the mirrors).
  EXPECT_GE(std::stoull(again.body.value("consistency_token", "0")),
            std::stoull(first.body.value("consistency_token", "0")))
      << first.raw << " | " << again.raw;
  EXPECT_EQ(act("ir-a", "GET", "/v1/structures/ir-t").status, 200);  // still active

  // A holder transfers, then leaves; both answers were lost and are retried.
  ok("sn1", "POST", "/v1/structures", structure_body("ir-u", "ir-h"));
  ok("sn1", "POST", "/v1/structures", structure_body("ir-v", "ir-h"));
  auto handed =
      keyed("ir-h", "/v1/structures/ir-u/main-manager", json{{"new_gp_user_id", "ir-b"}}, "ir-k3");
  ASSERT_EQ(handed.status, 201) << handed.raw;
  const json leave{{"replacements", {{{"structure_id", "ir-v"}, {"new_gp_user_id", "ir-b"}}}}};
  auto left = keyed("ir-h", "/v1/accounts/ir-h/deactivate", leave, "ir-k4");
  ASSERT_EQ(left.status, 201) << left.raw;
  auto handed_again =
      keyed("ir-h", "/v1/structures/ir-u/main-manager", json{{"new_gp_user_id", "ir-b"}}, "ir-k3");
  EXPECT_EQ(handed_again.status, 200) << handed_again.raw;
  EXPECT_EQ(handed_again.body["version"], handed.body["version"]);
  // The replay's token covers the whole first write, the account mirrors included.
  EXPECT_GE(std::stoull(handed_again.body.value("consistency_token", "0")),
            std::stoull(handed.body.value("consistency_token", "0")));
  auto left_again = keyed("ir-h", "/v1/accounts/ir-h/deactivate", leave, "ir-k4");
  EXPECT_EQ(left_again.status, 200) << left_again.raw;
  // Anything else is refused, keyed or not.
  auto other = keyed("ir-h", "/v1/structures/ir-u/attachment-requests", json{{"comment", "encore"}},
                     "ir-k5");
  EXPECT_EQ(other.status, 403) << other.raw;
  EXPECT_EQ(other.body.value("rule", ""), "account.deactivated");
  EXPECT_EQ(act("ir-h", "GET", "/v1/structures/ir-u").status, 403);

  // A deactivated operator or support agent gets no batch or operator action through a key.
  accounts({"ir-sup"});
  ok("ir-sup", "POST", "/v1/accounts/ir-sup/deactivate");
  for (const char* target : {"/v1/pigp-imports", "/v1/structure-imports",
                             "/v1/reference-object-imports", "/v1/admin/views/rebuild"}) {
    auto r = client_->request("POST", target, "{}",
                              {{"Authorization", ServerProcess::token("ir-sup", {"support_n2"})},
                               {"Idempotency-Key", "ir-k9"},
                               {"X-Consistency-Token", token_}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403) << target << ": " << r->body;
    EXPECT_NE(r->body.find("account.deactivated"), std::string::npos) << target << ": " << r->body;
  }

  // The same import sent four times at once under one key: each unit written once, and every
  // answer accounts for every unit, applied or replayed, none as a conflict.
  accounts({"ir-c1", "ir-c2", "ir-cr"});
  ok("sn1", "POST", "/v1/structures", structure_body("ir-cs1", "ir-c1"));
  ok("sn1", "POST", "/v1/structures", structure_body("ir-cs2", "ir-c2"));
  const json both{{"deactivate_user_ids", {"ir-c1", "ir-c2"}},
                  {"replacements",
                   {{{"structure_id", "ir-cs1"}, {"new_gp_user_id", "ir-cr"}},
                    {{"structure_id", "ir-cs2"}, {"new_gp_user_id", "ir-cr"}}}}};
  std::array<Answer, 4> answers;
  {
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < answers.size(); ++i) {
      threads.emplace_back([&, i] {
        auto c = server_->connect();
        ++ready;
        while (ready.load() < 4) std::this_thread::yield();
        auto r = c->request("POST", "/v1/pigp-imports", both.dump(),
                            {{"Authorization", ServerProcess::token("sn2-ir", {"support_n2"})},
                             {"Idempotency-Key", "ir-k10"}});
        if (r) answers[i] = Answer{r->status, json::parse(r->body, nullptr, false), {}, r->body};
      });
    }
    for (auto& t : threads) t.join();
  }
  std::size_t written = 0;
  for (const auto& a : answers) {
    ASSERT_EQ(a.status, 200) << a.raw;
    EXPECT_EQ(a.body["applied"].size() + a.body["replayed"].size(), 2u) << a.raw;
    EXPECT_TRUE(a.body["report"].empty()) << a.raw;
    written += a.body["applied"].size();
  }
  EXPECT_EQ(written, 2u);

  // Two replacement lines for one structure: neither is applied.
  ok("sn1", "POST", "/v1/structures", structure_body("ir-w", "ir-g"));
  auto twice = ok("sn2", "POST", "/v1/pigp-imports",
                  json{{"replacements",
                        {{{"structure_id", "ir-w"}, {"new_gp_user_id", "ir-x"}},
                         {{"structure_id", "ir-w"}, {"new_gp_user_id", "ir-b"}}}}});
  EXPECT_TRUE(twice["applied"].empty()) << twice;
  ASSERT_EQ(twice["report"].size(), 1u) << twice;
  EXPECT_EQ(twice["report"][0]["rule"], "pigp_import.replacement_twice");
  EXPECT_EQ(ok("sn1", "GET", "/v1/structures/ir-w")["gp_user_id"], "ir-g");
}

// Two commands sent at the same instant, each by its own client; their answers.
std::array<Answer, 2> at_once(
    ServerProcess& server, const std::array<std::tuple<std::string, std::string, json>, 2>& sent) {
  std::atomic<int> ready{0};
  std::array<Answer, 2> answers;
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      auto client = server.connect();
      const auto& [user, target, body] = sent[i];
      ++ready;
      while (ready.load() < 2) std::this_thread::yield();
      const std::vector<std::string> roles = user.starts_with("sn2")
                                                 ? std::vector<std::string>{"support_n2"}
                                                 : std::vector<std::string>{};
      auto r = client->request("POST", target, body.dump(),
                               {{"Authorization", ServerProcess::token(user, roles)}});
      if (r) answers[i] = Answer{r->status, json::parse(r->body, nullptr, false), {}, r->body};
    });
  }
  for (auto& t : threads) t.join();
  return answers;
}

// A structure is never left with a deactivated GP by two commands that each looked fine alone
// (an adversarial run found all three cases passing, 5 times in 5): a transfer to an account
// and that account's deactivation, two GPs leaving each naming the other, a transfer racing a
// PIGP deactivation. Each writes the accounts' streams, so the second conflicts and decides
// again on what the first did.
TEST_F(StructureApi, RacingGpChangesNeverLeaveADeactivatedGp) {
  auto wins = [](const std::array<Answer, 2>& answers) {
    int won = 0;
    for (const auto& a : answers) {
      if (a.status == 201 || a.status == 200) {
        ++won;
      } else {
        EXPECT_TRUE(a.status == 422 || a.status == 409) << a.status << " " << a.body;
      }
    }
    return won;
  };
  for (int round = 0; round < 4; ++round) {
    const std::string r = std::to_string(round);
    // A transfer to X and X's own deactivation, without replacement.
    accounts({"gr-a" + r, "gr-x" + r});
    ok("sn1", "POST", "/v1/structures", structure_body("gr-s" + r, "gr-a" + r));
    auto answers = at_once(
        *server_, {{{"gr-a" + r, "/v1/structures/gr-s" + r + "/main-manager",
                     json{{"new_gp_user_id", "gr-x" + r}}},
                    {"gr-x" + r, "/v1/accounts/gr-x" + r + "/deactivate", json::object()}}});
    EXPECT_EQ(wins(answers), 1) << "round " << r << ": " << answers[0].raw << " | "
                                << answers[1].raw;

    // Two GPs leave at once, each naming the other for their structure.
    accounts({"gr-b" + r, "gr-c" + r});
    ok("sn1", "POST", "/v1/structures", structure_body("gr-sb" + r, "gr-b" + r));
    ok("sn1", "POST", "/v1/structures", structure_body("gr-sc" + r, "gr-c" + r));
    answers = at_once(
        *server_, {{{"gr-b" + r, "/v1/accounts/gr-b" + r + "/deactivate",
                     json{{"replacements",
                           {{{"structure_id", "gr-sb" + r}, {"new_gp_user_id", "gr-c" + r}}}}}},
                    {"gr-c" + r, "/v1/accounts/gr-c" + r + "/deactivate",
                     json{{"replacements",
                           {{{"structure_id", "gr-sc" + r}, {"new_gp_user_id", "gr-b" + r}}}}}}}});
    EXPECT_EQ(wins(answers), 1) << "round " << r << ": " << answers[0].raw << " | "
                                << answers[1].raw;

    // A transfer to Y racing the PIGP import that deactivates Y.
    accounts({"gr-d" + r, "gr-y" + r});
    ok("sn1", "POST", "/v1/structures", structure_body("gr-sd" + r, "gr-d" + r));
    answers =
        at_once(*server_,
                {{{"gr-d" + r, "/v1/structures/gr-sd" + r + "/main-manager",
                   json{{"new_gp_user_id", "gr-y" + r}}},
                  {"sn2-pigp", "/v1/pigp-imports", json{{"deactivate_user_ids", {"gr-y" + r}}}}}});
    // The import answers 200 with a report; what counts is what it wrote.
    const bool transferred = answers[0].status == 201;
    const bool deactivated = answers[1].body.value("applied", json::array()).size() == 1;
    EXPECT_NE(transferred, deactivated)
        << "round " << r << ": " << answers[0].raw << " | " << answers[1].raw;
  }
  // Whatever won, every structure's GP has an active account: it may still act (a deactivated
  // one gets 403 account.deactivated). A write first, so that the views have seen the races.
  accounts({"gr-end"});
  for (int round = 0; round < 4; ++round) {
    for (const char* s : {"gr-s", "gr-sb", "gr-sc", "gr-sd"}) {
      const std::string id = std::string(s) + std::to_string(round);
      const std::string gp = ok("sn1", "GET", "/v1/structures/" + id)["gp_user_id"];
      const auto as_gp = act(gp, "GET", "/v1/structures/" + id);
      EXPECT_EQ(as_gp.status, 200) << id << " has GP " << gp << ": " << as_gp.body;
    }
  }
}

// The multi-stream commands on the Kafka log: each is one transaction over several streams
// (and partitions), seen whole by the views.
TEST(StructureApiKafka, MultiStreamCommandsAreOneAtomicAppend) {
  const char* brokers = std::getenv("CHORUS_TEST_KAFKA_BROKERS");
  if (brokers == nullptr || *brokers == '\0') GTEST_SKIP() << "CHORUS_TEST_KAFKA_BROKERS not set";
  const std::string name =
      "chorus-structures-kafka-" + std::to_string(getpid()) + "-" +
      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 100000);
  const auto dir = std::filesystem::temp_directory_path() / name;
  {
    ServerProcess server({"--data-dir", dir.string(), "--kafka-brokers", brokers, "--kafka-topic",
                          name, "--kafka-partitions", "3"});
    std::string token = testing::attach_users(server.port(), "k-s", {"k-gp", "k-heir"});
    auto client = server.connect();
    auto call = [&](const std::string& user, const std::string& method, const std::string& target,
                    const json& body = nullptr) {
      auto r = client->request(
          method, target, body.is_null() ? "" : body.dump(),
          {{"Authorization", ServerProcess::token(user)}, {"X-Consistency-Token", token}});
      if (!r) return json();
      json j = json::parse(r->body, nullptr, false);
      EXPECT_LT(r->status, 300) << method << " " << target << ": " << r->body;
      if (j.is_object() && j.value("consistency_token", "") != "") token = j["consistency_token"];
      return j;
    };
    call("k-gp", "POST", "/v1/accounts/k-gp/deactivate",
         json{{"replacements", {{{"structure_id", "k-s"}, {"new_gp_user_id", "k-heir"}}}}});
    EXPECT_EQ(call("k-heir", "GET", "/v1/structures/k-s")["gp_user_id"], "k-heir");
    auto changed = call("k-heir", "POST", "/v1/structures/k-s/identifier",
                        json{{"identifier_value", testing::siret_for("k-s-new")}});
    const std::string successor = changed.value("new_structure_id", "");
    EXPECT_EQ(call("k-heir", "GET", "/v1/structures/k-s")["successor_structure_id"], successor);
    EXPECT_EQ(call("k-heir", "GET", "/v1/structures/" + successor)["gp_user_id"], "k-heir");
  }
  std::filesystem::remove_all(dir);
}

// ------------------------------------------------------------------------------------------
// The permission matrix. Columns, in the order of domain::access::RoleScope: GP, GS of the whole
// structure, GS of COMPTA, simple user of COMPTA, support level 1, level 2, auditor, outsider.
// Cells: Y allowed (2xx), F refused (403), N unknown to the caller (404).

const std::vector<std::string> kRoles{"gp", "gsw", "gss", "usr", "sn1", "sn2", "aud", "out"};

class PermissionMatrix : public StructureApi {
 public:
  // A fresh structure for one role's run, with every kind of member and pending request.
  struct Fixture {
    std::string s;
    std::string compta_request;    // attachment request for COMPTA
    std::string achats_request;    // attachment request for ACHATS
    std::string compta_request_2;  // another, for the bulk decision
    std::string subscription;      // subscription request on COMPTA
  };
  Fixture fixture(const std::string& role) {
    static bool accounts_made = false;
    if (!accounts_made) {
      accounts({"gp", "gsw", "gss", "usr", "out", "cand", "cand2", "cand3", "cand4", "extra",
                "extra2", "heir"});
      accounts_made = true;
    }
    Fixture f;
    f.s = "pm-" + role;
    ok("sn1", "POST", "/v1/structures", structure_body(f.s, "gp"));
    const std::string base = "/v1/structures/" + f.s;
    for (const char* code : {"COMPTA", "ACHATS"}) {
      ok("gp", "POST", base + "/services",
         json{{"code", code}, {"label", code}, {"valid_from", "2020-01-01"}});
    }
    ok("gp", "POST", base + "/espaces",
       json{{"espace", "Factures reçues"}, {"service", "COMPTA"}, {"write", true}});
    ok("gp", "POST", base + "/members", json{{"user_id", "gsw"}, {"role", "gs"}});
    ok("gp", "POST", base + "/members",
       json{{"user_id", "gss"}, {"role", "gs"}, {"services", {"COMPTA"}}});
    ok("gp", "POST", base + "/members",
       json{{"user_id", "usr"}, {"role", "user"}, {"services", {"COMPTA"}}});
    ok("gp", "POST", base + "/members",
       json{{"user_id", "cand3"}, {"role", "user"}, {"services", {"COMPTA"}}});
    ok("gp", "POST", base + "/members", json{{"user_id", "extra2"}});
    accounts({"nb-" + role}, false);
    ok("gp", "POST", base + "/members", json{{"user_id", "nb-" + role}});
    f.compta_request = request_attachment("cand", f.s, {"COMPTA"});
    f.achats_request = request_attachment("cand2", f.s, {"ACHATS"});
    f.compta_request_2 = request_attachment("cand4", f.s, {"COMPTA"});
    f.subscription = ok("cand3", "POST", base + "/subscription-requests",
                        json{{"espace", "Factures reçues"}, {"service", "COMPTA"}})["request_id"];
    return f;
  }
};

struct Row {
  const char* name;
  const char* cells;  // one per role, in kRoles order: Y 2xx, F 403, N 404, X 409
  std::function<std::string(const PermissionMatrix::Fixture&)> target;
  const char* method;
  json body;
};

TEST_F(PermissionMatrix, EveryCommandAndQueryForEveryRoleAndScope) {
  using F = PermissionMatrix::Fixture;
  auto at = [](const char* suffix) {
    return [suffix](const F& f) { return "/v1/structures/" + f.s + suffix; };
  };
  // Rows run in this order on each role's fresh structure: the transfer and the deactivation
  // come last since they change who is who.
  const std::vector<Row> rows{
      {"view_structure", "Y Y Y Y Y Y Y Y", at(""), "GET", nullptr},
      {"my_attachments", "Y Y Y Y Y Y Y Y", [](const F&) { return "/v1/me/attachments"; }, "GET",
       nullptr},
      {"search_structures", "Y Y Y Y Y Y Y Y",
       [](const F& f) { return "/v1/structures?name=Structure%20" + f.s; }, "GET", nullptr},
      {"view_requests", "Y Y Y F Y Y Y F",
       [](const F& f) { return "/v1/approvals?structure_id=" + f.s; }, "GET", nullptr},
      {"view_history", "Y Y Y F Y Y Y F", at("/history"), "GET", nullptr},
      {"view_members", "Y Y Y F Y Y Y F", at("/members"), "GET", nullptr},
      {"change_data", "Y Y F F F F F F", at("/data"), "PUT", structure_body("x", "")["data"]},
      {"add_service", "Y Y F F F F F F", at("/services"), "POST",
       json{{"code", "NOUVEAU"}, {"label", "Nouveau"}, {"valid_from", "2020-01-01"}}},
      {"change_service", "Y Y F F F F F F", at("/services/ACHATS"), "PUT",
       json{{"label", "Achats publics"}, {"valid_from", "2020-01-01"}}},
      {"request_attachment", "F F Y Y F F F Y", at("/attachment-requests"), "POST",
       json{{"services", {"ACHATS"}}}},
      {"validate_attachment_in_scope", "Y Y Y N F F F N",
       [](const F& f) {
         return "/v1/structures/" + f.s + "/attachment-requests/" + f.compta_request + "/validate";
       },
       "POST", json{{"role", "user"}}},
      {"refuse_attachment_out_of_scope", "Y Y N N F F F N",
       [](const F& f) {
         return "/v1/structures/" + f.s + "/attachment-requests/" + f.achats_request + "/refuse";
       },
       "POST", json{{"reason", "Non"}}},
      {"attach_directly_in_scope", "Y Y Y F F F F F", at("/members"), "POST",
       json{{"user_id", "extra"}, {"services", {"COMPTA"}}}},
      {"attach_directly_whole", "Y Y F F F F F F", at("/members"), "POST",
       json{{"user_id", "extra"}}},
      {"remove_attachment", "Y Y F F F F F F", at("/members/extra2"), "DELETE", nullptr},
      {"enable_espace_in_scope", "Y Y Y F F F F F", at("/espaces"), "POST",
       json{{"espace", "Sollicitations reçues"}, {"service", "COMPTA"}}},
      {"request_subscription", "F F Y Y F F F F", at("/subscription-requests"), "POST",
       json{{"espace", "Factures reçues"}, {"service", "COMPTA"}}},
      {"validate_subscription", "Y Y Y N F F F N",
       [](const F& f) {
         return "/v1/structures/" + f.s + "/subscription-requests/" + f.subscription + "/validate";
       },
       "POST", json::object()},
      // Account routes: who may not learn that an account exists is told 404 whatever its
      // state (an unknown account answers the same), never 403 or 409.
      {"resend_activation", "Y Y N N Y Y F N",
       [](const F& f) { return "/v1/accounts/nb-" + f.s.substr(3) + "/activation-resend"; }, "POST",
       nullptr},
      {"resend_activation_unknown_account", "N N N N N N N N",
       [](const F&) { return "/v1/accounts/pm-nobody/activation-resend"; }, "POST", nullptr},
      {"activate_someone_else", "N N N N F F F N",
       [](const F& f) { return "/v1/accounts/nb-" + f.s.substr(3) + "/activate"; }, "POST",
       nullptr},
      {"activate_unknown_account", "N N N N N N N N",
       [](const F&) { return "/v1/accounts/pm-nobody/activate"; }, "POST", nullptr},
      {"reactivate_someone_else_active", "N N N N X X X N",
       [](const F&) { return "/v1/accounts/extra/reactivate"; }, "POST", nullptr},
      {"create_structure", "F F F F Y Y F F", [](const F&) { return "/v1/structures"; }, "POST",
       nullptr},
      {"pigp_import", "F F F F Y Y F F", [](const F&) { return "/v1/pigp-imports"; }, "POST",
       json::object()},
      {"unknown_structure", "N N N N N N N N",
       [](const F&) { return "/v1/structures/pm-nowhere/history"; }, "GET", nullptr},
      {"transfer_main_manager", "Y F F F Y Y F F", at("/main-manager"), "POST",
       json{{"new_gp_user_id", "heir"}}},
      {"deactivate_structure", "F F F F Y Y F F", at("/deactivate"), "POST",
       json{{"reason", "Fermeture"}}},
      {"deactivate_someone_else", "N N N N Y Y F N",
       [](const F& f) { return "/v1/accounts/nb-" + f.s.substr(3) + "/deactivate"; }, "POST",
       json::object()},
      {"deactivate_unknown_account", "N N N N N N N N",
       [](const F&) { return "/v1/accounts/pm-nobody/deactivate"; }, "POST", json::object()},
  };
  for (std::size_t r = 0; r < kRoles.size(); ++r) {
    const std::string& role = kRoles[r];
    const std::string user = role == "sn1"   ? "sn1-agent"
                             : role == "sn2" ? "sn2-agent"
                             : role == "aud" ? "aud-1"
                                             : role;
    const F f = fixture(role);
    for (const auto& row : rows) {
      std::string cells;
      for (char c : std::string(row.cells)) {
        if (c != ' ') cells.push_back(c);
      }
      ASSERT_EQ(cells.size(), kRoles.size()) << row.name;
      json body = row.body;
      if (std::string(row.name) == "create_structure") {
        body = structure_body("pm-new-" + role, "");
      }
      if (std::string(row.name) == "resend_activation") {
        body = json{{"structure_id", f.s}};
      }
      auto a = act(user, row.method, row.target(f), body);
      const char expected = cells[r];
      const bool matched = expected == 'Y'   ? a.status >= 200 && a.status < 300
                           : expected == 'F' ? a.status == 403
                           : expected == 'X' ? a.status == 409
                                             : a.status == 404;
      EXPECT_TRUE(matched) << row.name << " as " << role << ": expected " << expected << ", got "
                           << a.status << " " << a.body;
      if (a.status >= 400) {
        EXPECT_EQ(a.headers["content-type"], "application/problem+json") << row.name;
        EXPECT_TRUE(a.body.contains("rule")) << row.name;
      }
    }
  }
}

}  // namespace
}  // namespace chorus
