#pragma once
// Views as they stood at a moment: the server's own projectors (projections/standard_views.h)
// replay the log up to that moment into a separate directory, and the result can be compared
// row by row with the live views.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event_log.h"
#include "projections/folded_rebuild.h"
#include "replay/audit.h"
#include "replay/errc.h"
#include "replay/timeline.h"

namespace chorus::projections {
class ViewStore;
}  // namespace chorus::projections

namespace chorus::replay {

// The log cut at `until`: cursors stop there and never wait for more, end() is at most
// `until`, appends fail with invalid_argument. `inner` must outlive the result. Thread-safe as
// `inner` is.
[[nodiscard]] std::unique_ptr<events::EventLog> log_prefix(events::EventLog& inner,
                                                           events::LogPosition until);

// Turns a moment into the log position it stands for: for a position, itself; for the end, the
// log's end; for a time, in each partition, the position just past the last event that occurred
// at or before it (a walk of the log). Fails with invalid_argument for a version (it names a
// stream, not the log), log_error when the log cannot be read.
[[nodiscard]] Result<events::LogPosition> position_of(events::EventLog& log, const Moment& at,
                                                      const Progress& progress = {});

// What a rebuild of the views reached.
struct RebuiltViews {
  events::LogPosition reached;  // `until`, or the log's end if that came first
  // The events the projectors could not apply (damaged: failing their hash; or unreadable),
  // set aside as the server's runner does: "P:O <stream> v<N>: <why>", in log order. The views
  // leave them out; an auditor must hear of it.
  std::vector<std::string> set_aside;
  // The folded path's figures (tickets held, rows written at the end, where the time went).
  std::optional<projections::FoldedRebuild> folded{};
};

// How rebuild_views applies the events: `folded` holds the tickets in memory and writes their
// rows once, sorted, at the end (projections/folded_rebuild.h), many times as fast on a long log;
// `runner` applies every event through the server's runner, batch after batch. Both leave the
// same rows (tests/projections/runner_test.cpp; tests/replay/replay_test.cpp compares both with
// a server's live views).
enum class RebuildPath { folded, runner };

// Rebuilds every standard view from the log's beginning to `until` into `out_dir` (created;
// must not hold views already), exactly as the server's runner would, laid out as a server's
// data directory (live_views_dir). Returns the position reached and the events set aside.
// Fails with invalid_argument (out_dir exists and is not an empty directory), log_error,
// io_error. `batch_observer`, with the runner path, is called with the bytes of every
// WriteBatch the rebuild commits (projections::Runner::batch_observer), so that a benchmark can
// replay the same writes as its raw baseline.
[[nodiscard]] Result<RebuiltViews> rebuild_views(
    events::EventLog& log, const events::LogPosition& until, const std::string& out_dir,
    const Progress& progress = {}, RebuildPath path = RebuildPath::folded,
    const std::function<void(std::string_view)>& batch_observer = {});

// The live views' directory under a server's data directory (data_dir/views/<CURRENT>), or
// under a directory rebuild_views() filled.
[[nodiscard]] Result<std::string> live_views_dir(const std::string& data_dir);

// Those views opened read-only: the store as it stood when opened, whatever the server writes
// after (one moment of it, to compare with or to hold the log's end to). Fails with io_error
// when there are none or they cannot be opened. Thread-safe.
[[nodiscard]] Result<std::shared_ptr<projections::ViewStore>> open_live_views(
    const std::string& data_dir);

// One row that differs between two view stores: absent on one side, or another value.
struct RowDifference {
  std::string key;  // printable: non-printable bytes as \xNN
  std::string left;
  std::string right;
};

// Compares two view stores row by row, every row including the applied position, a counter at
// 0 counting as no row (projections::is_zero_count): each as it stood when it was opened (a
// read-only store does not see later writes, so a live store opened once is one moment of it
// however long the comparison). Returns up to `limit` differences in key order, and counts the
// rest in `more`. Fails with io_error when either store cannot be read. Thread-safe.
[[nodiscard]] Result<std::vector<RowDifference>> compare_views(const projections::ViewStore& left,
                                                               const projections::ViewStore& right,
                                                               std::size_t limit,
                                                               std::uint64_t& more);

}  // namespace chorus::replay
