#pragma once
// The ticket lists of the API: "Tickets émis" and the support queues, with sort, search, paging
// and the CSV export. Query parameters are checked here; the views do the reading.

#include <memory>
#include <string>

#include "api/http.h"
#include "projections/ticket_views.h"

namespace chorus::api {

inline constexpr std::size_t kMaxPageSize = 200;

// Sort, order, paging and search criteria of a list request (the router has refused unknown
// parameters already: RouteInfo::query). Throws Problem 400 "request.query" naming the
// parameter for an unknown sort column or order, a page or page size out of range, a malformed
// or impossible date, a date range ending before it starts, an unknown status or an over-long
// text. Thread-safe.
[[nodiscard]] projections::TicketQuery ticket_query(const Request& request);

// A JSON page of `list`: {<head members>, "page", "page_size", "sort", "order", "total",
// "items"}; `head` holds extra members as `"key":value,` text. Throws Problem 503 when the views
// fail. Thread-safe.
[[nodiscard]] Response ticket_page_response(const projections::ViewStore& store,
                                            const std::string& list,
                                            const projections::TicketQuery& query,
                                            const std::string& head);

// The whole list or search as CSV for French spreadsheets: UTF-8 with a byte order mark, `;`
// between cells, every cell quoted (quotes doubled, line breaks kept inside the quotes), CRLF
// line ends, "Ouvert le" as dd/mm/yyyy HH:MM in UTC, and cells that a spreadsheet would run as a
// formula (starting with = + - @) prefixed with an apostrophe. Streamed in chunks of a few
// hundred rows. Throws Problem 503 when the views fail before the first byte; a failure later
// truncates the answer (see BodyStream). Thread-safe; the answer keeps `store` alive.
[[nodiscard]] Response ticket_csv_response(std::shared_ptr<const projections::ViewStore> store,
                                           const std::string& list,
                                           const projections::TicketQuery& query,
                                           const std::string& filename);

}  // namespace chorus::api
