#include "api/command_handler.h"

#include <openssl/rand.h>

#include <algorithm>

#include "events/codec.h"

namespace chorus::api {
namespace {

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

events::EventId random_id() {
  events::EventId id;
  RAND_bytes(id.data(), static_cast<int>(id.size()));
  id[6] = static_cast<std::uint8_t>((id[6] & 0x0F) | 0x40);
  id[8] = static_cast<std::uint8_t>((id[8] & 0x3F) | 0x80);
  return id;
}

std::string uuid_text(const events::EventId& id) {
  std::string hex = events::to_hex(id);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

}  // namespace

std::string random_uuid() { return uuid_text(random_id()); }

std::string CommandHandler::command_id(const std::string& user_id, std::string_view route,
                                       const std::string& idempotency_key, std::string_view body) {
  if (idempotency_key.empty()) return random_uuid();
  std::string identity = user_id + '\n' + std::string(route) + '\n' + idempotency_key;
  // Without a body, the id of earlier builds (a retry across an upgrade is still recognised).
  if (!body.empty()) identity.append("\n").append(body);
  auto digest = events::sha256(identity);
  events::EventId id;
  std::copy_n(digest.begin(), id.size(), id.begin());
  return uuid_text(id);
}

Problem deactivated_caller() {
  return Problem{403, "account.deactivated", "",
                 "Ce compte est désactivé : réactivez-le pour agir à nouveau."};
}

Problem to_problem(const domain::Rejection& r) {
  int status = 422;
  switch (r.code) {
    case domain::errc::invalid_field:
      status = 422;
      break;
    case domain::errc::forbidden:
      status = 403;
      break;
    case domain::errc::not_found:
      status = 404;
      break;
    case domain::errc::wrong_status:
      status = 409;
      break;
  }
  return Problem{status, r.rule, r.field, r.message};
}

void CommandHandler::Snapshot::remember(const std::string& command_id, std::uint64_t at_version,
                                        std::string token) {
  // Every command, however old, in the stream's shared index (the version of its last event)...
  {
    std::lock_guard lock(every->mu);
    auto& last = every->last_version[id_hash(command_id)];
    last = std::max(last, at_version);
  }
  // ...and the recent ones with their answer. A command may write several events: the last
  // one gives its answer.
  for (auto& r : recent) {
    if (r.command_id == command_id) {
      r.version = at_version;
      r.consistency_token = std::move(token);
      return;
    }
  }
  if (recent.size() == kRecentCommands) recent.erase(recent.begin());
  recent.push_back(RecentCommand{command_id, at_version, std::move(token)});
}

const CommandHandler::RecentCommand* CommandHandler::Snapshot::find(
    const std::string& command_id) const {
  for (const auto& r : recent) {
    if (r.command_id == command_id) return &r;
  }
  return nullptr;
}

std::size_t CommandHandler::id_hash(const std::string& command_id) {
  return std::hash<std::string>{}(command_id);
}

std::string CommandHandler::covering_token(const std::string& recorded) {
  auto end = log_.end();
  if (!end) return recorded;
  if (recorded.empty()) return end->to_token();
  auto at = events::LogPosition::from_token(recorded);
  return at && end->covers(*at) ? end->to_token() : recorded;
}

std::optional<CommandOutcome> CommandHandler::earlier_of(
    const std::string& stream_id, const std::unordered_map<std::size_t, std::string>& candidates) {
  // The stream's commands as its snapshot knows them, brought up to the log (the snapshot may
  // have been evicted since it was loaded): its shared index and recent answers, not its state,
  // which is neither copied nor stored back.
  Snapshot commands;
  {
    std::lock_guard lock(snapshots_mu_);
    if (auto it = snapshots_.find(stream_id); it != snapshots_.end()) {
      commands.version = it->second.first.version;
      commands.recent = it->second.first.recent;
      commands.every = it->second.first.every;
    }
  }
  for (auto& step : read_after(stream_id, commands.version)) {
    commands.version = step.event.version;
    events::LogPosition at;
    at.advance_past(step.address);
    commands.remember(step.event.meta.causation_id, step.event.version, at.to_token());
  }
  std::vector<const std::string*> held;
  {
    std::lock_guard lock(commands.every->mu);
    const auto& index = commands.every->last_version;
    if (index.size() < candidates.size()) {
      for (const auto& [hash, version] : index) {
        if (auto c = candidates.find(hash); c != candidates.end()) held.push_back(&c->second);
      }
    } else {
      for (const auto& [hash, id] : candidates) {
        if (index.contains(hash)) held.push_back(&id);
      }
    }
  }
  for (const std::string* id : held) {
    if (auto earlier = earlier_outcome(stream_id, commands, *id)) return earlier;
  }
  return std::nullopt;
}

std::uint64_t CommandHandler::Snapshot::hashed_like(const std::string& command_id) const {
  std::lock_guard lock(every->mu);
  auto it = every->last_version.find(id_hash(command_id));
  return it == every->last_version.end() ? 0 : it->second;
}

std::optional<CommandOutcome> CommandHandler::earlier_outcome(const std::string& stream_id,
                                                              const Snapshot& snapshot,
                                                              const std::string& command_id) {
  if (const RecentCommand* recent = snapshot.find(command_id)) {
    return CommandOutcome{recent->version, recent->consistency_token, true};
  }
  const std::uint64_t version = snapshot.hashed_like(command_id);
  if (version == 0) return std::nullopt;
  auto recorded = log_.read_stream(stream_id, version, 1);
  if (!recorded) {
    throw Problem{503, "log.unavailable", "", "Journal indisponible : " + recorded.error().message};
  }
  if (recorded->empty()) return std::nullopt;
  auto event = events::decode(recorded->front().bytes);
  if (!event) throw Problem{500, "log.corruption", "", event.error().message};
  if (event->meta.causation_id != command_id) return std::nullopt;  // another id, hashed alike
  events::LogPosition after;
  after.advance_past(recorded->front().address);
  return CommandOutcome{version, after.to_token(), true};
}

CommandHandler::Snapshot CommandHandler::load_snapshot(const std::string& stream_id) {
  std::lock_guard lock(snapshots_mu_);
  auto it = snapshots_.find(stream_id);
  if (it == snapshots_.end()) return Snapshot{};
  lru_.splice(lru_.begin(), lru_, it->second.second);
  return it->second.first;
}

void CommandHandler::store_snapshot(const std::string& stream_id, Snapshot snapshot) {
  std::lock_guard lock(snapshots_mu_);
  auto it = snapshots_.find(stream_id);
  if (it != snapshots_.end()) {
    // A concurrent command may have stored a newer one: keep the newest.
    if (it->second.first.version <= snapshot.version) it->second.first = std::move(snapshot);
    lru_.splice(lru_.begin(), lru_, it->second.second);
    return;
  }
  lru_.push_front(stream_id);
  snapshots_.emplace(stream_id, std::pair{std::move(snapshot), lru_.begin()});
  if (snapshots_.size() > capacity_) {
    snapshots_.erase(lru_.back());
    lru_.pop_back();
  }
}

std::vector<CommandHandler::RecordedStep> CommandHandler::read_after(const std::string& stream_id,
                                                                     std::uint64_t version) {
  auto recorded = log_.read_stream(stream_id, version + 1, std::numeric_limits<std::size_t>::max());
  if (!recorded) {
    throw Problem{503, "log.unavailable", "", "Journal indisponible : " + recorded.error().message};
  }
  std::vector<RecordedStep> out;
  out.reserve(recorded->size());
  for (const auto& r : *recorded) {
    auto e = events::decode(r.bytes);
    if (!e) throw Problem{500, "log.corruption", "", e.error().message};
    out.push_back(RecordedStep{std::move(*e), r.address});
  }
  return out;
}

events::StreamAppend CommandHandler::stamped(const std::string& stream_id,
                                             std::uint64_t expected_version,
                                             const CommandMeta& meta,
                                             const std::vector<events::Payload>& payloads,
                                             std::int64_t at) {
  events::StreamAppend append{stream_id, expected_version, {}};
  for (const auto& payload : payloads) {
    events::NewEvent e;
    e.meta.event_id = random_id();
    e.meta.occurred_at_us = at;
    e.meta.actor = events::Actor{meta.caller.user_id, meta.actor_role, ""};
    e.meta.correlation_id = meta.correlation_id;
    e.meta.causation_id = meta.command_id;
    e.payload = payload;
    append.events.push_back(std::move(e));
  }
  return append;
}

std::optional<events::AppendResult> CommandHandler::append(
    const std::string& stream_id, std::uint64_t expected_version, const CommandMeta& meta,
    const std::vector<events::Payload>& payloads) {
  std::vector<events::StreamAppend> batch{
      stamped(stream_id, expected_version, meta, payloads, now_us())};
  return append_batch(std::move(batch), payloads);
}

std::optional<events::AppendResult> CommandHandler::append_batch(
    std::vector<events::StreamAppend> batch, const std::vector<events::Payload>& payloads) {
  const auto started = std::chrono::steady_clock::now();
  auto result = log_.append(batch);
  if (result) {
    if (on_append) {
      on_append(payloads,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
    return std::move(*result);
  }
  switch (result.error().code) {
    case events::errc::version_conflict:
      return std::nullopt;
    case events::errc::invalid_argument:
      throw Problem{400, "command.invalid", "", result.error().message};
    case events::errc::indeterminate:
      throw Problem{500, "log.indeterminate", "",
                    "Issue inconnue ; relisez avant de réessayer (même Idempotency-Key)."};
    case events::errc::fenced:
      refuse_if_fenced();  // the log now says so: the same answer as the next command's
      [[fallthrough]];
    default:
      throw Problem{503, "log.unavailable", "",
                    "Journal indisponible, rien n'a été écrit : " + result.error().message};
  }
}

std::optional<events::AppendResult> CommandHandler::append_all(
    const CommandMeta& meta, const domain::workflow::Appends& appends) {
  if (meta.replay_only) throw deactivated_caller();
  std::vector<events::StreamAppend> batch;
  std::vector<events::Payload> payloads;
  const std::int64_t at = now_us();
  for (const auto& d : appends) {
    if (d.payloads.empty()) continue;
    batch.push_back(stamped(d.stream_id, d.expected_version, meta, d.payloads, at));
    payloads.insert(payloads.end(), d.payloads.begin(), d.payloads.end());
  }
  if (batch.empty()) {
    throw Problem{409, "command.nothing_to_do", "", "Rien à enregistrer."};
  }
  return append_batch(std::move(batch), payloads);
}

void CommandHandler::refuse_if_fenced() const {
  if (!log_.fenced()) return;
  throw Problem{503, "log.fenced", "",
                "Un autre serveur écrit désormais le journal : ce serveur n'enregistre plus "
                "rien (rien n'a été écrit), envoyez la commande à un autre."};
}

CommandOutcome CommandHandler::run_appends(
    const CommandMeta& meta,
    const std::function<domain::Decision<domain::workflow::Appends>(StreamLoader&)>& decide) {
  refuse_if_fenced();
  for (int attempt = 1;; ++attempt) {
    StreamLoader loader(*this, meta.command_id);
    auto decided = decide(loader);
    // A retried command may be refused now for what it did itself: its first answer wins.
    if (loader.replay()) {
      CommandOutcome replay = *loader.replay();
      replay.consistency_token = covering_token(replay.consistency_token);
      return replay;
    }
    if (meta.replay_only) throw deactivated_caller();
    if (!decided) throw to_problem(decided.error());
    // Nothing to write (every item of a bulk refused, an import line known already).
    if (std::ranges::all_of(*decided, [](const auto& d) { return d.payloads.empty(); })) {
      return CommandOutcome{};
    }
    auto appended = append_all(meta, *decided);
    if (!appended) {
      if (attempt < kMaxAttempts) continue;
      throw Problem{409, "command.concurrent_update", "", "Modification concurrente : réessayez."};
    }
    std::uint64_t version = 0;
    for (const auto& d : *decided) {
      if (d.payloads.empty()) continue;
      version = d.expected_version + d.payloads.size();
      break;
    }
    return CommandOutcome{version, appended->position.to_token(), false};
  }
}

}  // namespace chorus::api
