#pragma once
// The Kafka event log, with librdkafka: for deployments that outgrow one machine.
// The model (single writer per partition, transactions, fencing, what happens after an
// indefinite outcome) is written down in events/KAFKA_MODEL.md.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "events/event_log.h"

namespace chorus::events {

struct KafkaLogOptions {
  std::string brokers;  // "host:port,host:port"
  std::string topic = "chorus.events";
  std::uint32_t partitions = 6;  // when the topic is created; an existing topic keeps its own
  int replication_factor = 1;    // when the topic is created (3 on a real cluster)
  bool create_topic = true;      // create the topic when it is missing
  // The ownership this writer takes: transactional.id = "chorus-" + topic + "-" + writer_id.
  // A second writer with the same id fences the first. Today one writer owns every partition.
  std::string writer_id = "all";
  // How long an append may wait for the brokers. Finding out the outcome of an indefinite
  // commit gets as long again, so an append answers within twice this.
  std::chrono::milliseconds append_timeout{30'000};
  // How often librdkafka reports its clients' statistics (queue, errors, round trip, lag) for
  // stats(); 0 turns them off.
  std::chrono::milliseconds statistics_interval{5000};
  // For auditors: no producer, no ownership taken (a running writer is never fenced), no topic
  // created; the log is read to its end once at open, and append() fails with
  // invalid_argument. A broken chain does not stop a read-only log: verifying is the reader's
  // job.
  bool read_only = false;
  // Read-only only: a directory for a persistent index of the topic's streams
  // (events/kafka_stream_index.h). The first opening builds it by reading the whole topic;
  // later ones read only what was appended since, and a stream's history is then found without
  // reading the topic. Empty: the index is kept in memory, built by reading the whole topic at
  // every opening.
  std::string index_dir;
  // Extra librdkafka settings ("name=value"), e.g. security settings of the user's cluster.
  std::vector<std::pair<std::string, std::string>> extra_config;
  // Fault injection, for tests only: called on the writer's thread before each commit, with the
  // transaction's events produced; returning true leaves the commit's outcome unknown, as a
  // commit that timed out does, so that the writer settles it from the log. Null in service.
  std::function<bool()> commit_fault_for_test;
};

// Connects, creates the topic if asked and missing, takes ownership of every partition
// (init_transactions fences any previous writer with the same writer_id and aborts its open
// transaction), then reads every partition to its end to learn each stream's head.
// Fails with unavailable when the brokers do not answer within append_timeout, with
// invalid_argument on a bad setting, with fenced when a newer writer took over meanwhile.
// Reading to the end costs one pass over the topic at start (see KAFKA_MODEL.md).
[[nodiscard]] Result<std::unique_ptr<EventLog>> open_kafka_log(const KafkaLogOptions& options);

}  // namespace chorus::events
