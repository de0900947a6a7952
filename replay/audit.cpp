#include "replay/audit.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "domain/invariants.h"
#include "domain/structure.h"
#include "domain/ticket.h"
#include "events/codec.h"
#include "events/embedded_log.h"
#include "projections/json_text.h"
#include "replay/timeline.h"

namespace chorus::replay {

using nlohmann::json;
using projections::json_text;

namespace {

// Tells a reader thread to stop (under its lock) and joins it, on every way out of the scope
// that started it.
struct ReaderJoiner {
  std::thread& t;
  std::mutex& mu;
  std::condition_variable& cv;
  bool& stop;
  ~ReaderJoiner() {
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    cv.notify_all();
    t.join();
  }
};

constexpr std::string_view kFormat = "chorus-audit-extract/1";

std::string where(const events::LogAddress& a) {
  return std::to_string(a.partition) + ":" + std::to_string(a.offset);
}

// What the walk remembers of each stream: just enough to check the next event.
struct StreamCheck {
  static constexpr std::uint32_t kNoStructure = UINT32_MAX;
  std::uint64_t version = 0;
  events::Hash hash{};
  bool chain_known = true;  // false after an event whose coordinates could not be read
  // Seen from version 1: only then can its invariants be judged (an extract of a time range
  // may start a stream mid-way).
  bool from_start = false;
  domain::ticket::Status ticket_status = domain::ticket::Status::none;
  std::uint32_t structure = kNoStructure;  // its StructureCheck in the walk's list, if any
  bool indexed = false;                    // its head was found in the stream index
  // The walk's placements of the stream's events (placement_mark summed), and the stream
  // index's, to be compared (embedded log).
  std::uint64_t placed = 0;
  std::uint64_t indexed_placed = 0;
  std::uint64_t indexed_last = 0;  // the last version the index places, while it is read
  bool placements_seen = false;    // the index places some version of it
  bool damaged = false;            // the walk found one of its events damaged (already reported)
  // A ticket's event was damaged since its status was last known: the next event's transition
  // cannot be judged (it would be judged from the status before the damage).
  bool ticket_status_unknown = false;
};

// One event's place in the embedded log, mixed (splitmix64) so that a sum over a stream's
// events tells whether the stream index places the same versions at the same offsets: any
// entry missing, extra or pointing elsewhere changes it, but by a 2^-64 chance. Pure.
std::uint64_t placement_mark(std::uint64_t version, std::uint64_t offset) {
  std::uint64_t z = version * 0x9E3779B97F4A7C15ull ^ (offset + 0xD1B54A32D192ED03ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Every stream the walk met, by id. A log holds millions of streams and every event looks its
// own up, so the table is flat: ids copied once into an arena (no allocation per stream),
// states in one vector, and an open-addressing index of (hash tag, entry) pairs probed in one
// array, where std::unordered_map<std::string, ...> chased a node and a string per lookup.
// Not thread-safe.
class StreamTable {
 public:
  struct Entry {
    std::string_view id;  // in the arena
    std::uint64_t hash = 0;
    StreamCheck check;
  };

  [[nodiscard]] static std::uint64_t hash_of(std::string_view id) noexcept {
    return std::hash<std::string_view>{}(id);
  }

  // The state of stream `id`, fresh the first time. The reference lasts until the next call.
  StreamCheck& operator[](std::string_view id) { return at(id, hash_of(id)); }

  // The same, for an id whose hash_of() is `h` (computed ahead, on another thread).
  StreamCheck& at(std::string_view id, std::uint64_t h) {
    if (2 * (entries_.size() + 1) > index_.size()) grow();
    const std::size_t mask = index_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::uint64_t slot = index_[i];
      if (slot == 0) {
        entries_.push_back({intern(id), h, {}});
        index_[i] = (h & kTagMask) | entries_.size();
        return entries_.back().check;
      }
      auto& e = entries_[(slot & ~kTagMask) - 1];
      if ((slot & kTagMask) == (h & kTagMask) && e.id == id) return e.check;
    }
  }

  // The state of stream `id`, or null when the walk has not met it.
  [[nodiscard]] const StreamCheck* find(std::string_view id) const {
    if (index_.empty()) return nullptr;
    const std::uint64_t h = std::hash<std::string_view>{}(id);
    const std::size_t mask = index_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::uint64_t slot = index_[i];
      if (slot == 0) return nullptr;
      const auto& e = entries_[(slot & ~kTagMask) - 1];
      if ((slot & kTagMask) == (h & kTagMask) && e.id == id) return &e.check;
    }
  }

  // Asks the CPU to load what at(id, h) will read first, so that a lookup a few events ahead
  // does not wait on memory: the index slot, or (`entry`, once the slot is likely loaded) the
  // entry it names. The table holds millions of streams, far more than the caches.
  void prefetch(std::uint64_t h, bool entry) const noexcept {
    if (index_.empty()) return;
    const std::uint64_t* slot = &index_[h & (index_.size() - 1)];
    if (!entry) {
      __builtin_prefetch(slot);
    } else if (*slot != 0 && (*slot & ~kTagMask) <= entries_.size()) {
      __builtin_prefetch(&entries_[(*slot & ~kTagMask) - 1]);
    }
  }

  [[nodiscard]] StreamCheck* find(std::string_view id) {
    return const_cast<StreamCheck*>(std::as_const(*this).find(id));
  }

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] const std::vector<Entry>& entries() const { return entries_; }

 private:
  // A slot is the high half of the id's hash (to skip most comparisons) and entry index + 1
  // (0: empty slot).
  static constexpr std::uint64_t kTagMask = 0xFFFF'FFFF'0000'0000;
  static constexpr std::size_t kChunk = 1 << 20;

  std::string_view intern(std::string_view id) {
    if (chunks_.empty() || used_ + id.size() > chunk_size_) {
      chunk_size_ = std::max(kChunk, id.size());
      chunks_.push_back(std::make_unique<char[]>(chunk_size_));
      used_ = 0;
    }
    char* at = chunks_.back().get() + used_;
    std::memcpy(at, id.data(), id.size());
    used_ += id.size();
    return {at, id.size()};
  }

  // Doubles the index (kept at most half full, so probe sequences stay short).
  void grow() {
    std::vector<std::uint64_t> bigger(std::max<std::size_t>(1024, 2 * index_.size()), 0);
    const std::size_t mask = bigger.size() - 1;
    for (std::size_t k = 0; k < entries_.size(); ++k) {
      std::size_t i = entries_[k].hash & mask;
      while (bigger[i] != 0) i = (i + 1) & mask;
      bigger[i] = (entries_[k].hash & kTagMask) | (k + 1);
    }
    index_.swap(bigger);
  }

  std::vector<Entry> entries_;
  std::vector<std::uint64_t> index_;
  std::vector<std::unique_ptr<char[]>> chunks_;
  std::size_t chunk_size_ = 0, used_ = 0;
};

// What the walk remembers of each structure: its state folded by the domain's evolve(), and the
// invariant breaches still open (the position where each began).
struct StructureCheck {
  domain::structure::State state;
  bool had_gp = false;
  std::optional<domain::structure::Service> public_invoices;  // as created
  std::string no_gp_since, no_gp_what;
  // Where the walk met the naming of the present GP, and how many checked events came before.
  std::string gp_named_at;
  std::uint64_t gp_named_seq = 0;
  std::string services_since, services_what;
};

// What the walk remembers across streams for the invariants.
struct StructureChecks {
  // Structures in the order the walk met them, each with its stream id.
  std::vector<std::pair<std::string, StructureCheck>> structures;
  // Accounts deactivated and not reactivated since, by user id: where the walk met the
  // deactivation, and how many checked events came before.
  std::unordered_map<std::string, std::pair<std::string, std::uint64_t>> deactivated_accounts;
  std::uint64_t seq = 0;  // events checked so far
};

// Where an event is, for findings: its log address, or a line of an extract. Made into text
// only when a finding needs it, which most events never do.
struct Where {
  const events::LogAddress* address = nullptr;
  std::uint64_t line = 0;
  [[nodiscard]] std::string text() const {
    return address != nullptr ? where(*address) : "line " + std::to_string(line);
  }
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

// What can be made of one stored event alone, before the checks that follow its stream in log
// order: its view (hash checked), and what the invariants of its aggregate read. Ticket events
// (most of the log) decode only their payload, for the status table; structure events decode
// whole, as their invariants read the actor too, and so do account events (deactivations, for
// invariant 1); other streams decode nothing.
struct Prepared {
  bool ready = false;
  events::Result<events::EventView> view = events::EventView{};
  std::uint64_t stream_hash = 0;  // StreamTable::hash_of() the view's stream id
  std::optional<events::Result<events::Payload>> payload;  // tickets: for the status table
  // Structures and accounts (few): the invariants read the whole event. Held apart, as an Event is
  // large and a batch holds thousands of Prepared.
  std::unique_ptr<events::Result<events::Event>> event;
};

// Prepares `p` from `bytes` in place, overwriting what it held (a batch's Prepared are reused,
// not rebuilt: moving large temporaries cost more than the hash).
void prepare(std::string_view bytes, Prepared& p) {
  p.ready = true;
  p.view = events::view(bytes);
  p.event.reset();
  // Every byte: the envelope around the hashed body too.
  if (p.view) {
    if (auto envelope = events::check_envelope(bytes); !envelope) {
      p.view = std::unexpected(envelope.error());
    }
  }
  if (!p.view) {
    p.payload.reset();
    return;
  }
  p.stream_hash = StreamTable::hash_of(p.view->stream_id);
  const auto kind = aggregate_kind(p.view->stream_id);
  if (kind == "ticket") {
    p.payload = events::decode_payload(*p.view);
  } else {
    p.payload.reset();
    if (kind == "structure" || kind == "account") {
      p.event = std::make_unique<events::Result<events::Event>>(events::decode(bytes));
    }
  }
}

// A view points into its bytes only when they are 8-aligned (else into a per-thread copy, see
// events::EventView): only those are prepared away from the thread that checks them.
bool aligned8(std::string_view bytes) {
  return reinterpret_cast<std::uintptr_t>(bytes.data()) % 8 == 0;
}

// Checks one structure event against the structure's invariants. `at` names the event in
// findings.
void check_structure(std::string_view stream, const events::Event& event, const Where& at,
                     std::uint64_t seq, StructureCheck& c, Findings& findings) {
  namespace inv = domain::invariants;
  const std::string position = at.text();
  if (auto breach = inv::decision_entitled(c.state, event.payload, event.meta.actor)) {
    findings.breach({4, std::string(stream), *breach, position, position});
  }
  const std::string gp_before = c.state.gp;
  c.state = domain::structure::evolve(std::move(c.state), event.payload);
  c.had_gp = c.had_gp || !c.state.gp.empty();
  if (c.state.gp != gp_before) {
    c.gp_named_at = position;
    c.gp_named_seq = seq;
  }
  if (!c.public_invoices && !c.state.services.empty()) c.public_invoices = c.state.services.front();
  // An interval opens at the event that breaks an invariant and closes at the one that mends
  // it: the auditor learns for how long, not only that.
  auto track = [&](int number, std::optional<std::string> now_broken, std::string& since,
                   std::string& what) {
    if (now_broken && since.empty()) {
      since = position;
      what = std::move(*now_broken);
    } else if (!now_broken && !since.empty()) {
      findings.breach({number, std::string(stream), what, since, position});
      since.clear();
    }
  };
  track(1, inv::one_main_manager(c.state, c.had_gp), c.no_gp_since, c.no_gp_what);
  if (c.public_invoices) {
    track(2, inv::services_sound(c.state, *c.public_invoices), c.services_since, c.services_what);
  }
}

// Remembers the account deactivations (and reactivations) for close_open_breaches().
void check_account(const events::Event& event, const Where& at, StructureChecks& checks) {
  if (const auto* e = std::get_if<events::AccountDeactivated>(&event.payload)) {
    checks.deactivated_accounts[e->user_id] = {at.text(), checks.seq};
  } else if (const auto* r = std::get_if<events::AccountReactivated>(&event.payload)) {
    checks.deactivated_accounts.erase(r->user_id);
  }
}

// Breaches still open when the walk ends held until the end. A GP whose account is deactivated
// is judged here, on the final states: two streams' events are in log order only on a log of
// one partition (the embedded log), so an interval of such a breach that was mended before the
// end is not reported; one that lasts is, from the later of the naming and the deactivation.
void close_open_breaches(StructureChecks& checks, Findings& findings) {
  for (auto& [stream, c] : checks.structures) {
    if (!c.no_gp_since.empty()) findings.breach({1, stream, c.no_gp_what, c.no_gp_since, ""});
    const auto deactivated = checks.deactivated_accounts.find(c.state.gp);
    if (auto what = domain::invariants::main_manager_account_active(
            c.state, deactivated != checks.deactivated_accounts.end())) {
      const auto& [at, seq] = deactivated->second;
      findings.breach({1, stream, *what, seq > c.gp_named_seq ? at : c.gp_named_at, ""});
    }
    if (!c.services_since.empty()) {
      findings.breach({2, stream, c.services_what, c.services_since, ""});
    }
  }
}

// Checks one event, prepared from `bytes`, against what came before in its stream, and the
// invariants it touches. The fallbacks name the event when its bytes do not even read.
void check_event(std::string_view bytes, const Prepared& p, std::string_view fallback_stream,
                 std::uint64_t fallback_version, const Where& at, StreamTable& streams,
                 StructureChecks& checks, Findings& findings) {
  std::string_view stream = fallback_stream;
  std::uint64_t version = fallback_version;
  const events::Hash* prev_hash = nullptr;
  const events::Hash* hash = nullptr;
  std::optional<events::EventCoordinates> peeked;
  if (p.view) {
    stream = p.view->stream_id;
    version = p.view->version;
    prev_hash = &p.view->prev_hash;
    hash = &p.view->hash;
  } else if (auto coords = events::peek(bytes)) {
    peeked = std::move(*coords);  // the body was altered but the envelope still reads
    stream = peeked->stream_id;
    version = peeked->version;
    prev_hash = &peeked->prev_hash;
    hash = &peeked->hash;
  }
  // The first failure of the event's own checks, if any: then its chain is still followed, but
  // not its invariants.
  const events::Error* failure = nullptr;
  if (!p.view) {
    failure = &p.view.error();
  } else if (p.payload && !*p.payload) {
    failure = &p.payload->error();
  } else if (p.event && !*p.event) {
    failure = &p.event->error();
  }
  if (failure != nullptr)
    findings.broken({std::string(stream), version, at.text(), failure->message});
  // Not even the envelope reads, and the reader did not name the stream (a scan does not):
  // the chain of its stream then breaks at the next event, which names it.
  if (hash == nullptr && stream.empty()) return;
  auto& s = p.view ? streams.at(stream, p.stream_hash) : streams[stream];
  if (at.address != nullptr) s.placed += placement_mark(version, at.address->offset);
  if (failure != nullptr) s.damaged = s.ticket_status_unknown = true;
  if (hash == nullptr) {
    s.version = version;
    s.chain_known = false;
    return;
  }
  if (version != s.version + 1) {
    findings.broken({std::string(stream), version, at.text(),
                     "version " + std::to_string(version) + " follows version " +
                         std::to_string(s.version) + " of its stream"});
  } else if (s.chain_known && *prev_hash != s.hash) {
    findings.broken({std::string(stream), version, at.text(),
                     "prev_hash " + events::to_hex(*prev_hash) + " is not the hash of version " +
                         std::to_string(s.version) + " (" + events::to_hex(s.hash) + ")"});
  }
  s.version = version;
  s.hash = *hash;
  s.chain_known = true;
  if (failure != nullptr) return;
  if (version == 1) s.from_start = true;
  if (!s.from_start) return;
  ++checks.seq;
  if (p.event && aggregate_kind(stream) == "account") {
    check_account(**p.event, at, checks);
  } else if (p.event) {
    if (s.structure == StreamCheck::kNoStructure) {
      s.structure = static_cast<std::uint32_t>(checks.structures.size());
      checks.structures.emplace_back(std::string(stream), StructureCheck{});
    }
    check_structure(stream, **p.event, at, checks.seq, checks.structures[s.structure].second,
                    findings);
  } else if (p.payload) {
    // Invariant 3: the status table. A breach is one event; the ticket's status then follows
    // the event's own target so that later events are judged from where the log says it is.
    // After a damaged event the status is unknown: no event is judged until one that sets the
    // status (whatever it was before) tells where the ticket is; the others (a comment, an
    // assignment) leave it unknown.
    auto next = domain::ticket::transition(s.ticket_status, **p.payload);
    if (s.ticket_status_unknown) {
      // An event no ticket stream may hold is a breach whatever the status.
      if (!next && next.error().code != domain::errc::wrong_status) {
        findings.breach({3, std::string(stream), next.error().message, at.text(), at.text()});
      }
      domain::ticket::State from_nowhere;  // Status::none: what the event alone sets
      const auto set = domain::ticket::evolve(std::move(from_nowhere), **p.payload).status;
      if (set != domain::ticket::Status::none) {
        s.ticket_status = set;
        s.ticket_status_unknown = false;
      }
      return;
    }
    if (next) {
      s.ticket_status = *next;
    } else {
      findings.breach({3, std::string(stream), next.error().message, at.text(), at.text()});
      domain::ticket::State as_logged;
      as_logged.status = s.ticket_status;
      s.ticket_status = domain::ticket::evolve(std::move(as_logged), **p.payload).status;
    }
  }
}

// A second thread that runs one task at a time for the walk, the same thread for the whole walk
// (a thread started per batch costs its start and a fresh malloc arena each time). Not
// thread-safe: one caller.
class SecondHand {
 public:
  SecondHand() : thread_([this] { loop(); }) {}
  ~SecondHand() {
    {
      std::lock_guard lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  SecondHand(const SecondHand&) = delete;
  SecondHand& operator=(const SecondHand&) = delete;

  // Starts `task`; the previous one must have been waited for.
  void run(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      task_ = std::move(task);
      pending_ = true;
    }
    cv_.notify_all();
  }
  // Returns once the task started last has finished.
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !pending_; });
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return quit_ || pending_; });
        if (!pending_) return;
        task = std::move(task_);
      }
      task();
      {
        std::lock_guard lock(mu_);
        pending_ = false;
      }
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> task_;
  bool pending_ = false, quit_ = false;
  std::thread thread_;  // last: started once the members it uses exist
};

// One event as the checks of verify_log read it, whatever read the log.
struct Item {
  std::string_view bytes;
  std::string_view stream;  // the reader's coordinates: "" when it has none (a scan)
  std::uint64_t version = 0;
  events::LogAddress address;
};

// The checks of verify_log, batch after batch in log order. Hashing and decoding, which need
// nothing but the event, run on two threads; the checks, which follow each stream in log order,
// on the caller's. Each thread prepares the same half of every batch, overwriting what it
// prepared the batch before: its payloads are freed where allocated. Not thread-safe: one caller.
class LogChecker {
 public:
  explicit LogChecker(VerifyReport& report) : report_(report), findings_(report) {}

  void check(const std::vector<Item>& batch) {
    current_ = &batch;
    prepared_.resize(batch.size());
    const std::size_t half = batch.size() / 2;
    helper_.run([this, half] { prepare_range(0, half); });
    prepare_range(half, batch.size());
    helper_.wait();
    // Streams are looked up a few events ahead of their check (see StreamTable::prefetch).
    auto ahead = [&](std::size_t j, bool entry) {
      if (j < batch.size() && prepared_[j].ready && prepared_[j].view) {
        streams_.prefetch(prepared_[j].stream_hash, entry);
      }
    };
    for (std::size_t i = 0; i < batch.size(); ++i) {
      ahead(i + 16, false);
      ahead(i + 8, true);
      const auto& r = batch[i];
      if (!prepared_[i].ready) prepare(r.bytes, prepared_[i]);
      ++report_.events;
      check_event(r.bytes, prepared_[i], r.stream, r.version, Where{&r.address, 0}, streams_,
                  structures_, findings_);
    }
  }

  // After the walk: breaches still open held until the end.
  void close() { close_open_breaches(structures_, findings_); }

  StreamTable& streams() { return streams_; }
  Findings& findings() { return findings_; }

 private:
  void prepare_range(std::size_t from, std::size_t to) {
    const auto& batch = *current_;
    for (std::size_t i = from; i < to; ++i) {
      if (aligned8(batch[i].bytes)) {
        prepare(batch[i].bytes, prepared_[i]);
      } else {
        prepared_[i].ready = false;
      }
    }
  }

  VerifyReport& report_;
  Findings findings_;
  StreamTable streams_;
  StructureChecks structures_;
  std::vector<Prepared> prepared_;
  const std::vector<Item>* current_ = nullptr;
  SecondHand helper_;  // last: its thread stops before the members it uses go
};

// Runs `fill(batch)` on a reader thread while `visit(batch)` works on the batch filled before:
// two batches go round, each refilled by the reader once visited (so its memory, reused, stays
// the reader's). fill() returns how many events it read, 0 at the end. Fails with log_error when
// fill() fails; batches visited before stay visited.
template <class Batch, class Fill, class Visit>
Result<void> pipelined(Fill fill, Visit visit) {
  std::mutex mu;
  std::condition_variable cv;
  Batch batches[2];
  bool full[2] = {false, false};
  events::Result<std::size_t> filled[2];
  bool stop = false;
  std::thread reader([&] {
    for (int k = 0;; k ^= 1) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stop || !full[k]; });
        if (stop) return;
      }
      auto n = fill(batches[k]);
      const bool last = !n || *n == 0;
      {
        std::lock_guard lock(mu);
        filled[k] = std::move(n);
        full[k] = true;
      }
      cv.notify_all();
      if (last) return;
    }
  });
  ReaderJoiner joiner{reader, mu, cv, stop};
  for (int k = 0;; k ^= 1) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return full[k]; });
    }
    if (!filled[k]) return fail(errc::log_error, filled[k].error().message);
    if (*filled[k] == 0) return {};
    visit(batches[k]);
    {
      std::lock_guard lock(mu);
      full[k] = false;
    }
    cv.notify_all();
  }
}

// The stream index's placements (where each version of a stream is stored), which history,
// state and stream extracts read, against the walk's: every stream's versions from 1 to the
// last the log holds, each at the offset that holds it. Read in one pass in key order; a
// stream whose sums differ is looked at again entry by entry to name the wrong one.
Result<void> check_placements(events::LogScan& scan, StreamTable& streams,
                              std::vector<BrokenLink>& index) {
  std::string current;  // the stream whose placements are being read
  StreamCheck* check = nullptr;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> entries;  // (version, offset)
  bool gap_reported = false;
  std::optional<events::Error> failed;
  auto finish_stream = [&] {
    if (current.empty()) return;
    if (check == nullptr) {
      index.push_back({current, entries.empty() ? 0 : entries.back().first, "index",
                       "the stream index places versions of this stream but the log holds none"});
      return;
    }
    if (gap_reported) return;
    if (check->indexed_last != check->version) {
      index.push_back({current, check->indexed_last, "index",
                       "the stream index places versions up to " +
                           std::to_string(check->indexed_last) +
                           " but the log holds versions up to " + std::to_string(check->version)});
      return;
    }
    // A stream with a damaged event is reported there: its index is not blamed for it.
    if (check->indexed_placed == check->placed || check->damaged) return;
    // Some entry points at another event: read each to name it.
    for (const auto& [version, offset] : entries) {
      auto bytes = scan.event_at(offset);
      if (!bytes) {
        failed = bytes.error();
        return;
      }
      std::string holds = "no event";
      if (*bytes) {
        auto coords = events::peek(**bytes);
        if (coords && coords->stream_id == current && coords->version == version) continue;
        holds = coords ? coords->stream_id + " v" + std::to_string(coords->version)
                       : "an event whose envelope does not read";
      }
      index.push_back({current, version, where(events::LogAddress{0, offset}),
                       "the stream index places version " + std::to_string(version) +
                           " at offset " + std::to_string(offset) + ", which holds " + holds});
      return;
    }
  };
  auto read = scan.placements([&](const events::IndexedPlacement& p) {
    if (failed) return;
    if (!p.key_well_formed) {
      index.push_back({printable(p.stream_id), 0, "index",
                       "a key of the stream index is not a stream id and a version"});
      return;
    }
    if (p.stream_id != current) {
      finish_stream();
      current = std::string(p.stream_id);
      check = streams.find(current);
      if (check != nullptr) check->placements_seen = true;
      entries.clear();
      gap_reported = false;
    }
    if (!p.well_formed) {
      if (!gap_reported) {
        index.push_back({current, p.version, "index",
                         "the stream index's placement of version " + std::to_string(p.version) +
                             " is not an offset"});
      }
      gap_reported = true;
      return;
    }
    entries.emplace_back(p.version, p.offset);
    if (check == nullptr || gap_reported) return;
    if (p.version != check->indexed_last + 1) {
      index.push_back({current, check->indexed_last + 1, "index",
                       "the stream index places no version " +
                           std::to_string(check->indexed_last + 1) + " (its next is version " +
                           std::to_string(p.version) + ")"});
      gap_reported = true;
      return;
    }
    check->indexed_last = p.version;
    check->indexed_placed += placement_mark(p.version, p.offset);
  });
  if (!failed) finish_stream();
  if (failed) return fail(errc::log_error, failed->message);
  if (!read) return fail(errc::log_error, read.error().message);
  for (const auto& e : streams.entries()) {
    if (e.check.version > 0 && !e.check.placements_seen) {
      index.push_back({std::string(e.id), 1, "index",
                       "the stream index places no version of this stream (the log holds "
                       "versions up to " +
                           std::to_string(e.check.version) + ")"});
    }
  }
  return {};
}

// verify_log on the embedded log: read in place by a scan (events/embedded_log.h), and the stream
// index's heads read in one pass in key order, each looked up in the walk's table (a head of a
// stream the log does not hold is caught too).
Result<void> verify_scanned(events::LogScan& scan, std::uint64_t total, const Progress& progress,
                            LogChecker& checker, VerifyReport& report) {
  constexpr std::size_t kBatch = 10'000;
  std::vector<Item> items;
  std::uint64_t done = 0, end = 0;
  auto walked = pipelined<events::StoredBatch>(
      [&](events::StoredBatch& batch) { return scan.next(batch, kBatch); },
      [&](events::StoredBatch& batch) {
        items.resize(batch.records.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
          items[i].bytes = batch.records[i].bytes;
          items[i].address = {0, batch.records[i].offset};
        }
        checker.check(items);
        done += items.size();
        end = batch.records.back().offset + 1;
        if (progress) progress(done, total);
      });
  if (!walked) return std::unexpected(walked.error());
  checker.close();
  report.end_position = events::LogPosition{{end}}.to_token();

  auto& streams = checker.streams();
  std::vector<BrokenLink> index;
  auto read = scan.heads([&](const events::IndexedHead& head) {
    StreamCheck* s = streams.find(head.stream_id);
    if (s == nullptr) {
      index.push_back({std::string(head.stream_id), head.version, "index",
                       "the stream index says version " + std::to_string(head.version) +
                           " but the log holds no event of this stream"});
      return;
    }
    s->indexed = true;
    if (!head.well_formed) {
      index.push_back({std::string(head.stream_id), 0, "index",
                       "the stream index holds a malformed head for this stream"});
    } else if (head.version != s->version) {
      index.push_back({std::string(head.stream_id), head.version, "index",
                       "the stream index says version " + std::to_string(head.version) +
                           " but the log holds versions up to " + std::to_string(s->version)});
    } else if (s->chain_known && head.hash != s->hash) {
      // The next append would chain to the index's hash, not to the log's last event.
      index.push_back({std::string(head.stream_id), head.version, "index",
                       "the stream index's hash " + events::to_hex(head.hash) +
                           " is not the hash of version " + std::to_string(s->version) + " (" +
                           events::to_hex(s->hash) + ")"});
    }
  });
  if (!read) return fail(errc::log_error, read.error().message);
  for (const auto& e : streams.entries()) {
    if (!e.check.indexed) {
      index.push_back({std::string(e.id), 0, "index",
                       "the stream index says version 0 but the log holds versions up to " +
                           std::to_string(e.check.version)});
    }
  }
  if (auto ok = check_placements(scan, streams, index); !ok) return ok;
  // In stream-id order, as the cursor's path reports them.
  std::stable_sort(index.begin(), index.end(),
                   [](const auto& x, const auto& y) { return x.stream < y.stream; });
  for (auto& b : index) checker.findings().broken(std::move(b));
  report.streams = streams.size();
  return {};
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
  // One reader thread fills batches while `visit` works on the one before. Two batches go
  // round, and the reader empties each before refilling it: the events' memory is then freed
  // by the thread that allocated it, where glibc's malloc is fast (frees from another thread,
  // or from a thread started per batch, cost the walk as much as the reading). The cursor is
  // only ever used by the reader until it is joined.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Fetched> full;
  std::vector<std::vector<events::RecordedEvent>> spare(2);
  bool reader_done = false, stop = false;
  std::thread reader([&] {
    int idle = 0;
    for (;;) {
      std::vector<events::RecordedEvent> batch;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stop || !spare.empty(); });
        if (stop) break;
        batch = std::move(spare.back());
        spare.pop_back();
      }
      batch.clear();
      if (cursor.position().covers(*end) || idle >= 10) break;
      Fetched f;
      f.events = std::move(batch);
      f.n = cursor.poll(f.events, 10'000, std::chrono::milliseconds(100));
      const bool failed = !f.n;
      idle = !failed && *f.n == 0 ? idle + 1 : 0;
      {
        std::lock_guard lock(mu);
        full.push_back(std::move(f));
      }
      cv.notify_all();
      if (failed) break;
    }
    std::lock_guard lock(mu);
    reader_done = true;
    cv.notify_all();
  });
  ReaderJoiner joiner{reader, mu, cv, stop};  // stops and joins the reader on every way out
  std::uint64_t done = 0;
  for (;;) {
    Fetched f;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return !full.empty() || reader_done; });
      if (full.empty()) break;
      f = std::move(full.front());
      full.pop_front();
    }
    if (!f.n) return fail(errc::log_error, f.n.error().message);
    visit(f.events);
    done += *f.n;
    if (progress) progress(done, total);
    {
      std::lock_guard lock(mu);
      spare.push_back(std::move(f.events));
    }
    cv.notify_all();
  }
  if (end_out != nullptr) *end_out = cursor.position();  // the reader is done with the cursor
  return {};
}

Result<VerifyReport> verify_log(events::EventLog& log, const Progress& progress) {
  VerifyReport report;
  LogChecker checker(report);
  if (auto scan = events::scan_embedded_log(log)) {
    auto end = log.end();
    if (!end) return fail(errc::log_error, end.error().message);
    std::uint64_t total = 0;
    for (auto n : end->next) total += n;
    if (auto ok = verify_scanned(*scan, total, progress, checker, report); !ok) {
      return std::unexpected(ok.error());
    }
    return report;
  }
  events::LogPosition end;
  std::vector<Item> items;
  auto ok = walk_log(
      log, progress,
      [&](std::vector<events::RecordedEvent>& batch) {
        items.resize(batch.size());
        for (std::size_t i = 0; i < batch.size(); ++i) {
          items[i] = {batch[i].bytes, batch[i].stream_id, batch[i].version, batch[i].address};
        }
        checker.check(items);
      },
      &end);
  if (!ok) return std::unexpected(ok.error());
  checker.close();
  auto& streams = checker.streams();
  // The stream index must agree with the log: a head beyond the last event means events were
  // removed from the log's end of that stream. Asked in id order, the index is read in its own
  // key order rather than at random; and on two threads (stream_version() is thread-safe), as
  // millions of lookups that follow the walk would otherwise leave a core idle.
  std::vector<const StreamTable::Entry*> by_id;
  by_id.reserve(streams.size());
  for (const auto& e : streams.entries()) by_id.push_back(&e);
  std::sort(by_id.begin(), by_id.end(), [](const auto* x, const auto* y) { return x->id < y->id; });
  struct HeadsChecked {
    std::vector<BrokenLink> broken;
    std::optional<Error> error;
  };
  auto check_heads = [&](std::size_t from, std::size_t to) {
    HeadsChecked out;
    for (std::size_t i = from; i < to; ++i) {
      const auto& e = *by_id[i];
      auto head = log.stream_version(e.id);
      if (!head) {
        out.error = Error{errc::log_error, head.error().message};
        break;
      }
      if (*head != e.check.version) {
        out.broken.push_back({std::string(e.id), *head, "index",
                              "the stream index says version " + std::to_string(*head) +
                                  " but the log holds versions up to " +
                                  std::to_string(e.check.version)});
      }
    }
    return out;
  };
  const std::size_t half = by_id.size() / 2;
  auto first_half = std::async(std::launch::async, check_heads, 0, half);
  HeadsChecked second_half = check_heads(half, by_id.size());
  HeadsChecked heads[] = {first_half.get(), std::move(second_half)};
  for (auto& h : heads) {
    if (h.error) return std::unexpected(*h.error);
    for (auto& b : h.broken) checker.findings().broken(std::move(b));
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
  // Written under a name of its own until whole: a run stopped half-way (killed, or stopped by a
  // broken log invariant) leaves no events.jsonl to be taken for an extract.
  const std::string events_path = dir + "/events.jsonl";
  const std::string partial_path = events_path + ".partial";
  std::ofstream out(partial_path, std::ios::trunc | std::ios::binary);
  if (!out) return fail(errc::io_error, "cannot write " + partial_path);

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
    out << json_text(line_of(address, e, bytes)) << '\n';
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
    // The bounds asked for only: an open end is no time.
    selected = json::object();
    if (selection.from_us) selected["from"] = format_time(*selection.from_us);
    if (selection.to_us) selected["to"] = format_time(*selection.to_us);
    auto ok = walk_log(log, progress, [&](std::vector<events::RecordedEvent>& batch) {
      for (const auto& r : batch) {
        if (error) return;
        auto e = events::decode(r.bytes);
        if (!e) {
          error = Error{errc::corruption, e.error().message};
          return;
        }
        if (e->meta.occurred_at_us < selection.from_us.value_or(INT64_MIN) ||
            e->meta.occurred_at_us > selection.to_us.value_or(INT64_MAX)) {
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
  if (!error && !out) error = Error{errc::io_error, "writing " + partial_path + " failed"};
  if (error) {
    std::filesystem::remove_all(dir, ec);
    return std::unexpected(*error);
  }
  std::filesystem::rename(partial_path, events_path, ec);
  if (ec) return fail(errc::io_error, "renaming " + partial_path + ": " + ec.message());
  auto digest = file_sha256(events_path);
  if (!digest) return fail(errc::io_error, "cannot read back " + events_path);
  summary.streams = streams.size();
  json manifest{
      {"format", kFormat},        {"log", std::string(log.kind())}, {"selection", selected},
      {"events", summary.events}, {"last_hash", summary.last_hash}, {"events_sha256", *digest},
      {"streams", streams}};
  std::ofstream m(dir + "/manifest.json", std::ios::trunc);
  m << json_text(manifest, 2) << '\n';
  m.close();
  if (!m) return fail(errc::io_error, "writing " + dir + "/manifest.json failed");
  auto anchor = file_sha256(dir + "/manifest.json");
  if (!anchor) return fail(errc::io_error, "cannot read back " + dir + "/manifest.json");
  summary.manifest_sha256 = *anchor;
  return summary;
}

namespace {

// An extract is checked away from the system: it is untrusted input, read without a throw.
// Nesting deeper than this (a line of the tool's holds 4 levels) is refused before anything
// walks it recursively (a compare, a dump), which 100,000 levels would take off the stack.
constexpr int kMaxExtractDepth = 64;

// Bytes of one line (or of the manifest) beyond which it is refused unread: a stored event is
// at most a few hundred kilobytes, its line a third more; a sparse terabyte of NULs is one line.
constexpr std::size_t kMaxExtractLine = std::size_t{16} << 20;

// `text` as JSON, discarded when it is not, or nested deeper than kMaxExtractDepth (what lies
// deeper is dropped as it is read, so a line of brackets builds no tree).
json parse_untrusted(std::string_view text) {
  bool too_deep = false;
  json j = json::parse(
      text,
      [&](int depth, json::parse_event_t, json&) {
        if (depth <= kMaxExtractDepth) return true;
        too_deep = true;
        return false;
      },
      /*allow_exceptions=*/false);
  if (too_deep) return json(json::value_t::discarded);
  return j;
}

// The next line of `in` into `line`, without its '\n'. False at the end. A line over
// kMaxExtractLine is skipped to its end and comes back empty, with `too_long` set. Reads the
// stream's buffer directly: an extract is read a byte at a time.
bool bounded_line(std::istream& in, std::string& line, bool& too_long) {
  line.clear();
  too_long = false;
  std::streambuf* buffer = in.rdbuf();
  bool any = false;
  for (int c = buffer->sbumpc(); c != std::char_traits<char>::eof(); c = buffer->sbumpc()) {
    any = true;
    if (c == '\n') break;
    if (line.size() < kMaxExtractLine) {
      line.push_back(static_cast<char>(c));
    } else {
      too_long = true;
    }
  }
  if (too_long) line.clear();
  return any;
}

// Members of untrusted objects: nullopt when absent or of another type.
std::optional<std::string> text_member(const json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}
std::optional<std::uint64_t> count_member(const json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<std::uint64_t>();
}

// A regular file (not a directory, a device or a FIFO, which could be read forever), or why not.
std::optional<std::string> not_a_regular_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return "no " + path;
  if (!std::filesystem::is_regular_file(status)) return path + " is not a regular file";
  return std::nullopt;
}

}  // namespace

Result<VerifyReport> verify_extract(const std::string& dir,
                                    std::string_view expected_manifest_sha256) {
  const std::string manifest_path = dir + "/manifest.json";
  const std::string events_path = dir + "/events.jsonl";
  for (const auto& path : {manifest_path, events_path}) {
    if (auto why = not_a_regular_file(path)) return fail(errc::io_error, *why);
  }
  std::ifstream mf(manifest_path, std::ios::binary);
  if (!mf) return fail(errc::io_error, "cannot read " + manifest_path);
  std::ifstream in(events_path, std::ios::binary);
  if (!in) return fail(errc::io_error, "cannot read " + events_path);

  VerifyReport report;
  Findings findings(report);
  // What the manifest must hold, of the right types; anything else is damage to the extract.
  std::error_code size_error;
  const bool manifest_too_long =
      std::filesystem::file_size(manifest_path, size_error) > kMaxExtractLine || size_error;
  const std::string manifest_text =
      manifest_too_long ? std::string() : std::string(std::istreambuf_iterator<char>(mf), {});
  const json manifest =
      manifest_too_long ? json(json::value_t::discarded) : parse_untrusted(manifest_text);
  // Exactly the members the tool writes, of their types; hashes as it writes them.
  auto members_are = [](const json& object, std::initializer_list<const char*> names) {
    if (!object.is_object() || object.size() != names.size()) return false;
    return std::all_of(names.begin(), names.end(),
                       [&](const char* n) { return object.contains(n); });
  };
  auto hex_hash = [](const std::optional<std::string>& text) {
    return text && events::is_hex_hash(*text);
  };
  // The selection: one stream, or a time range (either bound may be open).
  std::optional<std::int64_t> from_us, to_us;
  bool selection_ok = false;
  if (!manifest.is_discarded() && manifest.contains("selection")) {
    const json& sel = manifest["selection"];
    if (members_are(sel, {"stream"})) {
      selection_ok = text_member(sel, "stream").has_value();
    } else if (sel.is_object() && !sel.empty() && sel.size() <= 2 &&
               std::all_of(sel.items().begin(), sel.items().end(),
                           [](const auto& kv) { return kv.key() == "from" || kv.key() == "to"; })) {
      selection_ok = true;
      for (auto [key, target] : {std::pair{"from", &from_us}, std::pair{"to", &to_us}}) {
        if (!sel.contains(key)) continue;
        auto text = text_member(sel, key);
        // Extracts made before 2026-11-28 wrote an open end as the largest time.
        if (std::string_view(key) == "to" && text == format_time(INT64_MAX)) continue;
        auto moment = text ? Moment::parse(*text) : fail(errc::invalid_argument, "");
        if (!moment || moment->kind != Moment::Kind::time) {
          selection_ok = false;
        } else {
          *target = moment->time_us;
        }
      }
      if (from_us && to_us && *from_us > *to_us) selection_ok = false;
    }
  }
  const bool manifest_ok =
      !manifest.is_discarded() &&
      members_are(manifest, {"format", "log", "selection", "events", "last_hash", "events_sha256",
                             "streams"}) &&
      text_member(manifest, "format") == kFormat &&
      (text_member(manifest, "log") == "embedded" || text_member(manifest, "log") == "kafka") &&
      selection_ok && manifest["streams"].is_object() && count_member(manifest, "events") &&
      hex_hash(text_member(manifest, "events_sha256")) &&
      hex_hash(text_member(manifest, "last_hash")) &&
      std::all_of(manifest["streams"].begin(), manifest["streams"].end(), [&](const json& s) {
        return members_are(
                   s, {"chains_from", "first_version", "last_version", "last_hash", "events"}) &&
               count_member(s, "first_version") >= 1u &&
               count_member(s, "last_version") >= count_member(s, "first_version") &&
               count_member(s, "events") >= 1u && hex_hash(text_member(s, "chains_from")) &&
               hex_hash(text_member(s, "last_hash"));
      });
  if (!manifest_ok) {
    findings.broken(
        {"", 0, "manifest",
         "manifest.json is not a " + std::string(kFormat) +
             " manifest (a member missing, unknown or of another type, a hash not "
             "as the tool writes it, or a selection that is no stream nor time range)"});
    return report;
  }
  // And byte for byte as the tool writes it (a member twice, spacing, order).
  if (json_text(manifest, 2) + "\n" != manifest_text) {
    findings.broken({"", 0, "manifest", "manifest.json is not written as the tool writes one"});
  }
  // No line is longer than kMaxExtractLine: a file larger than the manifest's events can fill
  // (a sparse file of a terabyte) is refused before hours of reading it.
  const std::uint64_t events_listed = *count_member(manifest, "events");
  const std::uintmax_t events_size = std::filesystem::file_size(events_path, size_error);
  if (size_error || events_size / (kMaxExtractLine + 1) > events_listed) {
    findings.broken({"", 0, "events.jsonl",
                     "the file is larger than the manifest's " + std::to_string(events_listed) +
                         " events can be (" + std::to_string(events_size) +
                         " bytes): it was changed after the extract was made"});
    return report;
  }
  auto digest = file_sha256(events_path);
  if (!digest || *digest != *text_member(manifest, "events_sha256")) {
    findings.broken({"", 0, "events.jsonl",
                     "the file's SHA-256 is not the one the manifest records: it was changed "
                     "after the extract was made"});
  }
  // Each stream starts from the hash the manifest says its first event chains to.
  StreamTable streams;
  StructureChecks structures;
  for (const auto& [stream, s] : manifest["streams"].items()) {
    auto& c = streams[stream];
    c.version = *count_member(s, "first_version") - 1;
    const std::string from = *text_member(s, "chains_from");
    for (std::size_t i = 0; i < c.hash.size() && 2 * i + 1 < from.size(); ++i) {
      // A malformed anchor leaves zeros, and the stream's first event then fails to chain.
      std::from_chars(from.data() + 2 * i, from.data() + 2 * i + 2, c.hash[i], 16);
    }
  }
  // A stream extract holds that stream alone, whole: from its first version, chained to nothing.
  const std::optional<std::string> selected_stream =
      manifest.contains("selection") ? text_member(manifest["selection"], "stream") : std::nullopt;
  if (selected_stream) {
    const auto& listed = manifest["streams"];
    const bool whole =
        listed.size() == 1 && listed.contains(*selected_stream) &&
        count_member(listed[*selected_stream], "first_version") == 1u &&
        text_member(listed[*selected_stream], "chains_from") == events::to_hex(events::Hash{});
    if (!whole) {
      findings.broken({*selected_stream, 0, "manifest",
                       "a stream extract lists that stream alone, from version 1"});
    }
  }
  std::string line;
  std::uint64_t n = 0;
  std::string last_hash;
  std::map<std::string, std::uint64_t> listed_events;  // lines per stream
  std::map<std::uint32_t, std::uint64_t> next_offset;  // per partition: past the last line's
  bool too_long = false;
  while (bounded_line(in, line, too_long)) {
    ++n;
    const Where at{nullptr, n};
    if (too_long) {
      findings.broken({"", 0, at.text(), "a line longer than any event line"});
      continue;
    }
    json j = parse_untrusted(line);
    std::optional<std::string> bytes;
    if (auto stored = text_member(j, "stored")) bytes = unbase64(*stored);
    if (!bytes) {
      findings.broken({"", 0, at.text(), "not an event line (JSON with the stored bytes)"});
      continue;
    }
    const std::string stream = text_member(j, "stream").value_or("");
    const std::uint64_t version = count_member(j, "version").value_or(0);
    if (streams.find(stream) == nullptr) {
      findings.broken({stream, version, at.text(), "stream not listed in the manifest"});
    }
    if (selected_stream && stream != *selected_stream) {
      findings.broken({stream, version, at.text(), "not of the stream the extract selects"});
    }
    Prepared prepared;
    prepare(*bytes, prepared);
    check_event(*bytes, prepared, stream, version, at, streams, structures, findings);
    // The readable line must say what the stored bytes say, all of it: nothing added, nothing
    // changed. Only "position" (where the event sat in the log when it was exported) is not
    // in the stored bytes, and is not proven.
    if (auto e = events::decode(*bytes)) {
      json expected = line_of(events::LogAddress{}, *e, *bytes);
      std::set<std::string> keys;
      for (const auto& [key, value] : j.items()) keys.insert(key);
      for (const auto& [key, value] : expected.items()) keys.insert(key);
      keys.erase("position");
      bool named = false;
      for (const auto& key : keys) {
        // As text: bytes of a stored string that are not UTF-8 are U+FFFD in the line.
        const bool same = j.contains(key) && expected.contains(key) &&
                          json_text(j[key]) == json_text(expected[key]);
        if (!same) {
          named = true;
          findings.broken({stream, version, at.text(),
                           "the readable \"" + key +
                               (expected.contains(key) ? "\" differs from the stored event's"
                                                       : "\" is no member of an event line")});
        }
      }
      // And byte for byte as the tool writes it: a parser keeps one of two members of the same
      // name, a reader's eye or another parser the other.
      if (!named) {
        if (j.contains("position") && j["position"].is_string())
          expected["position"] = j["position"];
        if (json_text(expected) != line) {
          findings.broken({stream, version, at.text(),
                           "the line is not written as the tool writes one (a member twice, "
                           "or spacing or order changed)"});
        }
      }
      last_hash = events::to_hex(e->hash);
      if ((from_us && e->meta.occurred_at_us < *from_us) ||
          (to_us && e->meta.occurred_at_us > *to_us)) {
        findings.broken({stream, version, at.text(),
                         "the event occurred outside the time range the extract selects"});
      }
    }
    // Where each event sat is not proven by a hash, but it is written by the tool alone: an
    // address as history prints it, in log order within each partition.
    const auto address = parse_address(text_member(j, "position").value_or(""));
    if (!address) {
      findings.broken({stream, version, at.text(), "the \"position\" is no event address (P:O)"});
    } else if (address->offset < next_offset[address->partition]) {
      findings.broken({stream, version, at.text(),
                       "the \"position\" is not after the line before's in its partition"});
    } else {
      next_offset[address->partition] = address->offset + 1;
    }
    ++listed_events[stream];
    ++report.events;
  }
  const std::uint64_t counted = *count_member(manifest, "events");
  if (report.events != counted) {
    findings.broken({"", 0, "manifest",
                     "the manifest counts " + std::to_string(counted) + " events, the file holds " +
                         std::to_string(report.events)});
  }
  if (last_hash != manifest["last_hash"].get<std::string>()) {
    findings.broken({"", 0, "manifest", "the last event's hash is not the manifest's last_hash"});
  }
  if (!expected_manifest_sha256.empty()) {
    auto anchor = file_sha256(manifest_path);
    if (!anchor || *anchor != expected_manifest_sha256) {
      findings.broken({"", 0, "anchor",
                       "manifest.json's SHA-256 " + anchor.value_or("(unreadable)") +
                           " is not the one recorded when the extract was made (" +
                           std::string(expected_manifest_sha256) + ")"});
    }
  }
  for (const auto& [stream, s] : manifest["streams"].items()) {
    const auto& c = streams[stream];
    if (c.version != *count_member(s, "last_version") ||
        events::to_hex(c.hash) != *text_member(s, "last_hash")) {
      findings.broken({stream, c.version, "manifest",
                       "the stream ends at another version or hash than the manifest records"});
    } else if (listed_events[stream] != *count_member(s, "events")) {
      findings.broken({stream, c.version, "manifest",
                       "the manifest counts " + std::to_string(*count_member(s, "events")) +
                           " events of the stream, the file holds " +
                           std::to_string(listed_events[stream])});
    }
  }
  // Judged on what the extract holds: a breach open at its last line held to its end.
  close_open_breaches(structures, findings);
  report.streams = streams.size();
  report.end_position = "line " + std::to_string(n);
  return report;
}

}  // namespace chorus::replay
