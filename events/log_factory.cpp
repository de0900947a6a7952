#include "events/log_factory.h"

namespace chorus::events {

Result<std::unique_ptr<EventLog>> open_log(const LogConfig& config) {
  if (!config.kafka.brokers.empty()) return open_kafka_log(config.kafka);
  return open_embedded_log(
      EmbeddedLogOptions{.dir = config.data_dir + "/log",
                         .sync = true,
                         .drop_damaged_wal_tail = config.drop_damaged_wal_tail});
}

}  // namespace chorus::events
