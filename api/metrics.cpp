#include "api/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace chorus::api {

struct Metrics::Impl {
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
  prometheus::Family<prometheus::Gauge>& views =
      prometheus::BuildGauge()
          .Name("chorus_view_events")
          .Help("Projection runner: events applied, lag behind the log, events set aside")
          .Register(*registry);
  prometheus::Gauge& applied = views.Add({{"state", "applied"}});
  prometheus::Gauge& lag = views.Add({{"state", "lag"}});
  prometheus::Gauge& set_aside = views.Add({{"state", "set_aside"}});

  static prometheus::Histogram::BucketBoundaries buckets() {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5};
  }
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::observe_request(const std::string& route, int status, double seconds) {
  impl_->requests.Add({{"route", route}, {"code", std::to_string(status)}}).Increment();
  impl_->request_seconds.Add({{"route", route}}, Impl::buckets()).Observe(seconds);
}

void Metrics::observe_command(const std::string& type, const std::string& outcome, double seconds) {
  impl_->commands.Add({{"type", type}, {"outcome", outcome}}).Increment();
  impl_->command_seconds.Add({{"type", type}}, Impl::buckets()).Observe(seconds);
}

void Metrics::set_open_connections(double n) { impl_->connections.Set(n); }

void Metrics::set_view_state(double applied_events, double lag_events, double set_aside) {
  impl_->applied.Set(applied_events);
  impl_->lag.Set(lag_events);
  impl_->set_aside.Set(set_aside);
}

std::string Metrics::scrape() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace chorus::api
