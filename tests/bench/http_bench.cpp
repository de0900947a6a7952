// HTTP benchmark: the real chorusd on the embedded log, driven at a fixed rate (open loop:
// latency counts from when each request was due, so a slow server is not hidden), for a
// command (create and submit a ticket), a query (a page of "En cours") and, as the baseline
// measured in the same run, GET /healthz (the server's floor: parsing, routing, writing).
//
// Last, what recording the metrics of one command costs in-process, on and off.
//
// Usage: http_bench [--rate R] [--seconds S] [--connections C] [--server-arg FLAG]

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "api/metrics.h"
#include "tests/support/attachments.h"
#include "tests/support/server_process.h"

using Clock = std::chrono::steady_clock;
using chorus::testing::HttpClient;
using chorus::testing::ServerProcess;

namespace {

struct Result {
  double achieved_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
  double server_cpu_us = 0;  // the server's user+system CPU per request
  int errors = 0;
};

// User+system CPU seconds `pid` has used (/proc/<pid>/stat, fields 14 and 15). On a noisy
// machine this is a steadier measure of the server's own cost than latency.
double cpu_seconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  std::istringstream fields(line.substr(line.rfind(')') + 2));  // after "pid (comm) "
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field && i <= 15; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

Result drive(pid_t server, std::uint16_t port, double rate, double seconds, int connections,
             const std::function<bool(HttpClient&, int, std::uint64_t)>& one) {
  const double cpu_before = cpu_seconds(server);
  std::vector<std::vector<double>> lat(connections);
  std::atomic<int> errors{0};
  const auto start = Clock::now() + std::chrono::milliseconds(50);
  const auto period = std::chrono::duration<double>(connections / rate);
  const auto count = static_cast<std::uint64_t>(rate * seconds / connections);
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      HttpClient client(port);
      for (std::uint64_t i = 0; i < count; ++i) {
        const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                     period * (i + double(c) / connections));
        std::this_thread::sleep_until(due);
        if (!one(client, c, i)) ++errors;
        lat[c].push_back(std::chrono::duration<double, std::milli>(Clock::now() - due).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  Result r;
  r.achieved_per_s = all.size() / elapsed;
  r.p50_ms = all.empty() ? 0 : all[all.size() / 2];
  r.p99_ms = all.empty() ? 0 : all[std::min(all.size() - 1, all.size() * 99 / 100)];
  r.errors = errors;
  r.server_cpu_us = all.empty() ? 0 : (cpu_seconds(server) - cpu_before) * 1e6 / all.size();
  return r;
}

void print(const char* what, double rate, const Result& r) {
  std::printf(
      "%-34s target %6.0f/s achieved %8.0f/s  p50 %7.3f ms  p99 %7.3f ms  server CPU %6.1f "
      "us/req  errors %d\n",
      what, rate, r.achieved_per_s, r.p50_ms, r.p99_ms, r.server_cpu_us, r.errors);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"HTTP command and query latency at a fixed rate, beside /healthz"};
  double rate = 1000, seconds = 5;
  int connections = 8;
  std::vector<std::string> extra;
  app.add_option("--rate", rate, "requests per second");
  app.add_option("--seconds", seconds, "duration of each phase");
  app.add_option("--connections", connections, "keep-alive connections");
  app.add_option("--server-arg", extra, "extra chorusd flag (repeatable)");
  CLI11_PARSE(app, argc, argv);

  const auto dir =
      std::filesystem::temp_directory_path() / ("chorus-http-bench-" + std::to_string(getpid()));
  std::vector<std::string> args{"--data-dir", dir.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  ServerProcess server(args);
  std::vector<std::string> users, tokens;
  for (int u = 0; u < 100; ++u) users.push_back("bench-user-" + std::to_string(u));
  for (const auto& u : users) tokens.push_back(ServerProcess::token(u));
  // The ticket rules accept only an emitter attached to the emitting structure: without this,
  // every command would be measured as a refusal.
  chorus::testing::attach_users(server.port(), "s1", users);
  const std::string form =
      R"({"emitting_structure_id":"s1","category":"Technique","sub_category":"Connexion","title":"Connexion impossible","description":")" +
      std::string(200, 'x') + R"("})";

  auto healthz = drive(server.pid(), server.port(), rate, seconds, connections,
                       [&](HttpClient& c, int, std::uint64_t) {
                         auto r = c.request("GET", "/healthz");
                         return r && r->status == 200;
                       });
  auto command = drive(server.pid(), server.port(), rate, seconds, connections,
                       [&](HttpClient& c, int conn, std::uint64_t i) {
                         auto r =
                             c.request("POST", "/v1/tickets", form,
                                       {{"Authorization", tokens[(conn * 7 + i) % tokens.size()]}});
                         return r && r->status == 201;
                       });
  auto query = drive(server.pid(), server.port(), rate, seconds, connections,
                     [&](HttpClient& c, int conn, std::uint64_t i) {
                       auto r =
                           c.request("GET", "/v1/me/tickets?tab=en_cours&page_size=50", "",
                                     {{"Authorization", tokens[(conn * 7 + i) % tokens.size()]}});
                       return r && r->status == 200;
                     });
  std::printf("chorusd, embedded log, %d keep-alive connections, open loop\n", connections);
  print("baseline GET /healthz", rate, healthz);
  print("command POST /v1/tickets", rate, command);
  print("query GET /v1/me/tickets (50/page)", rate, query);
  server.stop();
  std::filesystem::remove_all(dir);

  // What collecting metrics adds to one command, measured in-process on the registry chorusd
  // uses: the HTTP answer, the command and its append recorded. Steadier than comparing two
  // servers' latencies on a noisy machine, where the run-to-run spread exceeds the effect.
  auto record_cost_ns = [](bool enabled) {
    chorus::api::Metrics metrics(enabled);
    const std::vector<const char*> types{"TicketSubmitted"};
    constexpr int kRounds = 1'000'000;
    const auto start = Clock::now();
    for (int i = 0; i < kRounds; ++i) {
      metrics.observe_request("/v1/tickets", 201, 0.001);
      metrics.observe_command("ticket.submit", "accepted", 0.001);
      metrics.observe_append(types, 0.0005);
    }
    return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / kRounds;
  };
  const double on_ns = record_cost_ns(true), off_ns = record_cost_ns(false);
  std::printf(
      "metrics recorded per command: %.0f ns on, %.1f ns off (disabled); the difference is "
      "%.3f%% of the command's server CPU and %.3f%% of /healthz's\n",
      on_ns, off_ns, 100 * (on_ns - off_ns) / (command.server_cpu_us * 1000),
      100 * (on_ns - off_ns) / (healthz.server_cpu_us * 1000));
  return 0;
}
