#pragma once
// Internal to the ticket views' two writers: the live projector (ticket_views.cpp, which
// defines everything here) and the folded rebuild (ticket_fold.cpp). What a ticket's rows are
// made of, so that both write the same bytes. The key layout is in ticket_views.h. Not for
// other modules.

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "projections/view_store.h"

namespace chorus::projections::ticket_rows {

// A user's emitted lists keep bucket sets, and the user term bitmaps, once the user has emitted
// this many tickets (ticket_views.cpp says why).
inline constexpr std::uint64_t kTermBitmapsFrom = 256;
// Ordinals per term bitmap chunk (tb rows).
inline constexpr std::uint32_t kBitsPerChunk = 4096;

// What applying an event needs to know of the ticket so far, and what a list row shows: one
// point read gives a page's row without the (long) detail row.
struct TicketState {
  char status = 0;
  std::uint64_t opened_at_us = 0;
  char level = '1';
  std::string emitter;
  std::string number;
  std::string title;
  std::string category;
  std::string sub_category;
  std::string assignee;
  std::string destination;          // "M-" tickets: the destination structure
  std::string destination_service;  // and service (empty: the whole structure)
  std::string email;                // signed-out tickets: no emitter, this address instead
  // The ticket's place among its emitter's tickets (the emitter's ec before it came, from 0):
  // its bit in the emitter's term bitmaps (tb rows) and in its lists' bucket sets (kb rows).
  // 0 for a signed-out ticket.
  std::uint32_t ordinal = 0;

  // The state row. Pure.
  [[nodiscard]] std::string encode() const;
  // nullopt when `v` is no state row. Pure.
  [[nodiscard]] static std::optional<TicketState> decode(std::string_view v);
  // "M-" sub-categories go to a business service (domain::ticket::is_business; projections may
  // not depend on domain/).
  [[nodiscard]] bool business() const {
    return sub_category.starts_with("M-") || sub_category.starts_with("M -");
  }
};

// What one event does to its ticket's rows, decided from the ticket's state before it: the
// live projector writes it into a batch, the folded rebuild into memory.
struct TicketStep {
  bool deleted = false;  // a deleted draft: none of its rows stays (nor its history)
  TicketState after{};   // when not deleted; its ordinal is the caller's to set when `counted`
  bool counted = false;  // a new ticket of an emitter: counted in the emitter's ec row, and
                         // its ordinal is that count before it
  std::optional<std::string> detail{};  // the detail row, when rewritten
  std::optional<std::string> words{};   // the words row (encode_words), when the form changed
                                        // them (always for a new ticket)
  std::string number{};                 // normalized: the n row, at submission
  std::string content{};                // sha256 of a file attached: the a row
  std::string history{};                // the activity-history entry (h row at the version)
};
// `before`: null for a ticket without a state row (new, or its draft deleted).
// Fails with poison (an action on a ticket never submitted, a detail row missing or not JSON)
// or with what `detail_row` fails with; `detail_row` gives the detail row as it stands before
// the event, read only by events that change it. Pure but for `detail_row`.
[[nodiscard]] Result<TicketStep> ticket_step(
    const events::Event& event, const TicketState* before,
    const std::function<Result<std::optional<std::string>>()>& detail_row);

// Keys (ticket_views.h). Pure.
[[nodiscard]] std::string state_key(std::string_view id);
[[nodiscard]] std::string detail_key(std::string_view id);
[[nodiscard]] std::string history_prefix(std::string_view id);
[[nodiscard]] std::string number_key(std::string_view number);
[[nodiscard]] std::string content_key(std::string_view sha256);
[[nodiscard]] std::string count_key(std::string_view list);
[[nodiscard]] std::string words_row_key(std::string_view id);
[[nodiscard]] std::string emitted_count_key(std::string_view user);
[[nodiscard]] std::string sorted(std::string_view list, char col);
[[nodiscard]] std::string index_prefix(std::string_view sorted_list);
[[nodiscard]] std::string fence_prefix(std::string_view sorted_list);
[[nodiscard]] std::string bucket_prefix(std::string_view sorted_list);
[[nodiscard]] std::string ordinal_bucket_prefix(std::string_view sorted_list);
[[nodiscard]] std::string term_bits_prefix(std::string_view user, std::string_view term);

// The lists a ticket is in, the columns a list is sorted on, and the ticket's place in one.
[[nodiscard]] std::vector<std::string> lists_of(const TicketState& s);
[[nodiscard]] std::string_view columns_of(std::string_view list);
[[nodiscard]] std::string sort_suffix(const TicketState& s, char col, std::string_view id);
// Whether a list is an emitter's ("Tickets émis"), and whether a column keeps bucket sets.
[[nodiscard]] bool is_emitted(std::string_view list);
[[nodiscard]] bool bucket_sets_on(char col);
// The value of a row of a list's opening-time index.
[[nodiscard]] std::string terms_row_value(std::string_view id, char status,
                                          const std::set<std::string>& terms);
// The same from the terms as a words row holds them (encode_words).
[[nodiscard]] std::string terms_row_value(std::string_view id, char status,
                                          std::string_view words_row);
// A words row and back.
[[nodiscard]] std::string encode_words(const std::set<std::string>& words);
[[nodiscard]] std::set<std::string> decode_words(std::string_view row);
// Each word of a words row, in order, without building the set.
void for_each_word(std::string_view row, const std::function<void(std::string_view)>& visit);

}  // namespace chorus::projections::ticket_rows
