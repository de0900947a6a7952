#pragma once
// A realistic Chorus Pro workload, written straight into the event log: every command is
// decided by the same domain code the server runs (domain/), so the log holds exactly what the
// server would have written, only much faster than through HTTP. Repeatable: the same options
// and seed give the same log, byte for byte.
//
// The mix follows the seeds: most tickets are taken by an agent, answered and closed; some wait
// for information; a few solutions are refused before one is accepted; a few tickets go to
// level 2; a few drafts are left or deleted.

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "events/event_log.h"

namespace chorus::ops {

struct WorkloadOptions {
  std::uint64_t seed = 1;
  std::uint64_t tickets = 100'000;
  std::uint32_t users = 1'000;     // emitters "user-<n>"
  std::uint32_t structures = 200;  // emitting structures "structure-<n>"
  std::uint32_t agents = 20;       // support agents, three in four at level 1
  // Tickets of "user-0" on top of the others: the benchmarks' user with a long history.
  std::uint64_t heavy_user_tickets = 0;
  // Tickets in flight at once: their events interleave in the log as on a real desk.
  std::uint32_t in_flight = 1'000;
  // Events per second at most (0: as fast as the log takes them).
  std::uint64_t rate = 0;
  std::int64_t start_us = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z
};

struct WorkloadSummary {
  std::uint64_t events = 0;
  std::uint64_t tickets = 0;
  std::uint64_t appends = 0;
  std::map<std::string, std::uint64_t> tickets_by_status;  // final status ("Fermé", ...)
  std::int64_t end_us = 0;                                 // the simulated clock at the end
};

// Called after each append with the events written so far and the total planned (estimate).
using WorkloadProgress = std::function<void(std::uint64_t events, std::uint64_t tickets_done)>;

// Writes the workload into `log` in atomic batches (one StreamAppend per ticket in flight).
// Returns what was written. Fails with the log's error when an append fails (what was appended
// before stays: the log is never left with half a batch). Not thread-safe.
[[nodiscard]] events::Result<WorkloadSummary> fill_log(events::EventLog& log,
                                                       const WorkloadOptions& options,
                                                       const WorkloadProgress& progress = {});

}  // namespace chorus::ops
