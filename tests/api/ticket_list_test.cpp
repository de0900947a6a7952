// The ticket lists through the HTTP API of the real server: "Tickets émis" sorted on every
// column both ways, paged to the last page, searched on every criterion, exported as CSV for
// French spreadsheets, and the support queues; bad parameters answered 400 naming the field.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "projections/ticket_views.h"
#include "tests/support/attachments.h"
#include "tests/support/server_process.h"

namespace chorus {
namespace {

using nlohmann::json;
using testing::ServerProcess;

struct Answer {
  int status = 0;
  json body;
  std::string raw;
  std::map<std::string, std::string> headers;
};

std::string form(const std::string& title, const std::string& category,
                 const std::string& sub_category, const std::string& description) {
  return json{{"emitting_structure_id", "structure-1"},
              {"category", category},
              {"sub_category", sub_category},
              {"title", title},
              {"description", description}}
      .dump();
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// Splits CSV text as a spreadsheet reads it: `;` between cells, quoted cells with doubled
// quotes and line breaks inside, CRLF between records.
std::vector<std::vector<std::string>> parse_csv(std::string_view text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string cell;
  bool quoted = false, in_quotes = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell.push_back('"');
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        cell.push_back(c);
      }
    } else if (c == '"') {
      in_quotes = quoted = true;
    } else if (c == ';') {
      rows.back().push_back(cell);
      cell.clear();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      rows.back().push_back(cell);
      cell.clear();
      rows.emplace_back();
      ++i;
    } else {
      ADD_FAILURE() << "unquoted byte in CSV at " << i;
      cell.push_back(c);
    }
  }
  EXPECT_TRUE(rows.back().empty() && cell.empty() && !in_quotes) << "CSV not ended by CRLF";
  rows.pop_back();
  (void)quoted;
  return rows;
}

const char* const kSorts[] = {"number", "title", "category", "sub_category", "status", "opened_at"};

class TicketList : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() / ("chorus-lists-" + std::to_string(getpid()));
    server_ = new ServerProcess({"--data-dir", dir_.string()});
    client_ = server_->connect().release();
    token_ = testing::attach_users(server_->port(), "structure-1", {"lea", "max", "bulk"});
    // Léa's tickets: accents, case, separators and quotes in titles; several categories.
    const std::vector<std::array<std::string, 4>> tickets{
        {"Connexion impossible", "Technique", "Connexion", "Mot de passe refusé depuis lundi."},
        {"élan de facture", "Facturation", "Dépôt de facture", "La facture est rejetée."},
        {"Zèbre; \"guillemets\"\nsur deux lignes", "Facturation", "Facture rejetée",
         "Rejet du PDF."},
        {"=1+1", "Technique", "API", "Erreur 500 sur l'API."},
        {"abricot", "Structures", "Rattachement", "Rattachement bloqué à la structure."},
        {"Bloqué", "Technique", "Habilitations", "Compte bloqué, facture en attente."},
        {"Élan", "Structures", "Changement de SIRET", "SIRET changé."},
        {"mandat", "Facturation", "Demande de remboursement TIC", "Mandat de paiement."},
        {"Délai", "Technique", "Connexion", "Délai de connexion dépassé."},
        {"API", "Technique", "API", "Jeton refusé par l'API."},
        {"Portail lent", "Technique", "Connexion", "Le portail est lent."},
        {"Paiement", "Facturation", "Facture rejetée", "Paiement refusé, facture rejetée."},
    };
    for (const auto& t : tickets) lea_ids_.push_back(create("lea", form(t[0], t[1], t[2], t[3])));
    // Statuses spread over the tabs: two waiting for information, one resolved, two closed.
    act("sn1a", "POST", "/v1/tickets/" + lea_ids_[1] + "/information-requests", R"({"text":"?"})");
    act("sn1a", "POST", "/v1/tickets/" + lea_ids_[2] + "/information-requests", R"({"text":"?"})");
    act("sn1a", "POST", "/v1/tickets/" + lea_ids_[3] + "/solution", R"({"text":"Voilà."})");
    act("lea", "POST", "/v1/tickets/" + lea_ids_[4] + "/close", R"({"reason":"réglé"})");
    act("lea", "POST", "/v1/tickets/" + lea_ids_[5] + "/close", R"({"reason":"réglé"})");
    draft_id_ = act("lea", "POST", "/v1/tickets/drafts",
                    form("Brouillon facture", "Technique", "Connexion", "facture"))
                    .body.value("ticket_id", "");
    // Someone else's tickets with the same words: never in Léa's answers.
    max_id_ = create(
        "max", form("Connexion impossible", "Technique", "Connexion", "La facture est rejetée."));
  }
  static void TearDownTestSuite() {
    delete client_;
    delete server_;
    std::filesystem::remove_all(dir_);
  }

  // Sends as `user` ("sn1..." level-1 agents, "sn2..." level 2), after the last write's views.
  static Answer act(const std::string& user, const std::string& method, const std::string& target,
                    const std::string& body = "") {
    std::vector<std::string> roles;
    if (user.starts_with("sn1")) roles = {"support_n1"};
    if (user.starts_with("sn2")) roles = {"support_n2"};
    std::map<std::string, std::string> headers{
        {"Authorization", ServerProcess::token(user, roles)}};
    if (!token_.empty()) headers["X-Consistency-Token"] = token_;
    auto r = client_->request(method, target, body, headers);
    if (!r) return {};
    Answer a{r->status, json::parse(r->body, nullptr, false), r->body, r->headers};
    if (a.body.is_object() && a.body.contains("consistency_token")) {
      token_ = a.body["consistency_token"];
    }
    return a;
  }
  static std::string create(const std::string& user, const std::string& body) {
    auto a = act(user, "POST", "/v1/tickets", body);
    EXPECT_EQ(a.status, 201) << a.raw;
    return a.body.value("ticket_id", "");
  }
  // Every row of a list, one page of 200.
  static json all(const std::string& user, const std::string& query) {
    auto a = act(user, "GET", "/v1/me/tickets?page_size=200&" + query);
    EXPECT_EQ(a.status, 200) << query << " " << a.raw;
    return a.body["items"];
  }
  static std::set<std::string> ids(const json& items) {
    std::set<std::string> out;
    for (const auto& r : items) out.insert(r["ticket_id"].get<std::string>());
    return out;
  }
  static void refused(const std::string& target, const std::string& field,
                      const std::string& user = "lea") {
    auto a = act(user, "GET", target);
    EXPECT_EQ(a.status, 400) << target << " " << a.raw;
    EXPECT_EQ(a.body.value("rule", ""), "request.query") << target;
    EXPECT_EQ(a.body.value("field", ""), field) << target;
  }

  static inline std::filesystem::path dir_;
  static inline ServerProcess* server_ = nullptr;
  static inline testing::HttpClient* client_ = nullptr;
  static inline std::string token_;
  static inline std::vector<std::string> lea_ids_;
  static inline std::string draft_id_;
  static inline std::string max_id_;
};

// The order a list must have: the column without case or accents, then opening time.
bool in_order(const json& items, const std::string& sort, bool descending) {
  auto key = [&](const json& r) {
    std::string v;
    if (sort != "opened_at") v = projections::fold_text(r[sort].get<std::string>());
    return std::make_tuple(v, r["opened_at_us"].get<std::int64_t>(),
                           r["ticket_id"].get<std::string>());
  };
  for (std::size_t i = 1; i < items.size(); ++i) {
    const auto a = key(items[i - 1]), b = key(items[i]);
    if (descending ? !(b < a) : !(a < b)) return false;
  }
  return true;
}

TEST_F(TicketList, EverySortBothWaysInEveryTab) {
  for (const char* tab : projections::kTicketTabs) {
    const auto expected = ids(all("lea", std::string("tab=") + tab));
    for (const char* sort : kSorts) {
      for (const char* order : {"asc", "desc"}) {
        const std::string q = std::string("tab=") + tab + "&sort=" + sort + "&order=" + order;
        const json items = all("lea", q);
        EXPECT_EQ(ids(items), expected) << q;
        EXPECT_TRUE(in_order(items, sort, std::string(order) == "desc")) << q << " " << items;
      }
    }
  }
  EXPECT_EQ(all("lea", "tab=tous").size(), 10u);
  EXPECT_EQ(all("lea", "tab=en_cours").size(), 7u);
  EXPECT_EQ(all("lea", "tab=actions_requises").size(), 3u);
  EXPECT_EQ(all("lea", "tab=clotures").size(), 2u);
  EXPECT_EQ(all("lea", "tab=brouillons").size(), 1u);
  // Default orders: newest first; text columns A to Z.
  EXPECT_TRUE(in_order(all("lea", "tab=tous"), "opened_at", true));
  EXPECT_TRUE(in_order(all("lea", "tab=tous&sort=title"), "title", false));
  // Accents and case do not split the alphabet: "élan" sorts beside "Élan", before "mandat".
  const json by_title = all("lea", "tab=tous&sort=title&order=asc");
  std::vector<std::string> titles;
  for (const auto& r : by_title) titles.push_back(r["title"]);
  EXPECT_EQ(titles,
            (std::vector<std::string>{"=1+1", "API", "Connexion impossible", "Délai", "Élan",
                                      "élan de facture", "mandat", "Paiement", "Portail lent",
                                      "Zèbre; \"guillemets\"\nsur deux lignes"}));
}

TEST_F(TicketList, PagesJoinIntoTheWholeListUpToTheLastPage) {
  for (const char* sort : kSorts) {
    for (const char* order : {"asc", "desc"}) {
      const std::string q = std::string("tab=tous&sort=") + sort + "&order=" + order;
      const json whole = all("lea", q);
      json joined = json::array();
      for (int page = 1; page <= 4; ++page) {
        auto a =
            act("lea", "GET", "/v1/me/tickets?" + q + "&page_size=3&page=" + std::to_string(page));
        ASSERT_EQ(a.status, 200) << a.raw;
        EXPECT_EQ(a.body["total"], 10) << q;
        EXPECT_EQ(a.body["page"], page);
        EXPECT_EQ(a.body["items"].size(), page < 4 ? 3u : 1u) << q << " page " << page;
        for (const auto& r : a.body["items"]) joined.push_back(r);
      }
      EXPECT_EQ(joined, whole) << q;
      auto past = act("lea", "GET", "/v1/me/tickets?" + q + "&page_size=3&page=5");
      EXPECT_EQ(past.status, 200);
      EXPECT_TRUE(past.body["items"].empty());
    }
  }
}

TEST_F(TicketList, SearchOnEveryCriterion) {
  const auto number =
      act("lea", "GET", "/v1/tickets/" + lea_ids_[0]).body["number"].get<std::string>();
  // Number: exact, "SOL-" and case optional; someone else's number finds nothing.
  EXPECT_EQ(ids(all("lea", "number=" + number)), std::set<std::string>{lea_ids_[0]});
  std::string bare = number.substr(4);
  std::transform(bare.begin(), bare.end(), bare.begin(), ::tolower);
  EXPECT_EQ(ids(all("lea", "number=" + bare)), std::set<std::string>{lea_ids_[0]});
  const auto max_number = act("max", "GET", "/v1/tickets/" + max_id_).body["number"];
  EXPECT_TRUE(all("lea", "number=" + max_number.get<std::string>()).empty());
  EXPECT_TRUE(all("lea", "number=" + number + "&tab=clotures").empty());

  // Words of title or description, without case or accents, all of them.
  EXPECT_EQ(ids(all("lea", "q=" + url_encode("REJETEE"))),
            (std::set<std::string>{lea_ids_[1], lea_ids_[11]}));
  EXPECT_EQ(ids(all("lea", "q=" + url_encode("facture rejetée paiement"))),
            std::set<std::string>{lea_ids_[11]});
  EXPECT_EQ(ids(all("lea", "q=bloque&tab=clotures")),
            (std::set<std::string>{lea_ids_[4], lea_ids_[5]}));
  EXPECT_EQ(ids(all("lea", "q=facture&tab=brouillons")), std::set<std::string>{draft_id_});
  EXPECT_TRUE(all("lea", "q=introuvable").empty());
  EXPECT_FALSE(ids(all("lea", "q=connexion")).contains(max_id_));

  // Category, sub-category and status: exact, case and accents ignored.
  EXPECT_EQ(ids(all("lea", "category=facturation")),
            (std::set<std::string>{lea_ids_[1], lea_ids_[2], lea_ids_[7], lea_ids_[11]}));
  EXPECT_EQ(ids(all("lea", "sub_category=" + url_encode("facture rejetee"))),
            (std::set<std::string>{lea_ids_[2], lea_ids_[11]}));
  EXPECT_EQ(ids(all("lea", "status=" + url_encode("En attente d'informations"))),
            (std::set<std::string>{lea_ids_[1], lea_ids_[2]}));
  EXPECT_EQ(ids(all("lea", "status=" + url_encode("résolu") + "&tab=actions_requises")),
            std::set<std::string>{lea_ids_[3]});
  EXPECT_TRUE(all("lea", "status=Ouvert&tab=clotures").empty());

  // Dates: today holds every ticket, yesterday none.
  const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  auto day = [](auto d) {
    const std::chrono::year_month_day ymd{d};
    char out[16];
    std::snprintf(out, sizeof out, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    return std::string(out);
  };
  const std::string t = day(today), y = day(today - std::chrono::days(1));
  EXPECT_EQ(all("lea", "opened_from=" + t + "&opened_to=" + t).size(), 10u);
  EXPECT_EQ(all("lea", "opened_from=" + t).size(), 10u);
  EXPECT_TRUE(all("lea", "opened_to=" + y).empty());

  // Criteria combine, and the search answer is sorted and paged like the list.
  const std::string q = "category=technique&q=connexion&sort=title&order=desc";
  const json found = all("lea", q);
  // "Portail lent" is in sub-category Connexion, but the word is in neither title nor text.
  EXPECT_EQ(ids(found), (std::set<std::string>{lea_ids_[0], lea_ids_[8]}));
  EXPECT_TRUE(in_order(found, "title", true));
  auto page2 = act("lea", "GET", "/v1/me/tickets?" + q + "&page_size=1&page=2");
  EXPECT_EQ(page2.body["total"], 2);
  ASSERT_EQ(page2.body["items"].size(), 1u);
  EXPECT_EQ(page2.body["items"][0], found[1]);
}

TEST_F(TicketList, BadParametersAreRefusedNamingTheField) {
  refused("/v1/me/tickets?sort=priority", "sort");
  refused("/v1/me/tickets?order=up", "order");
  refused("/v1/me/tickets?page_size=201", "page_size");
  refused("/v1/me/tickets?page_size=0", "page_size");
  refused("/v1/me/tickets?page=x", "page");
  refused("/v1/me/tickets?tab=archives", "tab");
  refused("/v1/me/tickets?opened_from=2026-02-30", "opened_from");
  refused("/v1/me/tickets?opened_from=26-01-01", "opened_from");
  refused("/v1/me/tickets?opened_to=2026-13-01", "opened_to");
  refused("/v1/me/tickets?opened_from=2026-03-02&opened_to=2026-03-01", "opened_to");
  refused("/v1/me/tickets?status=Perdu", "status");
  refused("/v1/me/tickets?sort_by=title", "sort_by");
  refused("/v1/me/tickets?q=" + std::string(201, 'a'), "q");
  // Words of one character are left out of a search: a search of none would list everything.
  refused("/v1/me/tickets?q=a", "q");
  refused("/v1/me/tickets?q=%21+%3F", "q");
  refused("/v1/me/tickets/export.csv?sort=priority", "sort");
  refused("/v1/support/tickets?scope=others", "scope", "sn1a");
  refused("/v1/support/tickets?level=3", "level", "sn1a");
}

// A parameter left blank, as a form sends a field nobody filled, is one not given, on every
// parameter alike; an empty segment ("&&") is no parameter. A name is still checked.
TEST_F(TicketList, ABlankParameterIsOneNotGiven) {
  const auto plain = act("lea", "GET", "/v1/me/tickets");
  ASSERT_EQ(plain.status, 200) << plain.raw;
  for (const std::string target :
       {"/v1/me/tickets?tab=&sort=&order=&page=&page_size=&number=&q=&category=&sub_category="
        "&status=&opened_from=&opened_to=",
        "/v1/me/tickets?&&", "/v1/me/tickets?&tab=tous&", "/v1/me/tickets?page"}) {
    auto a = act("lea", "GET", target);
    EXPECT_EQ(a.status, 200) << target << " " << a.raw;
    EXPECT_EQ(a.body, plain.body) << target;
  }
  refused("/v1/me/tickets?unknown=", "unknown");
  refused("/v1/me/tickets?q=&q=facture", "q");
  refused("/v1/me/tickets?=x", "");
}

TEST_F(TicketList, CsvExportForFrenchSpreadsheets) {
  auto a = act("lea", "GET", "/v1/me/tickets/export.csv?tab=tous&sort=title&order=asc");
  ASSERT_EQ(a.status, 200) << a.raw;
  EXPECT_EQ(a.headers["content-type"], "text/csv; charset=utf-8");
  EXPECT_EQ(a.headers["transfer-encoding"], "chunked");
  EXPECT_NE(a.headers["content-disposition"].find("attachment"), std::string::npos);
  ASSERT_TRUE(a.raw.starts_with("\xEF\xBB\xBF")) << "no byte order mark";
  const std::string text = a.raw.substr(3);
  EXPECT_TRUE(
      text.starts_with("\"Numéro\";\"Titre\";\"Catégorie\";\"Sous-catégorie\";\"Statut\";"
                       "\"Ouvert le (UTC)\"\r\n"));
  const auto rows = parse_csv(text);
  const json listed = all("lea", "tab=tous&sort=title&order=asc");
  ASSERT_EQ(rows.size(), listed.size() + 1);
  for (std::size_t i = 0; i < listed.size(); ++i) {
    const auto& row = rows[i + 1];
    ASSERT_EQ(row.size(), 6u);
    EXPECT_EQ(row[0], listed[i]["number"]);
    const std::string title = listed[i]["title"];
    // A cell a spreadsheet would run as a formula gets an apostrophe first.
    EXPECT_EQ(row[1], title.starts_with("=") ? "'" + title : title);
    EXPECT_EQ(row[2], listed[i]["category"]);
    EXPECT_EQ(row[3], listed[i]["sub_category"]);
    EXPECT_EQ(row[4], listed[i]["status"]);
    EXPECT_EQ(row[5].size(), 16u) << row[5];  // dd/mm/yyyy HH:MM
  }
  // `;`, `"` and a line break survive inside one quoted cell.
  EXPECT_NE(text.find("\"Zèbre; \"\"guillemets\"\"\nsur deux lignes\""), std::string::npos);
  EXPECT_NE(text.find("\"'=1+1\""), std::string::npos);

  // A search exports its matches only, in the asked order.
  auto searched = act("lea", "GET", "/v1/me/tickets/export.csv?q=rejetee&sort=number&order=desc");
  ASSERT_EQ(searched.status, 200);
  const auto found = parse_csv(searched.raw.substr(3));
  const json expected = all("lea", "q=rejetee&sort=number&order=desc");
  ASSERT_EQ(found.size(), expected.size() + 1);
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(found[i + 1][0], expected[i]["number"]);
  // The connection serves the next request after a streamed answer.
  EXPECT_EQ(act("lea", "GET", "/v1/me/tickets/counts").status, 200);
}

TEST_F(TicketList, CsvExportOfManyRowsComesInChunks) {
  // More rows than one chunk (500) and than one page: the stream goes on to the end.
  for (int i = 0; i < 620; ++i) {
    create("bulk", form("Ticket " + std::to_string(i), "Technique", "Connexion", "volume"));
  }
  auto a = act("bulk", "GET", "/v1/me/tickets/export.csv?sort=opened_at&order=asc");
  ASSERT_EQ(a.status, 200);
  const auto rows = parse_csv(a.raw.substr(3));
  ASSERT_EQ(rows.size(), 621u);
  EXPECT_EQ(rows[1][1], "Ticket 0");
  EXPECT_EQ(rows[620][1], "Ticket 619");
  // Paging the same list reaches the last page with the last row.
  auto last = act("bulk", "GET", "/v1/me/tickets?sort=title&order=desc&page_size=50&page=13");
  ASSERT_EQ(last.status, 200);
  EXPECT_EQ(last.body["total"], 620);
  ASSERT_EQ(last.body["items"].size(), 20u);
  EXPECT_EQ(last.body["items"][19]["title"], "Ticket 0");

  // A word in every one of these tickets (its count in the list gives the total; the page is
  // read from the sort index keeping the rows holding it, ticket_views.h) pages like the list,
  // from either end, the middle pages too, and past the end; with a second, rare word (read
  // in the list's opening-time index) or a date range, the same answer as the filter applied to the
  // whole list; with the status every row of a one-status tab has, the same as the word alone.
  for (const char* order : {"asc", "desc"}) {
    const std::string q = std::string("q=VOLUME&sort=title&order=") + order;
    const json whole = all("bulk", q);
    ASSERT_EQ(whole.size(), 200u);  // one page of 200
    EXPECT_EQ(whole, all("bulk", std::string("sort=title&order=") + order)) << q;
    json joined = json::array();
    for (int page = 1; page <= 14; ++page) {
      auto p =
          act("bulk", "GET", "/v1/me/tickets?" + q + "&page_size=50&page=" + std::to_string(page));
      ASSERT_EQ(p.status, 200) << p.raw;
      EXPECT_EQ(p.body["total"], 620) << q;
      EXPECT_EQ(p.body["items"].size(), page < 13 ? 50u : page == 13 ? 20u : 0u) << q << page;
      for (const auto& r : p.body["items"]) joined.push_back(r);
    }
    json listed = json::array();
    for (int page = 1; page <= 4; ++page) {
      auto p = act("bulk", "GET",
                   std::string("/v1/me/tickets?sort=title&page_size=200&order=") + order +
                       "&page=" + std::to_string(page));
      for (const auto& r : p.body["items"]) listed.push_back(r);
    }
    EXPECT_EQ(joined, listed) << q;
  }
  const json rare = all("bulk", "q=volume%20617");
  ASSERT_EQ(rare.size(), 1u);
  EXPECT_EQ(rare[0]["title"], "Ticket 617");
  EXPECT_EQ(all("bulk", "q=volume&tab=clotures").size(), 0u);
  EXPECT_EQ(all("bulk", "q=volume&status=Ouvert&sort=number").size(), 200u);
  for (int page = 1; page <= 14; page += 6) {
    const std::string paging = "&sort=number&order=desc&page_size=50&page=" + std::to_string(page);
    auto alone = act("bulk", "GET", "/v1/me/tickets?q=volume&tab=en_cours" + paging);
    auto with_status =
        act("bulk", "GET", "/v1/me/tickets?q=volume&tab=en_cours&status=Ouvert" + paging);
    ASSERT_EQ(alone.status, 200) << alone.raw;
    EXPECT_EQ(alone.body["total"], 620);
    EXPECT_EQ(alone.body["items"].size(), page < 13 ? 50u : page == 13 ? 20u : 0u) << page;
    EXPECT_EQ(with_status.body["total"], alone.body["total"]);
    EXPECT_EQ(with_status.body["items"], alone.body["items"]) << page;
  }
}

TEST_F(TicketList, SupportQueuesPerLevelWithAssignedAndUnassigned) {
  // Every page of a queue (the bulk tickets of the export test are in level 1 too).
  auto queue = [](const std::string& user, const std::string& query) {
    std::set<std::string> out;
    for (int page = 1;; ++page) {
      auto a = act(user, "GET",
                   "/v1/support/tickets?page_size=200&page=" + std::to_string(page) + "&" + query);
      EXPECT_EQ(a.status, 200) << query << " " << a.raw;
      if (a.status != 200 || a.body["items"].empty()) return out;
      out.merge(ids(a.body["items"]));
    }
  };
  const std::string mine = create("lea", form("Pour la file", "Technique", "Connexion", "file"));
  auto level1 = queue("sn1a", "level=1");
  EXPECT_TRUE(level1.contains(mine));
  EXPECT_TRUE(level1.contains(max_id_));
  EXPECT_FALSE(level1.contains(lea_ids_[4])) << "Fermé is out of the queue";
  EXPECT_FALSE(level1.contains(draft_id_)) << "drafts are never seen by support";
  EXPECT_TRUE(queue("sn1a", "scope=unassigned").contains(mine));

  ASSERT_EQ(act("sn1a", "POST", "/v1/tickets/" + mine + "/take").status, 201);
  EXPECT_TRUE(queue("sn1a", "scope=mine").contains(mine));
  EXPECT_FALSE(queue("sn1a", "scope=unassigned").contains(mine));
  for (const auto& [scope, who] : {std::pair{"mine", "sn1a"}, std::pair{"unassigned", ""}}) {
    auto a = act("sn1a", "GET", std::string("/v1/support/tickets?page_size=50&scope=") + scope);
    for (const auto& r : a.body["items"]) EXPECT_EQ(r["assignee"], who) << scope;
  }
  EXPECT_TRUE(queue("sn1b", "scope=mine").empty());

  ASSERT_EQ(act("sn1a", "POST", "/v1/tickets/" + mine + "/escalate").status, 201);
  EXPECT_FALSE(queue("sn1a", "").contains(mine));
  EXPECT_TRUE(queue("sn2a", "").contains(mine)) << "level 2 reads its own queue by default";
  EXPECT_TRUE(queue("sn2a", "scope=unassigned&level=2").contains(mine));
  EXPECT_TRUE(queue("sn2a", "level=1").contains(max_id_));

  // Sort, search and paging as in "Tickets émis".
  auto sorted = act("sn1a", "GET", "/v1/support/tickets?sort=number&order=desc&page_size=200");
  EXPECT_TRUE(in_order(sorted.body["items"], "number", true));
  EXPECT_EQ(queue("sn2a", "level=2&q=file"), std::set<std::string>{mine});

  // Only support reads queues; level 1 does not read level 2.
  EXPECT_EQ(act("lea", "GET", "/v1/support/tickets").status, 403);
  EXPECT_EQ(act("sn1a", "GET", "/v1/support/tickets?level=2").status, 403);
}

}  // namespace
}  // namespace chorus
