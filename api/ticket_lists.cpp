#include "api/ticket_lists.h"

#include <charconv>
#include <chrono>
#include <nlohmann/json.hpp>

#include "projections/csv.h"
#include "projections/json_text.h"

namespace chorus::api {
namespace {

using nlohmann::json;
using projections::csv_line;
using projections::json_text;
using projections::kCsvByteOrderMark;

Problem bad_query(const std::string& field, const std::string& detail) {
  return Problem{400, "request.query", field, detail};
}

std::string text_param(const Request& r, const char* name, std::size_t max) {
  const std::string* v = r.query_param(name);
  if (v == nullptr) return "";
  if (v->size() > max) {
    throw bad_query(name, std::string("Le paramètre « ") + name + " » dépasse " +
                              std::to_string(max) + " caractères.");
  }
  return *v;
}

// A day as YYYY-MM-DD: its first microsecond (UTC).
std::optional<std::int64_t> day_param(const Request& r, const char* name) {
  const std::string* v = r.query_param(name);
  if (v == nullptr) return std::nullopt;
  int y = 0;
  unsigned m = 0, d = 0;
  auto read = [&](std::size_t from, std::size_t len, auto& out) {
    const char* b = v->data() + from;
    auto [ptr, ec] = std::from_chars(b, b + len, out);
    return ec == std::errc{} && ptr == b + len;
  };
  const bool shaped = v->size() == 10 && (*v)[4] == '-' && (*v)[7] == '-' && read(0, 4, y) &&
                      read(5, 2, m) && read(8, 2, d);
  const std::chrono::year_month_day day{std::chrono::year{y}, std::chrono::month{m},
                                        std::chrono::day{d}};
  if (!shaped || !day.ok()) {
    throw bad_query(name, std::string("Le paramètre « ") + name +
                              " » doit être une date AAAA-MM-JJ (par exemple 2026-01-31).");
  }
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::sys_days(day).time_since_epoch())
      .count();
}

std::string opened_text(std::int64_t us) {
  using namespace std::chrono;
  const sys_time<microseconds> t{microseconds{us}};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{floor<minutes>(t - day)};
  char out[32];
  std::snprintf(out, sizeof out, "%02u/%02u/%04d %02ld:%02ld", static_cast<unsigned>(ymd.day()),
                static_cast<unsigned>(ymd.month()), static_cast<int>(ymd.year()),
                static_cast<long>(hms.hours().count()), static_cast<long>(hms.minutes().count()));
  return out;
}

std::string ticket_csv_line(const projections::TicketRow& r) {
  return csv_line(
      {r.number, r.title, r.category, r.sub_category, r.status, opened_text(r.opened_at_us)});
}

}  // namespace

projections::TicketQuery ticket_query(const Request& request) {
  projections::TicketQuery q;
  if (const std::string* sort = request.query_param("sort")) {
    auto parsed = projections::parse_ticket_sort(*sort);
    if (!parsed) {
      throw bad_query("sort",
                      "Tri inconnu : « " + *sort +
                          " » (number, title, category, sub_category, status ou opened_at).");
    }
    q.sort = *parsed;
  }
  // Dates newest first, text columns in alphabetical order, unless asked otherwise.
  q.descending = q.sort == projections::TicketSort::opened_at;
  if (const std::string* order = request.query_param("order")) {
    if (*order != "asc" && *order != "desc") {
      throw bad_query("order", "Ordre inconnu : « " + *order + " » (asc ou desc).");
    }
    q.descending = *order == "desc";
  }
  q.page = positive_param(request, "page", 1, 1'000'000);
  q.page_size = positive_param(request, "page_size", 20, kMaxPageSize);
  q.search.number = text_param(request, "number", 40);
  q.search.words = text_param(request, "q", 200);
  if (!q.search.words.empty() && !projections::has_search_words(q.search.words)) {
    throw bad_query("q", "La recherche demande au moins un mot de deux lettres ou chiffres.");
  }
  q.search.category = text_param(request, "category", 100);
  q.search.sub_category = text_param(request, "sub_category", 100);
  q.search.status = text_param(request, "status", 40);
  if (!q.search.status.empty() && !projections::is_ticket_status(q.search.status)) {
    throw bad_query("status", "Statut inconnu : « " + q.search.status + " ».");
  }
  q.search.opened_from_us = day_param(request, "opened_from");
  if (auto to = day_param(request, "opened_to")) {
    q.search.opened_before_us = *to + std::int64_t{86'400'000'000};  // the whole last day
    if (q.search.opened_from_us && *q.search.opened_from_us > *to) {
      throw bad_query("opened_to", "La date de fin précède la date de début.");
    }
  }
  return q;
}

Response ticket_page_response(const projections::ViewStore& store, const std::string& list,
                              const projections::TicketQuery& query, const std::string& head) {
  auto page = projections::list_tickets(store, list, query);
  if (!page) throw Problem{503, "views.unavailable", "", "Vues indisponibles."};
  static const char* const kSortNames[] = {"number",       "title",  "category",
                                           "sub_category", "status", "opened_at"};
  std::string sort_name = "opened_at";
  for (const char* n : kSortNames) {
    if (projections::parse_ticket_sort(n) == query.sort) sort_name = n;
  }
  const std::string members = json_text(json{{"page", query.page},
                                             {"page_size", query.page_size},
                                             {"sort", sort_name},
                                             {"order", query.descending ? "desc" : "asc"},
                                             {"total", page->total}});
  // Views store rows as JSON text: spliced in as they are.
  std::string body = "{" + head + members.substr(1, members.size() - 2) + ",\"items\":[";
  for (std::size_t i = 0; i < page->rows.size(); ++i) {
    if (i) body.push_back(',');
    body += page->rows[i];
  }
  body += "]}";
  return Response{200, "application/json", std::move(body), {}};
}

Response ticket_csv_response(std::shared_ptr<const projections::ViewStore> store,
                             const std::string& list, const projections::TicketQuery& query,
                             const std::string& filename) {
  auto opened = projections::export_tickets(std::move(store), list, query);
  if (!opened) throw Problem{503, "views.unavailable", "", "Vues indisponibles."};
  std::shared_ptr<projections::TicketCursor> cursor = std::move(*opened);
  auto started = std::make_shared<bool>(false);
  Response r{200, "text/csv; charset=utf-8", "", {}};
  r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + filename + "\"");
  r.stream = [cursor, started](std::string& chunk) noexcept -> StreamStep {
    try {
      if (!*started) {
        *started = true;
        chunk = kCsvByteOrderMark;
        chunk += csv_line(
            {"Numéro", "Titre", "Catégorie", "Sous-catégorie", "Statut", "Ouvert le (UTC)"});
      }
      std::vector<projections::TicketRow> rows;
      auto n = cursor->next(500, rows);
      if (!n) return StreamStep::failed;
      for (const auto& row : rows) chunk += ticket_csv_line(row);
      return *n == 0 ? StreamStep::done : StreamStep::more;
    } catch (...) {
      return StreamStep::failed;  // bad_alloc: nothing else here throws
    }
  };
  return r;
}

}  // namespace chorus::api
