#pragma once
// The routes of structures, accounts, attachments, GP transfer, espaces and approvals
// (issue 6), called by Router::dispatch (which owns the route table and turns Problems into
// answers). Commands decide on the streams themselves (domain::structure, domain::account,
// domain::workflow) through CommandHandler::run_appends; queries read the structure views and
// check scope with domain::access on every row.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/command_handler.h"
#include "api/http.h"
#include "domain/access.h"
#include "domain/ticket.h"
#include "projections/runner.h"
#include "projections/structure_views.h"

namespace chorus::api {

class Metrics;

// Whether the router should hand `pattern` to StructureRoutes. Pure, thread-safe.
[[nodiscard]] bool is_structure_route(std::string_view pattern) noexcept;

// The caller's access to a structure as the access view holds it, with their global roles.
// Pure, thread-safe.
[[nodiscard]] domain::access::Access access_from_view(
    const std::optional<projections::AccessRow>& row, const domain::Caller& caller);

// The ticket rules' context from the access view: the caller must be attached to the emitting
// structure (any role); a business recipient holds "Sollicitations reçues" with write access on
// the destination structure (and service), a business reader with read access at least. An
// empty structure id gives false. Throws Problem
// 503 when the views cannot be read. Thread-safe.
[[nodiscard]] domain::ticket::Context ticket_context(const projections::ViewStore& store,
                                                     const domain::Caller& caller,
                                                     const std::string& emitting_structure_id,
                                                     const std::string& destination_structure_id,
                                                     const std::string& destination_service);

// Whether the caller may read the business tickets sent to the destination structure (and
// service): "Sollicitations reçues" held with read ("Consultation") or write access. Reading
// only: acting on them is ticket_context's business_recipient. False for an empty id. Throws
// Problem 503 when the views cannot be read. Thread-safe.
[[nodiscard]] bool reads_received_tickets(const projections::ViewStore& store,
                                          const domain::Caller& caller,
                                          const std::string& destination_structure_id,
                                          const std::string& destination_service);

class StructureRoutes {
 public:
  StructureRoutes(CommandHandler& commands, projections::Runner& runner, Metrics& metrics)
      : commands_(commands), runner_(runner), metrics_(metrics) {}

  // Answers `request`, matched to `pattern` with path `params`, for the verified `caller`.
  // `replay_only`: the caller's account is deactivated, and only the replay of a command it
  // sent before is answered (CommandMeta::replay_only). `wait_for_views` waits for the request's
  // consistency token (throws Problem). Success: the answer (201 for a command that wrote, 200 for
  // a replay, a bulk answer or a query). Failure: throws Problem (problem+json by the router): 400
  // malformed, 403 refused by the permission table, 404 unknown or not to be known, 409 wrong
  // status or concurrent update, 422 invalid field, 503 log or views unavailable; nothing is
  // written on failure. Thread-safe.
  [[nodiscard]] Response handle(std::string_view pattern, const std::vector<std::string>& params,
                                const Request& request, const domain::Caller& caller,
                                bool replay_only, const std::function<void()>& wait_for_views);

 private:
  CommandHandler& commands_;
  projections::Runner& runner_;
  Metrics& metrics_;
};

}  // namespace chorus::api
