#pragma once
// Every route of the HTTP API, and the one place where exceptions become HTTP answers.
// The route table is also what the OpenAPI test compares with api/openapi.json.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth.h"
#include "api/command_handler.h"
#include "api/http.h"
#include "events/event_log.h"
#include "projections/runner.h"

namespace chorus::api {

class Metrics;
class RateLimiter;
class ContentStore;
}  // namespace chorus::api
namespace chorus::domain::ticket {
class Categories;
}  // namespace chorus::domain::ticket
namespace chorus::api {

struct RouterOptions {
  // How long a query carrying a consistency token may wait for the views.
  std::chrono::milliseconds consistency_wait{2000};
  // /readyz: the views may lag the log by at most this many events.
  std::uint64_t ready_max_lag = 10'000;
  // Ticket attachments ("pièces jointes"): where their bytes are kept (null: the attachment
  // routes answer 503) and the largest file accepted (413 above).
  const ContentStore* attachments = nullptr;
  // The attachments' directory was named (--attachments-dir), shared by the servers of one
  // topic: a missing file is then damage (500), not a file another server kept (503).
  bool attachments_shared = false;
  std::size_t max_attachment_bytes = 10 * 1024 * 1024;
  // The ticket categories table (reference data); null: pairs are not checked.
  const domain::ticket::Categories* categories = nullptr;
  // Signed-out tickets per client (429 with Retry-After beyond); null: not limited.
  RateLimiter* public_tickets_limit = nullptr;
};

// The largest body a route takes, and what a 413 above it says.
struct BodyLimit {
  std::size_t bytes = 0;
  std::string rule;
  std::string what;  // "... (maximum N octets)." follows
};

struct RouteInfo {
  const char* method;
  const char* pattern;  // "/v1/tickets/{ticket_id}"
  // The query parameters the route reads; any other is refused (400 request.query), so that a
  // misspelt filter is not silently ignored.
  std::vector<std::string_view> query = {};
};

class Router {
 public:
  Router(events::EventLog& log, projections::Runner& runner, const TokenVerifier& tokens,
         Metrics& metrics, RouterOptions options);

  // Answers one request. Never throws: Problems become problem+json answers, anything else a
  // 500 without internals. Thread-safe.
  [[nodiscard]] Response handle(const Request& request) noexcept;

  [[nodiscard]] static const std::vector<RouteInfo>& routes();

  // The body limit of the route `method` `path` (without the query string) when it has its own
  // (attachment uploads: RouterOptions::max_attachment_bytes); nullopt: the server's default.
  // Thread-safe.
  [[nodiscard]] std::optional<BodyLimit> body_limit(std::string_view method,
                                                    std::string_view path) const;

  // Whether handle() answers `request` without waiting on the log or the views: a read (GET,
  // HEAD) without a consistency token, or with one the views already cover, or a malformed
  // one (400). Anything else may wait (a command's append, a token the views have not
  // reached), and the server answers it off its I/O threads. Changes nothing; thread-safe.
  [[nodiscard]] bool answers_at_once(const Request& request) const;

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
