// A real Prometheus (Debian's server) scrapes the real chorusd on loopback, with the project's
// rules loaded; the test drives commands, then asks Prometheus' HTTP API for the series.
// Also: promtool accepts the exposition chorusd serves.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/attachments.h"
#include "tests/support/server_process.h"

namespace chorus {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::uint16_t free_port() {
  // Bind to port 0 through a throwaway client socket is not possible; ask the kernel instead.
  for (std::uint16_t p = static_cast<std::uint16_t>(20000 + getpid() % 20000);; ++p) {
    try {
      testing::HttpClient probe(p);
    } catch (const std::runtime_error&) {
      return p;  // nothing listens there
    }
  }
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

TEST(PrometheusScrape, RealPrometheusSeesTheCommandsDriven) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("chorus-prom-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  testing::ServerProcess server({"--data-dir", (dir / "data").string()});
  testing::attach_users(server.port(), "s", {"alice"});

  const std::uint16_t prom_port = free_port();
  {
    std::ofstream config(dir / "prometheus.yml");
    config << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
           << "rule_files:\n  - " << CHORUS_SOURCE_DIR << "/ops/prometheus/rules.yml\n"
           << "scrape_configs:\n  - job_name: chorus\n    static_configs:\n"
           << "      - targets: ['127.0.0.1:" << server.port() << "']\n";
  }
  testing::ChildProcess prometheus(
      {"/usr/bin/prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
       "--storage.tsdb.path=" + (dir / "tsdb").string(),
       "--web.listen-address=127.0.0.1:" + std::to_string(prom_port), "--log.level=warn"});

  auto c = server.connect();
  const std::string form =
      R"({"emitting_structure_id":"s","category":"Technique","sub_category":"Connexion","title":"t","description":"d"})";
  for (int i = 0; i < 3; ++i) {
    auto r = c->request("POST", "/v1/tickets", form,
                        {{"Authorization", testing::ServerProcess::token("alice")}});
    ASSERT_TRUE(r && r->status == 201);
  }
  auto refused = c->request("POST", "/v1/tickets", "{}",
                            {{"Authorization", testing::ServerProcess::token("alice")}});
  ASSERT_TRUE(refused && refused->status == 422);

  auto query = [&](const std::string& promql) -> std::optional<double> {
    try {
      testing::HttpClient api(prom_port);
      auto r = api.request("GET", "/api/v1/query?query=" + url_encode(promql));
      if (!r || r->status != 200) return std::nullopt;
      auto body = json::parse(r->body);
      const auto& result = body["data"]["result"];
      if (result.empty()) return std::nullopt;
      return std::stod(result[0]["value"][1].get<std::string>());
    } catch (const std::exception&) {
      return std::nullopt;  // not up yet
    }
  };
  std::optional<double> accepted, rejected, up, applied;
  // Applied: the tickets and the six events of the attachment setup (account created and
  // activated, structure created with its GP, the GP's role on the account, its identifier
  // reserved).
  for (int i = 0; i < 120 && !(accepted == 3.0 && rejected == 1.0 && applied == 9.0); ++i) {
    std::this_thread::sleep_for(500ms);
    accepted = query(R"(chorus_commands_total{outcome="accepted",type="ticket.submit"})");
    rejected = query(R"(sum(chorus_commands_total{outcome!="accepted"}))");
    up = query(R"(up{job="chorus"})");
    applied = query("chorus_view_applied_events");
  }
  EXPECT_EQ(up, 1.0);
  EXPECT_EQ(accepted, 3.0);
  EXPECT_EQ(rejected, 1.0);
  EXPECT_EQ(applied, 9.0);
  EXPECT_EQ(query(R"(chorus_events_appended_total{type="TicketSubmitted"})"), 3.0);
  // RocksDB figures of both stores of the embedded server.
  EXPECT_EQ(query("count(chorus_rocksdb_block_cache_misses_total)"), 2.0);
  EXPECT_EQ(query("sum(chorus_rocksdb_write_stopped)"), 0.0);
  // The recording rules evaluate against what was scraped. The hit ratio is NaN while the
  // stores read nothing from their tables, but its series exist, one per store.
  std::optional<double> rule_series, cache_ratios;
  for (int i = 0; i < 60 && !(rule_series && cache_ratios == 2.0); ++i) {
    std::this_thread::sleep_for(500ms);
    rule_series = query("count(chorus:http_requests:rate5m)");
    cache_ratios = query("count(chorus:rocksdb_block_cache_hit:ratio5m)");
  }
  EXPECT_TRUE(rule_series.has_value()) << "recording rules produced no series";
  EXPECT_EQ(cache_ratios, 2.0) << "no block cache hit ratio per store";

  // promtool accepts what chorusd exposes.
  auto metrics = c->request("GET", "/metrics");
  ASSERT_TRUE(metrics);
  FILE* promtool = popen("promtool check metrics > /dev/null 2>&1", "w");
  ASSERT_NE(promtool, nullptr);
  std::fwrite(metrics->body.data(), 1, metrics->body.size(), promtool);
  EXPECT_EQ(pclose(promtool), 0) << "promtool check metrics failed";

  prometheus.signal_and_wait(SIGTERM);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chorus
