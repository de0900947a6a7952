#pragma once
// One stream's history as auditors read it: its events as rows, the state of its aggregate
// at a moment (folded by the same domain code the server runs), and what changed between
// two moments. Reads the log through the EventLog contract only, so it works on the embedded
// log and on Kafka alike.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "events/event_log.h"
#include "replay/errc.h"

namespace chorus::replay {

// A moment an auditor names: the end of the log, a log position, a time, or a version of the
// stream at hand.
struct Moment {
  enum class Kind { end, position, time, version };
  Kind kind = Kind::end;
  events::LogPosition position;  // kind position: events before this cut
  std::int64_t time_us = 0;      // kind time: events that occurred at or before this time
  std::uint64_t version = 0;     // kind version: events up to this version of the stream
  // Given as an event's address: the cut just after it in its partition, at the beginning of
  // the others (a cut of the whole log only when it has one partition).
  bool from_address = false;

  // Parses "end"; a consistency token ("17", "3.0.17") as the API returns it; an event's
  // address as history shows it ("0:26", partition:offset: up to and including that event);
  // a UTC time "2026-11-24T10:15:00Z" (seconds optional, fraction allowed, "Z" optional);
  // "v12". Fails with invalid_argument naming what it expected. Pure.
  [[nodiscard]] static Result<Moment> parse(std::string_view text);
  [[nodiscard]] std::string describe() const;

  // Whether an event (at `address`, of `version`, that occurred at `occurred_at_us`) lies at or
  // before this moment. Pure.
  [[nodiscard]] bool includes(const events::LogAddress& address, std::uint64_t version,
                              std::int64_t occurred_at_us) const noexcept;

  // Whether this moment names one of a stream of `versions` versions: fails with not_found for
  // a version it has not reached (its last state would pass for it without a word). Pure.
  [[nodiscard]] Result<void> within(std::string_view stream_id, std::uint64_t versions) const;
};

// An event's address as history and extracts print it, "P:O" (partition:offset): digits on
// each side, no sign, an offset below the largest (the cut after it must exist) and a
// partition below 65,536. nullopt otherwise. Pure.
[[nodiscard]] std::optional<events::LogAddress> parse_address(std::string_view text);

// A decoded event with where it is stored.
struct HistoryEvent {
  events::LogAddress address;
  events::Event event;
};

// Reads the whole stream through the log's stream index (never a scan of the log), checks its
// hash chain and decodes every event. On success the events in version order (empty for an
// unknown stream). Fails with corruption naming the stream, version and position of the first
// damaged event, with log_error when the log cannot be read. Thread-safe if the log is.
[[nodiscard]] Result<std::vector<HistoryEvent>> read_history(events::EventLog& log,
                                                             std::string_view stream_id);

// One row of a history: time, actor (and on whose behalf), action and the fields the event
// set, as JSON {"position","stream","version","occurred_at","actor","role","on_behalf_of",
// "action","fields":{...},"hash"}. Pure.
[[nodiscard]] nlohmann::json to_row(const HistoryEvent& e);

// The fields an event's payload carries, by name (the schema's field names). Pure.
[[nodiscard]] nlohmann::json payload_fields(const events::Payload& payload);

// The aggregates the tool can rebuild, by stream-id prefix: "ticket", "structure", "account",
// "identifier" (an identifier's reservation, domain::structure::identifier_stream_id), or empty
// when the stream is of no known aggregate. Pure.
[[nodiscard]] std::string_view aggregate_kind(std::string_view stream_id) noexcept;

// Folds the events of `history` that lie at or before `at` with the aggregate's own evolve()
// (domain/), and returns the state as JSON, with "version" the last version folded (0: the
// aggregate did not exist yet). An identifier's reservation comes as {"version", "taken",
// "structure_id"}: the structure holding it at that moment. Fails with invalid_argument when the
// stream is of no known aggregate, not_found for a version beyond the stream's last. Pure.
[[nodiscard]] Result<nlohmann::json> state_at(std::string_view stream_id,
                                              const std::vector<HistoryEvent>& history,
                                              const Moment& at);

// What differs between two states: {"field": {"before": x, "after": y}} for every field whose
// value changed, appeared or disappeared; an empty object when equal. Pure.
[[nodiscard]] nlohmann::json diff(const nlohmann::json& before, const nlohmann::json& after);

// "2026-11-24T10:15:00.123456Z". Pure.
[[nodiscard]] std::string format_time(std::int64_t time_us);

// Bytes as text for a report: printable ASCII as it is, any other byte (and the backslash) as
// \xNN. Pure.
[[nodiscard]] std::string printable(std::string_view bytes);

}  // namespace chorus::replay
