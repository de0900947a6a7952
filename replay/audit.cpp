#include "replay/audit.h"

#include <openssl/evp.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "domain/invariants.h"
#include "domain/structure.h"
#include "domain/ticket.h"
#include "events/codec.h"
#include "replay/timeline.h"

namespace chorus::replay {

using nlohmann::json;

namespace {

constexpr std::string_view kFormat = "chorus-audit-extract/1";

std::string where(const events::LogAddress& a) {
  return std::to_string(a.partition) + ":" + std::to_string(a.offset);
}

// What the walk remembers of each stream: just enough to check the next event.
struct StreamCheck {
  std::uint64_t version = 0;
  events::Hash hash{};
  bool chain_known = true;  // false after an event whose coordinates could not be read
  // Seen from version 1: only then can its invariants be judged (an extract of a time range
  // may start a stream mid-way).
  bool from_start = false;
  domain::ticket::Status ticket_status = domain::ticket::Status::none;
};

// What the walk remembers of each structure: its state folded by the domain's evolve(), and the
// invariant breaches still open (the position where each began).
struct StructureCheck {
  domain::structure::State state;
  bool had_gp = false;
  std::optional<domain::structure::Service> public_invoices;  // as created
  std::string no_gp_since, no_gp_what;
  std::string services_since, services_what;
};

// Collects findings, keeping the first kMaxListed and counting the rest.
class Findings {
 public:
  explicit Findings(VerifyReport& report) : report_(report) {}
  void broken(BrokenLink link) {
    if (report_.broken.size() + report_.breaches.size() < VerifyReport::kMaxListed) {
      report_.broken.push_back(std::move(link));
    } else {
      ++report_.unlisted;
    }
  }
  void breach(Breach b) {
    if (report_.broken.size() + report_.breaches.size() < VerifyReport::kMaxListed) {
      report_.breaches.push_back(std::move(b));
    } else {
      ++report_.unlisted;
    }
  }

 private:
  VerifyReport& report_;
};

// Checks one event against what came before in its stream, and the invariants it touches.
// `position` names the event in findings.
void check_structure(const std::string& stream, const events::Event& event,
                     const std::string& position, StructureCheck& c, Findings& findings) {
  namespace inv = domain::invariants;
  if (auto breach = inv::decision_entitled(c.state, event.payload, event.meta.actor)) {
    findings.breach({4, stream, *breach, position, position});
  }
  c.state = domain::structure::evolve(std::move(c.state), event.payload);
  c.had_gp = c.had_gp || !c.state.gp.empty();
  if (!c.public_invoices && !c.state.services.empty()) c.public_invoices = c.state.services.front();
  // An interval opens at the event that breaks an invariant and closes at the one that mends
  // it: the auditor learns for how long, not only that.
  auto track = [&](int number, std::optional<std::string> now_broken, std::string& since,
                   std::string& what) {
    if (now_broken && since.empty()) {
      since = position;
      what = std::move(*now_broken);
    } else if (!now_broken && !since.empty()) {
      findings.breach({number, stream, what, since, position});
      since.clear();
    }
  };
  track(1, inv::one_main_manager(c.state, c.had_gp), c.no_gp_since, c.no_gp_what);
  if (c.public_invoices) {
    track(2, inv::services_sound(c.state, *c.public_invoices), c.services_since, c.services_what);
  }
}

// Breaches still open when the walk ends held until the end.
void close_open_breaches(std::unordered_map<std::string, StructureCheck>& structures,
                         Findings& findings) {
  for (auto& [stream, c] : structures) {
    if (!c.no_gp_since.empty()) findings.breach({1, stream, c.no_gp_what, c.no_gp_since, ""});
    if (!c.services_since.empty()) {
      findings.breach({2, stream, c.services_what, c.services_since, ""});
    }
  }
}

void check_event(std::string_view bytes, events::Result<events::Event> event,
                 std::string_view fallback_stream, std::uint64_t fallback_version,
                 const std::string& position, std::unordered_map<std::string, StreamCheck>& streams,
                 std::unordered_map<std::string, StructureCheck>& structures, Findings& findings) {
  std::optional<events::EventCoordinates> coords;
  if (event) {
    coords = events::EventCoordinates{event->stream_id, event->version, event->meta.event_id,
                                      event->prev_hash, event->hash};
  } else if (auto peeked = events::peek(bytes)) {
    coords = std::move(*peeked);  // the body was altered but the envelope still reads
  }
  const std::string stream = coords ? coords->stream_id : std::string(fallback_stream);
  const std::uint64_t version = coords ? coords->version : fallback_version;
  auto& s = streams[stream];
  if (!event) {
    findings.broken({stream, version, position, event.error().message});
  }
  if (!coords) {
    s.version = version;
    s.chain_known = false;
    return;
  }
  if (version != s.version + 1) {
    findings.broken({stream, version, position,
                     "version " + std::to_string(version) + " follows version " +
                         std::to_string(s.version) + " of its stream"});
  } else if (s.chain_known && coords->prev_hash != s.hash) {
    findings.broken({stream, version, position,
                     "prev_hash " + events::to_hex(coords->prev_hash) +
                         " is not the hash of version " + std::to_string(s.version) + " (" +
                         events::to_hex(s.hash) + ")"});
  }
  s.version = version;
  s.hash = coords->hash;
  s.chain_known = true;
  if (!event) return;
  if (version == 1) s.from_start = true;
  if (!s.from_start) return;
  if (aggregate_kind(stream) == "structure") {
    check_structure(stream, *event, position, structures[stream], findings);
  } else if (aggregate_kind(stream) == "ticket") {
    // Invariant 3: the status table. A breach is one event; the ticket's status then follows
    // the event's own target so that later events are judged from where the log says it is.
    auto next = domain::ticket::transition(s.ticket_status, event->payload);
    if (next) {
      s.ticket_status = *next;
    } else {
      findings.breach({3, stream, next.error().message, position, position});
      domain::ticket::State as_logged;
      as_logged.status = s.ticket_status;
      s.ticket_status = domain::ticket::evolve(std::move(as_logged), event->payload).status;
    }
  }
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> unbase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(3 * (text.size() / 4), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++padding;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

// SHA-256 of a file, read in chunks: extracts of a time range can be large.
std::optional<std::string> file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return events::to_hex(std::span<const std::uint8_t>(digest, len));
}

json line_of(const events::LogAddress& address, const events::Event& e, std::string_view bytes) {
  return json{{"position", where(address)},
              {"stream", e.stream_id},
              {"version", e.version},
              {"type", events::type_name(e.payload)},
              {"occurred_at", format_time(e.meta.occurred_at_us)},
              {"occurred_at_us", e.meta.occurred_at_us},
              {"actor",
               {{"user_id", e.meta.actor.user_id},
                {"role", e.meta.actor.role},
                {"on_behalf_of", e.meta.actor.on_behalf_of}}},
              {"correlation_id", e.meta.correlation_id},
              {"fields", payload_fields(e.payload)},
              {"prev_hash", events::to_hex(e.prev_hash)},
              {"hash", events::to_hex(e.hash)},
              {"stored", base64(bytes)}};
}

}  // namespace

Result<void> walk_log(events::EventLog& log, const Progress& progress,
                      const std::function<void(std::vector<events::RecordedEvent>&)>& visit,
                      events::LogPosition* end_out) {
  auto end = log.end();
  if (!end) return fail(errc::log_error, end.error().message);
  std::uint64_t total = 0;
  for (auto n : end->next) total += n;
  auto opened = log.follow({});
  if (!opened) return fail(errc::log_error, opened.error().message);
  auto& cursor = **opened;
  struct Fetched {
    std::vector<events::RecordedEvent> events;
    events::Result<std::size_t> n = std::size_t{0};
  };
  // The cursor is only ever used by one thread at a time: a fetch runs between two get()s.
  auto fetch = [&cursor] {
    Fetched f;
    f.n = cursor.poll(f.events, 10'000, std::chrono::milliseconds(100));
    return f;
  };
  std::future<Fetched> next;
  if (!cursor.position().covers(*end)) next = std::async(std::launch::async, fetch);
  std::uint64_t done = 0;
  int idle = 0;
  while (next.valid()) {
    Fetched f = next.get();
    if (!f.n) return fail(errc::log_error, f.n.error().message);
    idle = *f.n == 0 ? idle + 1 : 0;
    // Reading the next batch overlaps with the work on this one.
    if (!cursor.position().covers(*end) && idle < 10) {
      next = std::async(std::launch::async, fetch);
    }
    visit(f.events);
    done += *f.n;
    if (progress) progress(done, total);
  }
  if (end_out != nullptr) *end_out = cursor.position();
  return {};
}

Result<VerifyReport> verify_log(events::EventLog& log, const Progress& progress) {
  VerifyReport report;
  Findings findings(report);
  std::unordered_map<std::string, StreamCheck> streams;
  std::unordered_map<std::string, StructureCheck> structures;
  events::LogPosition end;
  std::vector<events::Result<events::Event>> decoded;
  auto ok = walk_log(
      log, progress,
      [&](std::vector<events::RecordedEvent>& batch) {
        // Decoding and hashing, the costly part, on two threads; the checks, which follow each
        // stream in order, on one.
        decoded.assign(batch.size(), events::Result<events::Event>{});
        auto decode_range = [&](std::size_t from, std::size_t to) {
          for (std::size_t i = from; i < to; ++i) decoded[i] = events::decode(batch[i].bytes);
        };
        const std::size_t half = batch.size() / 2;
        auto first = std::async(std::launch::async, decode_range, 0, half);
        decode_range(half, batch.size());
        first.get();
        for (std::size_t i = 0; i < batch.size(); ++i) {
          const auto& r = batch[i];
          ++report.events;
          check_event(r.bytes, std::move(decoded[i]), r.stream_id, r.version, where(r.address),
                      streams, structures, findings);
        }
      },
      &end);
  if (!ok) return std::unexpected(ok.error());
  close_open_breaches(structures, findings);
  // The stream index must agree with the log: a head beyond the last event means events were
  // removed from the log's end of that stream.
  for (const auto& [stream, s] : streams) {
    auto head = log.stream_version(stream);
    if (!head) return fail(errc::log_error, head.error().message);
    if (*head != s.version) {
      findings.broken({stream, *head, "index",
                       "the stream index says version " + std::to_string(*head) +
                           " but the log holds versions up to " + std::to_string(s.version)});
    }
  }
  report.streams = streams.size();
  report.end_position = end.to_token();
  return report;
}

Result<ExtractSummary> write_extract(events::EventLog& log, const ExtractSelection& selection,
                                     const std::string& dir, const Progress& progress) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec)) {
    return fail(errc::invalid_argument, dir + " exists and is not empty");
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail(errc::io_error, "creating " + dir + ": " + ec.message());
  const std::string events_path = dir + "/events.jsonl";
  std::ofstream out(events_path, std::ios::trunc | std::ios::binary);
  if (!out) return fail(errc::io_error, "cannot write " + events_path);

  ExtractSummary summary;
  json streams = json::object();
  std::optional<Error> error;
  auto take = [&](const events::LogAddress& address, const events::Event& e,
                  std::string_view bytes) {
    auto& s = streams[e.stream_id];
    if (s.is_null()) {
      s = json{{"chains_from", events::to_hex(e.prev_hash)}, {"first_version", e.version}};
    }
    s["last_version"] = e.version;
    s["last_hash"] = events::to_hex(e.hash);
    s["events"] = s.value("events", 0) + 1;
    out << line_of(address, e, bytes).dump() << '\n';
    ++summary.events;
    summary.last_hash = events::to_hex(e.hash);
  };

  json selected;
  if (!selection.stream.empty()) {
    selected = json{{"stream", selection.stream}};
    auto history = read_history(log, selection.stream);
    if (!history) {
      error = history.error();
    } else if (history->empty()) {
      error = Error{errc::not_found, "no stream " + selection.stream + " in the log"};
    } else {
      // read_history verified the chain; the bytes are re-read for the extract to carry them.
      auto recorded = log.read_stream(selection.stream, 1, history->size());
      if (!recorded) {
        error = Error{errc::log_error, recorded.error().message};
      } else {
        for (std::size_t i = 0; i < history->size(); ++i) {
          take((*history)[i].address, (*history)[i].event, (*recorded)[i].bytes);
        }
      }
    }
  } else {
    selected = json{{"from", format_time(selection.from_us)}, {"to", format_time(selection.to_us)}};
    auto ok = walk_log(log, progress, [&](std::vector<events::RecordedEvent>& batch) {
      for (const auto& r : batch) {
        if (error) return;
        auto e = events::decode(r.bytes);
        if (!e) {
          error = Error{errc::corruption, e.error().message};
          return;
        }
        if (e->meta.occurred_at_us < selection.from_us ||
            e->meta.occurred_at_us > selection.to_us) {
          continue;
        }
        take(r.address, *e, r.bytes);
      }
    });
    if (!ok) error = ok.error();
    if (!error && summary.events == 0) {
      error = Error{errc::not_found, "no event occurred in the range asked"};
    }
  }
  out.close();
  if (!error && !out) error = Error{errc::io_error, "writing " + events_path + " failed"};
  if (error) {
    std::filesystem::remove_all(dir, ec);
    return std::unexpected(*error);
  }
  auto digest = file_sha256(events_path);
  if (!digest) return fail(errc::io_error, "cannot read back " + events_path);
  summary.streams = streams.size();
  json manifest{
      {"format", kFormat},        {"log", std::string(log.kind())}, {"selection", selected},
      {"events", summary.events}, {"last_hash", summary.last_hash}, {"events_sha256", *digest},
      {"streams", streams}};
  std::ofstream m(dir + "/manifest.json", std::ios::trunc);
  m << manifest.dump(2) << '\n';
  m.close();
  if (!m) return fail(errc::io_error, "writing " + dir + "/manifest.json failed");
  return summary;
}

Result<VerifyReport> verify_extract(const std::string& dir) {
  std::ifstream mf(dir + "/manifest.json");
  if (!mf) return fail(errc::io_error, "no manifest.json in " + dir);
  json manifest = json::parse(mf, nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object() || manifest.value("format", "") != kFormat ||
      !manifest.contains("streams") || !manifest["streams"].is_object()) {
    return fail(errc::invalid_argument,
                dir + "/manifest.json is not a " + std::string(kFormat) + " manifest");
  }
  const std::string events_path = dir + "/events.jsonl";
  std::ifstream in(events_path, std::ios::binary);
  if (!in) return fail(errc::io_error, "no events.jsonl in " + dir);

  VerifyReport report;
  Findings findings(report);
  auto digest = file_sha256(events_path);
  if (!digest || *digest != manifest.value("events_sha256", "")) {
    findings.broken({"", 0, "events.jsonl",
                     "the file's SHA-256 is not the one the manifest records: it was changed "
                     "after the extract was made"});
  }
  // Each stream starts from the hash the manifest says its first event chains to.
  std::unordered_map<std::string, StreamCheck> streams;
  std::unordered_map<std::string, StructureCheck> structures;
  for (const auto& [stream, s] : manifest["streams"].items()) {
    auto& c = streams[stream];
    c.version = s.value("first_version", std::uint64_t{1}) - 1;
    const std::string from = s.value("chains_from", "");
    for (std::size_t i = 0; i < c.hash.size() && 2 * i + 1 < from.size(); ++i) {
      // A malformed anchor leaves zeros, and the stream's first event then fails to chain.
      std::from_chars(from.data() + 2 * i, from.data() + 2 * i + 2, c.hash[i], 16);
    }
  }
  std::string line;
  std::uint64_t n = 0;
  std::string last_hash;
  while (std::getline(in, line)) {
    ++n;
    const std::string position = "line " + std::to_string(n);
    json j = json::parse(line, nullptr, false);
    std::optional<std::string> bytes;
    if (!j.is_discarded() && j.is_object() && j.contains("stored") && j["stored"].is_string()) {
      bytes = unbase64(j["stored"].get<std::string>());
    }
    if (!bytes) {
      findings.broken({"", 0, position, "not an event line (JSON with the stored bytes)"});
      continue;
    }
    const std::string stream = j.value("stream", "");
    const std::uint64_t version = j.value("version", std::uint64_t{0});
    if (!streams.contains(stream)) {
      findings.broken({stream, version, position, "stream not listed in the manifest"});
    }
    check_event(*bytes, events::decode(*bytes), stream, version, position, streams, structures,
                findings);
    // The readable fields must say what the stored bytes say.
    if (auto e = events::decode(*bytes)) {
      const json expected = line_of(events::LogAddress{}, *e, *bytes);
      for (const char* key : {"stream", "version", "type", "occurred_at_us", "actor", "fields",
                              "prev_hash", "hash"}) {
        if (j.value(key, json()) != expected[key]) {
          findings.broken(
              {stream, version, position,
               std::string("the readable \"") + key + "\" differs from the stored event's"});
        }
      }
      last_hash = events::to_hex(e->hash);
    }
    ++report.events;
  }
  if (report.events != manifest.value("events", std::uint64_t{0})) {
    findings.broken({"", 0, "manifest",
                     "the manifest counts " + std::to_string(manifest.value("events", 0)) +
                         " events, the file holds " + std::to_string(report.events)});
  }
  if (last_hash != manifest.value("last_hash", "")) {
    findings.broken({"", 0, "manifest", "the last event's hash is not the manifest's last_hash"});
  }
  for (const auto& [stream, s] : manifest["streams"].items()) {
    const auto& c = streams[stream];
    if (c.version != s.value("last_version", std::uint64_t{0}) ||
        events::to_hex(c.hash) != s.value("last_hash", "")) {
      findings.broken({stream, c.version, "manifest",
                       "the stream ends at another version or hash than the manifest records"});
    }
  }
  report.streams = streams.size();
  report.end_position = "line " + std::to_string(n);
  return report;
}

}  // namespace chorus::replay
