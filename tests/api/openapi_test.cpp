// api/openapi.json describes every route the server has, and nothing else; and the running
// server answers every documented operation with a status the document lists.

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "api/router.h"
#include "tests/support/attachments.h"
#include "tests/support/server_process.h"

namespace chorus {
namespace {

using nlohmann::json;

json load_document() {
  std::ifstream in(std::string(CHORUS_SOURCE_DIR) + "/api/openapi.json");
  return json::parse(in);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

TEST(OpenApi, DocumentsExactlyTheRoutesOfTheServer) {
  const json doc = load_document();
  std::set<std::pair<std::string, std::string>> documented, served;
  for (const auto& [path, operations] : doc["paths"].items()) {
    for (const auto& [method, op] : operations.items()) documented.emplace(method, path);
  }
  for (const auto& r : api::Router::routes()) served.emplace(lower(r.method), r.pattern);
  EXPECT_EQ(documented, served);
}

// The query parameters a route accepts (any other is refused) are those documented.
TEST(OpenApi, DocumentsExactlyTheQueryParametersEachRouteAccepts) {
  const json doc = load_document();
  for (const auto& r : api::Router::routes()) {
    std::set<std::string> documented, accepted(r.query.begin(), r.query.end());
    for (const auto& p :
         doc["paths"][r.pattern][lower(r.method)].value("parameters", json::array())) {
      if (p.value("in", "") == "query") documented.insert(p["name"].get<std::string>());
    }
    EXPECT_EQ(documented, accepted) << r.method << " " << r.pattern;
  }
}

TEST(OpenApi, TheServerAnswersEveryDocumentedOperationAsDocumented) {
  const json doc = load_document();
  testing::ServerProcess server(
      {"--data-dir", ::testing::TempDir() + "/openapi-" + std::to_string(getpid())});
  testing::attach_users(server.port(), "s", {"alice"});
  auto c = server.connect();
  const std::string auth = testing::ServerProcess::token("alice");
  const std::string form =
      R"({"emitting_structure_id":"s","category":"Technique","sub_category":"Connexion","title":"t","description":"x"})";
  auto created = c->request("POST", "/v1/tickets/drafts", form, {{"Authorization", auth}});
  ASSERT_TRUE(created);
  const std::string id = json::parse(created->body)["ticket_id"];

  for (const auto& [path, operations] : doc["paths"].items()) {
    for (const auto& [method, op] : operations.items()) {
      std::string target = path;
      if (auto at = target.find("{ticket_id}"); at != std::string::npos) target.replace(at, 11, id);
      std::string upper = method;
      for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      const bool has_body = op.contains("requestBody");
      auto r = c->request(upper, target, has_body ? form : "", {{"Authorization", auth}});
      ASSERT_TRUE(r) << method << " " << path;
      EXPECT_TRUE(op["responses"].contains(std::to_string(r->status)))
          << method << " " << path << " answered " << r->status << " " << r->body;
      if (r->status >= 400) {
        EXPECT_EQ(r->headers["content-type"], "application/problem+json") << method << " " << path;
      }
    }
  }
}

}  // namespace
}  // namespace chorus
