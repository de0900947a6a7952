// Event log benchmark: each implementation beside its raw baseline, measured in the same run
// with the same durability settings, because only ratios travel between machines.
//
//   embedded  vs  raw RocksDB WriteBatch, sync=true (one key per event)
//   kafka     vs  raw librdkafka idempotent producer, acks=all, linger.ms=0, waiting for
//                 every delivery report of the batch
//
// Payloads are 200 bytes; batches of 1, 10 and 100 events from one appender, and batches of
// one event from 8 concurrent appenders (what group commit is for).
//
// Usage: event_log_bench [--seconds S] [--kafka-brokers HOST:PORT] [--dir DIR]

#include <librdkafka/rdkafka.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "events/embedded_log.h"
#include "events/kafka_log.h"
#include "tests/events/test_events.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kPayload = 200;

struct Figures {
  double events_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
};

// Runs `append(thread, batch_size, t0)` from `threads` threads for `seconds`; each call prepares
// one batch, sets t0 when the measured operation starts, appends and returns false on failure.
using AppendFn = std::function<bool(int, std::size_t, Clock::time_point&)>;
Figures measure(int threads, std::size_t batch, double seconds, const AppendFn& append) {
  // One untimed call per thread first: connections, metadata, first partition registration.
  for (int t = 0; t < threads; ++t) {
    auto t0 = Clock::now();
    if (!append(t, batch, t0)) return Figures{};
  }
  std::vector<std::vector<double>> latencies(threads);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> events{0};
  std::atomic<bool> failed{false};
  const auto start = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      while (!stop) {
        auto t0 = Clock::now();
        if (!append(t, batch, t0)) {
          failed = true;
          return;
        }
        latencies[t].push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        events += batch;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : pool) th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  Figures f;
  if (failed || all.empty()) return f;
  f.events_per_s = static_cast<double>(events) / elapsed;
  f.p50_us = all[all.size() / 2];
  f.p99_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return f;
}

void report(const char* log, int threads, std::size_t batch, const Figures& ours,
            const Figures& raw) {
  std::printf(
      "%-9s %3d x %-4zu | %12.0f ev/s p50 %9.1f us p99 %9.1f us | raw %12.0f ev/s p50 %9.1f us p99 "
      "%9.1f us | %5.1f%% of raw\n",
      log, threads, batch, ours.events_per_s, ours.p50_us, ours.p99_us, raw.events_per_s,
      raw.p50_us, raw.p99_us,
      raw.events_per_s > 0 ? 100.0 * ours.events_per_s / raw.events_per_s : 0.0);
  std::fflush(stdout);
}

struct Shape {
  int threads;
  std::size_t batch;
};
constexpr Shape kShapes[] = {{1, 1}, {1, 10}, {1, 100}, {8, 1}};

// Per appender thread: its own streams, so that concurrent appenders do not conflict.
struct Appender {
  std::vector<std::uint64_t> versions = std::vector<std::uint64_t>(16, 0);
  std::uint64_t n = 0;
};

bool append_ours(chorus::events::EventLog& log, Appender& a, int thread, std::size_t batch,
                 Clock::time_point& t0) {
  const std::size_t slot = a.n++ % a.versions.size();
  const std::string stream = "bench-" + std::to_string(thread) + "-" + std::to_string(slot);
  std::vector<chorus::events::StreamAppend> b{
      chorus::events::testing::append_to(stream, a.versions[slot], batch, kPayload)};
  t0 = Clock::now();
  auto r = log.append(b);
  if (!r) {
    std::fprintf(stderr, "append failed: %s\n", r.error().message.c_str());
    return false;
  }
  a.versions[slot] += batch;
  return true;
}

void bench_embedded(const std::string& dir, double seconds) {
  for (const auto& shape : kShapes) {
    std::filesystem::remove_all(dir);
    Figures ours, raw;
    {
      auto log = chorus::events::open_embedded_log({dir + "/ours", true});
      if (!log) {
        std::fprintf(stderr, "%s\n", log.error().message.c_str());
        return;
      }
      std::vector<Appender> appenders(shape.threads);
      ours = measure(shape.threads, shape.batch, seconds,
                     [&](int t, std::size_t n, Clock::time_point& t0) {
                       return append_ours(**log, appenders[t], t, n, t0);
                     });
    }
    {
      rocksdb::Options options;
      options.create_if_missing = true;
      rocksdb::DB* db = nullptr;
      if (!rocksdb::DB::Open(options, dir + "/raw", &db).ok()) return;
      rocksdb::WriteOptions wo;
      wo.sync = true;
      std::atomic<std::uint64_t> key{0};
      const std::string value(kPayload, 'x');
      raw = measure(shape.threads, shape.batch, seconds,
                    [&](int, std::size_t n, Clock::time_point& t0) {
                      t0 = Clock::now();
                      rocksdb::WriteBatch wb;
                      for (std::size_t i = 0; i < n; ++i) {
                        std::uint64_t k = __builtin_bswap64(key++);
                        wb.Put(rocksdb::Slice(reinterpret_cast<const char*>(&k), 8), value);
                      }
                      return db->Write(wo, &wb).ok();
                    });
      delete db;
    }
    report("embedded", shape.threads, shape.batch, ours, raw);
  }
  std::filesystem::remove_all(dir);
}

// The raw baseline: an idempotent producer, acks=all, waiting for the batch's reports.
struct RawProducer {
  rd_kafka_t* rk = nullptr;
  std::string topic;
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    auto* pending = static_cast<std::atomic<int>*>(m->_private);
    if (m->err) std::fprintf(stderr, "raw delivery failed: %s\n", rd_kafka_err2str(m->err));
    --*pending;
  }
  RawProducer(const std::string& brokers, std::string t) : topic(std::move(t)) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    for (auto [k, v] : {std::pair{"bootstrap.servers", brokers.c_str()},
                        {"enable.idempotence", "true"},
                        {"acks", "all"},
                        {"linger.ms", "0"}}) {
      rd_kafka_conf_set(conf, k, v, err, sizeof err);
    }
    rd_kafka_conf_set_dr_msg_cb(conf, &on_delivery);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  }
  ~RawProducer() {
    rd_kafka_flush(rk, 10000);
    rd_kafka_destroy(rk);
  }
  bool send(int partition, std::size_t n, const std::string& value) {
    std::atomic<int> pending{static_cast<int>(n)};
    for (std::size_t i = 0; i < n; ++i) {
      if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                            RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&pending),
                            RD_KAFKA_V_END)) {
        return false;
      }
    }
    while (pending > 0) rd_kafka_poll(rk, 1);
    return true;
  }
};

void bench_kafka(const std::string& brokers, double seconds) {
  const std::string suffix = std::to_string(::getpid());
  for (const auto& shape : kShapes) {
    const std::string topic =
        "bench-" + suffix + "-" + std::to_string(shape.threads) + "x" + std::to_string(shape.batch);
    Figures ours, raw;
    {
      chorus::events::KafkaLogOptions o;
      o.brokers = brokers;
      o.topic = topic;
      o.partitions = 3;
      auto log = chorus::events::open_kafka_log(o);
      if (!log) {
        std::fprintf(stderr, "%s\n", log.error().message.c_str());
        return;
      }
      std::vector<Appender> appenders(shape.threads);
      ours = measure(shape.threads, shape.batch, seconds,
                     [&](int t, std::size_t n, Clock::time_point& t0) {
                       return append_ours(**log, appenders[t], t, n, t0);
                     });
    }
    {
      // The raw producer writes to the same topic (created above), one producer per thread as
      // a plain client would; the producer itself is thread-safe, but one each is fairer to it.
      std::vector<std::unique_ptr<RawProducer>> producers;
      for (int t = 0; t < shape.threads; ++t) {
        producers.push_back(std::make_unique<RawProducer>(brokers, topic));
      }
      const std::string value(kPayload, 'x');
      raw = measure(shape.threads, shape.batch, seconds,
                    [&](int t, std::size_t n, Clock::time_point& t0) {
                      t0 = Clock::now();
                      return producers[t]->send(t % 3, n, value);
                    });
    }
    report("kafka", shape.threads, shape.batch, ours, raw);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Event log benchmark: each log beside its raw baseline"};
  double seconds = 3;
  std::string brokers;
  std::string dir = (std::filesystem::temp_directory_path() / "chorus-log-bench").string();
  app.add_option("--seconds", seconds, "duration of each measurement");
  app.add_option("--kafka-brokers", brokers,
                 "Kafka bootstrap servers; Kafka rows are skipped without")
      ->envname("CHORUS_KAFKA_BROKERS");
  app.add_option("--dir", dir, "scratch directory for the RocksDB runs");
  CLI11_PARSE(app, argc, argv);

  std::printf(
      "log       thr x batch | ours                                            | raw baseline, "
      "same durability                     | ratio\n");
  bench_embedded(dir, seconds);
  if (!brokers.empty()) bench_kafka(brokers, seconds);
  return 0;
}
