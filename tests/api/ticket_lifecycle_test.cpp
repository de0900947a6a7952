// Every row of the ticket status table (DOMAIN.md, "Tickets"), allowed and refused, through the
// HTTP API of the real server: the emitter, a level-1 support agent (the recipient of a
// technical ticket) and an outsider.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "tests/support/attachments.h"
#include "tests/support/server_process.h"

namespace chorus {
namespace {

using nlohmann::json;
using testing::ServerProcess;

const std::string kForm =
    R"({"emitting_structure_id":"structure-1","category":"Technique","sub_category":"Connexion",)"
    R"("title":"Connexion impossible","description":"Mot de passe refusé."})";

struct Answer {
  int status = 0;
  json body;
};

class TicketLifecycle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ =
        std::filesystem::temp_directory_path() / ("chorus-lifecycle-" + std::to_string(getpid()));
    server_ = new ServerProcess({"--data-dir", dir_.string()});
    testing::attach_users(server_->port(), "structure-1", {"alice"});
  }
  static void TearDownTestSuite() {
    delete server_;
    std::filesystem::remove_all(dir_);
  }
  void SetUp() override { client_ = server_->connect(); }

  // Sends as `user` ("sn1..." are level-1 support agents, "sn2..." level 2); waits for the
  // views of the last write.
  Answer act(const std::string& user, const std::string& method, const std::string& target,
             const std::string& body = "") {
    std::vector<std::string> roles;
    if (user.starts_with("sn1")) roles = {"support_n1"};
    if (user.starts_with("sn2")) roles = {"support_n2"};
    if (user == "mailer") roles = {"operator"};
    std::map<std::string, std::string> headers{
        {"Authorization", ServerProcess::token(user, roles)}};
    if (!token_.empty()) headers["X-Consistency-Token"] = token_;
    auto r = client_->request(method, target, body, headers);
    if (!r) return {};
    Answer a{r->status, json::parse(r->body, nullptr, false)};
    if (a.body.is_object() && a.body.contains("consistency_token")) {
      token_ = a.body["consistency_token"];
    }
    return a;
  }
  std::string status_of(const std::string& id) {
    return act("alice", "GET", "/v1/tickets/" + id).body.value("status", "?");
  }
  std::string open_ticket() {
    auto a = act("alice", "POST", "/v1/tickets", kForm);
    EXPECT_EQ(a.status, 201) << a.body;
    return a.body.value("ticket_id", "");
  }
  std::string draft() {
    auto a = act("alice", "POST", "/v1/tickets/drafts", kForm);
    EXPECT_EQ(a.status, 201) << a.body;
    return a.body.value("ticket_id", "");
  }
  // Expects a refusal: `status`, and the rule when given. Nothing changes.
  void refused(const Answer& a, int status, const std::string& rule = "") {
    EXPECT_EQ(a.status, status) << a.body;
    if (!rule.empty()) {
      EXPECT_EQ(a.body.value("rule", ""), rule) << a.body;
    }
  }

  static inline std::filesystem::path dir_;
  static inline ServerProcess* server_ = nullptr;
  std::unique_ptr<testing::HttpClient> client_;
  std::string token_;
};

TEST_F(TicketLifecycle, SaveEditAndDeleteADraft) {
  const std::string id = draft();
  EXPECT_EQ(status_of(id), "Brouillon");
  EXPECT_EQ(act("alice", "PUT", "/v1/tickets/" + id + "/draft", kForm).status, 201);
  refused(act("bob", "PUT", "/v1/tickets/" + id + "/draft", kForm), 404);
  refused(act("sn1", "GET", "/v1/tickets/" + id), 404, "ticket.not_found");  // drafts are private
  refused(act("sn1", "DELETE", "/v1/tickets/" + id + "/draft"), 404);
  EXPECT_EQ(act("alice", "DELETE", "/v1/tickets/" + id + "/draft").status, 201);
  refused(act("alice", "GET", "/v1/tickets/" + id), 404);
  EXPECT_EQ(act("alice", "GET", "/v1/me/tickets/counts").body["brouillons"], 0);
  // Gone for commands too, as for reads.
  refused(act("alice", "DELETE", "/v1/tickets/" + id + "/draft"), 404,
          "ticket.delete_draft.not_found");
  refused(act("alice", "POST", "/v1/tickets/" + id + "/comments", R"({"text":"x"})"), 404,
          "ticket.comment.not_found");
  // To support as well: a deleted draft is told apart from no unknown id, by anyone.
  refused(act("sn1", "POST", "/v1/tickets/" + id + "/close"), 404, "ticket.close.not_found");
  const std::string never = "/v1/tickets/00000000-0000-4000-8000-000000000000";
  refused(act("sn1", "POST", never + "/take"), 404, "ticket.take.not_found");
  refused(act("alice", "POST", never + "/comments", R"({"text":"x"})"), 404,
          "ticket.comment.not_found");
}

TEST_F(TicketLifecycle, SubmitADraftOrANewTicketOnce) {
  const std::string id = draft();
  // A body with any field of the form is a form, checked whole: a new destination alone is
  // refused, not dropped for the saved one.
  EXPECT_EQ(act("alice", "POST", "/v1/tickets/" + id + "/submit",
                R"({"destination_structure_id":"ailleurs"})")
                .status,
            422);
  EXPECT_EQ(status_of(id), "Brouillon");
  EXPECT_EQ(act("alice", "POST", "/v1/tickets/" + id + "/submit").status, 201);
  EXPECT_EQ(status_of(id), "Ouvert");
  refused(act("alice", "POST", "/v1/tickets/" + id + "/submit"), 409, "ticket.submit.status");
  refused(act("alice", "PUT", "/v1/tickets/" + id + "/draft", kForm), 409,
          "ticket.save_draft.status");
  refused(act("alice", "DELETE", "/v1/tickets/" + id + "/draft"), 409,
          "ticket.delete_draft.status");
  EXPECT_EQ(status_of(open_ticket()), "Ouvert");
}

TEST_F(TicketLifecycle, InformationRequestedAndAnswered) {
  const std::string id = open_ticket();
  const std::string ask = "/v1/tickets/" + id + "/information-requests";
  const std::string answer = "/v1/tickets/" + id + "/information";
  refused(act("alice", "POST", ask, R"({"text":"?"})"), 403,
          "ticket.request_information.recipient_only");
  refused(act("bob", "POST", ask, R"({"text":"?"})"), 404);
  refused(act("sn1", "POST", ask, R"({"text":""})"), 422, "ticket.request_information.required");
  refused(act("alice", "POST", answer, R"({"text":"voici"})"), 409,
          "ticket.provide_information.status");

  EXPECT_EQ(act("sn1", "POST", ask, R"({"text":"Quel navigateur ?"})").status, 201);
  EXPECT_EQ(status_of(id), "En attente d'informations");
  EXPECT_EQ(act("alice", "GET", "/v1/me/tickets?tab=actions_requises").body["total"], 1);
  refused(act("sn1", "POST", ask, R"({"text":"encore ?"})"), 409,
          "ticket.request_information.status");
  refused(act("sn1", "POST", answer, R"({"text":"moi"})"), 403,
          "ticket.provide_information.emitter_only");

  EXPECT_EQ(act("alice", "POST", answer, R"({"text":"Firefox"})").status, 201);
  EXPECT_EQ(status_of(id), "Ouvert");
  auto detail = act("alice", "GET", "/v1/tickets/" + id).body;
  // Submitted, taken by the agent who asks, the request, the answer.
  EXPECT_EQ(detail["history"][1]["action"], "TicketAssigned");
  EXPECT_EQ(detail["history"][2]["action"], "InformationRequested");
  EXPECT_EQ(detail["history"][2]["author"], "sn1");
  EXPECT_EQ(detail["history"][2]["role"], "support_n1");
  EXPECT_EQ(detail["history"][2]["text"], "Quel navigateur ?");
  EXPECT_EQ(detail["history"][3]["text"], "Firefox");
  // The support agent sees the technical ticket it handles.
  EXPECT_EQ(act("sn1", "GET", "/v1/tickets/" + id).status, 200);
  act("alice", "POST", "/v1/tickets/" + id + "/close");
}

// Comments sent at once on one ticket race for its next version: the losers are decided again on
// the new version, with their own text (a retry once decided on a text the first attempt had
// moved away, and refused the comment as blank: 422 for a request that was right). A comment
// that loses every attempt answers 409 command.concurrent_update, which the client retries
// under its Idempotency-Key; each is written once.
TEST_F(TicketLifecycle, CommentsSentAtOnceAreEachWrittenWithTheirText) {
  const std::string id = open_ticket();
  constexpr int kWriters = 4, kEach = 10;
  std::atomic<int> written{0};
  std::vector<std::string> refusals;
  std::vector<std::string> last_tokens;  // each writer's last write's, to read them all after
  std::mutex mu;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto client = server_->connect();
      for (int i = 0; i < kEach; ++i) {
        const std::string text = "commentaire " + std::to_string(w) + "-" + std::to_string(i);
        std::optional<testing::HttpResponse> r;
        for (int attempt = 0; attempt < 20; ++attempt) {
          r = client->request(
              "POST", "/v1/tickets/" + id + "/comments", json{{"text", text}}.dump(),
              {{"Authorization", ServerProcess::token("alice", {})}, {"Idempotency-Key", text}});
          if (!r || r->status != 409 ||
              r->body.find("command.concurrent_update") == std::string::npos) {
            break;
          }
        }
        if (r && r->status == 201) {
          ++written;
          if (i + 1 == kEach) {
            std::lock_guard lock(mu);
            last_tokens.push_back(json::parse(r->body).value("consistency_token", ""));
          }
        } else {
          std::lock_guard lock(mu);
          refusals.push_back(r ? std::to_string(r->status) + " " + r->body : "no answer");
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(written, kWriters * kEach);
  EXPECT_TRUE(refusals.empty()) << refusals.front();
  // The views of every writer's writes: a read waits only for the token it carries (the test
  // once read before the last comment was applied, and counted 39).
  for (const auto& token : last_tokens) {
    token_ = token;
    act("alice", "GET", "/v1/tickets/" + id);
  }
  const json history = act("alice", "GET", "/v1/tickets/" + id).body["history"];
  std::set<std::string> texts;
  for (const auto& h : history) {
    if (h["action"] == "CommentAdded") texts.insert(h.value("text", ""));
  }
  EXPECT_EQ(texts.size(), static_cast<std::size_t>(kWriters * kEach)) << history.dump(2);
}

TEST_F(TicketLifecycle, SolutionProposedThenAcceptedOrRefused) {
  const std::string id = open_ticket();
  const std::string solve = "/v1/tickets/" + id + "/solution";
  refused(act("alice", "POST", solve, R"({"text":"x"})"), 403,
          "ticket.propose_solution.recipient_only");
  refused(act("alice", "POST", solve + "/accept"), 409, "ticket.accept_solution.status");
  refused(act("alice", "POST", solve + "/refuse", R"({"reason":"non"})"), 409,
          "ticket.refuse_solution.status");

  EXPECT_EQ(act("sn1", "POST", solve, R"({"text":"Videz le cache."})").status, 201);
  EXPECT_EQ(status_of(id), "Résolu");
  refused(act("sn1", "POST", solve, R"({"text":"bis"})"), 409, "ticket.propose_solution.status");
  refused(act("alice", "POST", "/v1/tickets/" + id + "/close"), 409, "ticket.close.status");
  refused(act("sn1", "POST", solve + "/accept"), 403, "ticket.accept_solution.emitter_only");
  refused(act("alice", "POST", solve + "/refuse", R"({"reason":""})"), 422,
          "ticket.refuse_solution.required");
  auto missing = act("alice", "POST", solve + "/refuse", "{}");
  refused(missing, 422, "ticket.refuse_solution.required");
  EXPECT_EQ(missing.body["field"], "reason");

  EXPECT_EQ(act("alice", "POST", solve + "/refuse", R"({"reason":"Toujours bloqué"})").status, 201);
  EXPECT_EQ(status_of(id), "Ouvert");
  EXPECT_EQ(act("sn1", "POST", solve, R"({"text":"Réinitialisez le mot de passe."})").status, 201);
  EXPECT_EQ(act("alice", "POST", solve + "/accept").status, 201);
  EXPECT_EQ(status_of(id), "Fermé");
}

TEST_F(TicketLifecycle, ClosedFromOuvertOrEnAttenteAndFerméIsFinal) {
  const int closed_before =
      act("alice", "GET", "/v1/me/tickets/counts").body["clotures"].get<int>();
  const std::string open = open_ticket();
  refused(act("sn1", "POST", "/v1/tickets/" + open + "/close"), 403, "ticket.close.emitter_only");
  EXPECT_EQ(
      act("alice", "POST", "/v1/tickets/" + open + "/close", R"({"reason":"Plus utile"})").status,
      201);
  EXPECT_EQ(status_of(open), "Fermé");

  const std::string waiting = open_ticket();
  ASSERT_EQ(
      act("sn1", "POST", "/v1/tickets/" + waiting + "/information-requests", R"({"text":"?"})")
          .status,
      201);
  EXPECT_EQ(act("alice", "POST", "/v1/tickets/" + waiting + "/close").status, 201);
  EXPECT_EQ(status_of(waiting), "Fermé");

  // Fermé is final: every action is refused.
  const std::string t = "/v1/tickets/" + open;
  refused(act("alice", "POST", t + "/close"), 409, "ticket.close.status");
  refused(act("alice", "POST", t + "/submit"), 409, "ticket.submit.status");
  refused(act("alice", "PUT", t + "/draft", kForm), 409, "ticket.save_draft.status");
  refused(act("sn1", "POST", t + "/information-requests", R"({"text":"?"})"), 409);
  refused(act("sn1", "POST", t + "/solution", R"({"text":"?"})"), 409);
  refused(act("alice", "POST", t + "/solution/accept"), 409);
  refused(act("alice", "POST", t + "/comments", R"({"text":"?"})"), 409, "ticket.comment.status");
  EXPECT_EQ(act("alice", "GET", "/v1/me/tickets?tab=clotures").body["total"].get<int>(),
            closed_before + 2);
}

TEST_F(TicketLifecycle, EitherSideCommentsUntilFermé) {
  const std::string id = open_ticket();
  const std::string comments = "/v1/tickets/" + id + "/comments";
  EXPECT_EQ(act("alice", "POST", comments, R"({"text":"Capture jointe"})").status, 201);
  EXPECT_EQ(act("sn1", "POST", comments, R"({"text":"Bien reçu"})").status, 201);
  refused(act("bob", "POST", comments, R"({"text":"moi aussi"})"), 404);
  refused(act("alice", "POST", comments, R"({"text":""})"), 422, "ticket.comment.required");
  refused(act("alice", "POST", comments, R"({"text":"x","extra":1})"), 400,
          "request.unknown_field");
  EXPECT_EQ(status_of(id), "Ouvert");
  EXPECT_EQ(act("alice", "GET", "/v1/tickets/" + id).body["history"].size(), 3u);
}

TEST_F(TicketLifecycle, SupportTakesReleasesReassignsAndEscalates) {
  const std::string id = open_ticket();
  const std::string t = "/v1/tickets/" + id;
  auto assignee = [&] { return act("alice", "GET", t).body.value("assignee", "?"); };
  EXPECT_EQ(assignee(), "");
  refused(act("alice", "POST", t + "/take"), 403, "ticket.take.recipient_only");
  EXPECT_EQ(act("sn1", "POST", t + "/take").status, 201);
  EXPECT_EQ(assignee(), "sn1");  // "En cours de traitement", the agent shown
  refused(act("sn1", "POST", t + "/take"), 409, "ticket.take.already_yours");
  refused(act("sn1-other", "POST", t + "/take"), 409, "ticket.take.assigned");
  refused(act("sn1-other", "POST", t + "/release"), 403, "ticket.release.not_yours");
  EXPECT_EQ(act("sn1", "POST", t + "/release").status, 201);
  EXPECT_EQ(assignee(), "");
  refused(act("sn1", "POST", t + "/reassign", R"({"agent_user_id":""})"), 422,
          "ticket.reassign.required");
  EXPECT_EQ(act("sn1", "POST", t + "/reassign", R"({"agent_user_id":"sn1-other"})").status, 201);
  EXPECT_EQ(assignee(), "sn1-other");
  // The history shows to whom each time: taken, released, reassigned.
  {
    const json history = act("alice", "GET", t).body["history"];
    std::vector<std::string> assigned;
    for (const auto& h : history) {
      if (h["action"] == "TicketAssigned") assigned.push_back(h.value("assignee", "?"));
    }
    EXPECT_EQ(assigned, (std::vector<std::string>{"sn1", "", "sn1-other"})) << history;
  }
  // Held by sn1-other, it is worked by sn1-other alone.
  refused(act("sn1", "POST", t + "/solution", R"({"text":"x"})"), 409,
          "ticket.propose_solution.assigned");
  refused(act("sn1", "POST", t + "/escalate"), 409, "ticket.escalate.assigned");

  // Only level 1 escalates; then level 2 handles it.
  refused(act("sn2", "POST", t + "/escalate"), 403, "ticket.escalate.level1_only");
  EXPECT_EQ(act("sn1-other", "POST", t + "/escalate").status, 201);
  auto detail = act("alice", "GET", t).body;
  EXPECT_EQ(detail["support_level"], 2);
  EXPECT_EQ(detail["assignee"], "");
  refused(act("sn1", "POST", t + "/take"), 403, "ticket.take.level2");
  refused(act("sn1", "POST", t + "/escalate"), 403);
  // Level 1 no longer works it in any way.
  refused(act("sn1", "POST", t + "/solution", R"({"text":"x"})"), 403,
          "ticket.propose_solution.level2");
  refused(act("sn1", "POST", t + "/information-requests", R"({"text":"?"})"), 403,
          "ticket.request_information.level2");
  EXPECT_EQ(act("sn2", "POST", t + "/take").status, 201);
  EXPECT_EQ(assignee(), "sn2");
  // Asking takes the ticket, but not from the agent who holds it.
  refused(act("sn2-other", "POST", t + "/information-requests", R"({"text":"?"})"), 409,
          "ticket.request_information.assigned");
}

// Level 1 asked, then escalated: the answer stays with level 2 (it once went back to the level-1
// asker, who could then neither work nor release it, and the ticket was in no queue).
TEST_F(TicketLifecycle, AnAnswerAfterEscalationStaysWithLevel2) {
  const std::string id = open_ticket();
  const std::string t = "/v1/tickets/" + id;
  ASSERT_EQ(act("sn1", "POST", t + "/information-requests", R"({"text":"?"})").status, 201);
  ASSERT_EQ(act("sn1", "POST", t + "/escalate").status, 201);
  ASSERT_EQ(act("sn2", "POST", t + "/take").status, 201);
  ASSERT_EQ(act("alice", "POST", t + "/information", R"({"text":"Firefox"})").status, 201);
  EXPECT_EQ(act("alice", "GET", t).body["assignee"], "sn2");
  EXPECT_EQ(act("sn2", "POST", t + "/solution", R"({"text":"Videz le cache."})").status, 201);
}

TEST_F(TicketLifecycle, TheAnswerGoesBackToTheAgentWhoAsked) {
  const std::string id = open_ticket();
  const std::string t = "/v1/tickets/" + id;
  ASSERT_EQ(
      act("sn1", "POST", t + "/information-requests", R"({"text":"Quel navigateur ?"})").status,
      201);
  EXPECT_EQ(act("alice", "GET", t).body["assignee"], "sn1");  // who asks handles it
  ASSERT_EQ(act("sn1", "POST", t + "/reassign", R"({"agent_user_id":"sn1-other"})").status, 201);
  ASSERT_EQ(act("alice", "POST", t + "/information", R"({"text":"Firefox"})").status, 201);
  EXPECT_EQ(act("alice", "GET", t).body["assignee"], "sn1");
}

TEST_F(TicketLifecycle, PriorityFromImpactAndSeverityOverriddenWithAReason) {
  const std::string id = open_ticket();
  const std::string p = "/v1/tickets/" + id + "/priority";
  auto priority = [&] {
    return act("alice", "GET", "/v1/tickets/" + id).body.value("priority", 0);
  };
  EXPECT_EQ(act("sn1", "PUT", p, R"({"impact":"major","severity":"major"})").status, 201);
  EXPECT_EQ(priority(), 1);
  EXPECT_EQ(act("sn1", "PUT", p, R"({"impact":"major","severity":"medium"})").status, 201);
  EXPECT_EQ(priority(), 2);
  EXPECT_EQ(act("sn1", "PUT", p, R"({"impact":"minor","severity":"major"})").status, 201);
  EXPECT_EQ(priority(), 3);
  EXPECT_EQ(act("sn1", "PUT", p, R"({"impact":"medium","severity":"minor"})").status, 201);
  EXPECT_EQ(priority(), 4);
  refused(act("sn1", "PUT", p, R"({"impact":"huge","severity":"minor"})"), 422,
          "ticket.priority.scale");
  refused(act("sn1", "PUT", p, R"({"impact":"minor","severity":"minor","priority":1})"), 422,
          "ticket.priority.reason");
  // A reason of invisible characters alone is none.
  refused(act("sn1", "PUT", p,
              R"({"impact":"minor","severity":"minor","priority":1,"reason":" ​"})"),
          422, "ticket.priority.reason");
  refused(
      act("sn1", "PUT", p, R"({"impact":"minor","severity":"minor","priority":9,"reason":"x"})"),
      422, "ticket.priority.range");
  refused(act("sn1", "PUT", p, R"({"impact":"minor","severity":"minor","priority":"1"})"), 400,
          "request.type");
  refused(act("alice", "PUT", p, R"({"impact":"major","severity":"major"})"), 403);
  EXPECT_EQ(
      act("sn1", "PUT", p,
          R"({"impact":"minor","severity":"minor","priority":1,"reason":"Ministre en copie"})")
          .status,
      201);
  auto detail = act("alice", "GET", "/v1/tickets/" + id).body;
  EXPECT_EQ(detail["priority"], 1);
  EXPECT_EQ(detail["priority_recommended"], 4);
  EXPECT_EQ(detail["history"].back()["text"], "Ministre en copie");  // the override is recorded
}

TEST_F(TicketLifecycle, NotificationsWaitInTheOutboxUntilMarkedSent) {
  auto pending_for = [&](const std::string& ticket) {
    std::vector<json> mine;
    const Answer outbox = act("mailer", "GET", "/v1/outbox?limit=1000");
    for (const auto& n : outbox.body["items"]) {
      // Structure notifications (of the attachment set-up) carry no ticket_id.
      if (n.value("ticket_id", "") == ticket) mine.push_back(n);
    }
    return mine;
  };
  const std::string id = open_ticket();
  auto created = pending_for(id);
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0]["kind"], "ticket_created");
  EXPECT_EQ(created[0]["recipient_user_id"], "alice");
  EXPECT_TRUE(created[0]["number"].get<std::string>().starts_with("SOL-"));

  ASSERT_EQ(
      act("sn1", "POST", "/v1/tickets/" + id + "/information-requests", R"({"text":"?"})").status,
      201);
  ASSERT_EQ(act("alice", "POST", "/v1/tickets/" + id + "/information", R"({"text":"!"})").status,
            201);
  ASSERT_EQ(act("sn1", "POST", "/v1/tickets/" + id + "/solution", R"({"text":"ok"})").status, 201);
  auto all = pending_for(id);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1]["kind"], "information_requested");
  EXPECT_EQ(all[2]["kind"], "solution_proposed");

  refused(act("alice", "GET", "/v1/outbox"), 403, "outbox.operator_only");
  const std::string sent =
      "/v1/outbox/" + created[0]["notification_id"].get<std::string>() + "/sent";
  refused(act("alice", "POST", sent), 403, "outbox.operator_only");
  EXPECT_EQ(act("mailer", "POST", sent).status, 201);
  EXPECT_EQ(pending_for(id).size(), 2u);
  refused(act("mailer", "POST", sent), 409, "notification.sent.already");
  refused(act("mailer", "POST", "/v1/outbox/nope/sent"), 404, "notification.not_found");
}

}  // namespace
}  // namespace chorus
