#pragma once
// Plain request and response, so that routes know nothing of Beast (only http_server.cpp
// does) and stay cheap to compile and easy to test.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chorus::api {

struct Request {
  std::string method;                                      // "GET", "POST", ...
  std::string path;                                        // without the query string
  std::vector<std::pair<std::string, std::string>> query;  // decoded
  std::string authorization;
  std::string idempotency_key;
  std::string consistency_token;  // "X-Consistency-Token"
  std::string content_type;
  std::string body;

  [[nodiscard]] const std::string* query_param(std::string_view name) const {
    for (const auto& [k, v] : query) {
      if (k == name) return &v;
    }
    return nullptr;
  }
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// An error answer (RFC 9457 problem details): which rule was broken and which field is
// concerned, in words a portal can show. Thrown only inside api/ and turned into a Response in
// one place (Router::handle).
struct Problem {
  int status;
  std::string rule;    // e.g. "ticket.submit.status", "request.json"
  std::string field;   // empty when none
  std::string detail;  // for people, in French like the portal

  [[nodiscard]] Response to_response() const;
};

}  // namespace chorus::api
