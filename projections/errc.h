#pragma once
// The one error type at the boundary of projections/.

#include <expected>
#include <string>

namespace chorus::projections {

enum class errc {
  io_error = 1,  // the view store failed
  log_error,     // reading the event log failed
  poison,        // an event cannot be decoded or applied (it is set aside, the rest goes on)
  timeout,       // the views did not reach a position in time
  invalid_argument,
  cancelled,  // stopped on request (shutdown) before it finished
  // The views have applied events past the end of a log whose end is every write's: the log
  // lost acknowledged events (Runner::open).
  views_ahead_of_log,
  // The store's files are damaged (RocksDB reports corruption), not merely unreadable.
  corruption,
};

struct Error {
  errc code;
  std::string message;
};

template <class T>
using Result = std::expected<T, Error>;

[[nodiscard]] inline std::unexpected<Error> fail(errc code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

}  // namespace chorus::projections
