#pragma once
// The one error type at the boundary of events/: every fallible call returns
// Result<T> = std::expected<T, Error>. Callers switch on `code`; `message` is for people.

#include <expected>
#include <string>
#include <string_view>

namespace chorus::events {

enum class errc {
  // An expected version did not match the stream's current version. Nothing was written.
  version_conflict = 1,
  // The request itself is malformed (empty batch, bad stream id, ...). Nothing was written.
  invalid_argument,
  // The storage or the broker failed; for appends, nothing was written.
  io_error,
  // Stored bytes do not decode or do not match their hash.
  corruption,
  // The log cannot be reached right now; for appends, nothing was written.
  unavailable,
  // Another writer took ownership of these partitions; this writer will never append again.
  fenced,
  // An append whose outcome could not be established (the log stayed unreachable while the
  // writer tried to find out). The events may or may not be in the log; a retry must re-read
  // the stream first (the expected-version check then tells).
  indeterminate,
};

[[nodiscard]] std::string_view to_string(errc code) noexcept;

struct Error {
  errc code;
  std::string message;
};

template <class T>
using Result = std::expected<T, Error>;

[[nodiscard]] inline std::unexpected<Error> fail(errc code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

}  // namespace chorus::events
