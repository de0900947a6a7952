#pragma once
// The write side: loads an aggregate from its stream, decides, appends with the expected
// version, and retries on a version conflict (a bounded number of times). Idempotent: a command
// whose id (derived from the Idempotency-Key) already caused events gets the answer of its
// first run and writes nothing.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "api/http.h"
#include "domain/caller.h"
#include "domain/errc.h"
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
};

// Decides on the events of the stream so far (decoded, in order); returns the payloads to
// append or a Rejection.
using DecideFn = std::function<domain::Decision<std::vector<events::Payload>>(
    const std::vector<events::Event>& history)>;

class CommandHandler {
 public:
  explicit CommandHandler(events::EventLog& log) : log_(log) {}

  // Runs one command on `stream_id`. On success the events are durable. Throws Problem:
  // 4xx for a rejection (nothing written), 409 when conflicts persist after the retries,
  // 503 when the log is unavailable (nothing written), 500 for an indeterminate outcome.
  // Thread-safe.
  [[nodiscard]] CommandOutcome run(const std::string& stream_id, const CommandMeta& meta,
                                   const DecideFn& decide);

  // The command id for a request: derived from the caller and the Idempotency-Key when there
  // is one (so that a retry is recognised), else random.
  [[nodiscard]] static std::string command_id(const std::string& user_id, std::string_view route,
                                              const std::string& idempotency_key);

  static constexpr int kMaxAttempts = 5;

 private:
  events::EventLog& log_;
};

// Maps a domain rejection to its HTTP problem.
[[nodiscard]] Problem to_problem(const domain::Rejection& rejection);

// A fresh random identifier (UUID v4 text).
[[nodiscard]] std::string random_uuid();

}  // namespace chorus::api
