#pragma once
// Picks the log from configuration: Kafka when brokers are given, else the embedded log.

#include <memory>
#include <string>

#include "events/embedded_log.h"
#include "events/kafka_log.h"

namespace chorus::events {

struct LogConfig {
  std::string data_dir = ".data";  // the embedded log lives in data_dir/log
  KafkaLogOptions kafka;           // used when kafka.brokers is not empty
  // EmbeddedLogOptions::drop_damaged_wal_tail, for an operator's one recovery.
  bool drop_damaged_wal_tail = false;
};

// Opens the configured log; fails as open_embedded_log or open_kafka_log do.
[[nodiscard]] Result<std::unique_ptr<EventLog>> open_log(const LogConfig& config);

}  // namespace chorus::events
