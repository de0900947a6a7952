// chorus-replay: the auditors' tool. Reads the event log (embedded or Kafka), never writes it.
//   chorus-replay history STREAM      the timeline of a ticket (table, JSON lines or CSV)
//   chorus-replay state STREAM        an aggregate's state at a moment, or what changed between two
//   chorus-replay views               every view as it stood at a moment, compared with the live
//   one chorus-replay verify              every hash chain and invariant of the whole log
//   chorus-replay export              a self-contained audit extract of a stream or a time range
//   chorus-replay verify-extract DIR  checks an extract again, away from the system
// Exit codes: 0 intact / no difference; 1 damage or differences found; 2 bad usage;
// 3 not found; 4 the log or a file could not be read or written.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "events/codec.h"
#include "events/embedded_log.h"
#include "events/kafka_log.h"
#include "projections/csv.h"
#include "projections/json_text.h"
#include "projections/view_store.h"
#include "replay/audit.h"
#include "replay/timeline.h"
#include "replay/views_at.h"

namespace {

using chorus::projections::json_text;
using chorus::replay::errc;
using nlohmann::json;

constexpr int kIntact = 0, kFindings = 1, kUsage = 2, kNotFound = 3, kUnreadable = 4;

int exit_code(errc code) {
  switch (code) {
    case errc::invalid_argument:
      return kUsage;
    case errc::not_found:
      return kNotFound;
    case errc::corruption:
      return kFindings;
    case errc::log_error:
    case errc::io_error:
      return kUnreadable;
  }
  return kUnreadable;
}

// Set for verify --json and verify-extract --json: a script reading the report on stdout
// gets one even when the check could not be made.
bool json_errors = false;

int report_error(const chorus::replay::Error& e) {
  std::cerr << "chorus-replay: " << e.message << "\n";
  if (json_errors) {
    std::cout << json_text(
                     json{
                         {"intact", false}, {"error", e.message}, {"exit_code", exit_code(e.code)}},
                     2)
              << "\n";
  }
  return exit_code(e.code);
}

// A progress line on stderr, only when a person watches it.
chorus::replay::Progress progress_bar(const char* what) {
  if (isatty(STDERR_FILENO) == 0) return {};
  auto last = std::make_shared<std::chrono::steady_clock::time_point>();
  return [what, last](std::uint64_t done, std::uint64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (now - *last < std::chrono::milliseconds(250) && done < total) return;
    *last = now;
    const double pct = total == 0 ? 100.0 : 100.0 * static_cast<double>(done) / total;
    std::fprintf(stderr, "\r%s: %llu / %llu events (%.0f%%)%s", what,
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total), pct,
                 done >= total ? "\n" : "");
  };
}

std::string fields_text(const json& fields) {
  std::string out;
  for (const auto& [key, value] : fields.items()) {
    if (!out.empty()) out += "; ";
    out += key + "=" + (value.is_string() ? value.get<std::string>() : json_text(value));
  }
  return out;
}

void print_history(const std::vector<chorus::replay::HistoryEvent>& history,
                   const std::string& format) {
  static const char* kColumns[] = {"version", "position",     "occurred_at", "actor",
                                   "role",    "on_behalf_of", "action",      "fields"};
  auto cell = [](const json& row, const char* column) {
    const json& v = row[column];
    if (std::string_view(column) == "fields") return fields_text(v);
    return v.is_string() ? v.get<std::string>() : json_text(v);
  };
  if (format == "jsonl") {
    for (const auto& e : history) std::cout << json_text(chorus::replay::to_row(e)) << "\n";
    return;
  }
  if (format == "csv") {
    // The exports' one dialect (projections/csv.h), as French spreadsheets open it.
    std::cout << chorus::projections::kCsvByteOrderMark;
    std::vector<std::string> cells(std::begin(kColumns), std::end(kColumns));
    std::cout << chorus::projections::csv_row(cells);
    for (const auto& e : history) {
      const json row = chorus::replay::to_row(e);
      for (std::size_t i = 0; i < std::size(kColumns); ++i) cells[i] = cell(row, kColumns[i]);
      std::cout << chorus::projections::csv_row(cells);
    }
    return;
  }
  // A table cell on one line: a line break or any other control character a comment holds is
  // shown escaped, so that no text can pass for a row of its own.
  auto one_line = [](const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      const auto u = static_cast<unsigned char>(c);
      // U+2028 and U+2029 (the API takes them) break lines in some terminals and editors.
      const std::string_view rest(text.data() + i, text.size() - i);
      if (rest.starts_with("\xE2\x80\xA8") || rest.starts_with("\xE2\x80\xA9")) {
        out += rest[2] == '\xA8' ? "\\u2028" : "\\u2029";
        i += 2;
      } else if (c == '\\') {
        out += "\\\\";  // so that a backslash in the text is never read as an escape
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (u < 0x20 || u == 0x7F) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02X", u);
        out += hex;
      } else {
        out += c;
      }
    }
    return out;
  };
  std::vector<std::vector<std::string>> rows;
  std::vector<std::size_t> width(std::size(kColumns));
  rows.emplace_back(std::begin(kColumns), std::end(kColumns));
  for (const auto& e : history) {
    const json row = chorus::replay::to_row(e);
    std::vector<std::string> cells;
    for (const char* c : kColumns) cells.push_back(one_line(cell(row, c)));
    rows.push_back(std::move(cells));
  }
  for (const auto& r : rows) {
    for (std::size_t i = 0; i + 1 < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) {
      std::cout << r[i];
      if (i + 1 < r.size()) std::cout << std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << "\n";
  }
}

int print_report(const chorus::replay::VerifyReport& r, bool as_json) {
  if (as_json) {
    json out{{"intact", r.intact()},           {"events", r.events},     {"streams", r.streams},
             {"end_position", r.end_position}, {"unlisted", r.unlisted}, {"broken", json::array()},
             {"breaches", json::array()},      {"notes", r.notes}};
    for (const auto& b : r.broken) {
      out["broken"].push_back(json{{"stream", b.stream},
                                   {"version", b.version},
                                   {"position", b.position},
                                   {"reason", b.reason}});
    }
    for (const auto& b : r.breaches) {
      out["breaches"].push_back(json{{"invariant", b.invariant},
                                     {"stream", b.stream},
                                     {"from", b.from_position},
                                     {"to", b.to_position},
                                     {"description", b.description}});
    }
    std::cout << json_text(out, 2) << "\n";
  } else {
    std::cout << "checked " << r.events << " events in " << r.streams << " streams, up to "
              << r.end_position << "\n";
    if (!r.broken.empty()) {
      const auto& f = r.broken.front();
      std::cout << "FIRST BROKEN LINK: stream " << f.stream << " version " << f.version << " at "
                << f.position << ": " << f.reason << "\n";
    }
    for (const auto& b : r.broken) {
      std::cout << "broken: " << b.stream << " v" << b.version << " at " << b.position << ": "
                << b.reason << "\n";
    }
    for (const auto& b : r.breaches) {
      std::cout << "invariant " << b.invariant << " breached: " << b.stream << " from "
                << b.from_position << " to " << (b.to_position.empty() ? "the end" : b.to_position)
                << ": " << b.description << "\n";
    }
    if (r.unlisted > 0) std::cout << r.unlisted << " more findings not listed\n";
    for (const auto& n : r.notes) std::cout << "note: " << n << "\n";
    std::cout << (r.intact() ? "INTACT" : "DAMAGED") << "\n";
  }
  return r.intact() ? kIntact : kFindings;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "chorus-replay: replay and audit the Chorus event log, read-only.\n"
      "Exit codes: 0 intact or no difference, 1 damage or differences found, 2 bad usage, "
      "3 not found, 4 the log or a file could not be read or written."};
  // At most one: an unknown word is then refused as unexpected, naming it, rather than as a
  // missing subcommand; none at all is refused after parsing.
  app.require_subcommand(0, 1);

  std::string data_dir = ".data";
  chorus::events::KafkaLogOptions kafka;
  app.add_option("--data-dir", data_dir,
                 "the server's data directory (embedded log in data-dir/log, views in "
                 "data-dir/views)")
      ->envname("CHORUS_DATA_DIR")
      ->capture_default_str();
  app.add_option("--kafka-brokers", kafka.brokers, "read the log from Kafka instead")
      ->envname("CHORUS_KAFKA_BROKERS");
  app.add_option("--kafka-topic", kafka.topic, "Kafka topic of the events")
      ->envname("CHORUS_KAFKA_TOPIC")
      ->capture_default_str();
  app.add_option("--kafka-index-dir", kafka.index_dir,
                 "keep an index of the topic's streams in this directory: the first run reads "
                 "the whole topic to build it, later runs only what was appended since, and a "
                 "history no longer needs the whole topic (without it: every run reads it all)")
      ->envname("CHORUS_KAFKA_INDEX_DIR");

  std::string stream, format = "table", at_text = "end", diff_text, out_dir, from_text, to_text;
  bool as_json = false, compare_live = false;

  auto* history = app.add_subcommand("history", "the timeline of one stream (e.g. ticket-<id>)");
  history->add_option("stream", stream, "stream id, e.g. ticket-<id>")->required();
  history->add_option("--format", format, "table, jsonl or csv")
      ->check(CLI::IsMember({"table", "jsonl", "csv"}))
      ->capture_default_str();
  history->add_option("--at", at_text, "show events up to this moment")->capture_default_str();

  auto* state = app.add_subcommand(
      "state", "an aggregate's state at a moment, rebuilt by the server's own domain code");
  state->add_option("stream", stream, "stream id, e.g. ticket-<id>")->required();
  state
      ->add_option("--at", at_text,
                   "end; a log position (17 or 3.0.17); a UTC time (2026-11-24T10:15:00Z); a "
                   "version (v3)")
      ->capture_default_str();
  state->add_option("--diff-to", diff_text, "print what changed from --at to this moment");

  auto* views = app.add_subcommand(
      "views", "rebuild every view as it stood at a moment into --out, and compare it");
  views->add_option("--at", at_text, "moment (default: the live views' own position)");
  views->add_option("--out", out_dir, "directory for the rebuilt views (new or empty)")->required();
  views->add_flag("--compare-live", compare_live,
                  "compare with the live views of --data-dir (exit 1 when they differ)");
  bool low_memory = false;
  views->add_flag("--low-memory", low_memory,
                  "rebuild through the server's runner, a batch at a time, instead of holding "
                  "every ticket in memory (about 1 KB an event of the log): several times as slow");

  auto* verify = app.add_subcommand("verify", "check every hash chain and invariant of the log");
  verify->add_flag("--json", as_json, "report as JSON");

  auto* export_cmd = app.add_subcommand("export", "write a self-contained audit extract");
  export_cmd->add_option("--stream", stream, "one whole stream");
  export_cmd->add_option("--from", from_text, "events that occurred from this UTC time");
  export_cmd->add_option("--to", to_text, "... up to this UTC time");
  export_cmd->add_option("--out", out_dir, "directory of the extract (new or empty)")->required();

  auto* verify_extract = app.add_subcommand("verify-extract", "check an audit extract alone");
  verify_extract->add_option("dir", out_dir, "the extract's directory")->required();
  verify_extract->add_flag("--json", as_json, "report as JSON");
  std::string expected_manifest_sha256;
  verify_extract
      ->add_option("--expect-manifest-sha256", expected_manifest_sha256,
                   "the manifest SHA-256 export printed, kept apart: hashes prove an extract "
                   "consistent, this anchor proves it is the one made")
      ->check([](const std::string& text) {
        return chorus::events::is_hex_hash(text)
                   ? std::string()
                   : std::string("a SHA-256 is 64 lower-case hex digits");
      });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kUsage;
  }
  if (app.get_subcommands().empty()) {
    std::fprintf(stderr,
                 "a subcommand is required: history, state, views, verify, export or "
                 "verify-extract\nRun with --help for more information.\n");
    return kUsage;
  }

  json_errors = as_json && (*verify || *verify_extract);
  // An empty directory name would resolve against the working directory (or, once a
  // subdirectory is appended, against the file system's root): never what was meant.
  if ((*views || *export_cmd || *verify_extract) && out_dir.empty()) {
    return report_error({errc::invalid_argument, *verify_extract
                                                     ? "verify-extract needs an extract's directory"
                                                     : "--out names no directory"});
  }
  if (*verify_extract) {
    auto report = chorus::replay::verify_extract(out_dir, expected_manifest_sha256);
    if (!report) return report_error(report.error());
    return print_report(*report, as_json);
  }

  // The live views to compare with, opened once and before the log: what is compared is the
  // moment they were opened at (a read-only store does not see the server's later writes), every
  // event they had applied is in the log as opened next, and the rebuild stops at the position
  // they held, however long it takes.
  std::shared_ptr<chorus::projections::ViewStore> live;
  if (*views && compare_live) {
    auto store = chorus::replay::open_live_views(data_dir);
    if (!store) return report_error(store.error());
    live = std::move(*store);
  }

  // What the server's views had applied, read before the log: the log must reach at least as
  // far, or acknowledged events were lost from its end (a cut write-ahead log reads as a torn
  // tail, which no hash can show). An anchor kept beside the log, for verify.
  std::optional<chorus::events::LogPosition> views_applied;
  std::string no_anchor;        // why the anchor could not be read, for the report
  bool anchor_damaged = false;  // the views exist and their files are damaged: a finding
  if (*verify && kafka.brokers.empty()) {
    if (auto store = chorus::replay::open_live_views(data_dir); !store) {
      no_anchor = store.error().message;
      anchor_damaged = store.error().code == errc::corruption;
    } else if (auto token = (*store)->position(); !token || token->empty()) {
      no_anchor = token ? "the views hold no position" : token.error().message;
    } else if (auto parsed = chorus::events::LogPosition::from_token(*token); !parsed) {
      no_anchor = "the views hold a malformed position";
    } else {
      views_applied = *parsed;
    }
  }

  // Read-only: a running server keeps writing meanwhile; the tool sees the log as it stood
  // when opened (embedded) or when it read to the end (Kafka).
  chorus::events::Result<std::unique_ptr<chorus::events::EventLog>> opened =
      std::unexpected(chorus::events::Error{chorus::events::errc::invalid_argument, ""});
  if (!kafka.brokers.empty()) {
    kafka.read_only = true;
    kafka.create_topic = false;
    opened = chorus::events::open_kafka_log(kafka);
  } else {
    opened = chorus::events::open_embedded_log({.dir = data_dir + "/log", .read_only = true});
  }
  if (!opened) {
    return report_error({errc::log_error, "cannot open the log: " + opened.error().message});
  }
  auto& log = **opened;

  // A moment as this log can have it: a position of no more parts than it has partitions (a
  // consistency token stops at the highest partition its write touched; more would name no cut
  // of this log); not an empty word.
  auto moment = [&](const std::string& text) -> chorus::replay::Result<chorus::replay::Moment> {
    if (text.empty()) return chorus::replay::fail(errc::invalid_argument, "an empty moment");
    auto m = chorus::replay::Moment::parse(text);
    if (m && m->kind == chorus::replay::Moment::Kind::position &&
        m->position.next.size() > log.partition_count()) {
      return chorus::replay::fail(
          errc::invalid_argument,
          (m->from_address ? "address " + text + " names partition " +
                                 std::to_string(m->position.next.size() - 1)
                           : "position " + text + " has " +
                                 std::to_string(m->position.next.size()) + " parts") +
              "; this log has " + std::to_string(log.partition_count()) + " partitions");
    }
    // A position the log has not reached is no moment of it yet, as a version the stream has
    // not reached is not (Moment::within).
    if (m && m->kind == chorus::replay::Moment::Kind::position) {
      auto end = log.end();
      if (!end) return chorus::replay::fail(errc::log_error, end.error().message);
      if (!end->covers(m->position)) {
        return chorus::replay::fail(
            errc::not_found,
            "position " + text + " is beyond the log's end (" + end->to_token() + ")");
      }
    }
    return m;
  };
  auto at = moment(at_text);
  if (!at) return report_error(at.error());

  if (*history || *state) {
    auto events = chorus::replay::read_history(log, stream);
    if (!events) return report_error(events.error());
    if (events->empty()) {
      return report_error({errc::not_found, "no stream " + stream + " in the log"});
    }
    // An event's address cuts its own partition only: on a log of several, one in another
    // partition than the stream's says nothing of the stream.
    const std::uint32_t home = events->front().address.partition;
    auto in_stream_partition =
        [&](const chorus::replay::Moment& m) -> chorus::replay::Result<void> {
      if (!m.from_address || m.position.next.size() == home + std::size_t{1}) return {};
      return chorus::replay::fail(errc::invalid_argument,
                                  "the address names partition " +
                                      std::to_string(m.position.next.size() - 1) + "; " + stream +
                                      " lies in partition " + std::to_string(home));
    };
    if (auto ok = in_stream_partition(*at); !ok) return report_error(ok.error());
    if (*history) {
      if (auto ok = at->within(stream, events->size()); !ok) return report_error(ok.error());
      std::erase_if(*events, [&](const chorus::replay::HistoryEvent& e) {
        return !at->includes(e.address, e.event.version, e.event.meta.occurred_at_us);
      });
      print_history(*events, format);
      return kIntact;
    }
    auto before = chorus::replay::state_at(stream, *events, *at);
    if (!before) return report_error(before.error());
    if (state->count("--diff-to") == 0) {
      std::cout << json_text(*before, 2) << "\n";
      return kIntact;
    }
    auto later = moment(diff_text);
    if (!later) return report_error(later.error());
    if (auto ok = in_stream_partition(*later); !ok) return report_error(ok.error());
    auto after = chorus::replay::state_at(stream, *events, *later);
    if (!after) return report_error(after.error());
    std::cout << json_text(json{{"from", at->describe()},
                                {"to", later->describe()},
                                {"changes", chorus::replay::diff(*before, *after)}},
                           2)
              << "\n";
    return kIntact;
  }

  if (*verify) {
    auto report = chorus::replay::verify_log(log, progress_bar("verify"));
    if (!report) return report_error(report.error());
    auto end = log.end();
    if (!end) return report_error({errc::log_error, end.error().message});
    if (views_applied && !end->covers(*views_applied)) {
      // Opened again once: a read-only opening that met a running server's flush may have
      // missed the flushed tail, which a later opening holds.
      auto again = chorus::events::open_embedded_log({.dir = data_dir + "/log", .read_only = true});
      auto later =
          again
              ? (*again)->end()
              : chorus::events::Result<chorus::events::LogPosition>(std::unexpected(again.error()));
      if (later && later->covers(*views_applied)) {
        report->notes.push_back(
            "the log's end moved while it was opened (a running server's "
            "flush): checked up to " +
            end->to_token() + ", which the views had passed; run verify again to cover it");
      } else {
        report->broken.push_back({"", 0, "end",
                                  "the log ends at position " + end->to_token() +
                                      " but the server's views had applied events up to "
                                      "position " +
                                      views_applied->to_token() +
                                      ": acknowledged events were lost from the log's end"});
      }
    } else if (anchor_damaged) {
      // Damaged views are no missing views: what they held of the log's end is unknown, and
      // a log cut by its tail would pass unseen.
      report->broken.push_back({"", 0, "views",
                                "the server's views are damaged (" + no_anchor +
                                    "): the log's end could not be held to them"});
    } else if (!views_applied && kafka.brokers.empty()) {
      report->notes.push_back("the log's end was not held to the views' applied position (" +
                              no_anchor + "): a lost tail would not show");
    }
    return print_report(*report, as_json);
  }

  if (*export_cmd) {
    if (!stream.empty() && !(from_text.empty() && to_text.empty())) {
      return report_error(
          {errc::invalid_argument, "export takes --stream or --from/--to, not both"});
    }
    chorus::replay::ExtractSelection selection;
    selection.stream = stream;
    if (stream.empty()) {
      if (from_text.empty() && to_text.empty()) {
        return report_error({errc::invalid_argument, "export needs --stream or --from/--to"});
      }
      for (auto [text, target] :
           {std::pair{&from_text, &selection.from_us}, std::pair{&to_text, &selection.to_us}}) {
        if (text->empty()) continue;
        auto m = chorus::replay::Moment::parse(*text);
        if (!m) return report_error(m.error());
        if (m->kind != chorus::replay::Moment::Kind::time) {
          return report_error({errc::invalid_argument, "--from and --to take UTC times"});
        }
        *target = m->time_us;
      }
      if (selection.from_us && selection.to_us && *selection.from_us > *selection.to_us) {
        return report_error({errc::invalid_argument, "--from is after --to"});
      }
    }
    auto summary = chorus::replay::write_extract(log, selection, out_dir, progress_bar("export"));
    if (!summary) return report_error(summary.error());
    std::cout << "exported " << summary->events << " events of " << summary->streams
              << " streams to " << out_dir << " (last hash " << summary->last_hash << ")\n"
              << "manifest SHA-256 " << summary->manifest_sha256
              << " (keep it apart: verify-extract --expect-manifest-sha256 checks against it)\n";
    return kIntact;
  }

  // views
  chorus::events::LogPosition until;
  if (views->count("--at") == 0 && compare_live) {
    // The live views' own position, so that equal views mean the projection is sound.
    auto token = live->position();
    if (!token) return report_error({errc::io_error, token.error().message});
    auto parsed = chorus::events::LogPosition::from_token(*token);
    if (!token->empty() && !parsed) {
      return report_error({errc::io_error, "live views hold a malformed position " + *token});
    }
    if (parsed) until = *parsed;
  } else {
    if (at->from_address && log.partition_count() > 1) {
      return report_error({errc::invalid_argument,
                           "an event's address cuts one partition; views of a log of " +
                               std::to_string(log.partition_count()) +
                               " partitions need a consistency token (\"3.0.17\") or a time"});
    }
    auto position = chorus::replay::position_of(log, *at, progress_bar("finding the moment"));
    if (!position) return report_error(position.error());
    until = *position;
  }
  auto rebuilt_views = chorus::replay::rebuild_views(
      log, until, out_dir, progress_bar("rebuild"),
      low_memory ? chorus::replay::RebuildPath::runner : chorus::replay::RebuildPath::folded);
  if (!rebuilt_views) return report_error(rebuilt_views.error());
  std::cout << "views rebuilt up to position " << rebuilt_views->reached.to_token() << " in "
            << out_dir << "\n";
  // An event the projectors could not apply is left out of the views, as the server leaves
  // it out of its own: the rebuild is what the log allows, and the log is damaged.
  for (const auto& e : rebuilt_views->set_aside) std::cout << "set aside: " << e << "\n";
  if (!rebuilt_views->set_aside.empty()) {
    std::cout << rebuilt_views->set_aside.size()
              << " events could not be applied and are left out of these views (chorus-replay "
                 "verify names the damage)\n";
  }
  const int rebuilt_code = rebuilt_views->set_aside.empty() ? kIntact : kFindings;
  if (!compare_live) return rebuilt_code;
  auto rebuilt = chorus::replay::open_live_views(out_dir);  // laid out as a server's
  if (!rebuilt) return report_error(rebuilt.error());
  std::uint64_t more = 0;
  auto differences = chorus::replay::compare_views(**rebuilt, *live, 1000, more);
  if (!differences) return report_error(differences.error());
  for (const auto& d : *differences) {
    std::cout << "differs: " << d.key << "\n  rebuilt: " << d.left << "\n  live:    " << d.right
              << "\n";
  }
  if (more > 0) std::cout << more << " more differences not listed\n";
  const bool same = differences->empty();
  std::cout << (same ? "SAME as the live views" : "DIFFERENT from the live views") << "\n";
  return same ? rebuilt_code : kFindings;
}
