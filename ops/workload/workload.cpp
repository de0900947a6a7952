#include "ops/workload/workload.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <random>
#include <thread>
#include <vector>

#include "domain/ticket.h"

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
    const ticket::Context context{true, false};
    auto decided = ticket::decide(f.state, step.command, caller, context);
    if (!decided) {
      return events::fail(events::errc::invalid_argument,
                          "the workload's script was refused at step " + std::to_string(f.next) +
                              " of " + f.id + ": " + decided.error().rule);
    }
    events::StreamAppend append{ticket::stream_id(f.id), f.state.version, {}};
    clock_us_ += 1'000 + static_cast<std::int64_t>(rng_() % 2'000'000);
    for (auto& payload : *decided) {
      events::NewEvent e;
      for (auto& b : e.meta.event_id) b = static_cast<std::uint8_t>(rng_());
      e.meta.occurred_at_us = clock_us_;
      e.meta.actor = events::Actor{caller.user_id, role, ""};
      e.meta.correlation_id = "workload-" + std::to_string(o_.seed);
      e.meta.causation_id = f.id + "/" + std::to_string(f.next);
      f.state = ticket::evolve(std::move(f.state), payload);
      e.payload = std::move(payload);
      append.events.push_back(std::move(e));
    }
    return append;
  }

  std::int64_t now_us() const { return clock_us_; }

 private:
  const WorkloadOptions& o_;
  std::mt19937_64 rng_;
  std::int64_t clock_us_;
};

}  // namespace

events::Result<WorkloadSummary> fill_log(events::EventLog& log, const WorkloadOptions& options,
                                         const WorkloadProgress& progress) {
  Generator gen(options);
  WorkloadSummary summary;
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
