// End to end, across the process boundary: the real chorusd binary on a free loopback port,
// driven over HTTP, once on the embedded log and once on Kafka (a real broker).

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "tests/support/attachments.h"
#include "tests/support/server_process.h"

namespace chorus {
namespace {

using nlohmann::json;
using testing::HttpClient;
using testing::ServerProcess;
using namespace std::chrono_literals;

const char* env_or_null(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

std::string unique_name(const std::string& prefix) {
  static std::atomic<int> n{0};
  return prefix + std::to_string(getpid()) + "-" + std::to_string(n++) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 100000);
}

// The value of the exposition line for `series` (name and labels, exactly), if present.
std::optional<double> sample(const std::string& exposition, const std::string& series) {
  const std::string line_start = "\n" + series + " ";
  const auto at = exposition.find(line_start);
  if (at == std::string::npos) return std::nullopt;
  return std::stod(exposition.substr(at + line_start.size()));
}

const std::string kForm =
    R"({"emitting_structure_id":"structure-1","category":"Technique","sub_category":"Connexion",)"
    R"("title":"Connexion impossible","description":"Le portail refuse mon mot de passe."})";

std::string base64url(std::string_view bytes) {
  static constexpr char kDigits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t bits = 0;
  int held = 0;
  for (unsigned char b : bytes) {
    bits = (bits << 8) | b;
    held += 8;
    while (held >= 6) {
      held -= 6;
      out.push_back(kDigits[(bits >> held) & 63]);
    }
  }
  if (held > 0) out.push_back(kDigits[(bits << (6 - held)) & 63]);
  return out;
}

// A token with `payload` as its claims, signed HS256 with the test key: claims the server's own
// minting cannot make (a fraction, a wrong type).
std::string hs256(const std::string& payload) {
  const std::string signing_input =
      base64url(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  const std::string key = testing::kTestTokenKey;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
       &mac_size);
  return signing_input + "." +
         base64url(std::string_view(reinterpret_cast<const char*>(mac), mac_size));
}

class ServerEndToEnd : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    data_dir_ = std::filesystem::temp_directory_path() / unique_name("chorus-e2e-");
    args_ = {"--data-dir", data_dir_.string(), "--request-timeout-ms", "1000"};
    if (GetParam() == "kafka") {
      const char* brokers = env_or_null("CHORUS_TEST_KAFKA_BROKERS");
      if (brokers == nullptr) {
        ASSERT_EQ(env_or_null("CI"), nullptr) << "CHORUS_TEST_KAFKA_BROKERS is not set in CI";
        GTEST_SKIP() << "CHORUS_TEST_KAFKA_BROKERS not set";
      }
      // Frequent librdkafka statistics, so that the metrics test need not wait long for one.
      args_.insert(args_.end(),
                   {"--kafka-brokers", brokers, "--kafka-topic", unique_name("e2e-"),
                    "--kafka-partitions", "3", "--kafka-statistics-interval-ms", "200"});
    }
    server_ = std::make_unique<ServerProcess>(args_);
    testing::attach_users(server_->port(), "structure-1", {"alice", "bob"});
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(data_dir_);
  }

  testing::HttpResponse call(HttpClient& c, const std::string& method, const std::string& target,
                             const std::string& user, const std::string& body = "",
                             std::map<std::string, std::string> headers = {}) {
    if (!user.empty()) headers["Authorization"] = ServerProcess::token(user);
    auto r = c.request(method, target, body, headers);
    EXPECT_TRUE(r.has_value()) << method << " " << target << ": no answer";
    return r.value_or(testing::HttpResponse{});
  }

  std::filesystem::path data_dir_;
  std::vector<std::string> args_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_P(ServerEndToEnd, DraftSubmittedShowsInEnCoursForItsEmitterOnly) {
  auto c = server_->connect();
  auto created = call(*c, "POST", "/v1/tickets/drafts", "alice", kForm);
  ASSERT_EQ(created.status, 201) << created.body;
  const json draft = json::parse(created.body);
  const std::string id = draft["ticket_id"];

  // The draft is in "Brouillons", readable right after the write thanks to the token.
  auto drafts = call(*c, "GET", "/v1/me/tickets?tab=brouillons", "alice", "",
                     {{"X-Consistency-Token", draft["consistency_token"]}});
  ASSERT_EQ(drafts.status, 200) << drafts.body;
  EXPECT_EQ(json::parse(drafts.body)["total"], 1);

  auto submitted = call(*c, "POST", "/v1/tickets/" + id + "/submit", "alice");
  ASSERT_EQ(submitted.status, 201) << submitted.body;
  const std::string token = json::parse(submitted.body)["consistency_token"];
  EXPECT_EQ(submitted.headers["x-consistency-token"], token);

  auto en_cours =
      call(*c, "GET", "/v1/me/tickets?tab=en_cours", "alice", "", {{"X-Consistency-Token", token}});
  ASSERT_EQ(en_cours.status, 200) << en_cours.body;
  const json list = json::parse(en_cours.body);
  ASSERT_EQ(list["total"], 1);
  EXPECT_EQ(list["items"][0]["ticket_id"], id);
  EXPECT_EQ(list["items"][0]["status"], "Ouvert");
  EXPECT_TRUE(list["items"][0]["number"].get<std::string>().starts_with("SOL-"));
  EXPECT_EQ(json::parse(call(*c, "GET", "/v1/me/tickets?tab=brouillons", "alice").body)["total"],
            0);

  // Another user sees neither the list row nor the ticket: 404, as if it did not exist.
  auto other =
      call(*c, "GET", "/v1/me/tickets?tab=en_cours", "bob", "", {{"X-Consistency-Token", token}});
  EXPECT_EQ(json::parse(other.body)["total"], 0);
  EXPECT_EQ(call(*c, "GET", "/v1/tickets/" + id, "bob").status, 404);
  EXPECT_EQ(call(*c, "POST", "/v1/tickets/" + id + "/submit", "bob").status, 404);
  auto detail = call(*c, "GET", "/v1/tickets/" + id, "alice");
  ASSERT_EQ(detail.status, 200);
  EXPECT_EQ(json::parse(detail.body)["history"].size(), 2u);

  // Submitting twice breaks the status table: 409 naming the rule, nothing written.
  auto again = call(*c, "POST", "/v1/tickets/" + id + "/submit", "alice");
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(json::parse(again.body)["rule"], "ticket.submit.status");
  EXPECT_EQ(again.headers["content-type"], "application/problem+json");
}

TEST_P(ServerEndToEnd, TwoUsersOnOneKeepAliveConnectionEachSeeTheirOwn) {
  auto c = server_->connect();
  std::string token;
  for (const char* user : {"alice", "bob", "alice"}) {
    auto r = call(*c, "POST", "/v1/tickets", user, kForm);
    ASSERT_EQ(r.status, 201) << r.body;
    token = json::parse(r.body)["consistency_token"];
  }
  for (int round = 0; round < 3; ++round) {
    for (auto [user, expected] : {std::pair{"alice", 2}, std::pair{"bob", 1}}) {
      auto r = call(*c, "GET", "/v1/me/tickets?tab=en_cours", user, "",
                    {{"X-Consistency-Token", token}});
      ASSERT_EQ(r.status, 200);
      EXPECT_EQ(json::parse(r.body)["total"], expected) << user;
      EXPECT_EQ(r.headers["cache-control"], "no-store");
    }
  }
}

TEST_P(ServerEndToEnd, RetriedCommandWithIdempotencyKeyWritesOnce) {
  auto c = server_->connect();
  auto first = call(*c, "POST", "/v1/tickets", "alice", kForm, {{"Idempotency-Key", "k-1"}});
  ASSERT_EQ(first.status, 201) << first.body;
  auto retry = call(*c, "POST", "/v1/tickets", "alice", kForm, {{"Idempotency-Key", "k-1"}});
  ASSERT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(json::parse(retry.body)["ticket_id"], json::parse(first.body)["ticket_id"]);
  EXPECT_EQ(json::parse(retry.body)["consistency_token"],
            json::parse(first.body)["consistency_token"]);
  // Another user with the same key is another command.
  auto other = call(*c, "POST", "/v1/tickets", "bob", kForm, {{"Idempotency-Key", "k-1"}});
  EXPECT_EQ(other.status, 201);
  EXPECT_NE(json::parse(other.body)["ticket_id"], json::parse(first.body)["ticket_id"]);
  auto list = call(*c, "GET", "/v1/me/tickets?tab=en_cours", "alice", "",
                   {{"X-Consistency-Token", json::parse(other.body)["consistency_token"]}});
  EXPECT_EQ(json::parse(list.body)["total"], 1);
  // A comment retried after many others on the same ticket is still the one comment.
  const std::string ticket = json::parse(first.body)["ticket_id"];
  const std::string comments = "/v1/tickets/" + ticket + "/comments";
  auto said = call(*c, "POST", comments, "alice", R"({"text":"K"})", {{"Idempotency-Key", "c-1"}});
  ASSERT_EQ(said.status, 201) << said.body;
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(call(*c, "POST", comments, "alice", R"({"text":"autre"})").status, 201);
  }
  auto resaid =
      call(*c, "POST", comments, "alice", R"({"text":"K"})", {{"Idempotency-Key", "c-1"}});
  EXPECT_EQ(resaid.status, 200) << resaid.body;
  EXPECT_EQ(json::parse(resaid.body)["version"], json::parse(said.body)["version"]);
  EXPECT_EQ(json::parse(resaid.body)["consistency_token"],
            json::parse(said.body)["consistency_token"]);
  // The same key with another body is another command: written, not dropped as a replay.
  auto other_text =
      call(*c, "POST", comments, "alice", R"({"text":"L"})", {{"Idempotency-Key", "c-1"}});
  EXPECT_EQ(other_text.status, 201) << other_text.body;
  EXPECT_GT(json::parse(other_text.body)["version"], json::parse(resaid.body)["version"]);
}

TEST_P(ServerEndToEnd, ForgedExpiredOrMissingTokensGet401) {
  auto c = server_->connect();
  EXPECT_EQ(call(*c, "GET", "/v1/me/tickets", "").status, 401);
  std::string good = ServerProcess::token("alice");
  std::string tampered = good;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  const std::string payload_swapped = good.substr(0, good.find('.') + 1) +
                                      "eyJzdWIiOiJtYWxsb3J5IiwiZXhwIjo5OTk5OTk5OTk5fQ" +
                                      good.substr(good.rfind('.'));
  const std::string alg_none =
      "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.";
  const std::string other_key =
      "Bearer " +
      api::TokenVerifier("another-key-another-key-another-key!!").mint("alice", {}, 9999999999);
  // Not valid before a time to come ("nbf"): refused until then.
  const std::string not_yet =
      "Bearer " + api::TokenVerifier(testing::kTestTokenKey)
                      .mint("alice", {}, 9999999999, std::time(nullptr) + 3600);
  const std::string since_a_minute =
      "Bearer " + api::TokenVerifier(testing::kTestTokenKey)
                      .mint("alice", {}, 9999999999, std::time(nullptr) - 60);
  EXPECT_EQ(c->request("GET", "/v1/me/tickets", "", {{"Authorization", since_a_minute}})->status,
            200);
  // An issuer's clock a little ahead: within the leeway.
  const std::string issuer_ahead =
      "Bearer " + api::TokenVerifier(testing::kTestTokenKey)
                      .mint("alice", {}, 9999999999, std::time(nullptr) + 30);
  EXPECT_EQ(c->request("GET", "/v1/me/tickets", "", {{"Authorization", issuer_ahead}})->status,
            200);
  // A NumericDate may have a fraction; a string is no date.
  const std::string in_an_hour = std::to_string(std::time(nullptr) + 3600);
  const std::string not_yet_fraction =
      "Bearer " + hs256(R"({"sub":"alice","exp":9999999999,"nbf":)" + in_an_hour + ".5}");
  const std::string nbf_string = "Bearer " + hs256(R"({"sub":"alice","exp":9999999999,"nbf":"x"})");
  EXPECT_EQ(
      c->request("GET", "/v1/me/tickets", "",
                 {{"Authorization", "Bearer " + hs256(R"({"sub":"alice","exp":9999999999})")}})
          ->status,
      200)
      << "the test's own signature is good";
  for (const auto& auth :
       {tampered, payload_swapped, alg_none, other_key, not_yet, not_yet_fraction, nbf_string,
        ServerProcess::token("alice", {}, -10), std::string("Basic abc"), std::string("Bearer "),
        std::string("Bearer \xff\xfe")}) {
    auto r = c->request("GET", "/v1/me/tickets", "", {{"Authorization", auth}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << auth;
    EXPECT_EQ(r->headers["www-authenticate"], "Bearer");
  }
  EXPECT_EQ(call(*c, "GET", "/v1/me/tickets", "alice").status, 200);
  // The scheme's name is case-insensitive (RFC 9110): "bearer" and "BEARER" are "Bearer".
  const std::string token_alone = good.substr(std::string("Bearer ").size());
  for (const char* scheme : {"bearer ", "BEARER "}) {
    EXPECT_EQ(c->request("GET", "/v1/me/tickets", "",
                         {{"Authorization", std::string(scheme) + token_alone}})
                  ->status,
              200)
        << scheme;
  }
  EXPECT_EQ(call(*c, "GET", "/healthz", "").status, 200);
}

TEST_P(ServerEndToEnd, BadInputGetsAClear4xxAndWritesNothing) {
  struct Case {
    std::string body;
    int status;
    std::string rule;
  };
  const std::vector<Case> cases{
      {"{not json", 400, "request.json"},
      {"[1,2]", 400, "request.json_object"},
      {R"({"title":"x","colour":"red"})", 400, "request.unknown_field"},
      // A member twice: a proxy reading the first would see another request than the one decided.
      {R"({"emitting_structure_id":"s2","emitting_structure_id":"s1","title":"x"})", 400,
       "request.duplicate_member"},
      {R"({"title":42})", 400, "request.type"},
      {"{\"title\":\"\xc3\x28\"}", 400, "request.utf8"},
      {R"({"emitting_structure_id":"s","category":"c","sub_category":"d","title":""})", 422,
       "ticket.submit.required"},
      {R"({"emitting_structure_id":"s","category":"c","sub_category":"d","title":")" +
           std::string(300, 'x') + R"(","description":"d"})",
       422, "ticket.submit.too_long"},
      // A number beyond a double's range is no parse error to nlohmann (it once gave a 500).
      {R"({"title":1e999999})", 400, "request.json"},
      // nlohmann's lexer stops at a raw NUL: what follows must not pass unread.
      {std::string(R"({"title":"x"})") + '\0' + "{garbage", 400, "request.json"},
      // Control characters a JSON escape lets in: a NUL would cut a view key.
      {R"({"emitting_structure_id":"s","category":"c","sub_category":"d","title":"a\u0000b"})", 400,
       "request.text"},
      {R"({"emitting_structure_id":"s\u0007","category":"c","sub_category":"d","title":"t"})", 400,
       "request.text"},
      // Blank is not filled in.
      {R"({"emitting_structure_id":"s","category":"c","sub_category":"d","title":" \n "})", 422,
       "ticket.submit.required"},
  };
  auto c = server_->connect();
  for (const auto& k : cases) {
    auto r = call(*c, "POST", "/v1/tickets", "alice", k.body);
    EXPECT_EQ(r.status, k.status) << k.body << " -> " << r.body;
    if (r.status >= 400 && r.status != 413) {
      auto problem = json::parse(r.body, nullptr, false);
      ASSERT_FALSE(problem.is_discarded()) << r.body;
      EXPECT_EQ(problem["rule"], k.rule) << r.body;
    }
  }
  // Oversized body: 413, and the connection is closed.
  {
    auto big = server_->connect();
    auto r = big->request("POST", "/v1/tickets", std::string(2 * 1024 * 1024, 'x'),
                          {{"Authorization", ServerProcess::token("alice")}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
  }
  // Oversized headers: 431.
  {
    auto big = server_->connect();
    auto r = big->request("GET", "/v1/me/tickets", "", {{"X-Filler", std::string(20'000, 'y')}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 431);
  }
  // A request that never finishes: 408 after the request timeout.
  {
    auto slow = server_->connect();
    slow->send_raw("POST /v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ti");
    auto r = slow->read_response(10s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 408);
  }
  // Garbage: 400.
  {
    auto garbage = server_->connect();
    garbage->send_raw("\x16\x03\x01 not http at all\r\n\r\n");
    auto r = garbage->read_response(10s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
  }
  EXPECT_EQ(call(*c, "GET", "/v1/me/tickets/counts", "alice").body,
            R"({"actions_requises":0,"brouillons":0,"clotures":0,"en_cours":0,"tous":0})");
  EXPECT_EQ(call(*c, "GET", "/v1/tickets/not-a-uuid", "alice").status, 404);
  EXPECT_EQ(call(*c, "DELETE", "/v1/me/tickets", "alice").status, 405);
  // Two tokens: which one acts is not for the server to guess.
  {
    auto twice = server_->connect();
    twice->send_raw("GET /v1/me/tickets/counts HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                    testing::ServerProcess::token("alice") +
                    "\r\nAuthorization: " + testing::ServerProcess::token("bob") + "\r\n\r\n");
    auto r = twice->read_response(10s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(r->body.find("request.header"), std::string::npos) << r->body;
  }
  // A misspelt filter is refused, not ignored, on every route (here the members of a
  // structure, the history of one and the approvals inbox, which once ignored them).
  for (const char* target : {"/v1/me/tickets?tabb=tous", "/v1/structures/s/history?pagee=2",
                             "/v1/approvals?kindd=attachment", "/v1/me/attachments?x=1"}) {
    auto r = call(*c, "GET", target, "alice");
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_NE(r.body.find("request.query"), std::string::npos) << target << ": " << r.body;
  }
  // A parameter given twice: which value holds is not for the server to guess.
  EXPECT_EQ(call(*c, "GET", "/v1/me/tickets?page=1&page=2", "alice").status, 400);
  EXPECT_EQ(call(*c, "GET", "/v1/me/tickets?page=0", "alice").status, 400);
  EXPECT_EQ(call(*c, "GET", "/v1/me/tickets?tab=nope", "alice").status, 400);
  EXPECT_EQ(call(*c, "GET", "/v1/me/tickets", "alice", "", {{"X-Consistency-Token", "x.y"}}).status,
            400);
  // A body declared as anything but JSON: 415, before it is read (a cross-site form can only
  // send text/plain or a form encoding).
  // Nor JSON declared in another charset than UTF-8: nobody reads it as that charset.
  for (const char* type :
       {"text/plain", "application/x-www-form-urlencoded", "",
        "application/json; charset=iso-8859-1", "application/json;charset=\"latin1\""}) {
    auto r = call(*c, "POST", "/v1/tickets", "alice", kForm, {{"Content-Type", type}});
    EXPECT_EQ(r.status, 415) << type << " " << r.body;
    EXPECT_NE(r.body.find("request.content_type"), std::string::npos) << r.body;
  }
  EXPECT_EQ(
      call(*c, "POST", "/v1/public/tickets", "", "{}", {{"Content-Type", "text/plain"}}).status,
      415);
  // JSON with parameters, in any case, or a "+json" type, is JSON (refused here on its content).
  for (const char* type :
       {"application/json; charset=utf-8", "Application/JSON", "application/x+json",
        "application/json;charset=\"UTF-8\"", "application/json; version=1"}) {
    auto r = call(*c, "POST", "/v1/tickets", "alice", "{}", {{"Content-Type", type}});
    EXPECT_NE(r.status, 415) << type << " " << r.body;
  }
  // Path and query text that is not UTF-8, or holds a control character: 400 naming the part,
  // never a dropped connection (a quoted %FF once aborted the process).
  struct Target {
    std::string target;
    std::string rule;
    std::string field;
  };
  for (const auto& t :
       std::vector<Target>{{"/v1/me/tickets?tab=%FF", "request.query", "tab"},
                           {"/v1/me/tickets?sort=%C3", "request.query", "sort"},
                           {"/v1/me/tickets?status=a%00b", "request.query", "status"},
                           {"/v1/me/tickets?%FF=1", "request.query", ""},
                           {"/v1/me/tickets/export.csv?order=%ED%A0%80", "request.query", "order"},
                           {"/v1/reference-objects/%FF/1", "request.path", ""},
                           {"/v1/tickets/a%00b", "request.path", ""}}) {
    auto r = call(*c, "GET", t.target, "alice");
    EXPECT_EQ(r.status, 400) << t.target << " " << r.body;
    auto problem = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(problem.is_object()) << t.target << " " << r.body;
    EXPECT_EQ(problem.value("rule", ""), t.rule) << t.target;
    EXPECT_EQ(problem.value("field", ""), t.field) << t.target;
  }
  // An escaped '/' is no separator: it does not reach another route.
  EXPECT_EQ(call(*c, "GET", "/v1%2Fme%2Ftickets", "alice").status, 404);
  // A consistency token beyond every write: refused at once, not held for the wait (on Kafka,
  // beyond the brokers' high watermarks: no server wrote it).
  // Waited out, it would answer 503 views.behind.
  for (const char* token : {"99999999", "0.0.0.0.0.0.0.0.1"}) {
    auto r = call(*c, "GET", "/v1/me/tickets", "alice", "", {{"X-Consistency-Token", token}});
    EXPECT_EQ(r.status, 400) << token << " " << r.body;
    EXPECT_NE(r.body.find("request.consistency_token"), std::string::npos) << r.body;
  }
  // Still serving, and nothing was written.
  EXPECT_EQ(call(*c, "GET", "/v1/me/tickets/counts", "alice").body,
            R"({"actions_requises":0,"brouillons":0,"clotures":0,"en_cours":0,"tous":0})");
}

TEST_P(ServerEndToEnd, HealthReadinessAndMetrics) {
  auto c = server_->connect();
  EXPECT_EQ(call(*c, "GET", "/healthz", "").status, 200);
  auto ready = call(*c, "GET", "/readyz", "");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(json::parse(ready.body)["log"], GetParam());
  ASSERT_EQ(call(*c, "POST", "/v1/tickets", "alice", kForm).status, 201);
  auto metrics = call(*c, "GET", "/metrics", "");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(
      metrics.body.find(R"(chorus_commands_total{outcome="accepted",type="ticket.submit"} 1)"),
      std::string::npos)
      << metrics.body;
  EXPECT_EQ(metrics.body.find("alice"), std::string::npos) << "a user id leaked into metrics";

  // RocksDB figures of the view store, and of the log when it is the embedded one.
  std::vector<std::string> stores{"views"};
  if (GetParam() == "embedded") stores.push_back("log");
  for (const auto& store : stores) {
    for (const char* name :
         {"chorus_rocksdb_block_cache_hits_total", "chorus_rocksdb_block_cache_misses_total",
          "chorus_rocksdb_pending_compaction_bytes", "chorus_rocksdb_write_stopped"}) {
      const std::string series = std::string(name) + "{store=\"" + store + "\"}";
      EXPECT_TRUE(sample(metrics.body, series)) << series << " missing:\n" << metrics.body;
    }
  }
  if (GetParam() == "embedded") {
    EXPECT_EQ(metrics.body.find("chorus_kafka_"), std::string::npos);
    return;
  }
  EXPECT_EQ(metrics.body.find(R"({store="log"})"), std::string::npos);
  // librdkafka reports on its own schedule: wait for a report that saw a broker answer.
  std::string body = metrics.body;
  for (int i = 0; i < 300; ++i) {
    if (sample(body, "chorus_kafka_broker_rtt_avg_seconds").value_or(0) > 0) break;
    std::this_thread::sleep_for(100ms);
    ASSERT_EQ(call(*c, "POST", "/v1/tickets", "alice", kForm).status, 201);
    body = call(*c, "GET", "/metrics", "").body;
  }
  EXPECT_GT(sample(body, "chorus_kafka_broker_rtt_avg_seconds").value_or(0), 0) << body;
  EXPECT_GT(sample(body, "chorus_kafka_broker_rtt_p99_seconds").value_or(0), 0) << body;
  for (const char* series :
       {"chorus_kafka_producer_queue_messages", "chorus_kafka_producer_queue_bytes",
        "chorus_kafka_broker_tx_errors_total", "chorus_kafka_broker_rx_errors_total",
        "chorus_kafka_consumer_lag_messages"}) {
    EXPECT_TRUE(sample(body, series)) << series << " missing:\n" << body;
  }
}

TEST_P(ServerEndToEnd, OperatorRebuildsTheViewsWhileServingAndMetricsShowIt) {
  auto c = server_->connect();
  std::string written;
  for (int i = 0; i < 3; ++i) {
    auto r = call(*c, "POST", "/v1/tickets", "alice", kForm);
    ASSERT_EQ(r.status, 201) << r.body;
    written = json::parse(r.body).value("consistency_token", "");
  }
  // Read once the views hold the three tickets: the views may lag the command's answer.
  auto before =
      call(*c, "GET", "/v1/me/tickets/counts", "alice", "", {{"X-Consistency-Token", written}});
  ASSERT_EQ(before.status, 200) << before.body;

  auto refused = call(*c, "POST", "/v1/admin/views/rebuild", "bob");
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(json::parse(refused.body).value("rule", ""), "views.operator_only") << refused.body;
  // The route takes no field: one sent is refused, not ignored (nothing starts).
  auto with_field = c->request("POST", "/v1/admin/views/rebuild", R"({"all":true})",
                               {{"Authorization", ServerProcess::token("ops-1", {"operator"})}});
  ASSERT_TRUE(with_field);
  EXPECT_EQ(with_field->status, 400) << with_field->body;
  EXPECT_NE(with_field->body.find("request.unknown_field"), std::string::npos);
  auto started = c->request("POST", "/v1/admin/views/rebuild", "",
                            {{"Authorization", ServerProcess::token("ops-1", {"operator"})}});
  ASSERT_TRUE(started);
  EXPECT_EQ(started->status, 202) << started->body;

  std::string body;
  for (int i = 0; i < 300; ++i) {
    body = call(*c, "GET", "/metrics", "").body;
    if (sample(body, R"(chorus_view_rebuilds_total{outcome="completed"})").value_or(0) >= 1) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(sample(body, R"(chorus_view_rebuilds_total{outcome="completed"})"), 1) << body;
  EXPECT_EQ(sample(body, R"(chorus_view_rebuilds_total{outcome="failed"})"), 0) << body;
  EXPECT_EQ(sample(body, "chorus_view_rebuild_running"), 0) << body;
  EXPECT_EQ(sample(body, "chorus_view_rebuild_remaining_events"), 0) << body;
  // Accounts, structure, attachments and the three tickets: all replayed.
  EXPECT_GE(sample(body, "chorus_view_rebuild_applied_events").value_or(0), 3) << body;
  // The swapped-in views answer as the old ones did.
  auto after = call(*c, "GET", "/v1/me/tickets/counts", "alice");
  EXPECT_EQ(after.status, 200);
  EXPECT_EQ(json::parse(after.body), json::parse(before.body));
}

TEST(ServerMetricsOff, MetricsAnswer404AndCommandsStillWork) {
  const auto dir = std::filesystem::temp_directory_path() / unique_name("chorus-nometrics-");
  {
    ServerProcess server({"--data-dir", dir.string(), "--metrics=false"});
    testing::attach_users(server.port(), "structure-1", {"alice"});
    auto c = server.connect();
    auto created = c->request("POST", "/v1/tickets", kForm,
                              {{"Authorization", ServerProcess::token("alice")}});
    ASSERT_TRUE(created);
    EXPECT_EQ(created->status, 201) << created->body;
    auto metrics = c->request("GET", "/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metrics->status, 404);
    EXPECT_EQ(json::parse(metrics->body)["rule"], "request.route");
    EXPECT_EQ(c->request("GET", "/healthz")->status, 200);
  }
  std::filesystem::remove_all(dir);
}

// Views built from one topic, opened beside another (a data directory copied to a server of
// another --kafka-topic, or a topic deleted and created again): their position lies past every
// write of the topic. Served, they would show the other topic's tickets and take this one's
// consistency tokens for applied; the server refuses to start instead, and says why.
TEST_P(ServerEndToEnd, ViewsOfAnotherTopicAreRefusedAtStart) {
  if (GetParam() != "kafka") GTEST_SKIP() << "the embedded log has its own check (replay_test)";
  auto c = server_->connect();
  ASSERT_EQ(call(*c, "POST", "/v1/tickets", "alice", kForm).status, 201);
  c.reset();
  server_.reset();
  std::vector<std::string> other = args_;
  const auto topic = std::find(other.begin(), other.end(), "--kafka-topic");
  ASSERT_NE(topic, other.end());
  *std::next(topic) = unique_name("e2e-other-");
  const auto [exit_code, said] = testing::run_until_exit(other);
  EXPECT_EQ(exit_code, 1) << said;
  EXPECT_NE(said.find("past every write of the log"), std::string::npos) << said;
  EXPECT_EQ(said.find("LISTENING"), std::string::npos) << said;
  // The same directory beside its own topic starts as before.
  server_ = std::make_unique<ServerProcess>(args_);
}

// A second server on the same topic takes the log over. The first learns it when its views read
// the new owner's events, or at its next write (503 log.fenced, nothing written); from then on
// it refuses every command at once, without deciding it on what it knew before the takeover
// (it once answered 404 for tickets created since), and says it is not ready, so that a load
// balancer sends the writes to the new owner.
TEST_P(ServerEndToEnd, AServerAnotherTookTheLogOverLeavesTheRotation) {
  if (GetParam() != "kafka") GTEST_SKIP() << "one writer owns an embedded log";
  auto first = server_->connect();
  ASSERT_EQ(call(*first, "GET", "/readyz", "").status, 200);
  std::vector<std::string> other = args_;
  const auto dir = std::find(other.begin(), other.end(), "--data-dir");
  ASSERT_NE(dir, other.end());
  *std::next(dir) = data_dir_.string() + "-second";
  ServerProcess second(other);
  auto c2 = second.connect();
  // Its views learn alice's attachment from the topic as they catch up.
  testing::HttpResponse made;
  for (int i = 0; i < 100; ++i) {
    made = call(*c2, "POST", "/v1/tickets", "alice", kForm);
    if (made.status != 403) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string id = json::parse(made.body).value("ticket_id", "");

  auto stale = call(*first, "POST", "/v1/tickets", "alice", kForm);
  EXPECT_EQ(stale.status, 503) << stale.body;
  EXPECT_NE(stale.body.find("log.fenced"), std::string::npos) << stale.body;
  auto refused =
      call(*first, "POST", "/v1/tickets/" + id + "/comments", "alice", R"({"text":"encore là ?"})");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("log.fenced"), std::string::npos) << refused.body;
  auto ready = call(*first, "GET", "/readyz", "");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_NE(ready.body.find("ready.fenced"), std::string::npos) << ready.body;
  // The new owner writes on.
  EXPECT_EQ(
      call(*c2, "POST", "/v1/tickets/" + id + "/comments", "alice", R"({"text":"oui"})").status,
      201);
  EXPECT_EQ(call(*c2, "GET", "/readyz", "").status, 200);
  c2.reset();
  second.stop();
  std::filesystem::remove_all(data_dir_.string() + "-second");
}

// Several servers on one topic read a file any of them received when they share the attachments'
// directory (--attachments-dir); one that does not share it says so (503), rather than calling
// the file damaged (500).
TEST_P(ServerEndToEnd, AttachmentsAreReadThroughEveryServerSharingTheirDirectory) {
  if (GetParam() != "kafka") GTEST_SKIP() << "one server serves an embedded log";
  auto c = server_->connect();
  auto made = call(*c, "POST", "/v1/tickets", "alice", kForm);
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string id = json::parse(made.body).value("ticket_id", "");
  auto sent = call(*c, "POST", "/v1/tickets/" + id + "/attachments?name=note.txt", "alice",
                   "bonjour", {{"Content-Type", "text/plain"}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  const json file = json::parse(sent.body);
  const std::string target =
      "/v1/tickets/" + id + "/attachments/" + file.value("attachment_id", "") + "";
  const std::string token = file.value("consistency_token", "");
  auto with_dir = [&](const std::string& suffix, const std::string& attachments) {
    std::vector<std::string> args = args_;
    *std::next(std::find(args.begin(), args.end(), "--data-dir")) = data_dir_.string() + suffix;
    if (!attachments.empty()) args.insert(args.end(), {"--attachments-dir", attachments});
    return args;
  };
  for (const bool shared : {true, false}) {
    const std::string suffix = shared ? "-shared" : "-own";
    ServerProcess other(with_dir(suffix, shared ? (data_dir_ / "attachments").string() : ""));
    auto o = other.connect();
    testing::HttpResponse got;
    for (int i = 0; i < 100; ++i) {  // its views learn the ticket and alice's rights
      got = call(*o, "GET", target, "alice", "", {{"X-Consistency-Token", token}});
      if (got.status != 404 && got.status != 403) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (shared) {
      EXPECT_EQ(got.status, 200) << got.body;
      EXPECT_EQ(got.body, "bonjour");
    } else {
      EXPECT_EQ(got.status, 503) << got.body;
      EXPECT_NE(got.body.find("attachment.elsewhere"), std::string::npos) << got.body;
    }
    o.reset();
    other.stop();
    std::filesystem::remove_all(data_dir_.string() + suffix);
  }
}

// Through a broker outage, commands wait for the log (up to twice its append timeout) on
// threads of their own: health checks and plain reads are still answered. They once waited
// behind commands holding every I/O thread (as many commands as --threads), and a liveness
// probe would have killed a server that only waited.
TEST_P(ServerEndToEnd, HealthAndReadsAreAnsweredWhileCommandsWaitForTheBrokers) {
  if (GetParam() != "kafka") GTEST_SKIP() << "an embedded log has no broker to lose";
  const char* stop = env_or_null("CHORUS_TEST_KAFKA_STOP");
  const char* start = env_or_null("CHORUS_TEST_KAFKA_START");
  if (stop == nullptr || start == nullptr) {
    ASSERT_EQ(env_or_null("CI"), nullptr) << "broker control commands are not set in CI";
    GTEST_SKIP() << "CHORUS_TEST_KAFKA_STOP / CHORUS_TEST_KAFKA_START not set";
  }
  auto c = server_->connect();
  auto made = call(*c, "POST", "/v1/tickets", "alice", kForm);
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string id = json::parse(made.body).value("ticket_id", "");
  ASSERT_EQ(std::system(stop), 0);
  constexpr int kWaiting = 4;  // the server's --threads
  std::atomic<int> answered{0};
  std::vector<std::thread> writers;
  for (int i = 0; i < kWaiting; ++i) {
    writers.emplace_back([&, i] {
      auto w = server_->connect();
      auto r = w->request(
          "POST", "/v1/tickets/" + id + "/comments",
          R"({"text":"pendant la panne )" + std::to_string(i) + R"("})",
          {{"Authorization", ServerProcess::token("alice")}, {"Content-Type", "application/json"}},
          std::chrono::seconds(120));
      if (r) ++answered;
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the commands are waiting by now
  auto probe = server_->connect();
  auto health = probe->request("GET", "/healthz", "", {}, std::chrono::seconds(10));
  EXPECT_TRUE(health && health->status == 200) << "no answer to /healthz during the outage";
  // A read sending back the token of a write the views hold is answered at once too (it
  // once queued behind the waiting commands).
  const std::string token = json::parse(made.body).value("consistency_token", "");
  auto read = probe->request(
      "GET", "/v1/tickets/" + id, "",
      {{"Authorization", ServerProcess::token("alice")}, {"X-Consistency-Token", token}},
      std::chrono::seconds(10));
  EXPECT_TRUE(read && read->status == 200) << "no answer to a read during the outage";
  ASSERT_EQ(std::system(start), 0);
  for (auto& t : writers) t.join();
  EXPECT_EQ(answered, kWaiting);  // written, or 503 with nothing written
}

INSTANTIATE_TEST_SUITE_P(Logs, ServerEndToEnd, ::testing::Values("embedded", "kafka"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace chorus
