#pragma once
// Structure views (issue 6): the access view every other check reads, "Mes rattachements aux
// structures", the structure detail and its users, the approvals inbox ("Approbation") and the
// structure history ("Historique"). The command side decides on the structures' own streams;
// these rows serve queries and the context of other aggregates (tickets).
//
// Key layout (every page is one bounded range scan; applying an event reads at most three
// rows):
//   ua\0<user>\0<structure>                      -> access row (JSON): role, services, espaces
//   ur\0<user>\0<structure>\0<request_id>        -> the user's own pending request (JSON)
//   sd\0<structure>                              -> structure detail (JSON): card, services,
//                                                   espaces, GP, status
//   sm\0<structure>\0<user>                      -> member row (JSON): role, services, start
//   sp\0<structure>\0<service>\0<at be64><request_id> -> pending request (JSON), by service
//                                                   then oldest first; service "" = the whole
//                                                   structure (sorts first)
//   sf\0<structure>\0<service>\0<at be64><request_id> -> "": the group's fences (request id
//                                                   hashing to 0 mod 64, ranked_list.h)
//   sb\0<structure>\0<service>\0[<at be64><request_id>] -> be64: rows from that fence to the
//                                                   next (the bare prefix: before the first);
//                                                   page N is found by rank in a few scans
//   sl\0<structure>\0<service>                   -> <at be64><request_id> of the group's first
//                                                   pending row: page 1 starts there, not at
//                                                   the tombstones of decided requests
//   sx\0<structure>\0<service>\0<word>\0<at be64><request_id> -> kind: each search word of
//                                                   the request's ids, service, espace and
//                                                   comment (folded; whole ids and their pieces)
//   sq\0<structure>\0<request_id>                -> the key of its sp row
//   sa\0<structure>                              -> its pending requests (be64, read and
//                                                   rewritten; deleted at 0): support's inbox
//                                                   across structures
//   sc\0<structure>\0<service>                   -> pending requests of that service (be64;
//                                                   read and rewritten, never merged)
//   sh\0<structure>\0<stream version be64>       -> history row (JSON), newest last
//   sk\0<structure>                              -> history rows (be64)
//   so\0<structure>\0<ordinal be64>              -> be64 stream version of the history row
//                                                   at that ordinal (1 = oldest): page N of
//                                                   the history is a point read and one scan
//   sv\0<structure>\0<service>\0<stream version be64> -> the history rows about that service
//                                                   (copies), for a GS scoped to services
//   sw\0<structure>\0<service>                   -> their count (be64)
//   su\0<structure>\0<service>\0<ordinal be64>   -> as so, for that service's rows
//   si\0<identifier_type>\0<identifier_value>    -> structure_id (search by identifier, and
//                                                   the duplicate check of creations)
//   sn\0<designation folded>\0<structure>        -> structure_id (search by name prefix)
//   ac\0<user>                                   -> account row (JSON): status, login, names,
//                                                   for the users of a structure
// Roles are "gp", "gs", "user"; services empty: the whole structure. Personal data (login,
// names) lives only in the ac rows, read by the users list.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "projections/projector.h"

namespace chorus::projections {

class StructureViews final : public Projector {
 public:
  Result<void> apply(const events::Event& event, const events::LogAddress& at,
                     ViewBatch& batch) override;
};

// One espace right held by a user on a structure.
struct EspaceRight {
  std::string espace;
  std::string service;  // empty: every service
  bool read = false;
  bool write = false;
};

// A user's rights on one structure, as the access view holds them.
struct AccessRow {
  std::string structure_id;
  std::string role;  // "gp", "gs", "user"; empty: no role (a subscription only)
  std::vector<std::string> services;
  std::vector<EspaceRight> espaces;
};

// Every query below fails with io_error when the store cannot be read, changes nothing, and is
// thread-safe.

// The rights of `user_id` on `structure_id`; nullopt when the user holds none. Thread-safe.
[[nodiscard]] Result<std::optional<AccessRow>> structure_access(const ViewStore& store,
                                                                const std::string& user_id,
                                                                const std::string& structure_id);

// Whether `user_id`'s account is deactivated ("Désactivé"): a user without an account row
// (an identity the portal's accounts do not manage) is not. Thread-safe.
[[nodiscard]] Result<bool> account_deactivated(const ViewStore& store, const std::string& user_id);

// Every structure `user_id` holds rights on, in structure id order. Thread-safe.
[[nodiscard]] Result<std::vector<AccessRow>> user_accesses(const ViewStore& store,
                                                           const std::string& user_id);

// Whether the rights include `espace` with write access ("Modification") for `service` (an
// espace granted for every service covers each one). Pure, thread-safe.
[[nodiscard]] bool may_write_espace(const AccessRow& access, std::string_view espace,
                                    std::string_view service) noexcept;
// The same with read access ("Consultation"), which write access includes. Pure, thread-safe.
[[nodiscard]] bool may_read_espace(const AccessRow& access, std::string_view espace,
                                   std::string_view service) noexcept;

// The user's own pending requests (JSON rows), by structure. Thread-safe.
[[nodiscard]] Result<std::vector<std::string>> user_pending_requests(const ViewStore& store,
                                                                     const std::string& user_id);

// The structure detail (JSON), nullopt when unknown. Thread-safe.
[[nodiscard]] Result<std::optional<std::string>> structure_detail(const ViewStore& store,
                                                                  const std::string& structure_id);

// The structure holding this identifier, nullopt when none. Thread-safe.
[[nodiscard]] Result<std::optional<std::string>> structure_by_identifier(
    const ViewStore& store, const std::string& identifier_type,
    const std::string& identifier_value);

// Up to `limit` structure ids whose designation starts with `prefix` (case-folded ASCII).
// Thread-safe.
[[nodiscard]] Result<std::vector<std::string>> structures_by_name(const ViewStore& store,
                                                                  const std::string& prefix,
                                                                  std::size_t limit);

// The pending requests of a structure, per service ("" = whole structure). Thread-safe.
[[nodiscard]] Result<std::vector<std::pair<std::string, std::uint64_t>>> pending_counts(
    const ViewStore& store, const std::string& structure_id);

// Every structure with pending requests, with their number, in structure id order (support's
// inbox across structures: one short row per structure). Fails with io_error. Thread-safe.
[[nodiscard]] Result<std::vector<std::pair<std::string, std::uint64_t>>> structures_with_pending(
    const ViewStore& store);

struct RowPage {
  std::vector<std::string> rows;  // JSON objects
  std::uint64_t total = 0;        // rows matching, over every page
};

// Where a page of the approvals inbox starts: just after this row (a keyset cursor).
struct PendingCursor {
  std::string structure_id;
  std::string service;  // the row's group
  std::string suffix;   // the row's key suffix: be64 time, request id
};
// The cursor just after a pending row (its JSON, as a page gives it): opaque text (hex).
// Pure, thread-safe.
[[nodiscard]] std::string pending_cursor(std::string_view row);
// Reads pending_cursor's text; nullopt when it is not one. Pure, thread-safe.
[[nodiscard]] std::optional<PendingCursor> parse_pending_cursor(std::string_view text);

struct PendingQuery {
  // The service groups to read ("" = whole-structure requests); nullopt: every group with
  // pending requests. Groups are read in service order ("" first).
  std::optional<std::vector<std::string>> services;
  bool newest_first = false;           // order inside each group
  std::uint64_t offset = 0;            // matching rows skipped (ignored with `after`)
  std::optional<PendingCursor> after;  // start just after this row of this structure
  std::size_t limit = 20;
  std::string kind;  // "attachment" or "subscription"; empty: both
  // Search text, case- and accent-insensitive: every word of it must begin a word of the
  // request's id, user id, service, espace or comment (an id is a word, and so is each of its
  // pieces between "-", "_", "." and "@": "asker-99" finds "asker-990"). Empty: no search.
  std::string words;
};

// Whether `text` holds a word a search can use (a letter or a digit). Pure.
[[nodiscard]] bool is_searchable(std::string_view text);

// A page of the pending requests of `structure_id` and `total`, the rows matching over every
// page. Without search words or kind, a page at any offset is a few bounded scans (bucket
// counts per group, ranked_list.h) and, from a cursor, one seek. With words, the candidates
// come from the index of the rarest word's prefix (sx rows) and are checked against the other
// words: the cost grows with the matches, not the pending requests. With a kind only, every row
// of the groups is read. Fails with io_error; changes nothing. Thread-safe.
[[nodiscard]] Result<RowPage> pending_page(const ViewStore& store, const std::string& structure_id,
                                           const PendingQuery& query);

// A page of the history of `structure_id`, newest first (page from 1): one reverse range scan
// of (page * page_size) rows at most. With `before` (a row's "seq"), the page starts at the
// row just older than it: deep pages then cost one page. Thread-safe.
[[nodiscard]] Result<RowPage> history_page(const ViewStore& store, const std::string& structure_id,
                                           std::size_t page, std::size_t page_size,
                                           std::uint64_t before = 0);

// A page of the history rows about `services` (rows naming one of them), newest first, as
// history_page: one reverse range scan per service of (page * page_size) rows at most, merged.
[[nodiscard]] Result<RowPage> service_history_page(const ViewStore& store,
                                                   const std::string& structure_id,
                                                   const std::vector<std::string>& services,
                                                   std::size_t page, std::size_t page_size,
                                                   std::uint64_t before = 0);

// The users of a structure (JSON: member row joined with the account row), in user id order.
// `keep` filters. Thread-safe.
[[nodiscard]] Result<std::vector<std::string>> structure_members(
    const ViewStore& store, const std::string& structure_id,
    const std::function<bool(const std::string& row)>& keep);

}  // namespace chorus::projections
