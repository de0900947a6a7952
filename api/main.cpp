// chorusd: the Chorus Pro support and account-management backend.
//   chorusd [serve] [flags]     serve the HTTP API (embedded log by default, Kafka with
//                               --kafka-brokers)
//   chorusd mint-token ...      print a signed bearer token (development and tests)
// Every flag also reads an environment variable (CHORUS_...); --help lists them.

#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "api/auth.h"
#include "api/content_store.h"
#include "api/http_server.h"
#include "api/metrics.h"
#include "api/rate_limit.h"
#include "api/reference.h"
#include "api/router.h"
#include "events/log_factory.h"
#include "projections/runner.h"
#include "projections/standard_views.h"

namespace {

std::string read_key(const std::string& key, const std::string& key_file) {
  if (!key.empty()) return key;
  if (key_file.empty()) return "";
  std::ifstream in(key_file, std::ios::binary);
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"chorusd: event-sourced backend of Chorus Pro's support and account management"};
  app.require_subcommand(0, 1);
  app.fallthrough();

  chorus::events::LogConfig log_config;
  chorus::api::ServerOptions server;
  chorus::api::RouterOptions router_options;
  std::string token_key, token_key_file;
  int kafka_partitions = 6;
  long consistency_wait_ms = 2000, idle_ms = 60000, request_ms = 10000;
  long kafka_statistics_ms = 5000;
  bool metrics_on = true;

  app.add_option("--listen", server.address, "address to listen on")
      ->envname("CHORUS_LISTEN")
      ->capture_default_str();
  app.add_option("--port", server.port, "port to listen on (0: any free port, printed at start)")
      ->envname("CHORUS_PORT")
      ->capture_default_str();
  app.add_option("--threads", server.threads, "HTTP worker threads")
      ->envname("CHORUS_THREADS")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--data-dir", log_config.data_dir,
                 "directory of the embedded log (data-dir/log) and of the views (data-dir/views)")
      ->envname("CHORUS_DATA_DIR")
      ->capture_default_str();
  app.add_flag("--drop-damaged-wal-tail", log_config.drop_damaged_wal_tail,
               "once, after copying the data directory: open an embedded log whose write-ahead "
               "log is damaged by dropping the damaged record and all after it, and replace "
               "views that had applied lost events (RUNBOOK.md)");
  app.add_option("--kafka-brokers", log_config.kafka.brokers,
                 "Kafka bootstrap servers (host:port,...); when set, the log is on Kafka instead "
                 "of the embedded default")
      ->envname("CHORUS_KAFKA_BROKERS");
  app.add_option("--kafka-topic", log_config.kafka.topic, "Kafka topic of the events")
      ->envname("CHORUS_KAFKA_TOPIC")
      ->capture_default_str();
  app.add_option("--kafka-partitions", kafka_partitions, "partitions when the topic is created")
      ->envname("CHORUS_KAFKA_PARTITIONS")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--kafka-replication", log_config.kafka.replication_factor,
                 "replication factor when the topic is created (3 on a real cluster)")
      ->envname("CHORUS_KAFKA_REPLICATION")
      ->capture_default_str();
  app.add_option("--kafka-statistics-interval-ms", kafka_statistics_ms,
                 "how often librdkafka reports the figures behind the chorus_kafka_* metrics "
                 "(0: never)")
      ->envname("CHORUS_KAFKA_STATISTICS_INTERVAL_MS")
      ->capture_default_str()
      ->check(CLI::Range(0L, 86'400'000L));
  app.add_flag("--metrics,!--no-metrics", metrics_on,
               "collect metrics and serve them on /metrics (off: /metrics answers 404)")
      ->envname("CHORUS_METRICS")
      ->capture_default_str();
  app.add_option("--token-key", token_key, "HS256 key verifying bearer tokens (prefer the file)")
      ->envname("CHORUS_TOKEN_KEY");
  app.add_option("--token-key-file", token_key_file, "file holding the HS256 token key")
      ->envname("CHORUS_TOKEN_KEY_FILE");
  app.add_option("--max-body-bytes", server.max_body_bytes, "largest request body (413 above)")
      ->envname("CHORUS_MAX_BODY_BYTES")
      ->capture_default_str();
  app.add_option("--attachment-max-bytes", router_options.max_attachment_bytes,
                 "largest ticket attachment (\"pièce jointe\") accepted (413 above); its bytes are "
                 "kept in --attachments-dir")
      ->envname("CHORUS_ATTACHMENT_MAX_BYTES")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  std::string attachments_dir;
  app.add_option(
         "--attachments-dir", attachments_dir,
         "where attachments' bytes are kept (default: data-dir/attachments); with the Kafka "
         "log and several servers, one directory they all share (a shared volume), or a "
         "file sent to one server cannot be read through another")
      ->envname("CHORUS_ATTACHMENTS_DIR");
  std::string categories_file;
  app.add_option("--categories-file", categories_file,
                 "the ticket categories table, JSON as api/reference/categories.json (default: "
                 "that file as built in)")
      ->envname("CHORUS_CATEGORIES_FILE");
  app.add_option("--max-header-bytes", server.max_header_bytes,
                 "largest request header (431 above)")
      ->envname("CHORUS_MAX_HEADER_BYTES")
      ->capture_default_str();
  app.add_option("--idle-timeout-ms", idle_ms, "close a keep-alive connection idle this long")
      ->envname("CHORUS_IDLE_TIMEOUT_MS")
      ->capture_default_str();
  app.add_option("--request-timeout-ms", request_ms,
                 "answer 408 to a request not received in this time")
      ->envname("CHORUS_REQUEST_TIMEOUT_MS")
      ->capture_default_str();
  chorus::api::RateLimiter::Options public_limit;
  double public_per_minute = 30;
  app.add_option("--public-tickets-per-minute", public_per_minute,
                 "signed-out tickets one client may send per minute, sustained (429 beyond; 0: "
                 "no limit)")
      ->envname("CHORUS_PUBLIC_TICKETS_PER_MINUTE")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--public-tickets-burst", public_limit.burst,
                 "signed-out tickets a client not heard from lately may send at once")
      ->envname("CHORUS_PUBLIC_TICKETS_BURST")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 1e6));
  app.add_option("--client-address-header", server.client_address_header,
                 "behind a reverse proxy, the header it sets to the client's address (e.g. "
                 "X-Real-IP); empty: the peer's address")
      ->envname("CHORUS_CLIENT_ADDRESS_HEADER");
  app.add_option("--consistency-wait-ms", consistency_wait_ms,
                 "how long a query with X-Consistency-Token may wait for the views (503 after)")
      ->envname("CHORUS_CONSISTENCY_WAIT_MS")
      ->capture_default_str();

  auto* mint = app.add_subcommand("mint-token", "print a signed bearer token for a user");
  std::string mint_user;
  std::vector<std::string> mint_roles;
  long mint_ttl_s = 3600;
  mint->add_option("--user", mint_user, "user id (the token's subject)")->required();
  mint->add_option("--role", mint_roles, "global role: support_n1, support_n2, auditor, operator");
  mint->add_option("--ttl", mint_ttl_s, "validity in seconds")->capture_default_str();

  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->envname("CHORUS_LOG_LEVEL")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));

  CLI11_PARSE(app, argc, argv);

  // One-line structured logs on stderr: time, level, component, then key=value pairs. No
  // personal data: ids and rule names only, never e-mails, names or ticket texts.
  auto logger = spdlog::stderr_logger_mt("chorusd");
  auto api_logger = spdlog::stderr_logger_mt("api");
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ level=%l component=%n %v",
                      spdlog::pattern_time_type::utc);
  spdlog::set_level(spdlog::level::from_str(log_level));

  const std::string key = read_key(token_key, token_key_file);
  if (key.size() < 32) {
    logger->error(
        "msg=\"a token key of at least 32 bytes is required (--token-key-file or "
        "CHORUS_TOKEN_KEY)\"");
    return 2;
  }
  chorus::api::TokenVerifier tokens(key);
  if (*mint) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    std::cout << tokens.mint(
                     mint_user, mint_roles,
                     std::chrono::duration_cast<std::chrono::seconds>(now).count() + mint_ttl_s)
              << "\n";
    return 0;
  }

  log_config.kafka.partitions = static_cast<std::uint32_t>(kafka_partitions);
  // Nobody would read librdkafka's reports with metrics off.
  log_config.kafka.statistics_interval =
      std::chrono::milliseconds(metrics_on ? kafka_statistics_ms : 0);
  server.idle_timeout = std::chrono::milliseconds(idle_ms);
  server.request_timeout = std::chrono::milliseconds(request_ms);
  router_options.consistency_wait = std::chrono::milliseconds(consistency_wait_ms);

  // Signals are handled by one thread, so every other thread runs undisturbed.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto log = chorus::events::open_log(log_config);
  if (!log) {
    logger->error("msg=\"cannot open the event log\" error=\"{}\"", log.error().message);
    return 1;
  }
  chorus::projections::StandardViews views;
  // Views ahead of the log mean acknowledged events were lost: a stop, unless the operator
  // has just accepted the loss by dropping a damaged write-ahead log's tail.
  auto runner = chorus::projections::Runner::open(**log, log_config.data_dir, views.list(),
                                                  log_config.drop_damaged_wal_tail);
  if (!runner && runner.error().code == chorus::projections::errc::views_ahead_of_log) {
    logger->error(
        "msg=\"the event log lost acknowledged events: see RUNBOOK.md, chorusd refuses to "
        "start\" error=\"{}\"",
        runner.error().message);
    return 1;
  }
  if (!runner) {
    logger->error("msg=\"cannot open the views\" error=\"{}\"", runner.error().message);
    return 1;
  }
  if ((*runner)->replaced_ahead_of_log()) {
    logger->warn(
        "msg=\"the views had applied events past the end of the log, which lost them; "
        "rebuilding the views from the log\"");
  }
  if ((*runner)->replaced_stale_layout()) {
    logger->warn(
        "msg=\"the views were written by a build of another layout; rebuilding them from the "
        "log\" layout=\"{}\"",
        chorus::projections::kViewsLayout);
  }
  std::jthread projection_thread([&](std::stop_token stop) { (*runner)->run(stop); });

  // The attachments' bytes, beside the views (the log holds their descriptions only).
  auto attachments = chorus::api::ContentStore::open(
      attachments_dir.empty() ? std::filesystem::path(log_config.data_dir) / "attachments"
                              : std::filesystem::path(attachments_dir));
  if (!attachments) {
    logger->error("msg=\"cannot open the attachment store\" error=\"{}\"",
                  attachments.error().message);
    return 1;
  }
  router_options.attachments = &*attachments;
  router_options.attachments_shared = !attachments_dir.empty();
  // Reference data: the categories a ticket may be filed under, and which go to a business
  // service ("M-").
  std::string categories_text(chorus::api::built_in_categories_json());
  if (!categories_file.empty()) {
    std::ifstream in(categories_file, std::ios::binary);
    if (!in) {
      logger->error("msg=\"cannot read the categories file\" file=\"{}\"", categories_file);
      return 2;
    }
    categories_text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto categories = chorus::api::load_categories(categories_text);
  if (!categories) {
    logger->error("msg=\"invalid categories table\" error=\"{}\"", categories.error());
    return 2;
  }
  router_options.categories = &*categories;
  std::optional<chorus::api::RateLimiter> public_limiter;
  if (public_per_minute > 0) {
    public_limit.per_second = public_per_minute / 60;
    public_limiter.emplace(public_limit);
    router_options.public_tickets_limit = &*public_limiter;
  }

  chorus::api::Metrics metrics(metrics_on);
  chorus::api::Router router(**log, **runner, tokens, metrics, router_options);
  std::unique_ptr<chorus::api::HttpServer> http;
  try {
    http = std::make_unique<chorus::api::HttpServer>(server, router, metrics);
  } catch (const std::exception& e) {
    logger->error("msg=\"cannot listen\" address={} port={} error=\"{}\"", server.address,
                  server.port, e.what());
    return 1;
  }
  logger->info("msg=\"listening\" address={} port={} log={} metrics={}", server.address,
               http->port(), (*log)->kind(), metrics_on ? "on" : "off");
  // A machine-readable line for scripts and tests that start the server on port 0.
  std::cout << "LISTENING " << http->port() << std::endl;

  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    logger->info("msg=\"stopping\" signal={}", sig);
    http->stop();
  });
  http->run();
  projection_thread.request_stop();
  projection_thread.join();
  signal_thread.detach();
  logger->info("msg=\"stopped\"");
  return 0;
}
