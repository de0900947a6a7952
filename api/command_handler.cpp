#include "api/command_handler.h"

#include <openssl/rand.h>

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
                                       const std::string& idempotency_key) {
  if (idempotency_key.empty()) return random_uuid();
  auto digest = events::sha256(user_id + '\n' + std::string(route) + '\n' + idempotency_key);
  events::EventId id;
  std::copy_n(digest.begin(), id.size(), id.begin());
  return uuid_text(id);
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

CommandOutcome CommandHandler::run(const std::string& stream_id, const CommandMeta& meta,
                                   const DecideFn& decide) {
  for (int attempt = 1;; ++attempt) {
    auto recorded = log_.read_stream(stream_id, 1, std::numeric_limits<std::size_t>::max());
    if (!recorded) {
      throw Problem{503, "log.unavailable", "",
                    "Journal indisponible : " + recorded.error().message};
    }
    std::vector<events::Event> history;
    history.reserve(recorded->size());
    CommandOutcome replay;
    events::LogPosition replay_position;
    for (const auto& r : *recorded) {
      auto e = events::decode(r.bytes);
      if (!e) throw Problem{500, "log.corruption", "", e.error().message};
      if (e->meta.causation_id == meta.command_id) {
        replay.replayed = true;
        replay.version = e->version;
        replay_position.advance_past(r.address);
      }
      history.push_back(std::move(*e));
    }
    if (replay.replayed) {
      replay.consistency_token = replay_position.to_token();
      return replay;
    }

    auto decided = decide(history);
    if (!decided) throw to_problem(decided.error());

    events::StreamAppend append{stream_id, history.size(), {}};
    const std::int64_t at = now_us();
    for (auto& payload : *decided) {
      events::NewEvent e;
      e.meta.event_id = random_id();
      e.meta.occurred_at_us = at;
      e.meta.actor = events::Actor{meta.caller.user_id, meta.actor_role, ""};
      e.meta.correlation_id = meta.correlation_id;
      e.meta.causation_id = meta.command_id;
      e.payload = std::move(payload);
      append.events.push_back(std::move(e));
    }
    std::vector<events::StreamAppend> batch{std::move(append)};
    auto result = log_.append(batch);
    if (result) {
      return CommandOutcome{history.size() + batch[0].events.size(), result->position.to_token(),
                            false};
    }
    switch (result.error().code) {
      case events::errc::version_conflict:
        if (attempt < kMaxAttempts) continue;
        throw Problem{409, "command.concurrent_update", "",
                      "Modification concurrente : réessayez."};
      case events::errc::invalid_argument:
        throw Problem{400, "command.invalid", "", result.error().message};
      case events::errc::indeterminate:
        throw Problem{500, "log.indeterminate", "",
                      "Issue inconnue ; relisez avant de réessayer (même Idempotency-Key)."};
      default:
        throw Problem{503, "log.unavailable", "",
                      "Journal indisponible, rien n'a été écrit : " + result.error().message};
    }
  }
}

}  // namespace chorus::api
