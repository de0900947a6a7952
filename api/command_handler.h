#pragma once
// The write side: loads an aggregate (from an in-memory snapshot plus the events after it),
// decides, appends with the expected version, and on a version conflict reloads and decides
// again, a bounded number of times. Idempotent: a command whose id (derived from the
// Idempotency-Key) already caused events gets the answer of its first run and writes nothing.

#include <any>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/http.h"
#include "domain/caller.h"
#include "domain/errc.h"
#include "domain/workflow.h"
#include "events/event_log.h"

namespace chorus::api {

struct CommandOutcome {
  std::uint64_t version = 0;      // of the stream after the command
  std::string consistency_token;  // the log position of the command's events
  bool replayed = false;          // answered from an earlier run of the same command
};

struct CommandMeta {
  domain::Caller caller;
  std::string actor_role;  // the role the caller acts in, recorded in the events
  std::string command_id;  // causation id
  std::string correlation_id;
  // The caller's account is deactivated: only an earlier run of this very command is answered
  // (a retry whose first answer was lost); anything else is refused with
  // deactivated_caller(), nothing written.
  bool replay_only = false;
};

// An aggregate type as the handler sees it: where to start, how to fold, how to decide.
template <class State>
struct Aggregate {
  State initial;
  std::function<State(State, const events::Payload&)> evolve;
  std::function<domain::Decision<std::vector<events::Payload>>(const State&)> decide;
};

class CommandHandler {
 public:
  // `snapshot_capacity`: how many aggregates' folded states are kept in memory (least recently
  // used first out). A missing snapshot costs one read of the whole stream.
  explicit CommandHandler(events::EventLog& log, std::size_t snapshot_capacity = 100'000)
      : log_(log), capacity_(snapshot_capacity) {}

  // Runs one command on `stream_id`. On success the events are durable. A command the stream
  // already holds (same meta.command_id) is answered from its first run (replayed), writing
  // nothing; beyond the recent ones, that answer is read back from the log. Throws Problem:
  // 4xx for a rejection (nothing written), 409 when conflicts persist after the retries,
  // 503 when the log is unavailable (nothing written), 500 for an indeterminate outcome or
  // an event of the stream that does not decode (log.corruption, nothing written).
  // Thread-safe.
  template <class State>
  [[nodiscard]] CommandOutcome run(const std::string& stream_id, const CommandMeta& meta,
                                   const Aggregate<State>& aggregate);

  class StreamLoader;
  // Decides over several streams and writes the resulting `domain::workflow::Appends` in one
  // log batch (all or nothing), each stream at the version its state was loaded at. `decide`
  // loads what it needs through the loader and may be called again (after a version conflict,
  // with fresh states), so it must not keep results of an earlier call. Success: the events
  // are durable; `version` is that of the first stream written. Idempotent: when a loaded
  // stream already holds events of `meta.command_id`, answers from them and writes nothing
  // (with the log's end as its token, which covers the whole first batch, where the first
  // answer had the batch's own position). A decision without any payload writes nothing and answers
  // version 0 without a token. Throws Problem as run() does; nothing is written on failure.
  // Thread-safe.
  [[nodiscard]] CommandOutcome run_appends(
      const CommandMeta& meta,
      const std::function<domain::Decision<domain::workflow::Appends>(StreamLoader&)>& decide);

  // Writes one set of appends without deciding again: the PIGP import applies its units one by
  // one. nullopt on a version conflict (nothing written); throws Problem on any other failure,
  // deactivated_caller() when meta.replay_only (nothing written). Thread-safe.
  [[nodiscard]] std::optional<events::AppendResult> append_all(
      const CommandMeta& meta, const domain::workflow::Appends& appends);

  // For a batch route whose retry must find which of many earlier units wrote `stream_id`: the
  // answer of the first of `candidates` (command ids, keyed by id_hash()) whose events the
  // stream holds, read back and confirmed as a replay is; nullopt when none. Costs the smaller
  // of the stream's commands and the candidates, plus reading the stream's events its cached
  // commands lack (all of them when it has none cached). Throws Problem (503, 500) when the log
  // cannot be read. Thread-safe.
  [[nodiscard]] std::optional<CommandOutcome> earlier_of(
      const std::string& stream_id, const std::unordered_map<std::size_t, std::string>& candidates);
  // The key of a command id in earlier_of()'s candidates. Pure, thread-safe.
  [[nodiscard]] static std::size_t id_hash(const std::string& command_id);

  // A consistency token covering `recorded` and every write this log knows of (its end), for
  // an answer that replays writes of several streams: the token recorded with one stream's
  // event covers that stream only, not the others written in the same batch (`recorded` may be
  // empty). `recorded` as is when the log's end cannot be read or does not cover it.
  // Thread-safe.
  [[nodiscard]] std::string covering_token(const std::string& recorded);

  // The command id for a request: derived from the caller, the route, the Idempotency-Key when
  // there is one (so that a retry is recognised, however old) and the request's `body`, else
  // random. A key reused with another body is therefore another command, decided and written
  // as such, never taken for the first one and dropped (an upload, whose bytes its route keeps
  // out of the id, compares them instead: router.cpp). Pure but for the random id; thread-safe.
  [[nodiscard]] static std::string command_id(const std::string& user_id, std::string_view route,
                                              const std::string& idempotency_key,
                                              std::string_view body = {});

  // Called after every successful append with its payloads and how long the log took (for
  // metrics). Set before use; not thread-safe to change.
  std::function<void(const std::vector<events::Payload>&, double seconds)> on_append;

  static constexpr int kMaxAttempts = 5;
  // Commands of a stream answered from memory on a replay; an older one is recognised by a
  // hash of its id and answered from its event, read back from the log (Snapshot::every).
  static constexpr std::size_t kRecentCommands = 16;

 private:
  // Throws Problem 503 when another writer has taken the log over (EventLog::fenced): what this
  // server knows of the streams stopped at the takeover, so a command decided on it could be
  // refused for a ticket it cannot see, or replayed wrongly; and it would not be written.
  void refuse_if_fenced() const;

  struct RecentCommand {
    std::string command_id;
    std::uint64_t version;
    std::string consistency_token;
  };
  // The commands of one stream: a hash of each id and the version of its last event. Only
  // what the log holds is ever added (after a read of the stream, or an append), and the log's
  // events never change, so every copy of a stream's snapshot may share one, whatever its
  // version. Thread-safe.
  struct CommandIndex {
    std::mutex mu;
    std::unordered_map<std::size_t, std::uint64_t> last_version;  // guarded by mu
  };
  struct Snapshot {
    std::any state;  // empty: nothing folded yet
    std::uint64_t version = 0;
    std::vector<RecentCommand> recent;  // the last kRecentCommands
    // Every command the stream holds, so that a retry is known however many commands came
    // between: shared by the copies of the snapshot (a command neither copies nor scans it).
    std::shared_ptr<CommandIndex> every = std::make_shared<CommandIndex>();
    void remember(const std::string& command_id, std::uint64_t version, std::string token);
    [[nodiscard]] const RecentCommand* find(const std::string& command_id) const;
    // The version of the last event of the command whose id hashes as `command_id`'s does (of
    // the latest, should two ids hash alike); 0 when none.
    [[nodiscard]] std::uint64_t hashed_like(const std::string& command_id) const;
  };
  // What answered `command_id` when `snapshot` (of `stream_id`) holds it: from memory when
  // recent, else from its last event read back from the log, whose causation id must be
  // `command_id` (a hash is no proof). nullopt when the stream does not hold it. Throws
  // Problem (503, 500) when the log cannot be read.
  [[nodiscard]] std::optional<CommandOutcome> earlier_outcome(const std::string& stream_id,
                                                              const Snapshot& snapshot,
                                                              const std::string& command_id);
  struct RecordedStep {
    events::Event event;
    events::LogAddress address;
  };

  [[nodiscard]] Snapshot load_snapshot(const std::string& stream_id);
  void store_snapshot(const std::string& stream_id, Snapshot snapshot);
  // The decoded events of the stream after `version`. Throws Problem.
  [[nodiscard]] std::vector<RecordedStep> read_after(const std::string& stream_id,
                                                     std::uint64_t version);
  // Appends; nullopt on a version conflict. Throws Problem on any other failure.
  [[nodiscard]] std::optional<events::AppendResult> append(
      const std::string& stream_id, std::uint64_t expected_version, const CommandMeta& meta,
      const std::vector<events::Payload>& payloads);
  // The events of one stream's payloads, stamped with the command's metadata and `at`, the
  // one time of every event the command appends (on every stream), so that a cut of the log
  // by time never splits one command's events: an audit extract of a time range judges the
  // invariants at its end on whole commands.
  [[nodiscard]] static events::StreamAppend stamped(const std::string& stream_id,
                                                    std::uint64_t expected_version,
                                                    const CommandMeta& meta,
                                                    const std::vector<events::Payload>& payloads,
                                                    std::int64_t at);
  // Appends a batch; nullopt on a version conflict. Throws Problem on any other failure.
  [[nodiscard]] std::optional<events::AppendResult> append_batch(
      std::vector<events::StreamAppend> batch, const std::vector<events::Payload>& payloads);

  events::EventLog& log_;
  std::size_t capacity_;
  std::mutex snapshots_mu_;
  std::list<std::string> lru_;  // most recent first
  std::unordered_map<std::string, std::pair<Snapshot, std::list<std::string>::iterator>> snapshots_;
};

// What a multi-stream decision reads: each stream folded from its snapshot plus the events
// after it (the snapshot is refreshed on the way). Remembers whether a loaded stream already
// holds events of the running command (an idempotent replay). One per attempt; not
// thread-safe.
class CommandHandler::StreamLoader {
 public:
  StreamLoader(CommandHandler& handler, std::string command_id)
      : handler_(handler), command_id_(std::move(command_id)) {}

  // The state of `stream_id` (`initial` when the stream is empty), its version in
  // `State::version` as the aggregates keep it. Throws Problem (503, 500) when the log cannot be
  // read.
  template <class State>
  [[nodiscard]] State load(const std::string& stream_id, State initial,
                           State (*evolve)(State, const events::Payload&)) {
    Snapshot snapshot = handler_.load_snapshot(stream_id);
    State state = snapshot.state.has_value() ? std::any_cast<State>(std::move(snapshot.state))
                                             : std::move(initial);
    for (auto& step : handler_.read_after(stream_id, snapshot.version)) {
      state = evolve(std::move(state), step.event.payload);
      snapshot.version = step.event.version;
      events::LogPosition at;
      at.advance_past(step.address);
      snapshot.remember(step.event.meta.causation_id, step.event.version, at.to_token());
    }
    if (!replay_) replay_ = handler_.earlier_outcome(stream_id, snapshot, command_id_);
    snapshot.state = state;
    handler_.store_snapshot(stream_id, std::move(snapshot));
    return state;
  }
  // Set when a loaded stream already holds the command's events.
  [[nodiscard]] const std::optional<CommandOutcome>& replay() const { return replay_; }

 private:
  CommandHandler& handler_;
  const std::string command_id_;
  std::optional<CommandOutcome> replay_;
};

// 403 account.deactivated: what a deactivated account gets for anything but reactivating itself
// or the replay of a command it sent before.
[[nodiscard]] Problem deactivated_caller();

// Maps a domain rejection to its HTTP problem.
[[nodiscard]] Problem to_problem(const domain::Rejection& rejection);

// A fresh random identifier (UUID v4 text).
[[nodiscard]] std::string random_uuid();

template <class State>
CommandOutcome CommandHandler::run(const std::string& stream_id, const CommandMeta& meta,
                                   const Aggregate<State>& aggregate) {
  refuse_if_fenced();
  for (int attempt = 1;; ++attempt) {
    Snapshot snapshot = load_snapshot(stream_id);
    State state = snapshot.state.has_value() ? std::any_cast<State>(std::move(snapshot.state))
                                             : aggregate.initial;
    for (auto& step : read_after(stream_id, snapshot.version)) {
      state = aggregate.evolve(std::move(state), step.event.payload);
      snapshot.version = step.event.version;
      events::LogPosition at;
      at.advance_past(step.address);
      snapshot.remember(step.event.meta.causation_id, step.event.version, at.to_token());
    }
    if (auto replay = earlier_outcome(stream_id, snapshot, meta.command_id)) {
      snapshot.state = std::move(state);
      store_snapshot(stream_id, std::move(snapshot));
      return *replay;
    }
    if (meta.replay_only) throw deactivated_caller();

    auto decided = aggregate.decide(state);
    if (!decided) throw to_problem(decided.error());
    State after = state;
    for (const auto& payload : *decided) after = aggregate.evolve(std::move(after), payload);

    auto appended = append(stream_id, snapshot.version, meta, *decided);
    if (!appended) {
      if (attempt < kMaxAttempts) continue;
      throw Problem{409, "command.concurrent_update", "", "Modification concurrente : réessayez."};
    }
    snapshot.state = std::move(after);
    snapshot.version += decided->size();
    const std::string token = appended->position.to_token();
    snapshot.remember(meta.command_id, snapshot.version, token);
    const std::uint64_t version = snapshot.version;
    store_snapshot(stream_id, std::move(snapshot));
    return CommandOutcome{version, token, false};
  }
}

}  // namespace chorus::api
