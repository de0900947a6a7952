#include "events/kafka_log.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <stop_token>
#include <thread>
#include <unordered_map>

#include "events/group_commit.h"
#include "events/invariant.h"
#include "events/kafka_stream_index.h"

namespace chorus::events {
namespace {

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<std::int64_t>(left.count(), 0));
}

// The latest statistics of each client of one log, summed for stats(). Written by whichever
// thread serves a client's queue (librdkafka calls back there), read by scrapes.
class StatsBoard {
 public:
  struct Client {
    std::uint64_t queue_messages = 0;
    std::uint64_t queue_bytes = 0;
    std::uint64_t tx_errors = 0;  // librdkafka's totals since the client started
    std::uint64_t rx_errors = 0;
    std::int64_t rtt_avg_us = 0;  // slowest broker, last window
    std::int64_t rtt_p99_us = 0;
    std::uint64_t lag = 0;
  };

  void update(const rd_kafka_t* client, const Client& figures) {
    std::lock_guard lock(mu_);
    clients_[client] = figures;
    reported_ = true;
  }

  // Once the client is destroyed: its gauges leave, its errors stay counted, so that the
  // totals never go down when a producer or a cursor is replaced.
  void forget(const rd_kafka_t* client) {
    std::lock_guard lock(mu_);
    auto it = clients_.find(client);
    if (it == clients_.end()) return;
    retired_tx_errors_ += it->second.tx_errors;
    retired_rx_errors_ += it->second.rx_errors;
    clients_.erase(it);
  }

  std::optional<KafkaStats> total() const {
    std::lock_guard lock(mu_);
    if (!reported_) return std::nullopt;
    KafkaStats t;
    t.tx_errors = retired_tx_errors_;
    t.rx_errors = retired_rx_errors_;
    std::int64_t rtt_avg = 0, rtt_p99 = 0;
    for (const auto& [client, c] : clients_) {
      t.producer_queue_messages += c.queue_messages;
      t.producer_queue_bytes += c.queue_bytes;
      t.tx_errors += c.tx_errors;
      t.rx_errors += c.rx_errors;
      t.consumer_lag_messages += c.lag;
      rtt_avg = std::max(rtt_avg, c.rtt_avg_us);
      rtt_p99 = std::max(rtt_p99, c.rtt_p99_us);
    }
    t.rtt_avg_seconds = static_cast<double>(rtt_avg) / 1e6;
    t.rtt_p99_seconds = static_cast<double>(rtt_p99) / 1e6;
    return t;
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<const rd_kafka_t*, Client> clients_;
  std::uint64_t retired_tx_errors_ = 0;
  std::uint64_t retired_rx_errors_ = 0;
  bool reported_ = false;
};

// Where one client's statistics go. Only the cursors' lag counts: the stream reader jumps
// between offsets, and reading to the end at start is not the views falling behind.
struct StatsTap {
  std::shared_ptr<StatsBoard> board;
  std::chrono::milliseconds interval;
  bool counts_lag = false;
};

struct KafkaDeleter {
  // Held here so that it outlives the client: librdkafka may call back until destroy returns.
  std::shared_ptr<StatsTap> tap;
  void operator()(rd_kafka_t* rk) const {
    rd_kafka_destroy(rk);
    if (tap) tap->board->forget(rk);
  }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

struct ErrorDeleter {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
using KafkaError = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using Message = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

bool is_fencing(rd_kafka_resp_err_t code) {
  return code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
         code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

std::string describe(const rd_kafka_error_t* e) {
  return std::string(rd_kafka_error_name(e)) + ": " + rd_kafka_error_string(e);
}

std::int64_t json_int(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<std::int64_t>() : 0;
}

std::uint64_t non_negative(std::int64_t n) {
  return static_cast<std::uint64_t>(std::max<std::int64_t>(n, 0));
}

// A partition's lag. librdkafka's consumer_lag runs from the committed offset, and our
// cursors never commit (it stays -1), so the lag runs from the offset last delivered to the
// cursor (app_offset) to the last stable offset, the end a read_committed consumer may read.
// Until a partition delivers its first event the lag is not known and counts 0.
std::uint64_t partition_lag(const nlohmann::json& p) {
  auto offset = [&](const char* key) { return p.contains(key) ? json_int(p, key) : -1; };
  if (const std::int64_t reported = offset("consumer_lag"); reported >= 0) {
    return static_cast<std::uint64_t>(reported);
  }
  const std::int64_t delivered = offset("app_offset");
  const std::int64_t end = offset("ls_offset");
  return delivered >= 0 && end >= delivered ? static_cast<std::uint64_t>(end - delivered) : 0;
}

// Reads the figures we keep from one librdkafka statistics report (its STATISTICS.md).
std::optional<StatsBoard::Client> parse_statistics(std::string_view report,
                                                   bool counts_lag) noexcept {
  try {
    const auto doc = nlohmann::json::parse(report, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) return std::nullopt;
    StatsBoard::Client c;
    if (doc.value("type", "") == "producer") {
      c.queue_messages = non_negative(json_int(doc, "msg_cnt"));
      c.queue_bytes = non_negative(json_int(doc, "msg_size"));
    }
    if (auto brokers = doc.find("brokers"); brokers != doc.end() && brokers->is_object()) {
      for (const auto& broker : *brokers) {
        c.tx_errors += non_negative(json_int(broker, "txerrs"));
        c.rx_errors += non_negative(json_int(broker, "rxerrs"));
        // Brokers without a request in the window (bootstrap entries, idle ones) report 0.
        auto rtt = broker.find("rtt");
        if (rtt == broker.end() || json_int(*rtt, "cnt") <= 0) continue;
        c.rtt_avg_us = std::max(c.rtt_avg_us, json_int(*rtt, "avg"));
        c.rtt_p99_us = std::max(c.rtt_p99_us, json_int(*rtt, "p99"));
      }
    }
    if (auto topics = doc.find("topics"); counts_lag && topics != doc.end()) {
      for (const auto& topic : *topics) {
        auto partitions = topic.find("partitions");
        if (partitions == topic.end()) continue;
        for (const auto& p : *partitions) {
          if (json_int(p, "partition") < 0) continue;  // librdkafka's internal one
          c.lag += partition_lag(p);
        }
      }
    }
    return c;
  } catch (const std::exception&) {
    return std::nullopt;  // a report we cannot read changes nothing
  }
}

int on_statistics(rd_kafka_t* rk, char* report, std::size_t length, void* opaque) {
  const auto* tap = static_cast<const StatsTap*>(opaque);
  if (auto figures = parse_statistics(std::string_view(report, length), tap->counts_lag)) {
    tap->board->update(rk, *figures);
  }
  return 0;  // librdkafka frees the report
}

// Builds a handle from settings; `type` PRODUCER or CONSUMER. With a tap, librdkafka reports
// the client's statistics to it.
Result<KafkaHandle> make_handle(rd_kafka_type_t type,
                                const std::vector<std::pair<std::string, std::string>>& settings,
                                std::shared_ptr<StatsTap> tap = nullptr,
                                void (*dr_cb)(rd_kafka_t*, const rd_kafka_message_t*,
                                              void*) = nullptr) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto all = settings;
  if (tap) all.emplace_back("statistics.interval.ms", std::to_string(tap->interval.count()));
  for (const auto& [name, value] : all) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return fail(errc::invalid_argument, "Kafka setting " + name + ": " + errstr);
    }
  }
  if (dr_cb != nullptr) rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
  if (tap) {
    rd_kafka_conf_set_opaque(conf, tap.get());
    rd_kafka_conf_set_stats_cb(conf, &on_statistics);
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return fail(errc::invalid_argument, std::string("creating a Kafka client: ") + errstr);
  }
  if (type == RD_KAFKA_CONSUMER) rd_kafka_poll_set_consumer(rk);
  return KafkaHandle(rk, KafkaDeleter{std::move(tap)});
}

// Per-stream state learnt from the log: the head and where each version lives.
struct StreamState {
  StreamHead head;
  std::vector<std::uint64_t> offsets;  // offsets[v - 1] = offset of version v
};

// The delivery report of one produced event.
struct Delivery {
  PlannedEvent* event;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  bool reported = false;
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  auto* d = static_cast<Delivery*>(m->_private);
  d->reported = true;
  d->err = m->err;
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    d->event->address =
        LogAddress{static_cast<std::uint32_t>(m->partition), static_cast<std::uint64_t>(m->offset)};
  }
}

// What a writer's cursors tell it of the log: each event they read is shown to `observe`,
// which learns from it whether another writer has written (KafkaLog::observe_read). Shared by
// the log and its cursors, so that a cursor outliving its log shows nothing. Thread-safe.
struct ReadWatch {
  std::mutex mu;
  std::function<void(const EventCoordinates&)> observe;  // guarded by mu; empty once the log
                                                         // is gone, or for a read-only log
  void show(const EventCoordinates& coords) {
    std::lock_guard lock(mu);
    if (observe) observe(coords);
  }
};

class KafkaCursor final : public LogCursor {
 public:
  KafkaCursor(KafkaHandle consumer, LogPosition start, std::shared_ptr<ReadWatch> watch)
      : consumer_(std::move(consumer)), position_(std::move(start)), watch_(std::move(watch)) {}
  ~KafkaCursor() override { rd_kafka_consumer_close(consumer_.get()); }

  Result<std::size_t> poll(std::vector<RecordedEvent>& out, std::size_t max,
                           std::chrono::milliseconds wait) override {
    const std::size_t before = out.size();
    const auto deadline = Clock::now() + wait;
    while (out.size() - before < max) {
      // Block only while nothing was gathered; then drain what is already fetched.
      const int timeout = out.size() == before ? ms_left(deadline) : 0;
      Message m(rd_kafka_consumer_poll(consumer_.get(), timeout));
      if (!m) break;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        // At the end (the last stable offset, read_committed): skip the commit markers too.
        auto& next = position_.next[static_cast<std::size_t>(m->partition)];
        next = std::max<std::uint64_t>(next, static_cast<std::uint64_t>(m->offset));
        continue;
      }
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        // Broker and transport errors are retried by librdkafka itself; report only when
        // nothing else came back.
        if (out.size() == before && ms_left(deadline) == 0) {
          return fail(errc::unavailable,
                      std::string("reading the log: ") + rd_kafka_message_errstr(m.get()));
        }
        continue;
      }
      std::string_view bytes(static_cast<const char*>(m->payload), m->len);
      auto coords = peek(bytes);
      const LogAddress address{static_cast<std::uint32_t>(m->partition),
                               static_cast<std::uint64_t>(m->offset)};
      if (!coords) {
        out.resize(before);
        return fail(errc::corruption, "event at partition " + std::to_string(address.partition) +
                                          " offset " + std::to_string(address.offset) + ": " +
                                          coords.error().message);
      }
      if (watch_) watch_->show(*coords);
      out.push_back(RecordedEvent{address, std::move(coords->stream_id), coords->version,
                                  std::string(bytes)});
      position_.advance_past(address);
    }
    return out.size() - before;
  }

  const LogPosition& position() const override { return position_; }

 private:
  KafkaHandle consumer_;
  LogPosition position_;
  std::shared_ptr<ReadWatch> watch_;
};

class KafkaLog final : public EventLog {
 public:
  explicit KafkaLog(KafkaLogOptions options) : options_(std::move(options)) {}

  ~KafkaLog() override {
    {
      std::lock_guard lock(watch_->mu);
      watch_->observe = nullptr;
    }
    if (statistics_server_.joinable()) {
      statistics_server_.request_stop();
      statistics_server_.join();
    }
    if (producer_) rd_kafka_flush(producer_.get(), 1000);
  }

  Result<void> open() {
    const auto deadline = Clock::now() + options_.append_timeout;
    if (auto ok = ensure_topic(deadline); !ok) return ok;
    end_.assign(partitions_, 0);
    if (options_.read_only && !options_.index_dir.empty()) {
      auto index = KafkaStreamIndex::open(options_.index_dir, options_.topic, partitions_);
      if (!index) return std::unexpected(index.error());
      index_ = std::move(*index);
      end_ = index_->checkpoint();
    }
    if (options_.read_only) return catch_up(deadline);
    if (auto ok = take_ownership(deadline); !ok) return ok;
    {
      std::lock_guard lock(watch_->mu);
      watch_->observe = [this](const EventCoordinates& c) { observe_read(c); };
    }
    if (options_.statistics_interval.count() > 0) {
      statistics_server_ = std::jthread([this](std::stop_token stop) { serve_statistics(stop); });
    }
    return {};
  }

  Result<AppendResult> append(std::span<const StreamAppend> batch) override {
    if (auto ok = check_batch(batch); !ok) return std::unexpected(ok.error());
    if (options_.read_only) return fail(errc::invalid_argument, "the log is open read-only");
    return group_commit_.append(batch,
                                [this](std::vector<AppendRequest*>& group) { write_group(group); });
  }

  Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id,
                                                 std::uint64_t from_version,
                                                 std::size_t max) override {
    std::vector<std::uint64_t> offsets;
    if (index_) {
      auto found = index_->offsets(stream_id, from_version, max);
      if (!found) return std::unexpected(found.error());
      offsets = std::move(*found);
    } else {
      std::shared_lock lock(state_mu_);
      auto it = streams_.find(std::string(stream_id));
      if (it == streams_.end()) return std::vector<RecordedEvent>{};
      const auto& all = it->second.offsets;
      const std::size_t first = std::max<std::uint64_t>(from_version, 1) - 1;
      for (std::size_t i = first; i < all.size() && offsets.size() < max; ++i) {
        offsets.push_back(all[i]);
      }
    }
    std::vector<RecordedEvent> out;
    if (offsets.empty()) return out;
    const auto partition = static_cast<std::int32_t>(partition_of(stream_id, partitions_));
    std::lock_guard lock(reader_mu_);
    if (!reader_) {
      // No statistics: this client is served only while a stream is read, so its reports
      // would pile up unread in between (see serve_statistics).
      auto consumer = make_handle(RD_KAFKA_CONSUMER, consumer_settings());
      if (!consumer) return std::unexpected(consumer.error());
      reader_ = std::move(*consumer);
    }
    auto start_at = [&](std::uint64_t offset) -> Result<void> {
      PartitionList list(rd_kafka_topic_partition_list_new(1));
      rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(), partition)->offset =
          static_cast<std::int64_t>(offset);
      if (auto err = rd_kafka_assign(reader_.get(), list.get()); err) {
        return fail(errc::unavailable,
                    std::string("assigning a partition: ") + rd_kafka_err2str(err));
      }
      return {};
    };
    if (auto ok = start_at(offsets.front()); !ok) return std::unexpected(ok.error());
    // A stream's events are scattered among other streams' in the partition: past this many
    // offsets, fetching from the next wanted one beats reading everything in between.
    constexpr std::uint64_t kSeekGap = 512;
    const auto deadline = Clock::now() + options_.append_timeout;
    std::size_t want = 0;
    while (want < offsets.size()) {
      Message m(rd_kafka_consumer_poll(reader_.get(), std::min(ms_left(deadline), 200)));
      if (!m) {
        if (ms_left(deadline) == 0) return fail(errc::unavailable, "timed out reading a stream");
        continue;
      }
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      const auto offset = static_cast<std::uint64_t>(m->offset);
      if (offset < offsets[want]) continue;
      CHORUS_INVARIANT(offset == offsets[want], "a stream's event is missing from its partition");
      std::string bytes(static_cast<const char*>(m->payload), m->len);
      std::uint64_t version = std::max<std::uint64_t>(from_version, 1) + want;
      if (auto coords = peek(bytes); coords) {
        // An index that points at another stream's record (a topic recreated under the same
        // name since it was built) must not pass that record off as this stream's.
        if (coords->stream_id != stream_id) {
          return fail(errc::corruption, "the stream index points at an event of " +
                                            coords->stream_id + " (partition " +
                                            std::to_string(partition) + " offset " +
                                            std::to_string(offset) + "); rebuild the index");
        }
        version = coords->version;
      }
      out.push_back(RecordedEvent{{static_cast<std::uint32_t>(partition), offset},
                                  std::string(stream_id),
                                  version,
                                  std::move(bytes)});
      ++want;
      // Messages of the old position still queued are below the new one and skipped above.
      if (want < offsets.size() && offsets[want] > offset + kSeekGap) {
        if (auto ok = start_at(offsets[want]); !ok) return std::unexpected(ok.error());
      }
    }
    return out;
  }

  Result<std::uint64_t> stream_version(std::string_view stream_id) override {
    if (index_) return index_->head(stream_id);
    std::shared_lock lock(state_mu_);
    auto it = streams_.find(std::string(stream_id));
    return it == streams_.end() ? 0 : it->second.head.version;
  }

  Result<std::unique_ptr<LogCursor>> follow(const LogPosition& from) override {
    if (from.next.size() > partitions_) {
      return fail(errc::invalid_argument,
                  "position " + from.to_token() + " names " + std::to_string(from.next.size()) +
                      " partitions; the topic has " + std::to_string(partitions_));
    }
    LogPosition start = from;
    start.next.resize(partitions_, 0);
    auto consumer = make_handle(RD_KAFKA_CONSUMER, consumer_settings(), tap(/*counts_lag=*/true));
    if (!consumer) return std::unexpected(consumer.error());
    if (auto ok = assign_all(consumer->get(), start); !ok) return std::unexpected(ok.error());
    return std::make_unique<KafkaCursor>(std::move(*consumer), std::move(start), watch_);
  }

  // The writer's own knowledge: past every event it committed or read. Asking the brokers
  // would be wrong twice: a read_committed ListOffsets answers the last stable offset, which
  // trails a just-committed transaction until its markers are written, and commit markers
  // move the high watermark after the append has returned.
  Result<LogPosition> end() override {
    std::shared_lock lock(state_mu_);
    return LogPosition{end_};
  }

  // The high watermarks, read uncommitted: a read_committed ListOffsets (librdkafka's default,
  // and the cursors') answers the last stable offset, which stops at the first offset of any
  // transaction still open on the partition, so it can lie below another server's acknowledged
  // write. Watermarks only grow: the highest seen answers without a round trip whatever it
  // covers.
  Result<bool> covered_by_writes(const LogPosition& position,
                                 std::chrono::milliseconds timeout) override {
    const auto deadline = Clock::now() + timeout;
    std::lock_guard lock(watermarks_mu_);
    if (watermarks_seen_.size() != partitions_) watermarks_seen_.assign(partitions_, 0);
    if (LogPosition{watermarks_seen_}.covers(position)) return true;
    if (!watermarks_) {
      auto settings = consumer_settings();
      settings.emplace_back("isolation.level", "read_uncommitted");  // the last setting wins
      auto handle = make_handle(RD_KAFKA_CONSUMER, settings);
      if (!handle) return std::unexpected(handle.error());
      watermarks_ = std::move(*handle);
    }
    for (std::uint32_t p = 0; p < partitions_; ++p) {
      std::int64_t low = 0, high = 0;
      auto err = rd_kafka_query_watermark_offsets(watermarks_.get(), options_.topic.c_str(),
                                                  static_cast<std::int32_t>(p), &low, &high,
                                                  std::max(ms_left(deadline), 1));
      if (err) {
        return fail(errc::unavailable,
                    std::string("reading a partition's end: ") + rd_kafka_err2str(err));
      }
      watermarks_seen_[p] = std::max(watermarks_seen_[p],
                                     static_cast<std::uint64_t>(std::max<std::int64_t>(high, 0)));
    }
    return LogPosition{watermarks_seen_}.covers(position);
  }

  std::uint32_t partition_count() const noexcept override { return partitions_; }
  std::string_view kind() const noexcept override { return "kafka"; }
  bool fenced() const noexcept override { return fenced_ || foreign_seen_; }

  // A cursor of this writer read `c`. An event beyond what this writer knows of its stream,
  // and not one of its own being committed, was written by another writer: one that took the
  // partitions over, so that this one is fenced (the brokers would say so at its next append).
  // Known: up to the stream's head (read at open or at a settle, or written and recorded),
  // or in flight with that hash (written, its head not recorded yet); both under state_mu_,
  // so an event of ours is always one or the other.
  void observe_read(const EventCoordinates& c) {
    if (foreign_seen_) return;
    std::shared_lock lock(state_mu_);
    if (auto it = streams_.find(c.stream_id);
        it != streams_.end() && c.version <= it->second.head.version) {
      return;
    }
    if (auto it = in_flight_.find(c.stream_id); it != in_flight_.end()) {
      if (auto v = it->second.find(c.version); v != it->second.end() && v->second == c.hash) {
        return;
      }
    }
    foreign_seen_ = true;
  }

  LogStats stats() const override { return LogStats{std::nullopt, board_->total()}; }

 private:
  // Where a new client reports its statistics; none when they are turned off.
  std::shared_ptr<StatsTap> tap(bool counts_lag) const {
    if (options_.statistics_interval.count() <= 0) return nullptr;
    return std::make_shared<StatsTap>(StatsTap{board_, options_.statistics_interval, counts_lag});
  }

  // librdkafka hands a client's statistics over only when its queue is served. The cursors
  // and commit_transaction serve theirs, but an idle producer would pile a report up every
  // interval, to be parsed all at once by the next append. Served here when no append holds
  // the producer: the lock keeps delivery reports on the leader.
  void serve_statistics(std::stop_token stop) {
    std::mutex mu;
    std::condition_variable_any cv;
    while (true) {
      {
        std::unique_lock lock(mu);
        if (cv.wait_for(lock, stop, options_.statistics_interval, [] { return false; }) ||
            stop.stop_requested()) {
          return;
        }
      }
      std::unique_lock producer(producer_mu_, std::try_to_lock);
      if (producer.owns_lock() && producer_) rd_kafka_poll(producer_.get(), 0);
    }
  }

  std::vector<std::pair<std::string, std::string>> common_settings() const {
    std::vector<std::pair<std::string, std::string>> s{{"bootstrap.servers", options_.brokers},
                                                       {"client.id", "chorus"}};
    s.insert(s.end(), options_.extra_config.begin(), options_.extra_config.end());
    return s;
  }

  std::vector<std::pair<std::string, std::string>> consumer_settings() const {
    auto s = common_settings();
    s.insert(s.end(), {{"group.id", "chorus-reader"},  // never joined: partitions are assigned
                       {"enable.auto.commit", "false"},
                       {"enable.auto.offset.store", "false"},
                       {"isolation.level", "read_committed"},
                       {"enable.partition.eof", "true"},
                       {"auto.offset.reset", "earliest"},
                       // Bounded prefetch: a slow reader holds at most this much in memory.
                       {"queued.max.messages.kbytes", "16384"},
                       {"fetch.wait.max.ms", "10"}});
    return s;
  }

  Result<void> assign_all(rd_kafka_t* consumer, const LogPosition& from) const {
    PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions_)));
    for (std::uint32_t p = 0; p < partitions_; ++p) {
      rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(),
                                        static_cast<std::int32_t>(p))
          ->offset = static_cast<std::int64_t>(from.next[p]);
    }
    if (auto err = rd_kafka_assign(consumer, list.get()); err) {
      return fail(errc::unavailable, std::string("assigning partitions: ") + rd_kafka_err2str(err));
    }
    return {};
  }

  // Creates the topic when missing and learns its partition count.
  Result<void> ensure_topic(Clock::time_point deadline) {
    auto admin = make_handle(RD_KAFKA_PRODUCER, common_settings());
    if (!admin) return std::unexpected(admin.error());
    admin_ = std::move(*admin);
    char errstr[512];
    if (options_.create_topic) {
      rd_kafka_NewTopic_t* topic =
          rd_kafka_NewTopic_new(options_.topic.c_str(), static_cast<int>(options_.partitions),
                                options_.replication_factor, errstr, sizeof errstr);
      if (topic == nullptr) return fail(errc::invalid_argument, std::string("topic: ") + errstr);
      rd_kafka_NewTopic_set_config(topic, "retention.ms", "-1");
      rd_kafka_NewTopic_set_config(topic, "retention.bytes", "-1");
      rd_kafka_NewTopic_set_config(topic, "cleanup.policy", "delete");
      rd_kafka_NewTopic_set_config(
          topic, "min.insync.replicas",
          std::to_string(std::min(2, std::max(1, options_.replication_factor - 1))).c_str());
      rd_kafka_queue_t* queue = rd_kafka_queue_new(admin_.get());
      rd_kafka_AdminOptions_t* admin_options =
          rd_kafka_AdminOptions_new(admin_.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
      rd_kafka_AdminOptions_set_operation_timeout(admin_options, ms_left(deadline), errstr,
                                                  sizeof errstr);
      rd_kafka_CreateTopics(admin_.get(), &topic, 1, admin_options, queue);
      rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, ms_left(deadline) + 1000);
      std::string problem;
      if (ev == nullptr) {
        problem = "no answer from the brokers at " + options_.brokers;
      } else if (rd_kafka_event_error(ev)) {
        problem = rd_kafka_event_error_string(ev);
      } else {
        std::size_t n = 0;
        const rd_kafka_topic_result_t** results =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        for (std::size_t i = 0; i < n; ++i) {
          auto err = rd_kafka_topic_result_error(results[i]);
          if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            problem = rd_kafka_topic_result_error_string(results[i]);
          }
        }
      }
      if (ev) rd_kafka_event_destroy(ev);
      rd_kafka_AdminOptions_destroy(admin_options);
      rd_kafka_NewTopic_destroy(topic);
      rd_kafka_queue_destroy(queue);
      if (!problem.empty())
        return fail(errc::unavailable, "creating topic " + options_.topic + ": " + problem);
    }
    // Metadata may lag the creation by a moment.
    while (true) {
      rd_kafka_topic_t* rkt = rd_kafka_topic_new(admin_.get(), options_.topic.c_str(), nullptr);
      const rd_kafka_metadata_t* md = nullptr;
      auto err = rd_kafka_metadata(admin_.get(), 0, rkt, &md, std::max(ms_left(deadline), 1));
      int count = 0;
      bool leaders = true;
      if (!err && md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        count = md->topics[0].partition_cnt;
        for (int p = 0; p < count; ++p)
          leaders = leaders && md->topics[0].partitions[p].leader >= 0;
      }
      if (md) rd_kafka_metadata_destroy(md);
      rd_kafka_topic_destroy(rkt);
      if (count > 0 && leaders) {
        partitions_ = static_cast<std::uint32_t>(count);
        return {};
      }
      if (ms_left(deadline) == 0) {
        return fail(errc::unavailable,
                    "topic " + options_.topic + " not available at " + options_.brokers);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // A fresh transactional producer; init_transactions fences every earlier producer with the
  // same transactional.id and settles its open transaction. Then reads to the end.
  Result<void> take_ownership(Clock::time_point deadline) {
    producer_.reset();
    auto settings = common_settings();
    settings.insert(settings.end(),
                    {{"transactional.id", "chorus-" + options_.topic + "-" + options_.writer_id},
                     {"enable.idempotence", "true"},
                     {"acks", "all"},
                     {"linger.ms", "0"},
                     // The next transaction's AddPartitionsToTxn meets CONCURRENT_TRANSACTIONS
                     // until the broker has written the previous commit's markers; the default
                     // 100 ms backoff would add that much to most appends.
                     {"retry.backoff.ms", "2"},
                     {"socket.nagle.disable", "true"},
                     {"transaction.timeout.ms", "60000"},
                     {"message.timeout.ms", "60000"}});
    auto producer =
        make_handle(RD_KAFKA_PRODUCER, settings, tap(/*counts_lag=*/false), &on_delivery);
    if (!producer) return std::unexpected(producer.error());
    KafkaError e(rd_kafka_init_transactions(producer->get(), std::max(ms_left(deadline), 1)));
    if (e) {
      if (is_fencing(rd_kafka_error_code(e.get()))) {
        fenced_ = true;
        return fail(errc::fenced, "another writer owns the partitions: " + describe(e.get()));
      }
      return fail(errc::unavailable, "taking ownership of the log: " + describe(e.get()));
    }
    producer_ = std::move(*producer);
    auto caught_up = catch_up(deadline);
    // Owner again, knowing every event written so far: any other writer's were read.
    if (caught_up) foreign_seen_ = false;
    return caught_up;
  }

  // Reads every partition from end_ to its last stable offset, learning heads and offsets.
  Result<void> catch_up(Clock::time_point deadline) {
    auto consumer = make_handle(RD_KAFKA_CONSUMER, consumer_settings(), tap(/*counts_lag=*/false));
    if (!consumer) return std::unexpected(consumer.error());
    if (index_) {
      if (auto ok = drop_stale_index(consumer->get(), deadline); !ok) return ok;
    }
    LogPosition from{end_};
    if (auto ok = assign_all(consumer->get(), from); !ok) return ok;
    std::size_t staged = 0;
    std::vector<bool> at_end(partitions_, false);
    std::size_t remaining = partitions_;
    std::vector<std::uint64_t> next = end_;
    std::unordered_map<std::string, StreamState> learnt;  // applied at the end, all or nothing
    auto state_of = [&](const std::string& id) -> StreamState& {
      auto it = learnt.find(id);
      if (it != learnt.end()) return it->second;
      std::shared_lock lock(state_mu_);
      auto known = streams_.find(id);
      return learnt.emplace(id, known == streams_.end() ? StreamState{} : known->second)
          .first->second;
    };
    while (remaining > 0) {
      Message m(rd_kafka_consumer_poll(consumer->get(), std::min(ms_left(deadline), 200)));
      if (!m) {
        if (ms_left(deadline) == 0) {
          rd_kafka_consumer_close(consumer->get());
          return fail(errc::unavailable, "timed out reading the log to its end");
        }
        continue;
      }
      const auto p = static_cast<std::size_t>(m->partition);
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        next[p] = std::max<std::uint64_t>(next[p], static_cast<std::uint64_t>(m->offset));
        if (!at_end[p]) {
          at_end[p] = true;
          --remaining;
        }
        continue;
      }
      if (m->err) continue;  // transient; librdkafka retries
      auto coords = peek(std::string_view(static_cast<const char*>(m->payload), m->len));
      // A writer must not build on a damaged log; a read-only auditor must be able to read it
      // to say where it is damaged (replay/ verifies every event itself).
      if (!coords && options_.read_only) continue;
      CHORUS_INVARIANT(coords.has_value(), "undecodable event in the Kafka log");
      if (index_) {
        index_->stage(coords->stream_id, coords->version, static_cast<std::uint64_t>(m->offset));
        next[p] = static_cast<std::uint64_t>(m->offset) + 1;
        if (++staged % 10'000 == 0) {
          if (auto ok = index_->commit(next); !ok) {
            rd_kafka_consumer_close(consumer->get());
            return ok;
          }
        }
        continue;
      }
      StreamState& s = state_of(coords->stream_id);
      CHORUS_INVARIANT(options_.read_only || (coords->version == s.head.version + 1 &&
                                              coords->prev_hash == s.head.hash),
                       "a stream's chain is broken in the Kafka log");
      s.head = StreamHead{coords->version, coords->hash};
      s.offsets.push_back(static_cast<std::uint64_t>(m->offset));
      next[p] = static_cast<std::uint64_t>(m->offset) + 1;
    }
    rd_kafka_consumer_close(consumer->get());
    if (index_) {
      if (auto ok = index_->commit(next); !ok) return ok;
    }
    std::unique_lock lock(state_mu_);
    for (auto& [id, s] : learnt) streams_[id] = std::move(s);
    end_ = std::move(next);
    return {};
  }

  // A persistent index whose checkpoint lies beyond a partition's end indexes another topic
  // (recreated under the same name, or another cluster's): it is emptied and rebuilt.
  Result<void> drop_stale_index(rd_kafka_t* consumer, Clock::time_point deadline) {
    for (std::uint32_t p = 0; p < partitions_; ++p) {
      if (end_[p] == 0) continue;
      std::int64_t low = 0, high = 0;
      auto err = rd_kafka_query_watermark_offsets(consumer, options_.topic.c_str(),
                                                  static_cast<std::int32_t>(p), &low, &high,
                                                  std::max(ms_left(deadline), 1));
      if (err) {
        return fail(errc::unavailable,
                    std::string("reading a partition's end: ") + rd_kafka_err2str(err));
      }
      if (end_[p] > static_cast<std::uint64_t>(high)) {
        if (auto ok = index_->reset(); !ok) return ok;
        end_.assign(partitions_, 0);
        return {};
      }
    }
    return {};
  }

  Result<StreamHead> head_of(const std::string& stream_id) {
    std::shared_lock lock(state_mu_);
    auto it = streams_.find(stream_id);
    return it == streams_.end() ? StreamHead{} : it->second.head;
  }

  // After an indefinite outcome: re-take ownership (which settles the open transaction), read
  // to the end, and answer each request from what the log holds.
  // Settling gets its own time budget: an append may take up to twice append_timeout (and, in
  // the rare case another writer wrote after one of its events, a read of that event back, up
  // to append_timeout each).
  void settle(std::vector<AppendRequest*>& group, std::vector<PlannedEvent>& planned,
              const std::string& why) {
    const auto deadline = Clock::now() + options_.append_timeout;
    needs_recovery_ = true;
    Result<void> recovered = fail(errc::unavailable, why);
    while (true) {
      recovered = take_ownership(deadline);
      if (recovered || fenced_ || ms_left(deadline) == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (!recovered) {
      if (fenced_) {
        // The newer owner settled our transaction, but a fenced writer may not read its way to
        // the answer as the owner: the caller must re-read the stream through the new owner.
        fail_group(group, Error{errc::indeterminate,
                                why +
                                    "; then fenced by another writer before the outcome was "
                                    "known: " +
                                    recovered.error().message});
      } else {
        fail_group(group, Error{errc::indeterminate,
                                why + "; the log stayed unreachable, so the outcome is unknown: " +
                                    recovered.error().message});
      }
      return;
    }
    needs_recovery_ = false;
    answer_from_log(group, planned, why, errc::unavailable);
  }

  // Fenced at the commit: the newer owner's init_transactions settled our transaction, and
  // completed it if our commit had reached the coordinator (only its answer lost), aborted it
  // otherwise. "Nothing written" would then be a guess, which a client retrying without an
  // Idempotency-Key would turn into a duplicate: the log is read to its end, without taking
  // ownership back, and each request answered from it. Fenced for good either way.
  void settle_fenced(std::vector<AppendRequest*>& group, std::vector<PlannedEvent>& planned,
                     const std::string& why) {
    fenced_ = true;
    if (auto read = catch_up(Clock::now() + options_.append_timeout); !read) {
      fail_group(group, Error{errc::indeterminate,
                              why +
                                  "; fenced by another writer, and the log could not be read "
                                  "back, so the outcome is unknown: " +
                                  read.error().message});
      return;
    }
    answer_from_log(group, planned,
                    why + "; another writer owns the partitions of " + options_.topic,
                    errc::fenced);
  }

  // Answers each request of `group` from what the log holds once read to its end (streams_):
  // written, with the events' addresses, when the events at its versions are its own; else
  // `nothing_code` ("nothing was written").
  void answer_from_log(std::vector<AppendRequest*>& group, std::vector<PlannedEvent>& planned,
                       const std::string& why, errc nothing_code) {
    // Which planned events the log holds at their version, and where. An event at our version
    // is ours only if it is our event: another writer may have taken the partitions while this
    // one was stalled (a pause, a partition of the network), aborted our open transaction and
    // written its own events at those versions, which the stream and version alone would pass
    // off as ours (an acknowledgement of a command never written). Our event's hash is compared
    // with the stored one: the head's, known from the catch-up, or else read back (only when
    // the stream went on after that version: another writer wrote after it).
    std::vector<bool> present(planned.size(), false), decided(planned.size(), false);
    std::vector<bool> ours(planned.size(), false);
    {
      std::shared_lock lock(state_mu_);
      for (std::size_t i = 0; i < planned.size(); ++i) {
        auto& p = planned[i];
        auto it = streams_.find(*p.stream_id);
        present[i] = it != streams_.end() && it->second.offsets.size() >= p.version;
        if (!present[i]) continue;
        p.address = LogAddress{p.partition, it->second.offsets[p.version - 1]};
        if (it->second.head.version == p.version) {
          decided[i] = true;
          ours[i] = it->second.head.hash == p.encoded.hash;
        }
      }
    }
    for (std::size_t i = 0; i < planned.size(); ++i) {
      if (!present[i] || decided[i]) continue;
      auto stored = read_stream(*planned[i].stream_id, planned[i].version, 1);
      if (!stored || stored->size() != 1) {
        fail_group(group, Error{errc::indeterminate,
                                why +
                                    "; the log could not be read back, so the outcome is "
                                    "unknown" +
                                    (stored ? std::string() : ": " + stored.error().message)});
        return;
      }
      auto coords = peek(stored->front().bytes);
      ours[i] = coords && coords->hash == planned[i].encoded.hash;
    }
    for (auto* request : group) {
      if (!request->planned) continue;
      // All or nothing: the transaction held every event of the group.
      const bool written = ours[request->first];
      for (std::size_t i = request->first; i < request->first + request->count; ++i) {
        CHORUS_INVARIANT(ours[i] == written, "a transaction was half-applied");
      }
      if (written) {
        AppendResult r;
        for (std::size_t i = request->first; i < request->first + request->count; ++i) {
          r.addresses.push_back(planned[i].address);
          r.position.advance_past(planned[i].address);
        }
        request->result = std::move(r);
      } else {
        request->result = fail(nothing_code, why + "; the log shows nothing was written");
      }
    }
  }

  // True when this producer was fenced: by the error itself, or by a fatal error it recorded.
  bool is_fenced(const rd_kafka_error_t* e) const {
    if (e != nullptr && is_fencing(rd_kafka_error_code(e))) return true;
    char reason[256];
    return is_fencing(rd_kafka_fatal_error(producer_.get(), reason, sizeof reason));
  }

  void fail_fenced(std::vector<AppendRequest*>& group, const std::string& why) {
    fenced_ = true;
    fail_group(group, Error{errc::fenced, "another writer owns the partitions of " +
                                              options_.topic + "; nothing written (" + why + ")"});
  }

  // Runs on the group-commit leader only, one group at a time.
  void write_group(std::vector<AppendRequest*>& group) {
    std::lock_guard producer(producer_mu_);
    const auto deadline = Clock::now() + options_.append_timeout;
    auto fail_all = [&](const Error& error) {
      for (auto* r : group) r->result = std::unexpected(error);
    };
    if (fenced_) {
      return fail_all(
          Error{errc::fenced, "another writer owns the partitions of " + options_.topic});
    }
    if (needs_recovery_) {
      if (auto ok = take_ownership(deadline); !ok) return fail_all(ok.error());
      needs_recovery_ = false;
    }
    std::vector<PlannedEvent> planned;
    std::unordered_map<std::string, StreamHead> staged;
    plan_group(
        group, [this](const std::string& id) { return head_of(id); }, partitions_, planned, staged);
    if (planned.empty()) return;
    // In flight from here until recorded or given up (observe_read): our cursors may read
    // these events before their heads are recorded.
    {
      std::unique_lock lock(state_mu_);
      for (const auto& p : planned) in_flight_[*p.stream_id][p.version] = p.encoded.hash;
    }
    struct Landed {
      KafkaLog* log;
      const std::vector<PlannedEvent>& planned;
      ~Landed() {
        std::unique_lock lock(log->state_mu_);
        for (const auto& p : planned) {
          auto it = log->in_flight_.find(*p.stream_id);
          if (it == log->in_flight_.end()) continue;
          it->second.erase(p.version);
          if (it->second.empty()) log->in_flight_.erase(it);
        }
      }
    } landed{this, planned};

    // Right after a commit, the coordinator answers CONCURRENT_TRANSACTIONS until it has
    // written the commit markers, and librdkafka then waits a fixed 20 ms before retrying.
    // A short pause before the next transaction is far cheaper (measured in the benchmark).
    std::this_thread::sleep_until(last_commit_ + kMarkerPause);
    if (KafkaError e(rd_kafka_begin_transaction(producer_.get())); e) {
      if (is_fenced(e.get())) return fail_fenced(group, describe(e.get()));
      needs_recovery_ = true;
      return fail_group(group,
                        Error{errc::unavailable, "beginning a transaction: " + describe(e.get())});
    }
    std::vector<Delivery> deliveries;
    deliveries.reserve(planned.size());
    for (auto& p : planned) {
      deliveries.push_back(Delivery{&p});
      auto err = rd_kafka_producev(producer_.get(), RD_KAFKA_V_TOPIC(options_.topic.c_str()),
                                   RD_KAFKA_V_PARTITION(static_cast<std::int32_t>(p.partition)),
                                   RD_KAFKA_V_KEY(p.stream_id->data(), p.stream_id->size()),
                                   RD_KAFKA_V_VALUE(p.encoded.bytes.data(), p.encoded.bytes.size()),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                   RD_KAFKA_V_OPAQUE(&deliveries.back()), RD_KAFKA_V_END);
      if (err) {
        // Nothing of this transaction is committed: abort it (or settle if even that fails).
        const std::string why = std::string("producing an event: ") + rd_kafka_err2str(err);
        if (is_fenced(nullptr)) return fail_fenced(group, why);
        KafkaError abort_error(rd_kafka_abort_transaction(producer_.get(), ms_left(deadline)));
        rd_kafka_poll(producer_.get(), 0);
        if (abort_error) return settle(group, planned, why);
        return fail_group(group, Error{errc::unavailable, why + "; nothing written"});
      }
    }

    if (options_.commit_fault_for_test && options_.commit_fault_for_test()) {
      return settle(group, planned, "committing a transaction: outcome unknown (injected)");
    }
    while (true) {
      KafkaError e(rd_kafka_commit_transaction(producer_.get(), std::max(ms_left(deadline), 1)));
      if (!e) break;
      const std::string why = "committing a transaction: " + describe(e.get());
      // Fenced: the newer owner's init_transactions settled this open transaction (completed
      // it if our commit had reached the coordinator). Never re-take ownership here: that
      // would fence the newer owner; read the log instead.
      if (is_fenced(e.get())) return settle_fenced(group, planned, why);
      if (rd_kafka_error_txn_requires_abort(e.get())) {
        KafkaError abort_error(rd_kafka_abort_transaction(producer_.get(), ms_left(deadline)));
        if (abort_error) return settle(group, planned, why);
        return fail_group(group, Error{errc::unavailable, why + "; aborted, nothing written"});
      }
      if (rd_kafka_error_is_retriable(e.get()) && ms_left(deadline) > 0) continue;
      // Fatal, fenced, or out of time: the outcome is not known here. Do not guess.
      return settle(group, planned, why);
    }

    last_commit_ = Clock::now();
    for (const auto& d : deliveries) {
      CHORUS_INVARIANT(d.reported && d.err == RD_KAFKA_RESP_ERR_NO_ERROR,
                       "a committed transaction lacks a delivery report");
    }
    {
      std::unique_lock lock(state_mu_);
      for (const auto& p : planned) {
        StreamState& s = streams_[*p.stream_id];
        CHORUS_INVARIANT(s.head.version + 1 == p.version, "stream head moved under the writer");
        s.head = StreamHead{p.version, p.encoded.hash};
        s.offsets.push_back(p.address.offset);
        end_[p.partition] = std::max(end_[p.partition], p.address.offset + 1);
      }
    }
    complete_group(group, planned);
  }

  KafkaLogOptions options_;
  std::uint32_t partitions_ = 0;
  std::shared_ptr<StatsBoard> board_ = std::make_shared<StatsBoard>();
  KafkaHandle admin_;       // metadata and watermarks
  std::mutex producer_mu_;  // held by the leader while it writes, and to serve statistics
  KafkaHandle producer_;    // transactional; leader only
  static constexpr auto kMarkerPause = std::chrono::microseconds(2000);
  Clock::time_point last_commit_{};   // leader only
  std::atomic<bool> fenced_ = false;  // written by the leader; read by fenced()
  // A cursor read another writer's event (observe_read); cleared when ownership is taken back.
  std::atomic<bool> foreign_seen_ = false;
  std::shared_ptr<ReadWatch> watch_ = std::make_shared<ReadWatch>();
  bool needs_recovery_ = false;  // leader only
  GroupCommit group_commit_;

  std::shared_mutex state_mu_;  // guards streams_ and end_
  std::unordered_map<std::string, StreamState> streams_;
  // The events of the group being written, by stream and version: their hashes.
  std::unordered_map<std::string, std::map<std::uint64_t, Hash>> in_flight_;
  std::vector<std::uint64_t> end_;  // next offset to read per partition, as far as we know
  // Read-only with an index_dir: where streams are looked up instead of streams_ (set at open).
  std::unique_ptr<KafkaStreamIndex> index_;

  std::mutex reader_mu_;  // guards reader_
  KafkaHandle reader_;    // for read_stream

  std::mutex watermarks_mu_;                    // guards watermarks_ and watermarks_seen_
  KafkaHandle watermarks_;                      // read uncommitted, for covered_by_writes
  std::vector<std::uint64_t> watermarks_seen_;  // the highest answered, per partition

  std::jthread statistics_server_;  // serves the idle producer's statistics
};

}  // namespace

Result<std::unique_ptr<EventLog>> open_kafka_log(const KafkaLogOptions& options) {
  if (options.brokers.empty()) return fail(errc::invalid_argument, "no Kafka brokers given");
  if (auto ok = check_stream_id(options.topic); !ok) {
    return fail(errc::invalid_argument, "bad topic name " + options.topic);
  }
  auto log = std::make_unique<KafkaLog>(options);
  if (auto ok = log->open(); !ok) return std::unexpected(ok.error());
  return log;
}

}  // namespace chorus::events
