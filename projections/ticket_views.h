#pragma once
// Ticket views: "Tickets émis" per user with its tabs and counts, and the ticket detail.
//
// Key layout (every list page is one bounded range scan; applying an event reads one row):
//   s\0<ticket_id>                                   -> state: status code, opened_at be64, emitter
//   t\0<ticket_id>                                   -> ticket detail row (JSON)
//   h\0<ticket_id>\0<version be64>                   -> one activity-history entry (JSON)
//   e\0<user>\0<tab>\0<opened_at be64><ticket_id>    -> list row (JSON), newest last
//   c\0<user>\0<tab>                                 -> count (be64, merged)
// Tabs: "actions_requises" ("Actions requises": En attente d'informations, Résolu),
// "en_cours" ("En cours": Ouvert), "tous" ("Tous (sauf clôturés)"), "clotures" ("Clôturés":
// Fermé), "brouillons" ("Brouillons").

#include <optional>
#include <string>
#include <vector>

#include "projections/projector.h"

namespace chorus::projections {

inline constexpr const char* kTicketTabs[] = {"actions_requises", "en_cours", "tous", "clotures",
                                              "brouillons"};

class TicketViews final : public Projector {
 public:
  Result<void> apply(const events::Event& event, const events::LogAddress& at,
                     ViewBatch& batch) override;
};

// The ticket an event belongs to, or null for events of other aggregates.
[[nodiscard]] const std::string* ticket_id_of(const events::Payload& payload) noexcept;

// The emitter of a ticket as the views know it (read-your-writes within `batch`), for other
// projectors of the same runner placed after TicketViews. nullopt when unknown.
[[nodiscard]] Result<std::optional<std::string>> ticket_emitter(const ViewBatch& batch,
                                                                const std::string& ticket_id);

struct TicketPage {
  std::vector<std::string> rows;  // JSON objects
  std::uint64_t total = 0;        // rows in the tab
};

// A page of `user_id`'s tickets in `tab`, newest first. page starts at 1. Fails with
// invalid_argument for an unknown tab. Thread-safe.
[[nodiscard]] Result<TicketPage> list_emitted_tickets(const ViewStore& store,
                                                      const std::string& user_id,
                                                      const std::string& tab, std::size_t page,
                                                      std::size_t page_size);

// The detail of a ticket (JSON, with its "history" in version order), nullopt when unknown.
// The caller checks who may see it.
[[nodiscard]] Result<std::optional<std::string>> ticket_detail(const ViewStore& store,
                                                               const std::string& ticket_id);

}  // namespace chorus::projections
