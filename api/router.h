#pragma once
// Every route of the HTTP API, and the one place where exceptions become HTTP answers.
// The route table is also what the OpenAPI test compares with api/openapi.json.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "api/auth.h"
#include "api/command_handler.h"
#include "api/http.h"
#include "events/event_log.h"
#include "projections/runner.h"

namespace chorus::api {

class Metrics;

struct RouterOptions {
  // How long a query carrying a consistency token may wait for the views.
  std::chrono::milliseconds consistency_wait{2000};
  // /readyz: the views may lag the log by at most this many events.
  std::uint64_t ready_max_lag = 10'000;
};

struct RouteInfo {
  const char* method;
  const char* pattern;  // "/v1/tickets/{ticket_id}"
};

class Router {
 public:
  Router(events::EventLog& log, projections::Runner& runner, const TokenVerifier& tokens,
         Metrics& metrics, RouterOptions options);

  // Answers one request. Never throws: Problems become problem+json answers, anything else a
  // 500 without internals. Thread-safe.
  [[nodiscard]] Response handle(const Request& request) noexcept;

  [[nodiscard]] static const std::vector<RouteInfo>& routes();

 private:
  Response dispatch(const Request& request, std::string& route_label);

  events::EventLog& log_;
  projections::Runner& runner_;
  const TokenVerifier& tokens_;
  Metrics& metrics_;
  RouterOptions options_;
  CommandHandler commands_;
};

}  // namespace chorus::api
