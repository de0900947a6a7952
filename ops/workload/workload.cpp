#include "ops/workload/workload.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <deque>
#include <random>
#include <thread>
#include <vector>

#include "domain/account.h"
#include "domain/structure.h"
#include "domain/ticket.h"
#include "domain/workflow.h"

namespace chorus::ops {

namespace {

namespace ticket = domain::ticket;

enum class Who { emitter, level1, level2 };

struct Step {
  ticket::Command command;
  Who who;
};

// One ticket on its way: its script, its state, the people involved.
struct Flight {
  std::string id;
  std::string emitter;
  std::string structure;
  std::string agent1;
  std::string agent2;
  std::vector<Step> script;
  std::size_t next = 0;
  ticket::State state;
};

const char* const kCategories[][2] = {
    {"Technique", "Connexion"},
    {"Technique", "Habilitations"},
    {"Facturation", "Dépôt de facture"},
    {"Facturation", "Facture rejetée"},
    {"Structures", "Rattachement"},
    {"Structures", "Changement de SIRET"},
    {"Technique", "API"},
    {"Facturation", "Demande de remboursement TIC"},
};

const char* const kWords[] = {"facture", "rejet",     "connexion",  "mot",          "passe",
                              "SIRET",   "service",   "engagement", "dépôt",        "PDF",
                              "portail", "structure", "compte",     "bloqué",       "erreur",
                              "délai",   "paiement",  "mandat",     "rattachement", "API"};

class Generator {
 public:
  explicit Generator(const WorkloadOptions& o) : o_(o), rng_(o.seed), clock_us_(o.start_us) {}

  std::string words(std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
      if (i) out += ' ';
      out += kWords[rng_() % std::size(kWords)];
    }
    return out;
  }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  // The script of a new ticket, drawn once: what happens to it from draft to close.
  Flight board(std::uint64_t n) {
    Flight f;
    // A version-4 UUID, as the server makes them, but drawn from the seeded generator.
    const std::uint64_t hi = rng_(), lo = rng_();
    char id[40];
    std::snprintf(id, sizeof id, "%08llx-%04llx-4%03llx-%04llx-%012llx",
                  static_cast<unsigned long long>(hi >> 32),
                  static_cast<unsigned long long>((hi >> 16) & 0xffff),
                  static_cast<unsigned long long>(hi & 0xfff),
                  static_cast<unsigned long long>(0x8000 | ((lo >> 48) & 0x3fff)),
                  static_cast<unsigned long long>(lo & 0xffffffffffffULL));
    f.id = id;
    f.state.ticket_id = f.id;
    const std::uint64_t u = n < o_.heavy_user_tickets ? 0 : rng_() % std::max(1u, o_.users);
    f.emitter = "user-" + std::to_string(u);
    f.structure = "structure-" + std::to_string(u % std::max(1u, o_.structures));
    const std::uint32_t level1 = std::max(1u, o_.agents * 3 / 4);
    const std::uint32_t level2 = std::max(1u, o_.agents - level1);
    f.agent1 = "agent-1-" + std::to_string(rng_() % level1);
    f.agent2 = "agent-2-" + std::to_string(rng_() % level2);
    const auto& cat = kCategories[rng_() % std::size(kCategories)];
    ticket::Form form{f.structure, cat[0], cat[1], words(3 + rng_() % 5), words(20 + rng_() % 60)};
    auto& s = f.script;
    auto add = [&](ticket::Command c, Who who) { s.push_back({std::move(c), who}); };

    if (chance(0.02)) {  // a draft left as it is ("Brouillon")
      add(ticket::SaveDraft{form}, Who::emitter);
      return f;
    }
    if (chance(0.03)) {  // a draft deleted ("Quitter sans enregistrer")
      add(ticket::SaveDraft{form}, Who::emitter);
      add(ticket::DeleteDraft{}, Who::emitter);
      return f;
    }
    if (chance(0.10)) {
      add(ticket::SaveDraft{form}, Who::emitter);
      add(ticket::Submit{std::nullopt, ticket::number_for(f.id)}, Who::emitter);
    } else {
      add(ticket::Submit{form, ticket::number_for(f.id)}, Who::emitter);
    }
    if (chance(0.10)) return f;  // still new ("Ouvert", nobody on it yet)
    Who agent = Who::level1;
    add(ticket::Take{}, agent);
    if (chance(0.5)) {
      const char* scale[] = {"major", "medium", "minor"};
      add(ticket::SetPriority{scale[rng_() % 3], scale[rng_() % 3], std::nullopt, ""}, agent);
    }
    if (chance(0.08)) {  // "Envoyé au support": level 2 takes over
      add(ticket::Escalate{}, agent);
      agent = Who::level2;
      add(ticket::Take{}, agent);
    }
    if (chance(0.2)) add(ticket::AddComment{words(8)}, chance(0.5) ? Who::emitter : agent);
    if (chance(0.15)) {
      add(ticket::RequestInformation{words(10)}, agent);
      if (chance(0.3)) return f;  // "En attente d'informations"
      add(ticket::ProvideInformation{words(12)}, Who::emitter);
    }
    if (chance(0.05)) {  // no longer needed
      add(ticket::Close{words(4)}, Who::emitter);
      return f;
    }
    if (chance(0.05)) return f;  // still being handled
    add(ticket::ProposeSolution{words(15)}, agent);
    if (chance(0.08)) {  // a refused solution, then another
      add(ticket::RefuseSolution{words(6)}, Who::emitter);
      add(ticket::ProposeSolution{words(15)}, agent);
    }
    if (chance(0.9)) add(ticket::AcceptSolution{}, Who::emitter);  // else "Résolu", waiting
    return f;
  }

  // The envelope of the events of one command, at the next tick of the simulated clock.
  events::EventMeta meta(const domain::Caller& caller, const std::string& role,
                         const std::string& causation) {
    events::EventMeta m;
    for (auto& b : m.event_id) b = static_cast<std::uint8_t>(rng_());
    m.occurred_at_us = clock_us_;
    m.actor = events::Actor{caller.user_id, role, ""};
    m.correlation_id = "workload-" + std::to_string(o_.seed);
    m.causation_id = causation;
    return m;
  }

  // Decides `command` on `state` with the aggregate's decide(), folds the events into `state`
  // and adds them to `append`. A refusal is a bug of the workload's script: it is reported.
  template <class State, class Command, class Context, class Decide, class Evolve>
  events::Result<void> act(events::StreamAppend& append, State& state, const Command& command,
                           const domain::Caller& caller, const std::string& role,
                           const Context& context, Decide decide, Evolve evolve) {
    auto decided = decide(state, command, caller, context);
    if (!decided) {
      return events::fail(events::errc::invalid_argument,
                          "the workload's script was refused on " + append.stream_id + ": " +
                              decided.error().rule + " (" + decided.error().message + ")");
    }
    clock_us_ += 1'000 + static_cast<std::int64_t>(rng_() % 2'000'000);
    const std::string causation =
        append.stream_id + "/" + std::to_string(state.version + append.events.size());
    for (auto& payload : *decided) {
      state = evolve(std::move(state), payload);
      append.events.push_back({meta(caller, role, causation), std::move(payload)});
    }
    return {};
  }

  std::uint64_t draw(std::uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  // "YYYY-MM-DD" of the simulated clock: the domain needs today's date, never reads a clock.
  std::string today() const {
    const std::time_t t = static_cast<std::time_t>(clock_us_ / 1'000'000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000,
                  (tm.tm_mon + 1) % 100, tm.tm_mday % 100);
    return buf;
  }

  // Decides the flight's next step; returns its events or nothing when it was refused (which
  // would be a bug of the script: it is reported).
  events::Result<events::StreamAppend> advance(Flight& f) {
    const Step& step = f.script[f.next++];
    domain::Caller caller;
    std::string role = "user";
    switch (step.who) {
      case Who::emitter:
        caller.user_id = f.emitter;
        break;
      case Who::level1:
        caller.user_id = f.agent1;
        caller.roles.support_level1 = true;
        role = "support_n1";
        break;
      case Who::level2:
        caller.user_id = f.agent2;
        caller.roles.support_level2 = true;
        role = "support_n2";
        break;
    }
    events::StreamAppend append{ticket::stream_id(f.id), f.state.version, {}};
    auto ok = act(append, f.state, step.command, caller, role, ticket::Context{true, false},
                  ticket::decide, ticket::evolve);
    if (!ok) return std::unexpected(ok.error());
    return append;
  }

  std::int64_t now_us() const { return clock_us_; }

 private:
  const WorkloadOptions& o_;
  std::mt19937_64 rng_;
  std::int64_t clock_us_;
};

namespace st = domain::structure;
namespace acc = domain::account;
namespace wf = domain::workflow;

// Appends `batch` in chunks of at most 1,000 streams, each chunk atomic.
events::Result<void> append_all(events::EventLog& log, std::vector<events::StreamAppend>& batch,
                                WorkloadSummary& summary) {
  for (std::size_t i = 0; i < batch.size(); i += 1'000) {
    std::span<const events::StreamAppend> chunk(batch.data() + i,
                                                std::min<std::size_t>(1'000, batch.size() - i));
    for (const auto& a : chunk) summary.events += a.events.size();
    auto written = log.append(chunk);
    if (!written) return std::unexpected(written.error());
    ++summary.appends;
  }
  batch.clear();
  return {};
}

// Accounts, structures with services and the "Sollicitations émises" espace, attachments
// (direct, or requested and validated), applicants whose requests are refused or left pending
// ("Approbation"), and a few GP transfers. Every emitter of the ticket phase ends up attached to
// its emitting structure: user-<n> to structure-<n mod structures>, the first ones as its GP.
events::Result<void> populate(Generator& gen, events::EventLog& log, const WorkloadOptions& o,
                              WorkloadSummary& summary) {
  const std::uint32_t structures = std::min(o.structures, o.users);
  const std::uint32_t applicants = o.users / 10;
  const domain::Caller support{"agent-1-0", {.support_level1 = true}};
  std::vector<events::StreamAppend> batch;

  // Accounts, created and activated by their holders.
  auto user_id = [](const char* kind, std::uint64_t n) { return kind + std::to_string(n); };
  auto open_account = [&](const std::string& id, std::uint64_t n) -> events::Result<void> {
    static const char* const kFirst[] = {"Camille", "Dominique", "Claude", "Alix", "Sacha"};
    acc::State state;
    state.user_id = id;
    events::StreamAppend a{acc::stream_id(id), 0, {}};
    const domain::Caller holder{id, {}};
    const acc::CreateAccount create{id + "@example.test", kFirst[n % 5], "Usager " + id, "portal",
                                    false};
    if (auto ok = gen.act(a, state, acc::Command{create}, holder, "user", acc::Context{},
                          acc::decide, acc::evolve);
        !ok) {
      return ok;
    }
    if (auto ok = gen.act(a, state, acc::Command{acc::Activate{}}, holder, "user", acc::Context{},
                          acc::decide, acc::evolve);
        !ok) {
      return ok;
    }
    batch.push_back(std::move(a));
    return {};
  };
  for (std::uint64_t u = 0; u < o.users; ++u) {
    if (auto ok = open_account(user_id("user-", u), u); !ok) return ok;
  }
  for (std::uint64_t u = 0; u < applicants; ++u) {
    if (auto ok = open_account(user_id("applicant-", u), u); !ok) return ok;
  }
  if (auto ok = append_all(log, batch, summary); !ok) return ok;

  const st::AccountFacts active{.exists = true, .active = true};
  auto context = [&](st::AccountFacts facts = {}) {
    st::Context c;
    c.today = gen.today();
    c.account = facts;
    return c;
  };
  auto structure_act = [&](events::StreamAppend& a, st::State& state, st::Command command,
                           const domain::Caller& caller, const std::string& role,
                           st::AccountFacts facts = {}) {
    return gen.act(a, state, command, caller, role, context(facts), st::decide, st::evolve);
  };

  // Structures, each created by support with its first GP, then given services and an espace
  // by that GP; then its members and requests, all in the structure's own stream.
  for (std::uint32_t n = 0; n < structures; ++n) {
    const std::string id = "structure-" + std::to_string(n);
    const std::string gp = user_id("user-", n);
    const domain::Caller manager{gp, {}};
    st::State state;
    state.structure_id = id;
    events::StreamAppend a{st::stream_id(id), 0, {}};
    // A SIRET: 13 digits drawn, the 14th making the Luhn sum a multiple of 10.
    std::string siret;
    for (int i = 0; i < 13; ++i) siret.push_back(static_cast<char>('0' + gen.draw(10)));
    for (char last = '0'; last <= '9'; ++last) {
      if (st::is_siret(siret + last)) {
        siret.push_back(last);
        break;
      }
    }
    st::CreateStructure create;
    create.identifier_type = "SIRET";
    create.identifier_value = siret;
    create.data.designation = "Structure " + std::to_string(n);
    create.data.address_line1 = std::to_string(1 + n % 200) + " rue de Bercy";
    create.data.city = "Paris";
    create.data.postal_code = "75001";
    create.data.country = "FR";
    create.created_on = gen.today();
    create.first_gp_user_id = gp;
    if (auto ok = structure_act(a, state, create, support, "support_n1", active); !ok) return ok;
    for (const char* code : {"ACHATS", "COMPTABILITE"}) {
      st::Service service{code, std::string("Service ") + code, "", "2026-01-01", "", false};
      if (auto ok = structure_act(a, state, st::AddService{service}, manager, "user"); !ok) {
        return ok;
      }
    }
    if (auto ok = structure_act(a, state, st::EnableEspace{"Sollicitations émises", "", true, true},
                                manager, "user");
        !ok) {
      return ok;
    }
    // Its users: attached directly by the GP, or on a request the GP validates.
    for (std::uint64_t u = n + structures; u < o.users; u += structures) {
      const std::string member = user_id("user-", u);
      if (gen.draw(10) < 7) {
        st::AttachDirectly attach{member,
                                  gen.draw(10) == 0 ? st::Role::gs : st::Role::user,
                                  {},
                                  gen.today(),
                                  "Rattachement direct"};
        if (auto ok = structure_act(a, state, attach, manager, "user", active); !ok) return ok;
      } else {
        const std::string request = "req-" + member;
        const bool to_service = gen.draw(2) == 0;
        st::RequestAttachment ask{request, {}, "Merci de valider mon rattachement"};
        if (to_service) ask.services = {"ACHATS"};
        if (auto ok = structure_act(a, state, ask, {member, {}}, "user", active); !ok) return ok;
        st::ValidateAttachment yes{to_service ? request + "-1" : request, st::Role::user, {}, ""};
        if (auto ok = structure_act(a, state, yes, manager, "user", active); !ok) return ok;
      }
    }
    // Applicants: refused (with a reason) or still pending.
    for (std::uint64_t u = n; u < applicants; u += structures) {
      const std::string applicant = user_id("applicant-", u);
      const std::string request = "req-" + applicant;
      st::RequestAttachment ask{request, {}, "Demande de rattachement"};
      if (auto ok = structure_act(a, state, ask, {applicant, {}}, "user", active); !ok) return ok;
      if (gen.draw(10) < 6) {
        st::RefuseAttachment no{request, "Personne inconnue de la structure"};
        if (auto ok = structure_act(a, state, no, manager, "user", active); !ok) return ok;
      }
    }
    // A few GPs hand over to one of their users ("transfert de rôle"); the former GP stays.
    if (gen.draw(100) < 3 && n + structures < o.users) {
      const std::string heir = user_id("user-", n + structures);
      if (auto ok = structure_act(a, state, st::TransferMainManager{heir}, manager, "user", active);
          !ok) {
        return ok;
      }
    }
    batch.push_back(std::move(a));
  }
  // Each GP change mirrored on the accounts' streams, as the server writes it
  // (workflow::record_main_manager_roles), with the structure event's metadata. Every account
  // is at version 2 here (created, activated).
  std::map<std::string, std::uint64_t> account_versions;
  std::map<std::string, events::StreamAppend> mirrors;
  for (const auto& a : batch) {
    for (const auto& e : a.events) {
      const auto* transfer = std::get_if<events::MainManagerTransferred>(&e.payload);
      if (transfer == nullptr) continue;
      wf::Appends one{{a.stream_id, 0, {e.payload}}};
      for (const auto& user : wf::main_manager_accounts(one)) account_versions.emplace(user, 2);
      wf::record_main_manager_roles(one, account_versions);
      for (auto& d : one) {
        if (d.stream_id == a.stream_id) continue;
        auto& m = mirrors.try_emplace(d.stream_id, d.stream_id, d.expected_version).first->second;
        for (auto& p : d.payloads) m.events.push_back({e.meta, std::move(p)});
      }
    }
  }
  for (auto& [stream, m] : mirrors) batch.push_back(std::move(m));
  return append_all(log, batch, summary);
}

}  // namespace

events::Result<WorkloadSummary> fill_log(events::EventLog& log, const WorkloadOptions& options,
                                         const WorkloadProgress& progress) {
  Generator gen(options);
  WorkloadSummary summary;
  if (options.structures > 0) {
    if (auto ok = populate(gen, log, options, summary); !ok) return std::unexpected(ok.error());
  }
  const std::uint64_t total = options.tickets + options.heavy_user_tickets;
  std::uint64_t boarded = 0;
  std::deque<Flight> flights;
  std::vector<events::StreamAppend> batch;
  const auto started = std::chrono::steady_clock::now();
  while (boarded < total || !flights.empty()) {
    while (flights.size() < std::max(1u, options.in_flight) && boarded < total) {
      flights.push_back(gen.board(boarded++));
    }
    // Each ticket in flight moves one step: one StreamAppend each, one atomic append in all.
    batch.clear();
    for (auto& f : flights) {
      auto append = gen.advance(f);
      if (!append) return std::unexpected(append.error());
      summary.events += append->events.size();
      batch.push_back(std::move(*append));
    }
    auto written = log.append(batch);
    if (!written) return std::unexpected(written.error());
    ++summary.appends;
    // Landed tickets leave; the others stay for their next step.
    std::erase_if(flights, [&](const Flight& f) {
      if (f.next < f.script.size()) return false;
      ++summary.tickets;
      ++summary.tickets_by_status[ticket::to_string(f.state.status)];
      return true;
    });
    if (progress) progress(summary.events, summary.tickets);
    if (options.rate > 0) {
      const auto due =
          started + std::chrono::microseconds(summary.events * 1'000'000 / options.rate);
      std::this_thread::sleep_until(due);
    }
  }
  summary.end_us = gen.now_us();
  return summary;
}

}  // namespace chorus::ops
