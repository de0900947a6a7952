// One contract, two logs: every test here runs unchanged against the embedded log and against
// the Kafka log on a real broker (CHORUS_TEST_KAFKA_BROKERS, started by ops/dev test).

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "events/chain.h"
#include "events/codec.h"
#include "events/embedded_log.h"
#include "events/kafka_log.h"
#include "tests/events/test_events.h"
#include "tests/support/child_process.h"

namespace chorus::events {
namespace {

using namespace std::chrono_literals;
using testing::append_to;

const char* env_or_null(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

std::string unique_suffix() {
  static std::atomic<int> counter{0};
  return std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
}

// Where one test's log lives; open() reopens the same log every time.
class LogUnderTest {
 public:
  virtual ~LogUnderTest() = default;
  [[nodiscard]] virtual Result<std::unique_ptr<EventLog>> open() = 0;
  // Arguments of chorus_test_log_writer for this same log.
  [[nodiscard]] virtual std::vector<std::string> writer_args() const = 0;
};

class EmbeddedUnderTest final : public LogUnderTest {
 public:
  EmbeddedUnderTest()
      : dir_(std::filesystem::temp_directory_path() / ("chorus-log-" + unique_suffix())) {}
  ~EmbeddedUnderTest() override { std::filesystem::remove_all(dir_); }
  Result<std::unique_ptr<EventLog>> open() override {
    return open_embedded_log(EmbeddedLogOptions{dir_.string(), true});
  }
  std::vector<std::string> writer_args() const override { return {"embedded", dir_.string()}; }

 private:
  std::filesystem::path dir_;
};

class KafkaUnderTest final : public LogUnderTest {
 public:
  explicit KafkaUnderTest(std::string brokers)
      : brokers_(std::move(brokers)), topic_("conformance-" + unique_suffix()) {}
  Result<std::unique_ptr<EventLog>> open() override { return open_with_fault(nullptr); }
  // A writer whose commits meet `fault` (KafkaLogOptions::commit_fault_for_test).
  Result<std::unique_ptr<EventLog>> open_with_fault(std::function<bool()> fault) {
    KafkaLogOptions o;
    o.brokers = brokers_;
    o.topic = topic_;
    o.partitions = 3;
    o.append_timeout = 10s;
    o.commit_fault_for_test = std::move(fault);
    return open_kafka_log(o);
  }
  std::vector<std::string> writer_args() const override { return {"kafka", brokers_, topic_}; }
  const std::string& topic() const { return topic_; }
  // An auditor's view of the same topic: read-only, with a persistent stream index in
  // `index_dir` when given.
  Result<std::unique_ptr<EventLog>> open_reader(const std::string& index_dir) const {
    KafkaLogOptions o;
    o.brokers = brokers_;
    o.topic = topic_;
    o.read_only = true;
    o.create_topic = false;
    o.index_dir = index_dir;
    o.append_timeout = 10s;
    return open_kafka_log(o);
  }

 private:
  std::string brokers_;
  std::string topic_;
};

struct Implementation {
  std::string name;
};

class EventLogConformance : public ::testing::TestWithParam<Implementation> {
 protected:
  void SetUp() override {
    if (GetParam().name == "embedded") {
      under_test_ = std::make_unique<EmbeddedUnderTest>();
    } else {
      const char* brokers = env_or_null("CHORUS_TEST_KAFKA_BROKERS");
      if (brokers == nullptr) {
        // In CI the Kafka half must run: a missing broker is a failure, not a skip.
        ASSERT_EQ(env_or_null("CI"), nullptr) << "CHORUS_TEST_KAFKA_BROKERS is not set in CI";
        GTEST_SKIP() << "CHORUS_TEST_KAFKA_BROKERS not set: start a broker with ops/dev test";
      }
      under_test_ = std::make_unique<KafkaUnderTest>(brokers);
    }
    auto log = under_test_->open();
    ASSERT_TRUE(log) << log.error().message;
    log_ = std::move(*log);
  }

  bool is_kafka() const { return GetParam().name == "kafka"; }

  std::vector<RecordedEvent> read_all(EventLog& log, const LogPosition& from = {}) {
    auto cursor = log.follow(from);
    EXPECT_TRUE(cursor) << cursor.error().message;
    auto end = log.end();
    EXPECT_TRUE(end);
    std::vector<RecordedEvent> out;
    for (int idle = 0; idle < 20 && !(*cursor)->position().covers(*end);) {
      auto n = (*cursor)->poll(out, 1000, 100ms);
      EXPECT_TRUE(n) << n.error().message;
      idle = *n == 0 ? idle + 1 : 0;
    }
    return out;
  }

  std::unique_ptr<LogUnderTest> under_test_;
  std::unique_ptr<EventLog> log_;
};

TEST_P(EventLogConformance, AppendsAndReadsBackInVersionOrder) {
  std::vector<StreamAppend> first{append_to("ticket-a", 0, 3)};
  auto r1 = log_->append(first);
  ASSERT_TRUE(r1) << r1.error().message;
  EXPECT_EQ(r1->addresses.size(), 3u);
  std::vector<StreamAppend> second{append_to("ticket-a", 3, 2)};
  ASSERT_TRUE(log_->append(second));

  auto all = log_->read_stream("ticket-a", 1, 100);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 5u);
  for (std::size_t i = 0; i < all->size(); ++i) EXPECT_EQ((*all)[i].version, i + 1);
  EXPECT_EQ(*decode((*all)[3].bytes)->meta.event_id.data(), second[0].events[0].meta.event_id[0]);
  auto chain = verify_chain(*all);
  EXPECT_TRUE(chain) << chain.error().message;

  auto tail = log_->read_stream("ticket-a", 4, 100);
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail->size(), 2u);
  EXPECT_EQ((*tail)[0].version, 4u);
  auto limited = log_->read_stream("ticket-a", 2, 2);
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->size(), 2u);

  EXPECT_EQ(*log_->stream_version("ticket-a"), 5u);
  EXPECT_EQ(*log_->stream_version("nobody"), 0u);
  EXPECT_TRUE(log_->read_stream("nobody", 1, 10)->empty());
}

// Every acknowledged append is covered by the writes the log knows of, and a position past
// them is not (what the API tells a forged consistency token by).
TEST_P(EventLogConformance, EveryAcknowledgedAppendIsCoveredByTheWrites) {
  auto r = log_->append(std::vector<StreamAppend>{append_to("ticket-end", 0, 2)});
  ASSERT_TRUE(r) << r.error().message;
  const auto& last = r->addresses.back();
  LogPosition written;
  written.next.assign(log_->partition_count(), 0);
  written.next[last.partition] = last.offset + 1;
  auto covered = log_->covered_by_writes(written, std::chrono::seconds(10));
  ASSERT_TRUE(covered) << covered.error().message;
  EXPECT_TRUE(*covered);
  LogPosition beyond = written;
  beyond.next[last.partition] += 1000;
  covered = log_->covered_by_writes(beyond, std::chrono::seconds(10));
  ASSERT_TRUE(covered) << covered.error().message;
  EXPECT_FALSE(*covered);
  // A partition the log does not have was never written either.
  LogPosition elsewhere;
  elsewhere.next.assign(log_->partition_count() + 1, 0);
  elsewhere.next.back() = 1;
  EXPECT_FALSE(*log_->covered_by_writes(elsewhere, std::chrono::seconds(10)));
}

TEST_P(EventLogConformance, AStreamScatteredAmongManyOthersReadsBackWhole) {
  // One ticket's events far apart in its partition, as on a busy desk: thousands of other
  // streams' events between them.
  std::uint64_t version = 0;
  for (int round = 0; round < 4; ++round) {
    std::vector<StreamAppend> batch{append_to("ticket-scattered", version++)};
    for (int i = 0; i < 2000; ++i) {
      batch.push_back(
          append_to("ticket-other-" + std::to_string(round) + "-" + std::to_string(i), 0, 2));
    }
    ASSERT_TRUE(log_->append(batch));
  }
  auto all = log_->read_stream("ticket-scattered", 1, 100);
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 4u);
  for (std::size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].stream_id, "ticket-scattered");
    EXPECT_EQ((*all)[i].version, i + 1);
  }
  auto tail = log_->read_stream("ticket-scattered", 3, 100);
  ASSERT_TRUE(tail.has_value());
  ASSERT_EQ(tail->size(), 2u);
  EXPECT_EQ((*tail)[0].version, 3u);
}

TEST_P(EventLogConformance, StaleExpectedVersionIsRejectedAndWritesNothing) {
  std::vector<StreamAppend> create{append_to("ticket-b", 0)};
  ASSERT_TRUE(log_->append(create));
  auto end_before = log_->end();
  ASSERT_TRUE(end_before);

  std::vector<StreamAppend> stale{append_to("ticket-b", 0)};
  auto r = log_->append(stale);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::version_conflict);
  EXPECT_NE(r.error().message.find("ticket-b"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("version 1"), std::string::npos) << r.error().message;

  std::vector<StreamAppend> ahead{append_to("ticket-b", 5)};
  EXPECT_EQ(log_->append(ahead).error().code, errc::version_conflict);
  EXPECT_EQ(*log_->stream_version("ticket-b"), 1u);
  EXPECT_EQ(log_->read_stream("ticket-b", 1, 10)->size(), 1u);
  EXPECT_EQ(*log_->end(), *end_before);
}

TEST_P(EventLogConformance, MalformedBatchIsRejectedAndWritesNothing) {
  auto end_before = log_->end();
  std::vector<StreamAppend> dup{append_to("ticket-c", 0), append_to("ticket-c", 0)};
  EXPECT_EQ(log_->append(dup).error().code, errc::invalid_argument);
  EXPECT_EQ(log_->append({}).error().code, errc::invalid_argument);
  std::vector<StreamAppend> bad{append_to("bad id", 0)};
  EXPECT_EQ(log_->append(bad).error().code, errc::invalid_argument);
  EXPECT_EQ(*log_->end(), *end_before);
}

TEST_P(EventLogConformance, MultiStreamBatchIsAllOrNothingAcrossPartitions) {
  constexpr int kStreams = 12;  // enough to touch every partition of the Kafka topic
  std::vector<StreamAppend> create;
  std::set<std::uint32_t> partitions;
  for (int i = 0; i < kStreams; ++i) {
    create.push_back(append_to("structure-" + std::to_string(i), 0));
    partitions.insert(partition_of(create.back().stream_id, log_->partition_count()));
  }
  EXPECT_EQ(partitions.size(), log_->partition_count());
  ASSERT_TRUE(log_->append(create));
  auto end_before = log_->end();

  std::vector<StreamAppend> batch;
  for (int i = 0; i < kStreams; ++i)
    batch.push_back(append_to("structure-" + std::to_string(i), 1, 2));
  batch.back().expected_version = 0;  // stale: the whole batch must fail
  auto r = log_->append(batch);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::version_conflict);
  for (int i = 0; i < kStreams; ++i) {
    EXPECT_EQ(*log_->stream_version("structure-" + std::to_string(i)), 1u);
  }
  EXPECT_EQ(*log_->end(), *end_before);

  batch.back().expected_version = 1;
  auto ok = log_->append(batch);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->addresses.size(), 2u * kStreams);
  for (int i = 0; i < kStreams; ++i) {
    EXPECT_EQ(*log_->stream_version("structure-" + std::to_string(i)), 3u);
  }
  auto events = read_all(*log_);
  EXPECT_EQ(events.size(), 3u * kStreams);
}

TEST_P(EventLogConformance, ConcurrentAppendersNeverBothWinTheSameVersion) {
  constexpr int kThreads = 4;
  constexpr int kAttempts = 25;
  std::atomic<int> won{0}, conflicts{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kAttempts; ++i) {
        auto version = log_->stream_version("ticket-hot");
        if (!version) {
          ++other;
          continue;
        }
        std::vector<StreamAppend> batch{append_to("ticket-hot", *version)};
        auto r = log_->append(batch);
        if (r) {
          ++won;
        } else if (r.error().code == errc::version_conflict) {
          ++conflicts;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(won + conflicts, kThreads * kAttempts);
  EXPECT_GT(won.load(), 0);
  auto events = log_->read_stream("ticket-hot", 1, 10'000);
  ASSERT_TRUE(events);
  EXPECT_EQ(events->size(), static_cast<std::size_t>(won.load()));
  EXPECT_EQ(*log_->stream_version("ticket-hot"), static_cast<std::uint64_t>(won.load()));
  EXPECT_TRUE(verify_chain(*events));
}

TEST_P(EventLogConformance, ReadsTheWholeLogFromAnyPositionInStreamOrder) {
  LogPosition middle;
  std::map<std::string, std::uint64_t> versions;
  constexpr int kBatches = 40;
  for (int i = 0; i < kBatches; ++i) {
    const std::string stream = "ticket-" + std::to_string(i % 7);
    std::vector<StreamAppend> batch{append_to(stream, versions[stream])};
    auto r = log_->append(batch);
    ASSERT_TRUE(r) << r.error().message;
    ++versions[stream];
    if (i == kBatches / 2 - 1) middle = r->position;
  }
  auto all = read_all(*log_);
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kBatches));
  std::map<std::string, std::uint64_t> seen;
  for (const auto& e : all) {
    EXPECT_EQ(e.version, seen[e.stream_id] + 1) << e.stream_id;
    seen[e.stream_id] = e.version;
  }
  EXPECT_EQ(seen, versions);

  // From the middle: exactly the events the middle position does not cover.
  auto rest = read_all(*log_, middle);
  auto covered = [&](const LogAddress& a) {
    return a.partition < middle.next.size() && a.offset < middle.next[a.partition];
  };
  const auto expected = std::count_if(all.begin(), all.end(),
                                      [&](const RecordedEvent& e) { return !covered(e.address); });
  EXPECT_EQ(rest.size(), static_cast<std::size_t>(expected));
  for (const auto& e : rest) EXPECT_FALSE(covered(e.address));
  EXPECT_LT(rest.size(), all.size());
}

TEST_P(EventLogConformance, FollowSeesLaterAppendsAndBoundsEachPoll) {
  auto end = log_->end();
  ASSERT_TRUE(end);
  auto cursor = log_->follow(*end);
  ASSERT_TRUE(cursor);
  std::vector<RecordedEvent> out;
  EXPECT_EQ(*(*cursor)->poll(out, 10, 0ms), 0u);

  std::thread writer([&] {
    std::this_thread::sleep_for(100ms);
    std::vector<StreamAppend> batch{append_to("ticket-live", 0, 5)};
    EXPECT_TRUE(log_->append(batch));
  });
  std::size_t got = 0;
  for (int i = 0; i < 100 && got < 5; ++i) {
    auto n = (*cursor)->poll(out, 2, 200ms);  // at most 2 per poll: the reader sets the pace
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_LE(*n, 2u);
    got += *n;
  }
  writer.join();
  ASSERT_EQ(got, 5u);
  for (std::size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i].version, i + 1);
}

TEST_P(EventLogConformance, WriterKilledMidAppendLosesNothingAcknowledged) {
  log_.reset();  // the child process is the writer now
  std::vector<std::string> argv{CHORUS_TEST_LOG_WRITER};
  for (auto& a : under_test_->writer_args()) argv.push_back(a);

  std::map<std::pair<std::string, std::uint64_t>, std::string> acked;  // -> event id
  {
    chorus::testing::ChildProcess writer(argv);
    const std::size_t target = is_kafka() ? 150 : 400;
    while (acked.size() < target) {
      auto line = writer.read_line(30s);
      ASSERT_TRUE(line) << "writer stopped after " << acked.size() << " acknowledgements";
      std::istringstream in(*line);
      std::string tag, stream, id;
      std::uint64_t version = 0;
      in >> tag >> stream >> version >> id;
      ASSERT_EQ(tag, "ACK") << *line;
      ASSERT_TRUE(acked.emplace(std::pair{stream, version}, id).second) << "acknowledged twice";
    }
    int status = writer.signal_and_wait(SIGKILL);
    ASSERT_TRUE(WIFSIGNALED(status));
  }

  auto reopened = under_test_->open();
  ASSERT_TRUE(reopened) << reopened.error().message;
  auto& log = **reopened;
  std::set<std::string> streams;
  for (const auto& [key, id] : acked) streams.insert(key.first);
  for (const auto& stream : streams) {
    auto events = log.read_stream(stream, 1, 1'000'000);
    ASSERT_TRUE(events) << events.error().message;
    auto chain = verify_chain(*events);
    EXPECT_TRUE(chain) << chain.error().message;
    std::set<std::string> ids;
    for (const auto& e : *events) {
      auto decoded = decode(e.bytes);
      ASSERT_TRUE(decoded);
      const std::string id = to_hex(decoded->meta.event_id);
      EXPECT_TRUE(ids.insert(id).second) << "event " << id << " stored twice";
      if (auto it = acked.find({stream, e.version}); it != acked.end()) {
        EXPECT_EQ(it->second, id) << stream << " v" << e.version;
      }
    }
    for (const auto& [key, id] : acked) {
      if (key.first == stream) {
        EXPECT_LE(key.second, events->size())
            << "acknowledged " << stream << " v" << key.second << " lost";
      }
    }
  }
  // The log goes on where the writer stopped.
  const std::string any = *streams.begin();
  std::vector<StreamAppend> next{append_to(any, *log.stream_version(any))};
  EXPECT_TRUE(log.append(next));
}

INSTANTIATE_TEST_SUITE_P(Logs, EventLogConformance,
                         ::testing::Values(Implementation{"embedded"}, Implementation{"kafka"}),
                         [](const auto& p) { return p.param.name; });

// --- Kafka only ---------------------------------------------------------------------------

class KafkaLogFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    brokers_ = env_or_null("CHORUS_TEST_KAFKA_BROKERS");
    if (brokers_ == nullptr) {
      ASSERT_EQ(env_or_null("CI"), nullptr) << "CHORUS_TEST_KAFKA_BROKERS is not set in CI";
      GTEST_SKIP() << "CHORUS_TEST_KAFKA_BROKERS not set";
    }
  }
  const char* brokers_ = nullptr;
};

// Another writer's transaction left open on every partition holds the last stable offset
// below this writer's later, acknowledged append: that append is still covered by the writes
// (the watermarks are read uncommitted), so a token from it waits rather than being refused.
TEST_F(KafkaLogFaults, AnAppendBehindAnotherWritersOpenTransactionIsCoveredByTheWrites) {
  KafkaUnderTest where(brokers_);
  auto log = where.open();
  ASSERT_TRUE(log) << log.error().message;
  ASSERT_TRUE((*log)->append(std::vector<StreamAppend>{append_to("ticket-open", 0)}));

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ASSERT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", brokers_, err, sizeof err),
            RD_KAFKA_CONF_OK);
  const std::string txn = "other-writer-" + unique_suffix();
  ASSERT_EQ(rd_kafka_conf_set(conf, "transactional.id", txn.c_str(), err, sizeof err),
            RD_KAFKA_CONF_OK);
  rd_kafka_t* other = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  ASSERT_NE(other, nullptr) << err;
  auto check = [](rd_kafka_error_t* e) {
    const std::string what = e ? rd_kafka_error_string(e) : "";
    if (e) rd_kafka_error_destroy(e);
    return what;
  };
  ASSERT_EQ(check(rd_kafka_init_transactions(other, 10000)), "");
  ASSERT_EQ(check(rd_kafka_begin_transaction(other)), "");
  for (std::int32_t p = 0; p < 3; ++p) {
    ASSERT_EQ(
        rd_kafka_producev(other, RD_KAFKA_V_TOPIC(where.topic().c_str()), RD_KAFKA_V_PARTITION(p),
                          RD_KAFKA_V_VALUE(const_cast<char*>("x"), 1), RD_KAFKA_V_END),
        RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_EQ(rd_kafka_flush(other, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

  auto r = (*log)->append(std::vector<StreamAppend>{append_to("ticket-open", 1)});
  ASSERT_TRUE(r) << r.error().message;
  const auto& last = r->addresses.back();
  LogPosition written;
  written.next.assign(3, 0);
  written.next[last.partition] = last.offset + 1;
  auto covered = (*log)->covered_by_writes(written, 10s);
  ASSERT_TRUE(covered) << covered.error().message;
  EXPECT_TRUE(*covered);

  EXPECT_EQ(check(rd_kafka_abort_transaction(other, 10000)), "");
  rd_kafka_destroy(other);
}

TEST_F(KafkaLogFaults, SecondWriterFencesTheFirst) {
  KafkaUnderTest where(brokers_);
  auto first = where.open();
  ASSERT_TRUE(first) << first.error().message;
  std::vector<StreamAppend> a{append_to("ticket-f", 0)};
  ASSERT_TRUE((*first)->append(a));

  auto second = where.open();  // same topic, same ownership: takes over
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(*(*second)->stream_version("ticket-f"), 1u);

  std::vector<StreamAppend> b{append_to("ticket-f", 1)};
  auto stale = (*first)->append(b);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, errc::fenced) << stale.error().message;
  // Fenced for good.
  EXPECT_EQ((*first)->append(b).error().code, errc::fenced);

  auto ok = (*second)->append(b);
  ASSERT_TRUE(ok) << ok.error().message;
  auto events = (*second)->read_stream("ticket-f", 1, 10);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_TRUE(verify_chain(*events));
}

// A writer stalled before its commit's outcome was known (a pause, a network partition) while
// another took the partitions, aborting its open transaction, and wrote the same versions: when
// it settles, the log holds an event at each of its versions, but not its own. It must answer
// that nothing was written, not acknowledge the other's event as its own (it once did: a 201
// for a comment the log never held, on a rolling restart).
TEST_F(KafkaLogFaults, AnUnknownOutcomeIsSettledOnTheEventsOwnHashes) {
  KafkaUnderTest where(brokers_);
  std::unique_ptr<EventLog> other;
  std::vector<StreamAppend> others{append_to("ticket-settled", 0)};
  bool injected = false;
  auto first = where.open_with_fault([&] {
    if (injected) return false;
    injected = true;
    auto second = where.open();  // fences the first and aborts its open transaction
    EXPECT_TRUE(second) << second.error().message;
    if (!second) return true;
    auto written = (*second)->append(others);
    EXPECT_TRUE(written) << written.error().message;
    other = std::move(*second);
    return true;
  });
  ASSERT_TRUE(first) << first.error().message;
  std::vector<StreamAppend> mine{append_to("ticket-settled", 0)};
  auto r = (*first)->append(mine);
  ASSERT_TRUE(injected);
  ASSERT_FALSE(r) << "acknowledged at " << r->addresses.front().offset
                  << " an event the log does not hold";
  EXPECT_EQ(r.error().code, errc::unavailable) << r.error().message;

  auto reader = where.open_reader("");
  ASSERT_TRUE(reader) << reader.error().message;
  auto events = (*reader)->read_stream("ticket-settled", 1, 10);
  ASSERT_TRUE(events) << events.error().message;
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(decode((*events)[0].bytes)->meta.event_id, others[0].events[0].meta.event_id);
}

// A writer learns that another took the log over from what its own cursors read (another
// writer's event beyond what it knows), before it writes again: fenced() then says so, for
// readiness and to refuse commands without deciding them on what it knew. Its own events,
// read while being committed, never count as another's.
TEST_F(KafkaLogFaults, AWriterLearnsOfATakeoverFromWhatItsCursorsRead) {
  KafkaUnderTest where(brokers_);
  auto first = where.open();
  ASSERT_TRUE(first) << first.error().message;
  auto cursor = (*first)->follow(LogPosition{});
  ASSERT_TRUE(cursor) << cursor.error().message;
  // Its own appends, read back while they commit, from a thread polling all along.
  std::atomic<std::size_t> read{0};
  std::atomic<bool> ever_fenced{false};
  std::thread reader([&] {
    const auto until = std::chrono::steady_clock::now() + 60s;
    std::vector<RecordedEvent> out;
    while (read < 60 && std::chrono::steady_clock::now() < until) {
      out.clear();
      if (auto n = (*cursor)->poll(out, 100, 50ms)) read += *n;
      if ((*first)->fenced()) ever_fenced = true;
    }
  });
  for (std::uint64_t v = 0; v < 60; ++v) {
    std::vector<StreamAppend> batch{append_to("ticket-own-" + std::to_string(v % 3), v / 3)};
    EXPECT_TRUE((*first)->append(batch));
  }
  reader.join();
  EXPECT_EQ(read, 60u);
  EXPECT_FALSE(ever_fenced) << "its own events were taken for another writer's";
  EXPECT_FALSE((*first)->fenced());

  auto second = where.open();  // takes the partitions over
  ASSERT_TRUE(second) << second.error().message;
  std::vector<StreamAppend> theirs{append_to("ticket-own-0", 20)};
  ASSERT_TRUE((*second)->append(theirs));
  std::vector<RecordedEvent> out;
  for (int i = 0; i < 100 && out.empty(); ++i) ASSERT_TRUE((*cursor)->poll(out, 10, 100ms));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE((*first)->fenced()) << "the takeover read by its cursor went unnoticed";
  EXPECT_FALSE((*second)->fenced());
}

TEST_F(KafkaLogFaults, BrokerStoppedAndRestartedUnderLoadLosesNothingAcknowledged) {
  const char* stop = env_or_null("CHORUS_TEST_KAFKA_STOP");
  const char* start = env_or_null("CHORUS_TEST_KAFKA_START");
  if (stop == nullptr || start == nullptr) {
    ASSERT_EQ(env_or_null("CI"), nullptr) << "broker control commands are not set in CI";
    GTEST_SKIP() << "CHORUS_TEST_KAFKA_STOP / CHORUS_TEST_KAFKA_START not set";
  }
  KafkaUnderTest where(brokers_);
  auto opened = where.open();
  ASSERT_TRUE(opened) << opened.error().message;
  auto& log = **opened;

  std::atomic<bool> done{false};
  std::map<std::pair<std::string, std::uint64_t>, EventId> acked;
  std::map<std::string, int> failures;
  std::thread appender([&] {
    std::map<std::string, std::uint64_t> versions;
    for (std::uint64_t i = 0; !done; ++i) {
      const std::string stream = "load-" + std::to_string(i % 4);
      std::vector<StreamAppend> batch{append_to(stream, versions[stream])};
      auto r = log.append(batch);
      if (r) {
        acked[{stream, ++versions[stream]}] = batch[0].events[0].meta.event_id;
        continue;
      }
      ++failures[std::string(to_string(r.error().code))];
      EXPECT_FALSE(r.error().message.empty());
      // After any failure, learn the truth from the log before deciding again.
      if (auto v = log.stream_version(stream); v) versions[stream] = *v;
      std::this_thread::sleep_for(100ms);
    }
  });
  std::this_thread::sleep_for(1s);
  ASSERT_EQ(std::system(stop), 0);
  std::this_thread::sleep_for(3s);
  ASSERT_EQ(std::system(start), 0);
  // Keep going until appends succeed again after the restart.
  const std::size_t before = acked.size();
  for (int i = 0; i < 120; ++i) {
    std::this_thread::sleep_for(500ms);
    if (acked.size() > before + 20) break;
  }
  done = true;
  appender.join();
  EXPECT_GT(acked.size(), before + 20) << "appends did not resume after the broker restarted";
  for (const auto& [code, count] : failures) {
    EXPECT_TRUE(code == "unavailable" || code == "indeterminate" || code == "version_conflict" ||
                code == "io_error")
        << code;
    std::printf("[ broker restart ] %d appends failed with %s\n", count, code.c_str());
  }

  auto fresh = where.open();  // a new writer reads everything back from the broker
  ASSERT_TRUE(fresh) << fresh.error().message;
  for (const auto& [key, id] : acked) {
    auto events = (*fresh)->read_stream(key.first, key.second, 1);
    ASSERT_TRUE(events) << events.error().message;
    ASSERT_EQ(events->size(), 1u) << "acknowledged " << key.first << " v" << key.second << " lost";
    EXPECT_EQ(decode((*events)[0].bytes)->meta.event_id, id);
  }
}

// Prints, at the end, how many tests ran against each log.
class PerLogCounter : public ::testing::EmptyTestEventListener {
 public:
  void OnTestEnd(const ::testing::TestInfo& info) override {
    std::string name = info.name();
    std::string suite = info.test_suite_name();
    std::string log = name.ends_with("/kafka") || suite.starts_with("Kafka") ? "kafka"
                      : name.ends_with("/embedded")                          ? "embedded"
                                                                             : "";
    if (log.empty()) return;
    auto* r = info.result();
    auto& c = counts_[log];
    if (r->Skipped())
      ++c[2];
    else if (r->Passed())
      ++c[0];
    else
      ++c[1];
  }
  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    for (const auto& [log, c] : counts_) {
      std::printf("[ event log ] %s: %d passed, %d failed, %d skipped\n", log.c_str(), c[0], c[1],
                  c[2]);
    }
  }

 private:
  std::map<std::string, std::array<int, 3>> counts_;
};

const bool kListenerInstalled = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new PerLogCounter);
  return true;
}();

TEST_F(KafkaLogFaults, PersistentStreamIndexIsBuiltOnceThenCaughtUp) {
  const auto index_dir =
      std::filesystem::temp_directory_path() / ("chorus-index-" + unique_suffix());
  KafkaUnderTest where(brokers_);
  auto writer = where.open();
  ASSERT_TRUE(writer) << writer.error().message;
  auto write_round = [&](std::uint64_t version, int round) {
    std::vector<StreamAppend> batch{append_to("ticket-indexed", version)};
    for (int i = 0; i < 300; ++i) {
      batch.push_back(
          append_to("ticket-other-" + std::to_string(round) + "-" + std::to_string(i), 0));
    }
    ASSERT_TRUE((*writer)->append(batch));
  };
  write_round(0, 0);
  write_round(1, 1);
  {
    auto reader = where.open_reader(index_dir.string());
    ASSERT_TRUE(reader) << reader.error().message;
    EXPECT_EQ(*(*reader)->stream_version("ticket-indexed"), 2u);
    EXPECT_EQ(*(*reader)->stream_version("ticket-never"), 0u);
    auto events = (*reader)->read_stream("ticket-indexed", 1, 10);
    ASSERT_TRUE(events) << events.error().message;
    ASSERT_EQ(events->size(), 2u);
    EXPECT_TRUE(verify_chain(*events));
    EXPECT_TRUE(
        (*reader)->append(std::vector<StreamAppend>{append_to("ticket-x", 0)}).error().code ==
        errc::invalid_argument);
  }
  // Appended after the index was built: the next reader picks them up from its checkpoint.
  write_round(2, 2);
  {
    auto reader = where.open_reader(index_dir.string());
    ASSERT_TRUE(reader) << reader.error().message;
    EXPECT_EQ(*(*reader)->stream_version("ticket-indexed"), 3u);
    EXPECT_EQ(*(*reader)->stream_version("ticket-other-2-7"), 1u);
    auto events = (*reader)->read_stream("ticket-indexed", 2, 10);
    ASSERT_TRUE(events) << events.error().message;
    ASSERT_EQ(events->size(), 2u);
    EXPECT_EQ((*events)[0].version, 2u);
    EXPECT_EQ((*events)[1].version, 3u);
    // The same answers as a reader without an index, which reads the whole topic.
    auto plain = where.open_reader("");
    ASSERT_TRUE(plain) << plain.error().message;
    auto expected = (*plain)->read_stream("ticket-indexed", 1, 10);
    auto got = (*reader)->read_stream("ticket-indexed", 1, 10);
    ASSERT_TRUE(expected && got);
    ASSERT_EQ(got->size(), expected->size());
    for (std::size_t i = 0; i < got->size(); ++i) EXPECT_EQ((*got)[i].bytes, (*expected)[i].bytes);
  }
  // The same directory given for another topic: emptied and rebuilt for that one.
  KafkaUnderTest other(brokers_);
  auto other_writer = other.open();
  ASSERT_TRUE(other_writer) << other_writer.error().message;
  ASSERT_TRUE((*other_writer)->append(std::vector<StreamAppend>{append_to("ticket-elsewhere", 0)}));
  {
    auto reader = other.open_reader(index_dir.string());
    ASSERT_TRUE(reader) << reader.error().message;
    EXPECT_EQ(*(*reader)->stream_version("ticket-indexed"), 0u);
    EXPECT_EQ(*(*reader)->stream_version("ticket-elsewhere"), 1u);
  }
  std::filesystem::remove_all(index_dir);
}

// The audit's read path (events/embedded_log.h, LogScan): every event of the log as it stood when
// the scan began, in offset order, with the bytes a cursor reads, 8-aligned; and the heads.
TEST(EmbeddedLogScan, ReadsEveryEventInPlaceInOffsetOrderAndEveryHead) {
  EmbeddedUnderTest where;
  auto log = where.open();
  ASSERT_TRUE(log) << log.error().message;
  ASSERT_TRUE((*log)->append(std::vector<StreamAppend>{append_to("ticket-a", 0, 2)}));
  ASSERT_TRUE((*log)->append(
      std::vector<StreamAppend>{append_to("ticket-b", 0, 2, 3000), append_to("ticket-c", 0)}));
  ASSERT_TRUE((*log)->append(std::vector<StreamAppend>{append_to("ticket-a", 2, 1, 7)}));
  auto scan = scan_embedded_log(**log);
  ASSERT_NE(scan, nullptr);
  // Appended after the scan began: beyond its end.
  ASSERT_TRUE((*log)->append(std::vector<StreamAppend>{append_to("ticket-d", 0)}));

  auto cursor = (*log)->follow({});
  ASSERT_TRUE(cursor);
  std::vector<RecordedEvent> expected;
  ASSERT_TRUE((*cursor)->poll(expected, 100, 0ms));
  ASSERT_EQ(expected.size(), 7u);
  expected.pop_back();  // ticket-d's

  StoredBatch batch;
  std::size_t seen = 0;
  for (;;) {
    auto n = scan->next(batch, 2);
    ASSERT_TRUE(n) << n.error().message;
    ASSERT_EQ(*n, batch.records.size());
    ASSERT_LE(*n, 2u);
    if (*n == 0) break;
    for (const auto& r : batch.records) {
      ASSERT_LT(seen, expected.size());
      EXPECT_EQ(r.offset, expected[seen].address.offset);
      EXPECT_EQ(r.bytes, expected[seen].bytes);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(r.bytes.data()) % 8, 0u);
      ++seen;
    }
  }
  EXPECT_EQ(seen, expected.size());
  EXPECT_EQ(*scan->next(batch, 2), 0u);  // stays at its end

  std::map<std::string, std::pair<std::uint64_t, Hash>> heads;
  ASSERT_TRUE(scan->heads([&](const IndexedHead& h) {
    EXPECT_TRUE(h.well_formed);
    heads[std::string(h.stream_id)] = {h.version, h.hash};
  }));
  ASSERT_EQ(heads.size(), 4u);  // the index is read as it is now
  for (const auto& [stream, head] : heads) {
    EXPECT_EQ(head.first, *(*log)->stream_version(stream)) << stream;
    auto last = (*log)->read_stream(stream, head.first, 1);
    ASSERT_TRUE(last && last->size() == 1u);
    auto viewed = view(last->front().bytes);
    ASSERT_TRUE(viewed);
    EXPECT_EQ(head.second, viewed->hash) << stream;
  }
}

}  // namespace
}  // namespace chorus::events
