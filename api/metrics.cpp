#include "api/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>

namespace chorus::api {

struct Metrics::Impl {
  static prometheus::Histogram::BucketBoundaries buckets() {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5};
  }

  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name("chorus_http_requests_total")
          .Help("HTTP requests answered, by route template and status code")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& request_seconds =
      prometheus::BuildHistogram()
          .Name("chorus_http_request_duration_seconds")
          .Help("Time to answer an HTTP request, by route template")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& commands =
      prometheus::BuildCounter()
          .Name("chorus_commands_total")
          .Help("Commands handled, by type and outcome (accepted, or the rule that rejected it)")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& command_seconds =
      prometheus::BuildHistogram()
          .Name("chorus_command_duration_seconds")
          .Help("Time to handle a command, append included, by type")
          .Register(*registry);
  prometheus::Gauge& connections = prometheus::BuildGauge()
                                       .Name("chorus_http_open_connections")
                                       .Help("Open HTTP connections")
                                       .Register(*registry)
                                       .Add({});
  prometheus::Family<prometheus::Counter>& appended =
      prometheus::BuildCounter()
          .Name("chorus_events_appended_total")
          .Help("Events appended to the log by the command side, by event type")
          .Register(*registry);
  prometheus::Histogram& append_seconds =
      prometheus::BuildHistogram()
          .Name("chorus_log_append_duration_seconds")
          .Help("Time for the log to make one append durable (group commit included)")
          .Register(*registry)
          .Add({}, buckets());
  prometheus::Gauge& gauge(const char* name, const char* help) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(*registry).Add({});
  }
  prometheus::Gauge& applied =
      gauge("chorus_view_applied_events",
            "Events the projection runner applied since the process started");
  prometheus::Gauge& lag =
      gauge("chorus_view_lag_events", "Events in the log not yet in the views");
  prometheus::Gauge& lag_seconds = gauge(
      "chorus_view_lag_seconds", "Age of the oldest event not yet in the views (0 when caught up)");
  prometheus::Gauge& set_aside = gauge(
      "chorus_view_set_aside_events", "Events the projection runner could not apply and set aside");
  prometheus::Gauge& compaction = gauge("chorus_view_store_pending_compaction_bytes",
                                        "RocksDB estimate of bytes the view store must compact");
  prometheus::Gauge& stopped =
      gauge("chorus_view_store_write_stopped", "1 while RocksDB stops writes to the view store");
  prometheus::Gauge& memtable =
      gauge("chorus_view_store_memtable_bytes", "Bytes in the view store's memtables");
  prometheus::Gauge& rebuild_running =
      gauge("chorus_view_rebuild_running", "1 while a rebuild of the views runs");
  prometheus::Gauge& rebuild_applied = gauge("chorus_view_rebuild_applied_events",
                                             "Events the running (or last) view rebuild applied");
  prometheus::Gauge& rebuild_remaining =
      gauge("chorus_view_rebuild_remaining_events",
            "Events the running view rebuild has left before the live views (0 when idle)");
  prometheus::Family<prometheus::Counter>& rebuilds =
      prometheus::BuildCounter()
          .Name("chorus_view_rebuilds_total")
          .Help("View rebuilds finished since the process started, by outcome")
          .Register(*registry);
  prometheus::Counter& rebuilds_completed = rebuilds.Add({{"outcome", "completed"}});
  prometheus::Counter& rebuilds_failed = rebuilds.Add({{"outcome", "failed"}});
  std::mutex rebuilds_mu;  // the runner keeps the totals: scrapes add what is new, one at a time
  prometheus::Gauge& resident =
      gauge("process_resident_memory_bytes", "Resident memory size in bytes");
  prometheus::Counter& cpu = prometheus::BuildCounter()
                                 .Name("process_cpu_seconds_total")
                                 .Help("User and system CPU time in seconds")
                                 .Register(*registry)
                                 .Add({});
  prometheus::Gauge& fds = gauge("process_open_fds", "Open file descriptors");

  std::mutex storage_mu;  // guards the two below
  events::LogStats log_stats;
  std::optional<events::StoreStats> view_stats;

  // Families built at each scrape from the storage figures, not registered: RocksDB and
  // librdkafka keep the totals, and a counter of prometheus-cpp can only be incremented.
  void append_storage(std::vector<prometheus::MetricFamily>& out) {
    std::vector<std::pair<const char*, events::StoreStats>> stores;
    std::optional<events::KafkaStats> kafka;
    {
      std::lock_guard lock(storage_mu);
      if (view_stats) stores.emplace_back("views", *view_stats);
      if (log_stats.store) stores.emplace_back("log", *log_stats.store);
      kafka = log_stats.kafka;
    }
    using prometheus::MetricType;
    auto family = [&](const char* name, const char* help, MetricType type) -> auto& {
      out.push_back(prometheus::MetricFamily{name, help, type, {}});
      return out.back();
    };
    auto sample = [](prometheus::MetricFamily& f, double value, const char* store = nullptr) {
      prometheus::ClientMetric m;
      if (store != nullptr) m.label.push_back({"store", store});
      if (f.type == MetricType::Counter) {
        m.counter.value = value;
      } else {
        m.gauge.value = value;
      }
      f.metric.push_back(std::move(m));
    };
    if (!stores.empty()) {
      auto& hits = family("chorus_rocksdb_block_cache_hits_total",
                          "RocksDB block cache hits since the store opened, by store (views, log)",
                          MetricType::Counter);
      for (const auto& [store, s] : stores)
        sample(hits, static_cast<double>(s.block_cache_hits), store);
      auto& misses =
          family("chorus_rocksdb_block_cache_misses_total",
                 "RocksDB block cache misses since the store opened, by store (views, log)",
                 MetricType::Counter);
      for (const auto& [store, s] : stores)
        sample(misses, static_cast<double>(s.block_cache_misses), store);
      auto& pending =
          family("chorus_rocksdb_pending_compaction_bytes",
                 "RocksDB estimate of bytes the store must compact, by store", MetricType::Gauge);
      for (const auto& [store, s] : stores)
        sample(pending, static_cast<double>(s.pending_compaction_bytes), store);
      auto& stops =
          family("chorus_rocksdb_write_stopped",
                 "1 while RocksDB stops writes to the store, by store", MetricType::Gauge);
      for (const auto& [store, s] : stores) sample(stops, s.write_stopped ? 1 : 0, store);
    }
    if (kafka) {
      sample(family("chorus_kafka_producer_queue_messages",
                    "Events produced to Kafka and not yet acknowledged by a broker",
                    MetricType::Gauge),
             static_cast<double>(kafka->producer_queue_messages));
      sample(
          family("chorus_kafka_producer_queue_bytes",
                 "Bytes produced to Kafka and not yet acknowledged by a broker", MetricType::Gauge),
          static_cast<double>(kafka->producer_queue_bytes));
      sample(family("chorus_kafka_broker_tx_errors_total",
                    "Kafka requests that failed to be sent, summed over brokers and clients",
                    MetricType::Counter),
             static_cast<double>(kafka->tx_errors));
      sample(family("chorus_kafka_broker_rx_errors_total",
                    "Kafka answers that could not be received, summed over brokers and clients",
                    MetricType::Counter),
             static_cast<double>(kafka->rx_errors));
      sample(family("chorus_kafka_broker_rtt_avg_seconds",
                    "Average Kafka request round trip of the slowest broker, last statistics "
                    "window",
                    MetricType::Gauge),
             kafka->rtt_avg_seconds);
      sample(family("chorus_kafka_broker_rtt_p99_seconds",
                    "99th percentile Kafka request round trip of the slowest broker, last "
                    "statistics window",
                    MetricType::Gauge),
             kafka->rtt_p99_seconds);
      sample(family("chorus_kafka_consumer_lag_messages",
                    "Offsets committed to the Kafka log that the projection cursors have not "
                    "read yet",
                    MetricType::Gauge),
             static_cast<double>(kafka->consumer_lag_messages));
    }
  }
};

Metrics::Metrics(bool enabled) : impl_(enabled ? std::make_unique<Impl>() : nullptr) {}
Metrics::~Metrics() = default;

void Metrics::observe_request(const std::string& route, int status, double seconds) {
  if (!impl_) return;
  impl_->requests.Add({{"route", route}, {"code", std::to_string(status)}}).Increment();
  impl_->request_seconds.Add({{"route", route}}, Impl::buckets()).Observe(seconds);
}

void Metrics::observe_command(const std::string& type, const std::string& outcome, double seconds) {
  if (!impl_) return;
  impl_->commands.Add({{"type", type}, {"outcome", outcome}}).Increment();
  impl_->command_seconds.Add({{"type", type}}, Impl::buckets()).Observe(seconds);
}

void Metrics::observe_append(const std::vector<const char*>& event_types, double seconds) {
  if (!impl_) return;
  for (const char* type : event_types) impl_->appended.Add({{"type", type}}).Increment();
  impl_->append_seconds.Observe(seconds);
}

void Metrics::set_open_connections(double n) {
  if (impl_) impl_->connections.Set(n);
}

void Metrics::set_view_state(const ViewState& v) {
  if (!impl_) return;
  impl_->applied.Set(v.applied_events);
  impl_->lag.Set(v.lag_events);
  impl_->lag_seconds.Set(v.lag_seconds);
  impl_->set_aside.Set(v.set_aside_events);
  impl_->compaction.Set(v.pending_compaction_bytes);
  impl_->stopped.Set(v.write_stopped);
  impl_->memtable.Set(v.memtable_bytes);
  impl_->rebuild_running.Set(v.rebuild_running);
  impl_->rebuild_applied.Set(v.rebuild_applied_events);
  impl_->rebuild_remaining.Set(v.rebuild_remaining_events);
  std::lock_guard lock(impl_->rebuilds_mu);
  for (auto [counter, total] : {std::pair{&impl_->rebuilds_completed, v.rebuilds_completed},
                                std::pair{&impl_->rebuilds_failed, v.rebuilds_failed}}) {
    if (total > counter->Value()) counter->Increment(total - counter->Value());
  }
}

void Metrics::set_storage_state(const events::LogStats& log, const events::StoreStats& views) {
  if (!impl_) return;
  std::lock_guard lock(impl_->storage_mu);
  impl_->log_stats = log;
  impl_->view_stats = views;
}

std::string Metrics::scrape() const {
  if (!impl_) return "";
  // Process figures, from /proc/self, as the Prometheus client libraries name them.
  if (std::ifstream stat("/proc/self/stat"); stat) {
    std::string field;
    double utime = 0, stime = 0, rss_pages = 0;
    for (int i = 1; stat >> field; ++i) {
      if (i == 14) utime = std::stod(field);
      if (i == 15) stime = std::stod(field);
      if (i == 24) {
        rss_pages = std::stod(field);
        break;
      }
    }
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double cpu = (utime + stime) / ticks;
    if (cpu > impl_->cpu.Value()) impl_->cpu.Increment(cpu - impl_->cpu.Value());
    impl_->resident.Set(rss_pages * static_cast<double>(sysconf(_SC_PAGESIZE)));
  }
  std::error_code ec;
  double fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  impl_->fds.Set(fds);
  auto families = impl_->registry->Collect();
  impl_->append_storage(families);
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace chorus::api
