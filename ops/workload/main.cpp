// chorus-workload: fills a log with a realistic, repeatable Chorus Pro workload.
//   chorus-workload --data-dir .data --tickets 100000          (embedded log; server stopped)
//   chorus-workload --kafka-brokers host:9092 --tickets 100000  (Kafka; takes the writer role)
// Then start chorusd on the same data directory or topic: the views catch up from the log.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "events/log_factory.h"
#include "ops/workload/workload.h"

int main(int argc, char** argv) {
  CLI::App app{
      "chorus-workload: writes a realistic, repeatable Chorus Pro workload straight into the "
      "event log, every command decided by the server's own domain code. Stop the server first "
      "when it uses the same embedded log."};
  chorus::events::LogConfig log_config;
  chorus::ops::WorkloadOptions o;
  app.add_option("--data-dir", log_config.data_dir, "data directory (embedded log in data-dir/log)")
      ->envname("CHORUS_DATA_DIR")
      ->capture_default_str();
  app.add_option("--kafka-brokers", log_config.kafka.brokers, "write to Kafka instead")
      ->envname("CHORUS_KAFKA_BROKERS");
  app.add_option("--kafka-topic", log_config.kafka.topic, "Kafka topic")
      ->envname("CHORUS_KAFKA_TOPIC")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "same seed, same workload")->capture_default_str();
  app.add_option("--tickets", o.tickets, "tickets to write")->capture_default_str();
  app.add_option("--users", o.users, "emitting users (user-<n>)")->capture_default_str();
  app.add_option("--structures", o.structures, "emitting structures")->capture_default_str();
  app.add_option("--agents", o.agents, "support agents (3 in 4 at level 1)")->capture_default_str();
  app.add_option("--heavy-user-tickets", o.heavy_user_tickets,
                 "extra tickets of user-0, the long-history user of the benchmarks")
      ->capture_default_str();
  app.add_option("--in-flight", o.in_flight, "tickets in flight at once (events interleave)")
      ->capture_default_str();
  app.add_option("--rate", o.rate, "events per second at most (0: as fast as possible)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto log = chorus::events::open_log(log_config);
  if (!log) {
    std::cerr << "chorus-workload: cannot open the log: " << log.error().message << "\n";
    return 4;
  }
  const bool tty = isatty(STDERR_FILENO) != 0;
  const std::uint64_t total = o.tickets + o.heavy_user_tickets;
  auto last = std::chrono::steady_clock::now();
  const auto started = last;
  auto summary = chorus::ops::fill_log(**log, o, [&](std::uint64_t events, std::uint64_t done) {
    const auto now = std::chrono::steady_clock::now();
    if (!tty || now - last < std::chrono::milliseconds(250)) return;
    last = now;
    std::fprintf(stderr, "\rworkload: %llu events, %llu / %llu tickets done",
                 static_cast<unsigned long long>(events), static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total));
  });
  if (tty) std::fprintf(stderr, "\n");
  if (!summary) {
    std::cerr << "chorus-workload: " << summary.error().message << "\n";
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  nlohmann::json out{{"log", std::string((*log)->kind())},
                     {"seed", o.seed},
                     {"tickets", summary->tickets},
                     {"events", summary->events},
                     {"appends", summary->appends},
                     {"tickets_by_status", summary->tickets_by_status},
                     {"seconds", seconds},
                     {"events_per_second", static_cast<double>(summary->events) / seconds}};
  std::cout << out.dump(2) << "\n";
  return 0;
}
