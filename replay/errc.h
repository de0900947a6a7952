#pragma once
// The one error type at the boundary of replay/. Each code maps to one exit code of the
// command-line tool (replay/main.cpp), so that scripts can rely on them.

#include <expected>
#include <string>

namespace chorus::replay {

enum class errc {
  invalid_argument = 1,  // a malformed moment, stream id, selection or option
  not_found,             // no such stream, or no events before the moment asked
  log_error,             // the log could not be opened or read (I/O, broker unavailable)
  corruption,            // a stored event or an extract failed its hash or chain check
  io_error,              // an output or extract file could not be written or read
};

struct Error {
  errc code;
  std::string message;  // says what failed and where (stream, version, position, file)
};

template <class T>
using Result = std::expected<T, Error>;

[[nodiscard]] inline std::unexpected<Error> fail(errc code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

}  // namespace chorus::replay
