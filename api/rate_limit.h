#pragma once
// Token buckets per client for the one route without an identity, signed-out tickets ("mode
// non connecté"): a sender flooding it is answered 429 while other senders go on, and the log
// does not fill with junk tickets. The time is passed in, so tests drive it with a fake clock.
// The client is the peer's address, or what a trusted reverse proxy says it is
// (ServerOptions::client_address_header); it is kept in memory only, never logged.

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace chorus::api {

class RateLimiter {
 public:
  struct Options {
    double per_second = 0.5;  // tokens refilled per second, per client
    double burst = 10;        // tokens of a client not seen before (its first burst)
    // Buckets kept at most. Beyond, full buckets (idle clients) are dropped; if none is, the
    // clients not known yet share one bucket, so memory stays bounded under a spray of
    // addresses and the route stays limited.
    std::size_t max_clients = 100'000;
  };
  explicit RateLimiter(Options options);

  // Takes one token from `client`'s bucket at `now_s` (seconds on a monotonic clock). Returns
  // 0 when taken; else the seconds until a token is there, and nothing is taken. Thread-safe.
  [[nodiscard]] double acquire(std::string_view client, double now_s);

  // Buckets held, for tests. Thread-safe.
  [[nodiscard]] std::size_t clients() const;

 private:
  struct Bucket {
    double tokens;
    double at_s;  // when `tokens` was counted
  };
  void refill(Bucket& b, double now_s) const;

  const Options options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  Bucket overflow_;  // shared by unknown clients while the map is full
};

}  // namespace chorus::api
