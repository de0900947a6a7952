#pragma once
// The only door to the stored format (schema/event.fbs). Everything FlatBuffers is in
// codec.cpp, so that the generated header is compiled in one translation unit.

#include <span>
#include <string>
#include <string_view>

#include "events/errc.h"
#include "events/event.h"

namespace chorus::events {

// What an encoded event is, before the log stores it.
struct EncodedEvent {
  std::string bytes;  // a StoredEvent FlatBuffer
  Hash hash{};        // SHA-256 of the body; the next event of the stream chains to it
};

// Encodes `event` as the version-th event of `stream_id`, chained to `prev_hash`.
// Pure and thread-safe; never fails (sizes are bounded by the caller's checks).
[[nodiscard]] EncodedEvent encode(std::string_view stream_id, std::uint64_t version,
                                  const Hash& prev_hash, const NewEvent& event);

// Decodes stored bytes. Fails with corruption when the bytes are not a valid StoredEvent,
// or when the stored hash does not match the body (one flipped byte is caught here).
// Thread-safe.
[[nodiscard]] Result<Event> decode(std::string_view bytes);

// Reads only the coordinates (stream, version, hash) without decoding the payload; checks the
// FlatBuffer structure but not the hash (use decode() to verify). Thread-safe.
struct EventCoordinates {
  std::string stream_id;
  std::uint64_t version = 0;
  EventId event_id{};
  Hash prev_hash{};
  Hash hash{};
};
[[nodiscard]] Result<EventCoordinates> peek(std::string_view bytes);

// An event read in place, for walks over the whole log (the audit): decode()'s checks without
// its copies. decode() builds every string of the event; a walk that needs only the chain
// fields spent more in malloc than in the hash. `stream_id` points into the bytes given to
// view(), or, when those were not 8-aligned, into a per-thread copy that the next view(),
// peek(), decode() or check_envelope() on the same thread overwrites (with the same bytes, when
// called on the same ones): use a view before another event's call.
struct EventView {
  std::string_view stream_id;
  std::uint64_t version = 0;
  EventId event_id{};
  Hash prev_hash{};
  Hash hash{};
  const void* body = nullptr;  // the checked body, for decode_payload(); opaque outside codec
};

// Checks stored bytes as decode() does, with the same messages: a valid StoredEvent FlatBuffer,
// the stored hash equal to the SHA-256 of the body, a known payload type with its table present.
// On success returns the coordinates read in place, allocating nothing. Fails with corruption;
// nothing is kept of a failed call. Thread-safe.
[[nodiscard]] Result<EventView> view(std::string_view bytes);

// Checks that `bytes` are exactly what encode() stores for their body and hash. The hash covers
// the body; the envelope around it (its tables' offsets and sizes, padding) is read by no field,
// so a byte changed there passes view() and decode(): this catches it, for verifiers that must
// catch any changed byte. Fails with corruption. Costs one copy of the body. Thread-safe.
[[nodiscard]] Result<void> check_envelope(std::string_view bytes);

// The payload of a viewed event, as decode() gives it (a copy). Fails with corruption on a
// payload type this build does not read, or invalid_argument on a default EventView; the view
// stays usable either way. Valid only while the view is (see EventView). Thread-safe.
[[nodiscard]] Result<Payload> decode_payload(const EventView& event);

[[nodiscard]] Hash sha256(std::string_view bytes) noexcept;
[[nodiscard]] std::string to_hex(std::span<const std::uint8_t> bytes);
// Whether `text` is a hash as to_hex() writes one: 64 lower-case hex digits. Pure.
[[nodiscard]] bool is_hex_hash(std::string_view text) noexcept;

}  // namespace chorus::events
