#pragma once
// Ticket views: "Tickets émis" per user with its tabs and counts, the support queues, the ticket
// detail, and what sorting, searching and paging them needs.
//
// Key layout (applying an event reads one state row, plus a few short scans when a ticket
// enters or leaves a list; a page is bounded range scans whatever its number):
//   s\0<ticket_id>                     -> state: status, opened_at, level and the listed fields
//   t\0<ticket_id>                     -> ticket detail row (JSON) as its form, files and
//                                         priority left it; status, level, assignee and
//                                         opening time come from the state row, the last
//                                         change from the last history entry (ticket_detail)
//   h\0<ticket_id>\0<version be64>     -> one activity-history entry (JSON)
//   n\0<number>                        -> ticket id (search by number; upper case)
//   a\0<sha256>                        -> "": content some FileAttached names; never removed
//                                         (the log keeps naming it), so the content store's
//                                         sweep keeps it (api/content_store.h)
//   c\0<list>                          -> rows in the list (be64, merged)
//   ec\0<user>                         -> be64 (merged): tickets the user has emitted, drafts
//                                         and deleted ones included; a ticket's ordinal is
//                                         its emitter's ec before it came (from 0)
//   tb\0<user>\0<term>\0<chunk be32>   -> the bits of the user's tickets holding the term (as
//                                         in tw), by ordinal, 4096 a chunk (bit o % 8 of byte
//                                         (o % 4096) / 8); only for a user with ec at 256 or
//                                         more (keeps_term_bitmaps)
//   kb\0<list>\0<col>\0[<sort suffix>] -> the ordinals (be32, ascending) of the rows of the
//                                         bucket of the fence at that suffix (bare: before
//                                         the first fence); the emitted lists of the users of
//                                         tb, every <col> but 'S'
//   tw\0<ticket_id>                    -> the ticket's terms, '\0' between them, in order:
//                                         each distinct normalized word of title and
//                                         description (lower case, no accents), and the
//                                         category and sub-category, each as one term (0x01,
//                                         'c' or 's', the normalized value); the bits a form
//                                         change clears and sets, where a user's bitmaps
//                                         start from
//   x\0<list>\0<col>\0<sort suffix>    -> ticket id: the list sorted on one column ("En
//                                         cours", "Clôturés", "Brouillons" and the lists of one
//                                         status have no 'S', sorted as on 'o'); in the 'o'
//                                         index, the id, '\0', the status code and the
//                                         ticket's terms (as in tw), which the searches no
//                                         term bitmap answers test
//   f\0<list>\0<col>\0<sort suffix>    -> "": the fences, rows whose ticket id hashes to 0 mod 64
//   k\0<list>\0<col>\0[<sort suffix>]  -> be64 (merged): rows from that fence (included) to the
//                                         next one; the bare prefix counts rows before the first
// <sort suffix> is <value>\0<opened_at be64><ticket_id><ordinal be32>, <value> being the
// column's normalized text (empty for "opened on"), so ties sort by opening time; the
// ordinal lets a walk test a row against a term bitmap without reading its state. Page p of a list
// is found by summing bucket counts from the nearer end (about n/128 small rows), skipping inside
// one bucket (about 64 rows) and reading the page: the last page costs what the first does. Fences
// depend on the ticket id only, so a rebuild lays out the same buckets.
//
// Lists <list>:
//   e\0<user>\0<tab>                   "Tickets émis" of an emitter; tabs: "actions_requises"
//       ("Actions requises": En attente d'informations, Résolu), "en_cours" ("En cours":
//       Ouvert), "tous" ("Tous (sauf clôturés)"), "clotures" ("Clôturés": Fermé),
//       "brouillons" ("Brouillons").
//       Two more lists no tab shows, of one status each: "attente_informations" (En attente
//       d'informations) and "resolus" (Résolu), read by searches on those statuses.
//   q\0<level>\0all                    technical tickets not yet Fermé at support level 1 or 2
//   q\0<level>\0unassigned             the same, nobody on them
//   q\0<level>\0agent\0<agent>         the same, "assigned to me"
//   d\0<structure>\0<service>          received tickets of a destination ("M-" tickets, not
//                                      Fermé); <service> empty: the whole structure's, which
//                                      holds those sent to any of its services too
//   d\0<structure>\0<service>\0unassigned          the same, nobody on them
//   d\0<structure>\0<service>\0agent\0<user>       the same, "assigned to me"
// Business ("M-") tickets are in no support queue.
// Columns <col>: 'n' number, 't' title, 'c' category, 's' sub-category, 'S' status, 'o' opened
// on.

#include <cstdint>
#include <memory>
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
  // Moves each ticket the batch changed between its lists once, from where the batch found it
  // to where the batch leaves it.
  Result<void> finish(ViewBatch& batch) override;
};

// The ticket an event belongs to, or null for events of other aggregates.
[[nodiscard]] const std::string* ticket_id_of(const events::Payload& payload) noexcept;

// Who a ticket's notices go to, as the views know it (read-your-writes within `batch`), for
// other projectors of the same runner placed after TicketViews (the outbox).
struct TicketEmitter {
  std::string user_id;  // "" for a signed-out ticket
  std::string email;    // a signed-out ticket's address; "" for a portal user's ticket
};
// nullopt when the ticket is unknown; poison when its state row is malformed.
[[nodiscard]] Result<std::optional<TicketEmitter>> ticket_emitter(const ViewBatch& batch,
                                                                  const std::string& ticket_id);

// --- Lists --------------------------------------------------------------------------------

// The list of `user`'s "Tickets émis" in `tab`. Fails with invalid_argument for an unknown tab.
// Pure, thread-safe.
[[nodiscard]] Result<std::string> emitted_list(const std::string& user, const std::string& tab);

// The list of `user`'s "Tickets émis" of one status, `status` a label as shown (case and
// accents ignored): the tab of that status ("Ouvert": "En cours") or, for the statuses of
// "Actions requises", a list no tab shows. Searches on a status read it (list_tickets). Fails
// with invalid_argument for an unknown status. Pure, thread-safe.
[[nodiscard]] Result<std::string> emitted_status_list(const std::string& user,
                                                      const std::string& status);

enum class QueueScope { all, unassigned, mine };
// A support queue of `level` (1 or 2); `agent` is the caller for QueueScope::mine. Fails with
// invalid_argument for another level. Pure, thread-safe.
[[nodiscard]] Result<std::string> support_queue(int level, QueueScope scope,
                                                const std::string& agent);

// The received tickets ("Sollicitations reçues") of a destination structure: every business
// ("M-") ticket sent to it when `service` is empty, else those sent to that service; submitted
// and not Fermé, like the support queues; `scope` narrows to those nobody has taken, or to
// those `user` handles ("assigned to me"). Fails with invalid_argument for an empty structure.
// Pure, thread-safe; the caller checks the caller's rights on the structure.
[[nodiscard]] Result<std::string> received_queue(const std::string& structure_id,
                                                 const std::string& service,
                                                 QueueScope scope = QueueScope::all,
                                                 const std::string& user = "");

enum class TicketSort : char {
  number = 'n',
  title = 't',
  category = 'c',
  sub_category = 's',
  status = 'S',
  opened_at = 'o',
};
// "number", "title", "category", "sub_category", "status", "opened_at"; nullopt otherwise.
[[nodiscard]] std::optional<TicketSort> parse_ticket_sort(std::string_view name) noexcept;

// Search criteria; every one given must hold. Text matches ignore case and accents.
struct TicketSearch {
  std::string number;                            // exact ("SOL-" may be left out)
  std::string words;                             // each word (has_search_words) must be in the
                                                 // title or the description
  std::string category;                          // exact
  std::string sub_category;                      // exact
  std::string status;                            // a label as shown ("Ouvert", "Résolu", ...)
  std::optional<std::int64_t> opened_from_us;    // included
  std::optional<std::int64_t> opened_before_us;  // excluded
  [[nodiscard]] bool empty() const;
};

// Whether `label` names a status ("Ouvert", "en attente d'informations", ...). Pure.
[[nodiscard]] bool is_ticket_status(const std::string& label);
// Whether a search text holds a word the index keeps (two letters or digits or more, accents
// and case ignored): shorter words are left out of a search, and a text of none would match
// every ticket. Pure.
[[nodiscard]] bool has_search_words(std::string_view text);

struct TicketQuery {
  TicketSort sort = TicketSort::opened_at;
  bool descending = true;
  std::size_t page = 1;  // from 1
  std::size_t page_size = 20;
  TicketSearch search;
};

// One listed ticket, as the columns show it.
struct TicketRow {
  std::string ticket_id;
  std::string number;
  std::string title;
  std::string category;
  std::string sub_category;
  std::string status;  // label
  std::int64_t opened_at_us = 0;
  std::string assignee;  // support queues show who handles it
  int level = 1;
};

struct TicketPage {
  std::vector<std::string> rows;  // JSON objects
  std::uint64_t total = 0;        // rows in the list, or matches of the search
};

// A page of `list` (from emitted_list, support_queue or received_queue). Without search criteria
// the page is read from the list's index for the sort column in bounded scans whatever its
// number. A status sought
// in a tab of several ("Tous", "Actions requises") is sought in the list of that status alone
// instead, where it is dropped ("Ouvert" in "Tous" is "En cours", "Résolu" the list
// "resolus"): the same rows, in the same order, so that a status is a plain page and a status
// with one word is one word's search. One category, sub-category or status sought
// alone, sorted on that column or on opening time, is one range of that column's index: its
// total from the ranks of its two ends (bucket counts summed from the start of the list, about
// rows / 64 small rows), its page read at its rank as a plain page is. Terms (words, a
// category, a sub-category) and opening dates, and nothing else (but the status of a one-status
// tab, or a status narrowed as above), in the emitted list of a user who has emitted 256 tickets
// or more (keeps_term_bitmaps), on any column: the tickets holding them all are the AND of the
// user's term bitmaps (tb) and of the ordinals opened in the dates (the bucket sets of the
// opening-time index inside the range, and the rows of the two buckets at its ends); each
// bucket's matches are its set of ordinals (kb) tested against that, which
// gives the total; the page is read from the bucket holding its first match, each row tested
// by the ordinal ending its key, buckets without a match skipped (about what a plain page and
// a read of the list's bucket sets cost, rows / 64 rows of 256 bytes, when matches are many;
// up to about 64 rows per match of the page when they are few); sorted on status in a tab of
// several, the same over the lists of its statuses one after another. Should a bucket's set
// and its rows disagree, the general path answers instead. Otherwise:
//   - a number: its ticket, checked on its state and words rows (three point reads);
//   - a status no row of the list has: no match, nothing read;
//   - any other criteria (a user's list without term bitmaps, under 256 rows; a support or
//     received-tickets queue): one scan of the list's opening-time index within the dates,
//     each row tested on the status and terms it carries, gives the set of matching ids, and
//     so the exact total, with no state read; the page is then read from the index for the
//     sort, keeping the ids of that set, from the end of the index nearer to the page. Cost:
//     the list's rows within the dates (each about 8 bytes per distinct word of its ticket),
//     then the index rows up to the page from the nearer end.
// A page past the end is empty. Fails with invalid_argument for a sort no TicketSort names,
// io_error when the store fails. Thread-safe; the caller checks that the list is the caller's.
[[nodiscard]] Result<TicketPage> list_tickets(const ViewStore& store, const std::string& list,
                                              const TicketQuery& query);

// The first `page_size` rows of "Tickets émis" in `tab`, newest first (page from 1), with the
// tab's count. Fails with invalid_argument for an unknown tab. Thread-safe.
[[nodiscard]] Result<TicketPage> list_emitted_tickets(const ViewStore& store,
                                                      const std::string& user_id,
                                                      const std::string& tab, std::size_t page,
                                                      std::size_t page_size);

// Rows in the list (the count the portal shows beside a tab). Thread-safe.
[[nodiscard]] Result<std::uint64_t> list_count(const ViewStore& store, const std::string& list);

// Whether `user` keeps term bitmaps (tb rows) and the bucket sets of their emitted lists (kb
// rows): once the user has emitted 256 tickets (the ec row). Fails with io_error when the store
// fails. Thread-safe.
[[nodiscard]] Result<bool> keeps_term_bitmaps(const ViewStore& store, const std::string& user);

// Every row of a list or search in the query's order (page and page_size ignored), handed out
// in chunks so that an export holds one chunk at a time: without criteria it walks the index
// from the last key it gave; with criteria it holds the sorted matches' keys (tens of bytes
// each), not their rows. Rows changed between two chunks may be seen as they are then. Fails
// as list_tickets does. Not thread-safe (one per export); keeps `store` alive.
class TicketCursor {
 public:
  virtual ~TicketCursor() = default;
  // Appends up to `max` rows to `out`; returns how many (0: the end). Fails with io_error,
  // leaving the cursor where it was.
  [[nodiscard]] virtual Result<std::size_t> next(std::size_t max, std::vector<TicketRow>& out) = 0;
};
[[nodiscard]] Result<std::unique_ptr<TicketCursor>> export_tickets(
    std::shared_ptr<const ViewStore> store, const std::string& list, const TicketQuery& query);

// Whether an applied FileAttached names the content of `sha256` (any ticket, drafts deleted
// since included). Fails with io_error. Changes nothing; thread-safe.
[[nodiscard]] Result<bool> content_named(const ViewStore& store, const std::string& sha256);

// The detail of a ticket (JSON, with its "history" in version order), nullopt when unknown:
// the detail row with the status, opening time, level and assignee of its state row and the
// version and time of its last history entry, all read at one snapshot. Fails with io_error
// when the store fails or when the state row or the history is missing or malformed. The
// caller checks who may see it. Changes nothing; thread-safe.
[[nodiscard]] Result<std::optional<std::string>> ticket_detail(const ViewStore& store,
                                                               const std::string& ticket_id);

// Lower case without accents, for sorting and searching (Latin letters as French uses them);
// control characters dropped. Pure.
[[nodiscard]] std::string fold_text(std::string_view text);

}  // namespace chorus::projections
