#pragma once
// Proving a log unaltered: verify() walks the whole log and checks every stream's hash chain
// and the invariants of DOMAIN.md; write_extract() and verify_extract() make and check a
// self-contained audit extract that can be verified later, away from the system.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event_log.h"
#include "replay/errc.h"

namespace chorus::replay {

// A stored event that does not chain: its bytes fail their hash, its version is not the next
// one of its stream, or its prev_hash is not its predecessor's hash.
struct BrokenLink {
  std::string stream;
  std::uint64_t version = 0;
  std::string position;  // "partition:offset" in the log, or "line N" in an extract
  std::string reason;
};

// A breach of an invariant of DOMAIN.md, with the interval of the log during which it held:
// from the event that broke it to the one that mended it ("" when it still holds at the end).
struct Breach {
  int invariant = 0;  // its number in DOMAIN.md
  std::string stream;
  std::string description;
  std::string from_position;
  std::string to_position;
};

struct VerifyReport {
  std::uint64_t events = 0;
  std::uint64_t streams = 0;
  std::vector<BrokenLink> broken;  // in log order; the first is the first broken link
  std::vector<Breach> breaches;
  std::string end_position;  // the position the walk stopped at
  // What the check could not cover and the reader should know (not findings: intact() ignores
  // them), e.g. an anchor that could not be read.
  std::vector<std::string> notes;
  static constexpr std::size_t kMaxListed = 1000;  // later findings are counted only
  std::uint64_t unlisted = 0;
  [[nodiscard]] bool intact() const { return broken.empty() && breaches.empty() && unlisted == 0; }
};

// Called now and then during long walks with the events done and the total expected.
using Progress = std::function<void(std::uint64_t done, std::uint64_t total)>;

// Calls `visit` with every batch of events of the log, from its beginning to its end when
// called, in log order; the next batch is read while `visit` works on the current one. Sets
// `end_out` (when given) to the position reached. Fails with log_error when the log cannot be
// read; batches visited before stay visited. Not thread-safe per log cursor (one walk, one
// cursor).
[[nodiscard]] Result<void> walk_log(
    events::EventLog& log, const Progress& progress,
    const std::function<void(std::vector<events::RecordedEvent>&)>& visit,
    events::LogPosition* end_out = nullptr);

// Walks the whole log, from its beginning to its end when the walk started, and checks every
// event's hash, every stream's chain (versions consecutive from 1, prev_hash links), invariant 3
// (tickets move along the status table; Fermé is final), invariants 1, 2, 4 of structures, and
// the stream index against the log (each stream's indexed version; on the embedded log also its
// indexed hash, heads of streams the log does not hold, and the placements every version is read
// through: from 1 to the last, each at the offset holding it; findings at position "index"), and
// on the embedded log each stored envelope against what the writer stores (events::check_envelope).
// Problems go into the report, not the error: on success the report says what was found
// (intact() when nothing). Fails with log_error when the log cannot be read (on the embedded log,
// also when an offset is missing). Read-only; thread-safe if the log is.
[[nodiscard]] Result<VerifyReport> verify_log(events::EventLog& log, const Progress& progress = {});

// What an extract holds: one stream, or every event that occurred in [from_us, to_us] (a bound
// not given is open, and not recorded in the manifest).
struct ExtractSelection {
  std::string stream;  // when set, the whole stream
  std::optional<std::int64_t> from_us;
  std::optional<std::int64_t> to_us;
};

struct ExtractSummary {
  std::uint64_t events = 0;
  std::uint64_t streams = 0;
  std::string last_hash;  // hex hash of the last event written
  // Hex SHA-256 of manifest.json, which records the SHA-256 of events.jsonl and every stream's
  // last hash: the extract's anchor, to keep apart (verify_extract's expected_manifest_sha256).
  std::string manifest_sha256;
};

// Writes `dir`/events.jsonl (one event a line: position, stream, version, type, time, actor,
// fields, prev_hash, hash and the stored bytes in base64) and `dir`/manifest.json (counts, the
// hash each stream's first event chains to, each stream's last hash, the last hash, and the
// SHA-256 of events.jsonl). Every event is verified before it is written. Fails with
// invalid_argument (empty selection, `dir` exists and is not empty), corruption (a selected
// event fails its checks; the extract is then removed), log_error, io_error. Read-only on the
// log; thread-safe if the log is.
[[nodiscard]] Result<ExtractSummary> write_extract(events::EventLog& log,
                                                   const ExtractSelection& selection,
                                                   const std::string& dir,
                                                   const Progress& progress = {});

// Checks an extract alone: the file digest against the manifest, each line's stored bytes
// against their hash and against the whole readable line (every member but "position", which
// the stored bytes do not hold: nothing added, nothing changed), each stream's chain from the
// hash the manifest says it starts from, a stream extract's lines all of its stream, and the
// counts and last hashes of the manifest. The extract is untrusted input: a manifest or a line
// of the wrong shape or types, or nested too deep, is a finding like any other damage.
// Problems go into the report (positions are "line N"). Fails with io_error when a file is
// missing, unreadable or not a regular file (a device or a FIFO could be read forever). Pure
// apart from reading `dir`.
// An extract proves itself consistent, not authentic: whoever rewrites every line can recompute
// every hash. `expected_manifest_sha256`, when not empty, is the anchor recorded apart when it
// was made (ExtractSummary::manifest_sha256, which export prints, kept in the audit file):
// manifest.json must have that SHA-256. The manifest records the digest of events.jsonl and
// every stream's last hash, so no rewrite of any stream reaches it.
[[nodiscard]] Result<VerifyReport> verify_extract(const std::string& dir,
                                                  std::string_view expected_manifest_sha256 = {});

}  // namespace chorus::replay
