#pragma once
// A small blocking HTTP/1.1 client over one TCP connection, for tests against the real server
// binary: keep-alive, raw bytes when a test needs to misbehave on purpose.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace chorus::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class HttpClient {
 public:
  // Connects to 127.0.0.1:port. Throws std::runtime_error when it cannot.
  explicit HttpClient(std::uint16_t port);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request on this connection and reads its answer. nullopt when the server closed
  // the connection or did not answer within `timeout`.
  std::optional<HttpResponse> request(const std::string& method, const std::string& target,
                                      const std::string& body = "",
                                      const std::map<std::string, std::string>& headers = {},
                                      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Writes raw bytes (to send a malformed or partial request).
  void send_raw(const std::string& bytes);
  // Reads one answer (after send_raw).
  std::optional<HttpResponse> read_response(std::chrono::milliseconds timeout);
  // True when the server has closed the connection (reads end of file within `timeout`).
  bool closed_by_server(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  std::string buffer_;
  bool fill(std::chrono::steady_clock::time_point deadline);
};

}  // namespace chorus::testing
