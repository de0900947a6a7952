// The approvals inbox ("Approbation") of one structure against a model, on a real embedded log
// and the real runner: 1,200 random requests (attachments and subscriptions, on the whole
// structure or one of three services, times with ties), then a third of them decided. At each
// stage every page at every offset, both orders, for the whole structure and for one service,
// equals the model; the cursor chain (after=) walks the same rows; searches and the kind filter
// give the model's matches; and a fresh rebuild of the log lays out the same rows (fences and
// bucket counts included). Then each group's 40 oldest are decided (the inbox drains from its
// head) and, besides the inbox, every history page by number is checked against the whole
// history read at once.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <tuple>

#include "events/embedded_log.h"
#include "projections/runner.h"
#include "projections/structure_views.h"
#include "tests/projections/view_compare.h"

namespace chorus {
namespace {

using nlohmann::json;

struct Pending {
  std::string service;
  std::int64_t at;
  std::string rid;
  std::string user;
  std::string kind;
  std::string comment;
};

const char* const kComments[] = {"Merci", "Rattachement demandé", "Accès équipe comptable", ""};
const char* const kServices[] = {"", "ACHATS", "COMPTA", "S-2"};

class StructureInbox : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("chorus-inbox-test-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    auto log = events::open_embedded_log({(dir_ / "log").string(), false});
    ASSERT_TRUE(log.has_value());
    log_ = std::move(*log);
  }
  void TearDown() override {
    runner_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  void append(std::vector<events::Payload> payloads, std::int64_t at_from,
              const std::vector<std::int64_t>& times = {}) {
    std::vector<events::NewEvent> batch;
    for (std::size_t i = 0; i < payloads.size(); ++i) {
      events::NewEvent e;
      ++counter_;
      for (int b = 0; b < 8; ++b)
        e.meta.event_id[b] = static_cast<std::uint8_t>(counter_ >> (8 * b));
      e.meta.occurred_at_us = times.empty() ? at_from : times[i];
      e.meta.actor = events::Actor{"gp", "user", ""};
      e.payload = std::move(payloads[i]);
      batch.push_back(std::move(e));
    }
    const std::size_t n = batch.size();
    std::vector<events::StreamAppend> appends{{"structure-" + s_, version_, std::move(batch)}};
    ASSERT_TRUE(log_->append(appends).has_value());
    version_ += n;
  }

  std::unique_ptr<projections::Runner> build(const std::string& name) {
    auto runner = projections::Runner::open(*log_, (dir_ / name).string(), {&views_});
    EXPECT_TRUE(runner.has_value());
    while (true) {
      auto n = (*runner)->step(std::chrono::milliseconds(0));
      if (!n || *n == 0) break;
    }
    return std::move(*runner);
  }

  // The model's rows in page order for `services` (nullopt: every group).
  std::vector<Pending> model(const std::optional<std::vector<std::string>>& services, bool newest,
                             const std::function<bool(const Pending&)>& keep) const {
    std::vector<Pending> rows;
    for (const auto& [rid, p] : pending_) {
      if (services && std::ranges::find(*services, p.service) == services->end()) continue;
      if (keep && !keep(p)) continue;
      rows.push_back(p);
    }
    std::ranges::sort(rows, [&](const Pending& a, const Pending& b) {
      if (a.service != b.service) return a.service < b.service;
      const auto ka = std::tie(a.at, a.rid);
      const auto kb = std::tie(b.at, b.rid);
      return newest ? kb < ka : ka < kb;
    });
    return rows;
  }

  static std::vector<std::string> ids(const std::vector<std::string>& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(json::parse(r).value("request_id", ""));
    return out;
  }
  static std::vector<std::string> ids(const std::vector<Pending>& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(r.rid);
    return out;
  }

  // Every page at every offset, and the cursor chain, against the model.
  // History ("Historique") pages by number, for the whole structure, one service and two, equal
  // the slices of the whole history read as one page (newest first), filtered by service.
  void check_history_pages(const projections::ViewStore& store) {
    auto all = projections::history_page(store, s_, 1, 100'000);
    ASSERT_TRUE(all.has_value());
    ASSERT_EQ(all->rows.size(), all->total);
    ASSERT_GT(all->total, 400u);
    auto model = [&](const std::set<std::string>& services) {
      std::vector<std::string> rows;
      for (const auto& row : all->rows) {
        if (services.empty() || services.contains(json::parse(row).value("service", ""))) {
          rows.push_back(row);
        }
      }
      return rows;
    };
    const std::vector<std::set<std::string>> scopes = {{}, {"COMPTA"}, {"ACHATS", "S-2"}};
    for (const auto& scope : scopes) {
      const std::vector<std::string> expected = model(scope);
      for (std::size_t size : {7u, 20u}) {
        for (std::size_t page = 1; (page - 1) * size <= expected.size() + size; ++page) {
          auto got = scope.empty() ? projections::history_page(store, s_, page, size)
                                   : projections::service_history_page(
                                         store, s_, {scope.begin(), scope.end()}, page, size);
          ASSERT_TRUE(got.has_value());
          EXPECT_EQ(got->total, expected.size());
          const std::size_t from = std::min(expected.size(), (page - 1) * size);
          const std::vector<std::string> slice(
              expected.begin() + static_cast<std::ptrdiff_t>(from),
              expected.begin() +
                  static_cast<std::ptrdiff_t>(std::min(expected.size(), from + size)));
          ASSERT_EQ(got->rows, slice)
              << "page " << page << " of " << size << ", " << scope.size() << " services";
        }
      }
    }
  }

  void check_pages(const projections::ViewStore& store) {
    for (const auto& services : {std::optional<std::vector<std::string>>{},
                                 std::optional<std::vector<std::string>>{{"COMPTA"}},
                                 std::optional<std::vector<std::string>>{{"S-2", ""}}}) {
      for (const bool newest : {false, true}) {
        const auto expected = ids(model(services, newest, nullptr));
        for (std::size_t offset = 0; offset <= expected.size() + 1; offset += 13) {
          projections::PendingQuery q;
          q.services = services;
          q.newest_first = newest;
          q.offset = offset;
          q.limit = 17;
          auto page = projections::pending_page(store, s_, q);
          ASSERT_TRUE(page.has_value());
          EXPECT_EQ(page->total, expected.size());
          const auto from = std::min(offset, expected.size());
          const std::vector<std::string> want(
              expected.begin() + static_cast<std::ptrdiff_t>(from),
              expected.begin() + static_cast<std::ptrdiff_t>(std::min(from + 17, expected.size())));
          ASSERT_EQ(ids(page->rows), want) << "offset " << offset << " newest " << newest;
        }
        // The cursor chain.
        std::vector<std::string> walked;
        projections::PendingQuery q;
        q.services = services;
        q.newest_first = newest;
        q.limit = 50;
        for (int guard = 0; guard < 1000; ++guard) {
          auto page = projections::pending_page(store, s_, q);
          ASSERT_TRUE(page.has_value());
          for (const auto& id : ids(page->rows)) walked.push_back(id);
          if (page->rows.size() < q.limit) break;
          q.after =
              projections::parse_pending_cursor(projections::pending_cursor(page->rows.back()));
          ASSERT_TRUE(q.after.has_value());
        }
        EXPECT_EQ(walked, expected);
      }
    }
  }

  void check_searches(const projections::ViewStore& store) {
    struct Search {
      std::string words;
      std::string kind;
      std::function<bool(const Pending&)> keep;
    };
    const std::vector<Search> searches{
        {"asker-1", "", [](const Pending& p) { return p.user.starts_with("asker-1"); }},
        {"MERCI", "", [](const Pending& p) { return p.comment == "Merci"; }},
        // "compta" begins "comptable" in the comment (and the service COMPTA).
        {"acces compta", "", [](const Pending& p) { return p.comment.starts_with("Accès"); }},
        {"rattachement asker-2", "attachment",
         [](const Pending& p) {
           return p.comment.starts_with("Rattachement") && p.user.starts_with("asker-2") &&
                  p.kind == "attachment";
         }},
        {"", "subscription", [](const Pending& p) { return p.kind == "subscription"; }},
        {"achats", "", [](const Pending& p) { return p.service == "ACHATS"; }},
        {"nothing-like-this", "", [](const Pending&) { return false; }},
    };
    for (const auto& search : searches) {
      for (const bool newest : {false, true}) {
        const auto expected = ids(model(std::nullopt, newest, search.keep));
        // Every search but the last finds something (the checks are not vacuous).
        EXPECT_EQ(expected.empty(), search.words == "nothing-like-this") << search.words;
        std::vector<std::string> walked;
        projections::PendingQuery q;
        q.words = search.words;
        q.kind = search.kind;
        q.newest_first = newest;
        q.limit = 40;
        for (int guard = 0; guard < 1000; ++guard) {
          auto page = projections::pending_page(store, s_, q);
          ASSERT_TRUE(page.has_value());
          EXPECT_EQ(page->total, expected.size()) << search.words;
          for (const auto& id : ids(page->rows)) walked.push_back(id);
          if (page->rows.size() < q.limit) break;
          q.after =
              projections::parse_pending_cursor(projections::pending_cursor(page->rows.back()));
        }
        EXPECT_EQ(walked, expected) << search.words << " " << search.kind;
        // By offset too: the second page.
        projections::PendingQuery second = q;
        second.after.reset();
        second.offset = 40;
        auto page = projections::pending_page(store, s_, second);
        ASSERT_TRUE(page.has_value());
        const std::size_t from = std::min<std::size_t>(40, expected.size());
        EXPECT_EQ(ids(page->rows),
                  std::vector<std::string>(
                      expected.begin() + static_cast<std::ptrdiff_t>(from),
                      expected.begin() +
                          static_cast<std::ptrdiff_t>(std::min<std::size_t>(80, expected.size()))));
      }
    }
  }

  std::filesystem::path dir_;
  std::unique_ptr<events::EventLog> log_;
  std::unique_ptr<projections::Runner> runner_;
  projections::StructureViews views_;
  std::string s_ = "inbox-s";
  std::uint64_t version_ = 0;
  std::uint64_t counter_ = 0;
  std::map<std::string, Pending> pending_;
};

TEST_F(StructureInbox, PagesCursorsAndSearchesMatchTheModel) {
  std::mt19937 rng(6);
  events::StructureData data;
  data.designation = "Structure de l'approbation";
  std::vector<events::Payload> setup{events::StructureCreated{
      s_, "SIRET", "73282932000074", false, false, false, "2020-01-01", "", data}};
  for (const char* code : {"ACHATS", "COMPTA", "S-2"}) {
    setup.push_back(events::ServiceAdded{s_, code, code, "", "2020-01-01", "", false});
  }
  append(std::move(setup), 1'000);

  // Requests in batches of 100; times often tie (ties sort by request id).
  std::int64_t at = 2'000;
  for (int batch = 0; batch < 12; ++batch) {
    std::vector<events::Payload> payloads;
    std::vector<std::int64_t> times;
    for (int i = 0; i < 100; ++i) {
      const int n = batch * 100 + i;
      Pending p;
      p.service = kServices[rng() % 4];
      p.at = at += static_cast<std::int64_t>(rng() % 3);
      p.rid = "req-" + std::to_string(rng() % 1'000'000) + "-" + std::to_string(n);
      p.user = "asker-" + std::to_string(n);
      p.comment = kComments[rng() % 4];
      if (rng() % 4 == 0) {
        p.kind = "subscription";
        payloads.push_back(events::SubscriptionRequested{s_, p.rid, p.user, "Sollicitations reçues",
                                                         p.service, true, false, p.comment});
      } else {
        p.kind = "attachment";
        payloads.push_back(events::AttachmentRequested{s_, p.rid, p.user, p.service, p.comment});
      }
      times.push_back(p.at);
      pending_.emplace(p.rid, p);
    }
    append(std::move(payloads), 0, times);
  }
  runner_ = build("views");
  auto store = runner_->store();
  // Deep pages are found through fences: the groups hold several.
  std::size_t fences = 0;
  ASSERT_TRUE(store
                  ->scan(std::string("sf\0", 3), "", false,
                         [&](std::string_view, std::string_view) {
                           ++fences;
                           return true;
                         })
                  .has_value());
  EXPECT_GE(fences, 8u);
  check_pages(*store);
  check_searches(*store);

  // A third decided, in random order (fences leave, buckets merge).
  std::vector<std::string> rids;
  for (const auto& [rid, p] : pending_) rids.push_back(rid);
  std::ranges::shuffle(rids, rng);
  std::vector<events::Payload> decisions;
  for (std::size_t i = 0; i < rids.size() / 3; ++i) {
    const Pending& p = pending_.at(rids[i]);
    if (p.kind == "subscription") {
      decisions.push_back(events::SubscriptionRefused{s_, p.rid, p.user, "Non"});
    } else {
      decisions.push_back(events::AttachmentRefused{s_, p.rid, p.user, "Non"});
    }
    pending_.erase(rids[i]);
  }
  append(std::move(decisions), at + 10);
  // Then, in each group, its oldest requests, as an inbox drains from its head: the group's
  // first-row mark moves past each (the tombstones before it are never read again).
  std::vector<const Pending*> by_age;
  for (const auto& [rid, p] : pending_) by_age.push_back(&p);
  std::ranges::sort(by_age, {}, [](const Pending* p) { return std::tie(p->at, p->rid); });
  std::map<std::string, int> taken;
  decisions.clear();
  std::vector<std::string> gone;
  for (const Pending* p : by_age) {
    if (taken[p->service]++ >= 40) continue;
    decisions.push_back(events::AttachmentRefused{s_, p->rid, p->user, "Non"});
    if (p->kind == "subscription") {
      decisions.back() = events::SubscriptionRefused{s_, p->rid, p->user, "Non"};
    }
    gone.push_back(p->rid);
  }
  for (const auto& rid : gone) pending_.erase(rid);
  append(std::move(decisions), at + 20);
  while (true) {
    auto n = runner_->step(std::chrono::milliseconds(0));
    ASSERT_TRUE(n.has_value());
    if (*n == 0) break;
  }
  store = runner_->store();
  check_pages(*store);
  check_searches(*store);
  check_history_pages(*store);

  // A fresh rebuild lays out the same rows, fences and counts included.
  auto fresh = build("fresh");
  EXPECT_EQ(projections::testing::differences(*store, *fresh->store()), "");
}

}  // namespace
}  // namespace chorus
