// A writer process for the crash tests: appends without pause to a few streams, in batches of
// one or two streams, and prints one line per acknowledged event:
//   ACK <stream> <version> <event-id-hex>
// The test kills it with SIGKILL mid-stream and checks the log afterwards.
//
// Usage: chorus_test_log_writer embedded DIR
//        chorus_test_log_writer kafka BROKERS TOPIC

#include <cstdio>
#include <map>
#include <string>

#include "events/codec.h"
#include "events/log_factory.h"
#include "tests/events/test_events.h"

using namespace chorus::events;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s embedded DIR | kafka BROKERS TOPIC\n", argv[0]);
    return 2;
  }
  const std::string kind = argv[1];
  Result<std::unique_ptr<EventLog>> log = fail(errc::invalid_argument, "unknown kind " + kind);
  if (kind == "embedded") {
    log = open_embedded_log(EmbeddedLogOptions{argv[2], true});
  } else if (kind == "kafka" && argc >= 4) {
    KafkaLogOptions o;
    o.brokers = argv[2];
    o.topic = argv[3];
    o.partitions = 3;
    o.append_timeout = std::chrono::seconds(10);
    log = open_kafka_log(o);
  }
  if (!log) {
    std::fprintf(stderr, "cannot open log: %s\n", log.error().message.c_str());
    return 1;
  }
  std::map<std::string, std::uint64_t> versions;
  for (std::uint64_t i = 0;; ++i) {
    std::vector<StreamAppend> batch;
    const std::string a = "crash-" + std::to_string(i % 5);
    batch.push_back(chorus::events::testing::append_to(a, versions[a], 1 + i % 2));
    if (i % 3 == 0) {
      const std::string b = "crash-" + std::to_string((i + 1) % 5 + 5);
      batch.push_back(chorus::events::testing::append_to(b, versions[b], 1));
    }
    auto r = (*log)->append(batch);
    if (!r) {
      std::fprintf(stderr, "append failed: %s\n", r.error().message.c_str());
      return 1;
    }
    for (const auto& s : batch) {
      for (const auto& e : s.events) {
        ++versions[s.stream_id];
        std::printf("ACK %s %llu %s\n", s.stream_id.c_str(),
                    static_cast<unsigned long long>(versions[s.stream_id]),
                    to_hex(e.meta.event_id).c_str());
      }
    }
    std::fflush(stdout);
  }
}
