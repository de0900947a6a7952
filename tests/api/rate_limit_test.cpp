// The signed-out route's rate limit: the token buckets on a fake clock, then the real server,
// where a flooding client is answered 429 with Retry-After and writes nothing while another
// client goes on.

#include "api/rate_limit.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/server_process.h"

namespace chorus {
namespace {

using nlohmann::json;

TEST(RateLimiter, ABurstThenTheSustainedRatePerClient) {
  api::RateLimiter limit({.per_second = 0.5, .burst = 3, .max_clients = 10});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limit.acquire("a", 100.0), 0) << i;
  EXPECT_DOUBLE_EQ(limit.acquire("a", 100.0), 2.0);  // one token every 2 s
  EXPECT_EQ(limit.acquire("b", 100.0), 0) << "another client has its own bucket";
  EXPECT_DOUBLE_EQ(limit.acquire("a", 101.0), 1.0);  // refused calls take nothing
  EXPECT_EQ(limit.acquire("a", 102.0), 0);
  EXPECT_GT(limit.acquire("a", 102.5), 0);
  // A quiet client gets its burst back, never more.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limit.acquire("a", 1000.0), 0) << i;
  EXPECT_GT(limit.acquire("a", 1000.0), 0);
}

TEST(RateLimiter, MemoryStaysBoundedAndTheRouteStaysLimitedUnderASprayOfAddresses) {
  api::RateLimiter limit({.per_second = 1, .burst = 2, .max_clients = 4});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(limit.acquire("c" + std::to_string(i), 0.0), 0);
  EXPECT_EQ(limit.clients(), 4u);
  // The map is full of buckets in use: new clients share the overflow bucket (burst 2).
  EXPECT_EQ(limit.acquire("new-1", 0.0), 0);
  EXPECT_EQ(limit.acquire("new-2", 0.0), 0);
  EXPECT_GT(limit.acquire("new-3", 0.0), 0);
  EXPECT_EQ(limit.clients(), 4u);
  // Once the first clients are idle (buckets full again), they make room.
  EXPECT_EQ(limit.acquire("new-4", 10.0), 0);
  EXPECT_EQ(limit.clients(), 1u);
}

TEST(PublicTicketsRateLimit, AFloodingClientGets429AndWritesNothingWhileOthersGoOn) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("chorus-rate-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  testing::ServerProcess server({"--data-dir", dir.string(), "--public-tickets-per-minute", "1",
                                 "--public-tickets-burst", "2", "--client-address-header",
                                 "X-Real-IP"});
  auto client = server.connect();
  const json form{{"email", "jean.dupont@example.fr"},
                  {"category", "Technique"},
                  {"sub_category", "Connexion"},
                  {"title", "Mot de passe oublié"},
                  {"description", "Je ne reçois pas le courriel."}};
  auto send = [&](const std::string& address) {
    auto r = client->request("POST", "/v1/public/tickets", form.dump(), {{"X-Real-IP", address}});
    EXPECT_TRUE(r.has_value());
    return r ? *r : testing::HttpResponse{};
  };
  EXPECT_EQ(send("192.0.2.1").status, 201);
  EXPECT_EQ(send("192.0.2.1").status, 201);
  const auto refused = send("192.0.2.1");
  EXPECT_EQ(refused.status, 429) << refused.body;
  EXPECT_EQ(json::parse(refused.body, nullptr, false).value("rule", ""),
            "public_ticket.rate_limited");
  ASSERT_TRUE(refused.headers.contains("retry-after"));
  const int retry = std::stoi(refused.headers.at("retry-after"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 60);
  const auto other = send("192.0.2.2");
  EXPECT_EQ(other.status, 201) << "another client is not held back";
  const std::string consistency =
      json::parse(other.body, nullptr, false).value("consistency_token", "");

  // The refused ticket wrote nothing: support's level-1 queue holds the three accepted ones.
  auto queue =
      client->request("GET", "/v1/support/tickets?level=1&page_size=50", "",
                      {{"Authorization", testing::ServerProcess::token("sn1", {"support_n1"})},
                       {"X-Consistency-Token", consistency}});
  ASSERT_TRUE(queue.has_value());
  ASSERT_EQ(queue->status, 200) << queue->body;
  EXPECT_EQ(json::parse(queue->body).value("total", 0), 3) << queue->body;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chorus
