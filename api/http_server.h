#pragma once
// The HTTP/1.1 server (Boost.Beast), keep-alive, with limits: header and body sizes (431, 413),
// an idle timeout between requests (the connection is closed) and a deadline to receive a
// started request (408). Every request is answered by Router::handle; nothing is cached, so two
// users on one connection each get only their own answers. Reads (GET, HEAD) are answered on
// the I/O threads; commands, which may wait on the log (up to twice its append timeout when
// the brokers are down), and reads with a consistency token the views have not reached yet,
// which wait for them, on as many threads of their own (Router::answers_at_once), so that
// health checks and reads are answered through a broker outage. Past 256 such requests per thread,
// or 256 MiB of their bodies, 503 server.busy (answered here, so not counted in the request
// metrics).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace chorus::api {

class Router;
class Metrics;

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (see HttpServer::port())
  int threads = 4;
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds request_timeout{10'000};
  // Behind a reverse proxy every peer is the proxy: the header it sets to the real client's
  // address (e.g. "X-Real-IP"). Empty: the peer's address. Only ever name a header the proxy
  // overwrites, or a client could pick its own address.
  std::string client_address_header;
};

class HttpServer {
 public:
  // Binds and listens. Throws std::system_error when the address cannot be bound.
  HttpServer(const ServerOptions& options, Router& router, Metrics& metrics);
  ~HttpServer();
  // The bound port (useful with port 0).
  [[nodiscard]] std::uint16_t port() const;
  // Serves on options.threads I/O threads (and as many for commands) until stop(). Blocks.
  void run();
  // Stops accepting and ends run(). Commands running finish (what they write is written) but
  // their answers are not sent; those not started are dropped; open connections are closed
  // unanswered: a client retries under its Idempotency-Key. Thread-safe; callable from a
  // signal-handling thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chorus::api
