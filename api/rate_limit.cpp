#include "api/rate_limit.h"

#include <algorithm>
#include <iterator>

namespace chorus::api {

RateLimiter::RateLimiter(Options options) : options_(options), overflow_{options.burst, 0} {}

void RateLimiter::refill(Bucket& b, double now_s) const {
  if (now_s > b.at_s) {
    b.tokens = std::min(options_.burst, b.tokens + (now_s - b.at_s) * options_.per_second);
    b.at_s = now_s;
  }
}

double RateLimiter::acquire(std::string_view client, double now_s) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(std::string(client));
  if (it == buckets_.end() && buckets_.size() >= options_.max_clients) {
    for (auto entry = buckets_.begin(); entry != buckets_.end();) {
      refill(entry->second, now_s);
      entry = entry->second.tokens >= options_.burst ? buckets_.erase(entry) : std::next(entry);
    }
  }
  Bucket* b = nullptr;
  if (it != buckets_.end()) {
    b = &it->second;
  } else if (buckets_.size() < options_.max_clients) {
    b = &buckets_.emplace(std::string(client), Bucket{options_.burst, now_s}).first->second;
  } else {
    b = &overflow_;
  }
  refill(*b, now_s);
  if (b->tokens >= 1) {
    b->tokens -= 1;
    return 0;
  }
  return (1 - b->tokens) / options_.per_second;
}

std::size_t RateLimiter::clients() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

}  // namespace chorus::api
