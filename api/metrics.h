#pragma once
// The product's Prometheus metrics (prometheus-cpp). Labels carry only bounded values: route
// templates, status codes, command types, rule names — never a user id or a ticket number.

#include <memory>
#include <string>

namespace prometheus {
class Registry;
}

namespace chorus::api {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  // Records one HTTP answer. Thread-safe.
  void observe_request(const std::string& route, int status, double seconds);
  // Records one command outcome ("accepted" or the rejection rule). Thread-safe.
  void observe_command(const std::string& type, const std::string& outcome, double seconds);
  void set_open_connections(double n);
  // Updates the gauges read from elsewhere (views, log) just before a scrape.
  void set_view_state(double applied_events, double lag_events, double set_aside);
  // The text exposition format. Thread-safe.
  [[nodiscard]] std::string scrape() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chorus::api
