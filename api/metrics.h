#pragma once
// The product's Prometheus metrics (prometheus-cpp). Labels carry only bounded values: route
// templates, status codes, command types, rule names — never a user id or a ticket number.

#include <memory>
#include <string>
#include <vector>

#include "events/event_log.h"

namespace prometheus {
class Registry;
}

namespace chorus::api {

class Metrics {
 public:
  // Disabled (`enabled` false), every method below returns at once and registers nothing, so
  // the request path pays one branch; the router then answers 404 on /metrics.
  explicit Metrics(bool enabled = true);
  ~Metrics();
  [[nodiscard]] bool enabled() const noexcept { return impl_ != nullptr; }

  // Records one HTTP answer. Thread-safe.
  void observe_request(const std::string& route, int status, double seconds);
  // Records one command outcome ("accepted" or the rejection rule). Thread-safe.
  void observe_command(const std::string& type, const std::string& outcome, double seconds);
  // Records one append of the command side: events by type, and how long the log took.
  // Thread-safe.
  void observe_append(const std::vector<const char*>& event_types, double seconds);
  // Thread-safe.
  void set_open_connections(double n);

  // What the projection runner and the view store say, read just before a scrape.
  // Thread-safe.
  struct ViewState {
    double applied_events = 0;  // since the process started
    double lag_events = 0;      // behind the log's end
    double lag_seconds = 0;     // age of the oldest event not yet applied (0 when caught up)
    double set_aside_events = 0;
    double pending_compaction_bytes = 0;
    double write_stopped = 0;  // 1 while RocksDB stops writes
    double memtable_bytes = 0;
    // A view rebuild (POST /v1/admin/views/rebuild): whether one runs, what it applied, what
    // it has left before it can swap in; totals of rebuilds by outcome since the start.
    double rebuild_running = 0;
    double rebuild_applied_events = 0;
    double rebuild_remaining_events = 0;
    double rebuilds_completed = 0;
    double rebuilds_failed = 0;
  };
  void set_view_state(const ViewState& state);
  // What the event log and the view store report, read just before a scrape. Their counters
  // are totals kept by RocksDB and librdkafka, so they are exposed as read, never added up
  // here; a part the log leaves out (Kafka figures of the embedded log) is not exposed.
  // Thread-safe.
  void set_storage_state(const events::LogStats& log, const events::StoreStats& views);
  // The text exposition format; empty when disabled. Thread-safe.
  [[nodiscard]] std::string scrape() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chorus::api
