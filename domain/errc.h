#pragma once
// The one error type at the boundary of domain/: a rejected command says which rule it broke
// and which field is concerned, in words a portal can show. A rejection writes nothing.

#include <expected>
#include <string>

namespace chorus::domain {

enum class errc {
  invalid_field = 1,  // a field is missing, too long, or not one of the allowed values
  forbidden,          // the caller may not do this on this aggregate
  not_found,          // no such aggregate, or the caller may not know it exists
  wrong_status,       // the action is not allowed in the aggregate's current status
};

struct Rejection {
  errc code;
  std::string rule;     // stable identifier, e.g. "ticket.submit.status"
  std::string field;    // the field concerned, e.g. "title"; empty when none
  std::string message;  // in French, as the portal shows it
};

template <class T>
using Decision = std::expected<T, Rejection>;

[[nodiscard]] inline std::unexpected<Rejection> reject(errc code, std::string rule,
                                                       std::string field, std::string message) {
  return std::unexpected<Rejection>(
      Rejection{code, std::move(rule), std::move(field), std::move(message)});
}

}  // namespace chorus::domain
