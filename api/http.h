#pragma once
// Plain request and response, so that routes know nothing of Beast (only http_server.cpp
// does) and stay cheap to compile and easy to test.

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chorus::api {

struct Request {
  std::string method;  // "GET", "POST", ...
  // Without the query string, as sent (not decoded: an escaped '/' is no separator): what
  // routes are matched on; the router decodes each parameter it matches.
  std::string raw_path;
  // The same, decoded: a request's identity (command ids), the same whichever characters a
  // client chose to escape.
  std::string path;
  // Decoded, in order; empty segments ("a=1&&b=2", a leading or trailing '&') are no parameter.
  std::vector<std::pair<std::string, std::string>> query;
  std::string authorization;
  std::string idempotency_key;
  std::string consistency_token;  // "X-Consistency-Token"
  std::string content_type;
  // The headers above, and the client address header, sent more than once (the first was
  // kept): ambiguous, the router refuses the request (400 request.header) rather than pick
  // one.
  std::vector<std::string> repeated_headers;
  std::string body;
  // Who sent it, for rate limits only (never logged): the peer's address, or the value of
  // ServerOptions::client_address_header when a trusted reverse proxy sets it.
  std::string client_address;

  // The value of query parameter `name`; null when absent or empty. An empty value ("?q=", what
  // a form sends for a field left blank) is the parameter not given, on every route: a filter
  // left blank filters nothing, a blank page number is the first page. Routes therefore see no
  // empty value. The router still refuses an unknown or repeated name, blank or not.
  [[nodiscard]] const std::string* query_param(std::string_view name) const {
    for (const auto& [k, v] : query) {
      if (k == name) return v.empty() ? nullptr : &v;
    }
    return nullptr;
  }
};

// A body made piece by piece after the head is sent (chunked transfer encoding), for answers too
// big to hold at once (CSV exports). Each call fills `chunk` (possibly empty) with a bounded
// amount of work and says whether more follows. A failure once the head is sent cannot change
// the status: `failed` makes the server close the connection without the final chunk, so the
// client sees a truncated answer rather than a short one that looks complete. Called on one
// thread at a time; never throws.
enum class StreamStep { more, done, failed };
using BodyStream = std::function<StreamStep(std::string& chunk)>;

struct Response {
  using Headers = std::vector<std::pair<std::string, std::string>>;
  Response() = default;
  // Not an aggregate, so that `stream` could be added without touching every answer.
  Response(int status_, std::string content_type_, std::string body_, Headers headers_ = {})
      : status(status_),
        content_type(std::move(content_type_)),
        body(std::move(body_)),
        headers(std::move(headers_)) {}

  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;
  BodyStream stream;  // when set, the body comes from it and `body` is ignored
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

// `s` with its %XX escapes decoded, and '+' as a space when `plus_is_space` (a query string's
// form encoding; a path keeps its '+'). A '%' not followed by two hex digits stays as it is.
// The result may be any bytes: the router checks it is text (Router::dispatch). Pure.
[[nodiscard]] std::string percent_decode(std::string_view s, bool plus_is_space);

// The query parameter `name` as an integer in [1, max]; `fallback` when absent. Throws a
// Problem 400 (rule "request.query", the parameter as field) for anything else.
[[nodiscard]] std::size_t positive_param(const Request& r, const char* name, std::size_t fallback,
                                         std::size_t max);

}  // namespace chorus::api
