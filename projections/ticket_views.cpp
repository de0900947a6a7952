#include "projections/ticket_views.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "events/utf8.h"
#include "projections/id_set.h"
#include "projections/json_text.h"
#include "projections/ranked_list.h"
#include "projections/ticket_rows.h"

namespace chorus::projections {
// Everything up to the public functions is ticket_rows: what ticket_rows.h declares is shared
// with the folded rebuild (ticket_fold.cpp), the rest only used here.
namespace ticket_rows {

using nlohmann::json;

using events::Overloaded;
using events::utf8_sequence;

std::string state_key(std::string_view id) { return key_of({"s", id}); }
std::string detail_key(std::string_view id) { return key_of({"t", id}); }
std::string history_prefix(std::string_view id) { return key_of({"h", id}) + '\0'; }
std::string number_key(std::string_view number) { return key_of({"n", number}); }
std::string content_key(std::string_view sha256) { return key_of({"a", sha256}); }
std::string count_key(std::string_view list) { return key_of({"c", list}); }
bool is_emitted(std::string_view list) { return list.starts_with(std::string_view("e\0", 2)); }
// The user of the emitted list `list`.
std::string list_user(std::string_view list) {
  return std::string(list.substr(2, list.find('\0', 2) - 2));
}
// A ticket's terms (terms_of_form): the bits a change of its form clears and sets in its
// emitter's term bitmaps, and where start_term_bitmaps sets them from.
std::string words_row_key(std::string_view id) { return key_of({"tw", id}); }
// Batch notes (never stored): a ticket whose lists finish() moves, with its state row and
// words as they stood before the batch ("" when it had none).
constexpr std::string_view kMovingPrefix{"moving\0", 7};
std::string moving_key(std::string_view id) { return std::string(kMovingPrefix).append(id); }
// Batch notes: a ticket's words as the batch's form events leave them ("" once deleted).
// finish() writes them to the words row when it moves the ticket's lists, after the users whose
// term bitmaps start in the batch have had theirs set from the words rows as the batch found
// them (start_term_bitmaps).
constexpr std::string_view kNewWordsPrefix{"words\0", 6};
std::string new_words_key(std::string_view id) { return std::string(kNewWordsPrefix).append(id); }
// The columns whose indexes keep bucket sets of ordinals (kb rows): all but status, which a
// tab of several statuses answers from the statuses' own lists (ordinal_parts). Each column
// costs every ticket entering or leaving a list one more fence lookup and a read and write of
// its bucket's set, plus moving about half a bucket's ordinals when a fence comes or goes.
constexpr std::string_view kBucketSetColumns{"ntcso"};
bool bucket_sets_on(char col) { return kBucketSetColumns.find(col) != std::string_view::npos; }
// A user's emitted lists keep bucket sets, and the user term bitmaps, once the user has emitted
// kTermBitmapsFrom tickets (ticket_rows.h; drafts included, deleted ones too). Below it every list
// of theirs is shorter, and a search reads the list's opening-time index, a few hundred rows
// carrying their terms, well under a millisecond; sets and bitmaps would cost each of their tickets
// a read and write per column and list, and per word. The number only grows, so whether a user
// keeps them follows from the log alone, not from where batches end: a rebuild keeps the same.

// The tickets a user has emitted: be64, merged.
std::string emitted_count_key(std::string_view user) { return key_of({"ec", user}); }
// Batch notes: the users whose emitted tickets reached kTermBitmapsFrom in the batch.
constexpr std::string_view kCountingPrefix{"counting\0", 9};
// A list sorted on one column: "<list>\0<col>".
std::string sorted(std::string_view list, char col) { return key_of({list, std::string(1, col)}); }
std::string index_prefix(std::string_view sorted_list) { return key_of({"x", sorted_list}) + '\0'; }
std::string fence_prefix(std::string_view sorted_list) { return key_of({"f", sorted_list}) + '\0'; }
std::string bucket_prefix(std::string_view sorted_list) {
  return key_of({"k", sorted_list}) + '\0';
}

// Sort values are cut here: keys stay short, and titles rarely differ only after 64 bytes.
constexpr std::size_t kSortValueMax = 64;
constexpr std::size_t kWordMax = 40;

// An index row's value is the ticket's id, except in an opening-time index (terms_row_value),
// where more follows it after a '\0' (no id holds one: it separates key parts).
std::string_view row_id(std::string_view value) { return value.substr(0, value.find('\0')); }
// Which tickets are fences depends on nothing but their id, so a rebuild gives the same buckets
// as the live views.
bool ticket_fence(std::string_view, std::string_view value) { return is_fence_id(row_id(value)); }
RankedList ranked(const std::string& sl) {
  return RankedList{index_prefix(sl), fence_prefix(sl), bucket_prefix(sl), &ticket_fence, true};
}

// Statuses as users see them, their one-byte codes in the state row, and the lists of "Tickets
// émis" holding them. "attente_informations" and "resolus" are no tab: lists of one status
// each, so that a search on a status of "Actions requises" (in it or in "Tous") reads a list of
// that status only, as "Ouvert" reads "En cours" (narrow_by_status). They cost each ticket of
// those statuses one list more; the portal's tabs are kTicketTabs.
struct StatusInfo {
  char code;
  const char* label;
  std::vector<std::string_view> tabs;
};
const StatusInfo kStatuses[] = {
    {'B', "Brouillon", {"brouillons"}},
    {'O', "Ouvert", {"en_cours", "tous"}},
    {'W', "En attente d'informations", {"actions_requises", "tous", "attente_informations"}},
    {'R', "Résolu", {"actions_requises", "tous", "resolus"}},
    {'F', "Fermé", {"clotures"}},
};
const StatusInfo& status_of(char code) {
  for (const auto& s : kStatuses) {
    if (s.code == code) return s;
  }
  return kStatuses[0];
}

// The status a search names by its label (folded); nullptr when none does.
const StatusInfo* status_labelled(std::string_view folded) {
  for (const auto& s : kStatuses) {
    if (fold_text(s.label) == folded) return &s;
  }
  return nullptr;
}
// Whether the "Tickets émis" tab `tab` lists tickets of status `s`.
bool tab_holds(const StatusInfo& s, std::string_view tab) {
  return std::find(s.tabs.begin(), s.tabs.end(), tab) != s.tabs.end();
}
// The statuses a tab of "Tickets émis" holds rows of.
int statuses_in(std::string_view tab) {
  return static_cast<int>(std::count_if(std::begin(kStatuses), std::end(kStatuses),
                                        [&](const StatusInfo& s) { return tab_holds(s, tab); }));
}
// The list of "Tickets émis" holding status `s` and no other.
std::string_view own_list(const StatusInfo& s) {
  for (auto tab : s.tabs) {
    if (statuses_in(tab) == 1) return tab;
  }
  std::abort();  // kStatuses gives every status a list of its own
}

void put_field(std::string& out, std::string_view field) {
  const auto n = static_cast<std::uint32_t>(field.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  out.append(field);
}
bool take_field(std::string_view& in, std::string& field) {
  if (in.size() < 4) return false;
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(in[i]);
  if (in.size() < 4 + std::size_t{n}) return false;
  field.assign(in.substr(4, n));
  in.remove_prefix(4 + n);
  return true;
}

std::string TicketState::encode() const {
  std::string out(1, status);
  out += be64(opened_at_us);
  out.push_back(level);
  for (const auto* f : {&emitter, &number, &title, &category, &sub_category, &assignee,
                        &destination, &destination_service, &email}) {
    put_field(out, *f);
  }
  out += be32(ordinal);
  return out;
}
std::optional<TicketState> TicketState::decode(std::string_view v) {
  if (v.size() < 10) return std::nullopt;
  TicketState s;
  s.status = v[0];
  s.opened_at_us = from_be64(v.substr(1, 8));
  s.level = v[9];
  v.remove_prefix(10);
  for (auto* f : {&s.emitter, &s.number, &s.title, &s.category, &s.sub_category, &s.assignee}) {
    if (!take_field(v, *f)) return std::nullopt;
  }
  // Rows written before routing have no destination: they end here.
  if (v.empty()) return s;
  for (auto* f : {&s.destination, &s.destination_service}) {
    if (!take_field(v, *f)) return std::nullopt;
  }
  if (v.empty()) return s;  // written before signed-out tickets
  if (!take_field(v, s.email)) return std::nullopt;
  if (v.empty()) return s;  // written before ordinals
  if (v.size() != 4) return std::nullopt;
  s.ordinal = from_be32(v);
  return s;
}

// Whether tickets of status `code` are in the support and received-tickets queues: those not
// yet Fermé (nor drafts).
bool queued(char code) { return code == 'O' || code == 'W' || code == 'R'; }

// The lists a ticket is in.
std::vector<std::string> lists_of(const TicketState& s) {
  std::vector<std::string> out;
  if (s.status == 0) return out;
  // A signed-out ticket has no emitter: no "Tickets émis" lists it.
  if (!s.emitter.empty()) {
    for (auto tab : status_of(s.status).tabs) out.push_back(key_of({"e", s.emitter, tab}));
  }
  const bool in_queue = queued(s.status);
  if (in_queue && !s.business()) {
    const std::string level(1, s.level);
    out.push_back(key_of({"q", level, "all"}));
    out.push_back(s.assignee.empty() ? key_of({"q", level, "unassigned"})
                                     : key_of({"q", level, "agent", s.assignee}));
  }
  // Received tickets ("Sollicitations reçues") of the destination: the whole structure's list
  // holds every one, a service's list those sent to that service.
  // Each has its "unassigned" and "assigned to me" lists, as the support queues do.
  if (in_queue && s.business() && !s.destination.empty()) {
    auto received = [&](std::string_view service) {
      out.push_back(key_of({"d", s.destination, service}));
      out.push_back(s.assignee.empty()
                        ? key_of({"d", s.destination, service, "unassigned"})
                        : key_of({"d", s.destination, service, "agent", s.assignee}));
    };
    received("");
    if (!s.destination_service.empty()) received(s.destination_service);
  }
  return out;
}

// Whether a ticket is in `list`; without building every list name for a tab.
bool in_list(const TicketState& s, std::string_view list) {
  if (list.starts_with(std::string_view("e\0", 2))) {
    const std::string_view rest = list.substr(2);
    const auto sep = rest.find('\0');
    if (sep == std::string_view::npos || rest.substr(0, sep) != s.emitter) return false;
    return s.status != 0 && tab_holds(status_of(s.status), rest.substr(sep + 1));
  }
  const auto lists = lists_of(s);
  return std::find(lists.begin(), lists.end(), list) != lists.end();
}

std::string sort_value(const TicketState& s, char col) {
  std::string v;
  switch (col) {
    case 'n':
      v = s.number;
      break;
    case 't':
      v = fold_text(s.title);
      break;
    case 'c':
      v = fold_text(s.category);
      break;
    case 's':
      v = fold_text(s.sub_category);
      break;
    case 'S':
      v = fold_text(status_of(s.status).label);
      break;
    default:
      break;
  }
  if (v.size() > kSortValueMax) v.resize(kSortValueMax);
  return v;
}

// Ends with the ticket's ordinal (be32), which changes nothing to the order (ids are unique)
// and lets a walk of an index test each row against a term bitmap without reading its state.
std::string sort_suffix(const TicketState& s, char col, std::string_view id) {
  std::string out = sort_value(s, col);
  out.push_back('\0');
  out += be64(s.opened_at_us);
  out.append(id);
  out += be32(s.ordinal);
  return out;
}
std::uint32_t ordinal_of_suffix(std::string_view suffix) {
  return suffix.size() < 4 ? 0 : from_be32(suffix.substr(suffix.size() - 4));
}

// `value`: the row's, the ticket's id or terms_row_value.
Result<void> index_insert(ViewBatch& batch, const std::string& sl, const std::string& suffix,
                          const std::string& value) {
  batch.put(index_prefix(sl) + suffix, value);
  return ranked_insert(batch, ranked(sl), suffix, value);
}

Result<void> index_remove(ViewBatch& batch, const std::string& sl, const std::string& suffix,
                          const std::string& id) {
  batch.del(index_prefix(sl) + suffix);
  return ranked_remove(batch, ranked(sl), suffix, id);
}

// The columns a list keeps an index for: every one. Support and received-tickets queues hold
// tickets not yet closed, a few thousand at the worst (DOMAIN.md "Scale"); sorted in memory,
// an agent's queue of 1,269 tickets took 3.8-4.2 ms a page on title or category
// (ticket_list_bench, 2026-11-27), where an index answers in a bounded scan. A list of one
// status sorts on status as on opening time.
std::string_view columns_of(std::string_view list) {
  if (is_emitted(list) && statuses_in(list.substr(list.rfind('\0') + 1)) == 1) return "ntcso";
  return "ntcsSo";
}

// The index a query reads for `sort` in `list` (every list has one for every sort), or 0 for a
// value no TicketSort names.
char index_for(std::string_view list, TicketSort sort) {
  const char col = static_cast<char>(sort);
  if (columns_of(list).find(col) != std::string_view::npos) return col;
  if (col == 'S' && columns_of(list).size() == 5) return 'o';  // a tab of one status
  return 0;
}

std::string encode_words(const std::set<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out.push_back('\0');
    out += w;
  }
  return out;
}
void for_each_word(std::string_view row, const std::function<void(std::string_view)>& visit) {
  if (row.empty()) return;
  for (std::size_t at; (at = row.find('\0')) != std::string_view::npos; row.remove_prefix(at + 1)) {
    visit(row.substr(0, at));
  }
  visit(row);
}
std::set<std::string> decode_words(std::string_view row) {
  std::set<std::string> words;
  for_each_word(row, [&](std::string_view w) { words.emplace(w); });
  return words;
}

// The value of a row of a list's opening-time index: the ticket's id, '\0', its status code
// and its terms (encode_words: those of its form, terms_of_form). A search that no term bitmap
// answers (match_ids) tests each row from that index alone: a queue's tickets come from many
// emitters, and a user's list without bitmaps is short. Per-user postings (a row per word and
// ticket) were 30% of the rows a rebuild wrote; reading each row's state and postings took
// 8-14 ms p99 for an agent's queue of 1,269 tickets (ticket_list_bench, 2026-11-27).
// update_lists rewrites it when the status or the terms change in place. Its length grows
// with the ticket's distinct words, in every list the ticket is in: the price of searches
// without point reads.
std::string terms_row_value(std::string_view id, char status, std::string_view words_row) {
  std::string out;
  out.reserve(id.size() + 2 + words_row.size());
  out.append(id);
  out.push_back('\0');
  out.push_back(status);
  out.append(words_row);
  return out;
}
std::string terms_row_value(std::string_view id, char status, const std::set<std::string>& terms) {
  return terms_row_value(id, status, encode_words(terms));
}

// The words `from` has and `to` has not, and those `to` has and `from` has not.
std::pair<std::set<std::string>, std::set<std::string>> word_changes(
    const std::set<std::string>& from, const std::set<std::string>& to) {
  std::pair<std::set<std::string>, std::set<std::string>> out;
  std::set_difference(from.begin(), from.end(), to.begin(), to.end(),
                      std::inserter(out.first, out.first.end()));
  std::set_difference(to.begin(), to.end(), from.begin(), from.end(),
                      std::inserter(out.second, out.second.end()));
  return out;
}

// The bucket the row at `suffix` of the sorted list `sl` falls in: the suffix of the nearest
// fence before it ("" before the first fence); read-your-writes.
Result<std::string> bucket_before(ViewBatch& batch, const std::string& sl,
                                  const std::string& suffix) {
  return ranked_fence_before(batch, ranked(sl), suffix);
}

// --- Term bitmaps and bucket sets (the searches of terms and dates, terms_page) -----------

// tb\0<user>\0<term>\0<chunk be32> -> the bits of the user's tickets holding the term among
// ordinals [chunk * kBitsPerChunk, (chunk + 1) * kBitsPerChunk): ordinal o is bit o % 8 of byte
// (o % kBitsPerChunk) / 8; trailing zero bytes are cut, and a chunk with no bit has no row.
// A user of 100,000 tickets holds 25 chunks of a word found in most of them (12.5 KB): the
// tickets holding every word of a search are a few AND of machine words, where the per-user
// postings of three such words (a row per word and ticket, since dropped) were 300,000 rows
// to scan (33-45 ms, ticket_list_bench, 2026-11-27).
std::string term_bits_prefix(std::string_view user, std::string_view term) {
  return key_of({"tb", user, term}) + '\0';
}

// Sets (`on`) or clears the bit of `ordinal` in the user's bitmap of each term; read-your-writes.
Result<void> set_term_bits(ViewBatch& batch, std::string_view user, std::uint32_t ordinal,
                           const std::set<std::string>& terms, bool on) {
  const std::string chunk = be32(ordinal / kBitsPerChunk);
  const std::size_t byte = (ordinal % kBitsPerChunk) / 8;
  const char bit = static_cast<char>(1 << (ordinal % 8));
  for (const auto& term : terms) {
    const std::string key = term_bits_prefix(user, term) + chunk;
    auto row = batch.get(key);
    if (!row) return std::unexpected(row.error());
    std::string bits = row->value_or("");
    if (on) {
      if (bits.size() <= byte) bits.resize(byte + 1, '\0');
      bits[byte] = static_cast<char>(bits[byte] | bit);
    } else if (byte < bits.size()) {
      bits[byte] = static_cast<char>(bits[byte] & ~bit);
      while (!bits.empty() && bits.back() == '\0') bits.pop_back();
    }
    if (!bits.empty()) {
      batch.put(key, bits);
    } else if (row->has_value()) {
      batch.del(key);
    }
  }
  return {};
}

// kb\0<sorted list>\0[<fence suffix>] -> the ordinals (be32, ascending) of the rows of that
// bucket (the bare prefix: before the first fence), in the emitted lists of a user who keeps
// term bitmaps, on kBucketSetColumns. A search of terms counts its matches per bucket from them
// and the terms' bitmaps, so that its page starts at the bucket holding it.
std::string ordinal_bucket_prefix(std::string_view sl) { return key_of({"kb", sl}) + '\0'; }

// Adds `in` to and removes `out` from the ordinals of a bucket; read-your-writes.
Result<void> change_ordinals(ViewBatch& batch, const std::string& key,
                             const std::vector<std::uint32_t>& in,
                             const std::vector<std::uint32_t>& out) {
  auto row = batch.get(key);
  if (!row) return std::unexpected(row.error());
  std::vector<std::uint32_t> ords;
  if (row->has_value()) {
    const std::string_view v = **row;
    for (std::size_t at = 0; at + 4 <= v.size(); at += 4) ords.push_back(from_be32(v.substr(at)));
  }
  for (auto o : out) {
    auto it = std::lower_bound(ords.begin(), ords.end(), o);
    if (it != ords.end() && *it == o) ords.erase(it);
  }
  for (auto o : in) {
    auto it = std::lower_bound(ords.begin(), ords.end(), o);
    if (it == ords.end() || *it != o) ords.insert(it, o);
  }
  if (ords.empty()) {
    if (row->has_value()) batch.del(key);
    return {};
  }
  std::string value;
  value.reserve(ords.size() * 4);
  for (auto o : ords) value += be32(o);
  batch.put(key, value);
  return {};
}

std::vector<std::uint32_t> ordinals_of(const RankedRows& rows) {
  std::vector<std::uint32_t> out;
  out.reserve(rows.size());
  for (const auto& [suffix, id] : rows) out.push_back(ordinal_of_suffix(suffix));
  return out;
}

// The bucket sets of the sorted list `sl` as the ticket `id` at `suffix` leaves it; before its
// rows are removed. A fence's bucket joins the one before.
Result<void> bucket_sets_remove(ViewBatch& batch, const std::string& sl, const std::string& suffix,
                                const std::string& id) {
  auto before = bucket_before(batch, sl, suffix);
  if (!before) return std::unexpected(before.error());
  const std::string sets = ordinal_bucket_prefix(sl);
  const std::uint32_t own = ordinal_of_suffix(suffix);
  if (!is_fence_id(id)) return change_ordinals(batch, sets + *before, {}, {own});
  auto rest = ranked_rows_to_fence(batch, ranked(sl), suffix);
  if (!rest) return std::unexpected(rest.error());
  if (auto r = change_ordinals(batch, sets + *before, ordinals_of(*rest), {}); !r) return r;
  batch.del(sets + suffix);
  return {};
}

// As the ticket enters the list; before its rows are written. A fence splits the bucket it
// lands in: the rows after it move to its own.
Result<void> bucket_sets_insert(ViewBatch& batch, const std::string& sl, const std::string& suffix,
                                const std::string& id) {
  auto before = bucket_before(batch, sl, suffix);
  if (!before) return std::unexpected(before.error());
  const std::string sets = ordinal_bucket_prefix(sl);
  const std::uint32_t own = ordinal_of_suffix(suffix);
  if (!is_fence_id(id)) return change_ordinals(batch, sets + *before, {own}, {});
  auto rest = ranked_rows_to_fence(batch, ranked(sl), suffix);
  if (!rest) return std::unexpected(rest.error());
  auto moved = ordinals_of(*rest);
  if (auto r = change_ordinals(batch, sets + *before, {}, moved); !r) return r;
  moved.push_back(own);
  return change_ordinals(batch, sets + suffix, moved, {});
}

// The tickets `user` has emitted, from a ViewStore or a ViewBatch.
template <typename Reader>
Result<std::uint64_t> emitted_count(const Reader& reader, std::string_view user) {
  auto row = reader.get(emitted_count_key(user));
  if (!row) return std::unexpected(row.error());
  return row->has_value() ? from_be64(**row) : 0;
}

// Writes the bucket sets of every list of `user`'s on the columns that keep them, and sets the
// bits of the user's term bitmaps: the user's emitted tickets have just reached
// kTermBitmapsFrom. Before any ticket of the batch moves: the rows and words rows read are
// those the moves start from (every ticket of the user is in one of their lists, drafts
// included).
Result<void> start_term_bitmaps(ViewBatch& batch, std::string_view user) {
  std::set<std::string, std::less<>> done;  // ticket ids whose bits are set
  std::set<std::string_view> tabs;
  for (const auto& s : kStatuses) tabs.insert(s.tabs.begin(), s.tabs.end());
  for (auto tab : tabs) {
    const std::string list = key_of({"e", user, tab});
    for (char col : columns_of(list)) {
      if (!bucket_sets_on(col)) continue;
      const std::string sl = sorted(list, col), prefix = index_prefix(sl);
      std::vector<std::pair<std::string, std::string>> rows;  // suffix, id; in key order
      auto ok = batch.scan(prefix, "", false, [&](std::string_view key, std::string_view value) {
        const std::string_view id = row_id(value);
        rows.emplace_back(key.substr(prefix.size()), id);
        return true;
      });
      if (!ok) return ok;
      std::string bucket;                                      // "" before the first fence
      std::map<std::string, std::vector<std::uint32_t>> sets;  // by bucket
      for (const auto& [suffix, id] : rows) {
        if (is_fence_id(id)) bucket = suffix;
        if (done.insert(id).second) {
          auto row = batch.get(words_row_key(id));
          if (!row) return std::unexpected(row.error());
          auto set = set_term_bits(batch, user, ordinal_of_suffix(suffix),
                                   decode_words(row->value_or("")), true);
          if (!set) return set;
        }
        sets[bucket].push_back(ordinal_of_suffix(suffix));
      }
      for (const auto& [b, ords] : sets) {
        if (auto r = change_ordinals(batch, ordinal_bucket_prefix(sl) + b, ords, {}); !r) return r;
      }
    }
  }
  return {};
}

// Moves a ticket's rows from the lists and sort positions of `before` to those of `after`,
// touching only what changed (most events change no listed column); when its emitter keeps
// term bitmaps (kTermBitmapsFrom), also its ordinal in the emitted lists' bucket sets and its
// bits for the words that changed (`old_words` of `before`, `new_words` of `after`). Reads the
// emitter's count of tickets, the fences, and the sets and bitmap chunks it changes.
Result<void> update_lists(ViewBatch& batch, const std::string& id,
                          const std::optional<TicketState>& before,
                          const std::optional<TicketState>& after,
                          const std::set<std::string>& old_words,
                          const std::set<std::string>& new_words) {
  const auto old_lists = before ? lists_of(*before) : std::vector<std::string>{};
  const auto new_lists = after ? lists_of(*after) : std::vector<std::string>{};
  auto contains = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  std::vector<std::string> lists = old_lists;
  for (const auto& l : new_lists) {
    if (!contains(lists, l)) lists.push_back(l);
  }
  const TicketState& owner = after ? *after : *before;
  bool keeps = false;  // the emitter's term bitmaps and bucket sets
  if (!owner.emitter.empty()) {
    auto n = emitted_count(batch, owner.emitter);
    if (!n) return std::unexpected(n.error());
    keeps = *n >= kTermBitmapsFrom;
  }
  // The opening-time rows' value, the same in every list; rewritten in the lists the ticket
  // stays in when what it carries changed.
  const std::string terms_value = after ? terms_row_value(id, after->status, new_words) : "";
  const bool terms_changed =
      before && after && (before->status != after->status || old_words != new_words);
  for (const auto& list : lists) {
    const bool was = contains(old_lists, list), is = contains(new_lists, list);
    for (char col : columns_of(list)) {
      const std::string old_suffix = was ? sort_suffix(*before, col, id) : "";
      const std::string new_suffix = is ? sort_suffix(*after, col, id) : "";
      const std::string sl = sorted(list, col);
      const std::string& value = col == 'o' ? terms_value : id;
      if (was && is && old_suffix == new_suffix) {
        if (col == 'o' && terms_changed) {
          batch.put(index_prefix(sl) + new_suffix, value);  // same place, same fence
        }
        continue;
      }
      const bool sets = keeps && bucket_sets_on(col) && is_emitted(list);
      if (was) {
        if (sets) {
          if (auto r = bucket_sets_remove(batch, sl, old_suffix, id); !r) return r;
        }
        if (auto r = index_remove(batch, sl, old_suffix, id); !r) return r;
      }
      if (is) {
        if (sets) {
          if (auto r = bucket_sets_insert(batch, sl, new_suffix, id); !r) return r;
        }
        if (auto r = index_insert(batch, sl, new_suffix, value); !r) return r;
      }
    }
    if (was != is) batch.add(count_key(list), is ? 1 : -1);
  }
  if (keeps && old_words != new_words) {
    const auto [gone, came] = word_changes(old_words, new_words);
    if (auto r = set_term_bits(batch, owner.emitter, owner.ordinal, gone, false); !r) return r;
    if (auto r = set_term_bits(batch, owner.emitter, owner.ordinal, came, true); !r) return r;
  }
  return {};
}

// Appends the UTF-8 encoding of `cp`.
void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Latin-1 letters U+00C0..U+00FF without their accents, lower case ("" for × and ÷, kept).
const char* const kLatin1Folded[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "y"};

// Words of a text for the search index: folded, split on anything but letters and digits,
// at least two characters.
std::set<std::string> words_of(std::string_view text) {
  std::set<std::string> out;
  const std::string folded = fold_text(text);
  std::string word;
  auto flush = [&] {
    if (word.size() >= 2) out.insert(word.substr(0, kWordMax));
    word.clear();
  };
  for (char c : folded) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u >= 0x80) {
      word.push_back(c);
    } else {
      flush();
    }
  }
  flush();
  return out;
}

// The term a ticket's category (col 'c') or sub-category ('s') is indexed under beside its
// words: a byte no word holds, the column, the folded value, whole (two categories may differ
// only far into their text). Folding drops every control character, so no term holds '\0' (the
// keys' separator) or a second 0x01, and no search text can build one.
std::string value_term(char col, std::string_view folded) {
  std::string term{'\x01', col};
  term.append(folded);
  return term;
}

// What a ticket's form is indexed under (words row, opening-time index rows, term bitmaps): the
// words of its
// title and description, and its category and sub-category as terms (value_term), so that a
// search on one of them pages as a search of words does, on every column.
std::set<std::string> terms_of_form(std::string_view title, std::string_view description,
                                    std::string_view category, std::string_view sub_category) {
  std::set<std::string> terms = words_of(std::string(title) + " " + std::string(description));
  if (!category.empty()) terms.insert(value_term('c', fold_text(category)));
  if (!sub_category.empty()) terms.insert(value_term('s', fold_text(sub_category)));
  return terms;
}

std::set<std::string> words_of_detail(const json& detail) {
  return terms_of_form(detail.value("title", ""), detail.value("description", ""),
                       detail.value("category", ""), detail.value("sub_category", ""));
}

TicketRow row_of(const std::string& id, const TicketState& s) {
  return TicketRow{id,
                   s.number,
                   s.title,
                   s.category,
                   s.sub_category,
                   status_of(s.status).label,
                   static_cast<std::int64_t>(s.opened_at_us),
                   s.assignee,
                   s.level == '2' ? 2 : 1};
}

// A JSON string literal. Rows are built for every page and every event: by hand, not through a
// JSON tree. Text the API let in is valid UTF-8; a byte that is not (a log written by another
// producer) becomes U+FFFD, so the row stays JSON that readers parse.
void append_json_string(std::string& out, std::string_view text) {
  out.push_back('"');
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      const std::size_t len = utf8_sequence(text.substr(i));
      if (len == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(text.substr(i, len));
        i += len;
      }
      continue;
    }
    ++i;
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

// Appends the member `"name":"value"` (or a number) to a JSON object written by hand, after a
// comma unless it is the object's first.
void append_json_field(std::string& out, std::string_view name, std::string_view value) {
  if (out.back() != '{') out.push_back(',');
  append_json_string(out, name);
  out.push_back(':');
  append_json_string(out, value);
}
void append_json_field(std::string& out, std::string_view name, std::int64_t value) {
  if (out.back() != '{') out.push_back(',');
  append_json_string(out, name);
  out.push_back(':');
  out += std::to_string(value);
}

std::string row_json(const TicketRow& r) {
  std::string out;
  out.reserve(256 + r.title.size());
  out.push_back('{');
  append_json_field(out, "ticket_id", r.ticket_id);
  append_json_field(out, "number", r.number);
  append_json_field(out, "title", r.title);
  append_json_field(out, "category", r.category);
  append_json_field(out, "sub_category", r.sub_category);
  append_json_field(out, "status", r.status);
  append_json_field(out, "opened_at_us", r.opened_at_us);
  append_json_field(out, "assignee", r.assignee);
  append_json_field(out, "support_level", std::int64_t{r.level});
  out.push_back('}');
  return out;
}

// The states of `ids` (nullopt for unknown ones), in one MultiGet.
Result<std::vector<std::optional<TicketState>>> states_of(const ViewStore& store,
                                                          const std::vector<std::string>& ids) {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const auto& id : ids) keys.push_back(state_key(id));
  auto values = store.multi_get(keys);
  if (!values) return std::unexpected(values.error());
  std::vector<std::optional<TicketState>> out(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (!(*values)[i]) continue;
    out[i] = TicketState::decode(*(*values)[i]);
    if (!out[i]) return fail(errc::io_error, "ticket state row is malformed");
  }
  return out;
}

Result<std::vector<TicketRow>> rows_of(const ViewStore& store,
                                       const std::vector<std::string>& ids) {
  auto states = states_of(store, ids);
  if (!states) return std::unexpected(states.error());
  std::vector<TicketRow> out;
  out.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if ((*states)[i]) out.push_back(row_of(ids[i], *(*states)[i]));
  }
  return out;
}

// Ids of `count` rows of a sorted list from the one at `rank` (key order), walking forward or
// backward.
Result<std::vector<std::string>> ids_from_rank(const ViewStore& store, const std::string& sl,
                                               std::uint64_t rank, std::uint64_t total,
                                               std::size_t count, bool backward) {
  std::vector<std::string> ids;
  auto start = ranked_key_at(store, ranked(sl), rank, total);
  if (!start) return std::unexpected(start.error());
  if (!*start) return ids;
  auto ok = store.scan(index_prefix(sl), **start, backward,
                       [&](std::string_view, std::string_view value) {
                         const std::string_view id = row_id(value);
                         ids.emplace_back(id);
                         return ids.size() < count;
                       });
  if (!ok) return std::unexpected(ok.error());
  return ids;
}

std::string normalized_number(std::string_view number) {
  std::string n;
  for (char c : number) {
    if (c != ' ') n.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  if (!n.empty() && !n.starts_with("SOL-")) n = "SOL-" + n;
  return n;
}

using Matches = std::vector<std::pair<std::string, std::string>>;

// Search criteria folded once, as the views store the values they are compared with.
struct Criteria {
  std::string number;  // normalized
  std::string category;
  std::string sub_category;
  std::string status;
  std::optional<std::int64_t> from_us, before_us;
  std::set<std::string> words;

  explicit Criteria(const TicketSearch& s)
      : number(normalized_number(s.number)),
        category(fold_text(s.category)),
        sub_category(fold_text(s.sub_category)),
        status(fold_text(s.status)),
        from_us(s.opened_from_us),
        before_us(s.opened_before_us),
        words(words_of(s.words)) {}

  // Whether a ticket of the list passes every criterion but the words.
  bool holds(const TicketState& st) const {
    if (!number.empty() && normalized_number(st.number) != number) return false;
    if (!category.empty() && fold_text(st.category) != category) return false;
    if (!sub_category.empty() && fold_text(st.sub_category) != sub_category) return false;
    if (!status.empty() && fold_text(status_of(st.status).label) != status) return false;
    const auto opened = static_cast<std::int64_t>(st.opened_at_us);
    if (from_us && opened < *from_us) return false;
    if (before_us && opened >= *before_us) return false;
    return true;
  }
};

// The match of a search by number, as (sort suffix, ticket id), when the ticket is in `list`
// and meets the other criteria: its state and words rows are read. Cost: three point reads.
Result<Matches> number_match(const ViewStore& store, const std::string& list, const TicketQuery& q,
                             const Criteria& c) {
  Matches out;
  auto id = store.get(number_key(c.number));
  if (!id) return std::unexpected(id.error());
  if (!*id) return out;
  auto got = store.multi_get({state_key(**id), words_row_key(**id)});
  if (!got) return std::unexpected(got.error());
  if (!(*got)[0]) return out;
  const auto st = TicketState::decode(*(*got)[0]);
  if (!st) return fail(errc::io_error, "ticket state row is malformed");
  if (!in_list(*st, list) || !c.holds(*st)) return out;
  const auto words = decode_words((*got)[1].value_or(""));
  for (const auto& w : c.words) {
    if (!words.contains(w)) return out;
  }
  out.emplace_back(sort_suffix(*st, static_cast<char>(q.sort), **id), **id);
  return out;
}

// Whether the terms of an opening-time index row (encode_words) hold `term`.
bool holds_term(std::string_view terms, std::string_view term) {
  while (!terms.empty()) {
    const auto at = terms.find('\0');
    if (terms.substr(0, at) == term) return true;
    if (at == std::string_view::npos) break;
    terms.remove_prefix(at + 1);
  }
  return false;
}

// The ids of the rows of `list` that match `c` (no number): one scan of the list's
// opening-time index (within the dates), each row tested on the status and terms its value
// carries (terms_row_value). No state row is read. Cost: the list's rows within the dates,
// each as long as its ticket's distinct words (about 8 bytes a word: 200 bytes with the
// bench's 20-word vocabulary, a few KB for a description of thousands of words). The lists
// searched so: a user's list without term bitmaps (under kTermBitmapsFrom rows), a support or
// received-tickets queue (a few thousand rows at the worst), or the lists of a user with
// bitmaps when a bucket set and its rows disagree (terms_page).
Result<IdSet> match_ids(const ViewStore& store, const std::string& list, const Criteria& c) {
  IdSet matches;
  char status = 0;
  if (!c.status.empty()) {
    const StatusInfo* s = status_labelled(c.status);
    if (s == nullptr) return matches;
    if (is_emitted(list) ? !tab_holds(*s, list.substr(list.rfind('\0') + 1)) : !queued(s->code)) {
      return matches;  // no row of this list has that status
    }
    status = s->code;
  }
  std::vector<std::string> terms(c.words.begin(), c.words.end());
  if (!c.category.empty()) terms.push_back(value_term('c', c.category));
  if (!c.sub_category.empty()) terms.push_back(value_term('s', c.sub_category));
  const std::string prefix = index_prefix(sorted(list, 'o'));
  std::string start;
  if (c.from_us && *c.from_us > 0) {
    start = prefix + '\0' + be64(static_cast<std::uint64_t>(*c.from_us));
  }
  bool malformed = false;
  auto ok = store.scan(prefix, start, false, [&](std::string_view key, std::string_view value) {
    // <prefix>\0<opened_at be64><id><ordinal be32>: the sort value of 'o' is empty.
    if (key.size() < prefix.size() + 9) return true;
    const auto opened = static_cast<std::int64_t>(from_be64(key.substr(prefix.size() + 1, 8)));
    if (c.before_us && opened >= *c.before_us) return false;
    if (c.from_us && opened < *c.from_us) return true;
    const std::string_view id = row_id(value);
    if (value.size() < id.size() + 2) {
      malformed = true;
      return false;
    }
    if (status != 0 && value[id.size() + 1] != status) return true;
    const std::string_view row_terms = value.substr(id.size() + 2);
    for (const auto& t : terms) {
      if (!holds_term(row_terms, t)) return true;
    }
    matches.insert(id);
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  if (malformed) return fail(errc::io_error, "an opening-time index row is malformed");
  return matches;
}

// The ids at ranks [skip, skip + count) of the query's order among the rows of the sorted list
// `sl` that are in `matches` (which holds `total`), walking the index from the end nearer to
// them: a page costs the index rows up to it from that end (range scans, one hash lookup a
// row), whatever the page.
Result<std::vector<std::string>> walk_page(const ViewStore& store, const std::string& sl,
                                           const IdSet& matches, std::uint64_t total,
                                           std::uint64_t skip, std::size_t count, bool descending) {
  std::vector<std::string> ids;
  if (skip >= total) return ids;
  // Ranks [lo, hi) in key order.
  const std::uint64_t hi = descending ? total - skip : std::min(total, skip + count);
  const std::uint64_t lo = descending ? (total - skip > count ? total - skip - count : 0) : skip;
  const bool backward = lo > total - hi;      // nearer the end of the index
  std::uint64_t rank = backward ? total : 0;  // of the next match seen (backward: plus one)
  auto ok =
      store.scan(index_prefix(sl), "", backward, [&](std::string_view, std::string_view value) {
        const std::string_view id = row_id(value);
        if (!matches.contains(id)) return true;
        if (backward) {
          --rank;
          if (rank < hi) ids.emplace_back(id);
          return rank > lo;
        }
        if (rank >= lo) ids.emplace_back(id);
        ++rank;
        return rank < hi;
      });
  if (!ok) return std::unexpected(ok.error());
  if (backward != descending) std::reverse(ids.begin(), ids.end());
  return ids;
}

// A search the term bitmaps answer: terms (words, and a category or sub-category as
// value_term) and opening dates, at least one of them, and nothing else (a status that every
// row of the tab has was dropped by narrow_by_status).
struct TermSearch {
  std::vector<std::string> terms;
  std::optional<std::int64_t> from_us, before_us;
};
std::optional<TermSearch> search_terms(const Criteria& c) {
  if (!c.number.empty() || !c.status.empty()) return std::nullopt;
  TermSearch out{{c.words.begin(), c.words.end()}, c.from_us, c.before_us};
  if (!c.category.empty()) out.terms.push_back(value_term('c', c.category));
  if (!c.sub_category.empty()) out.terms.push_back(value_term('s', c.sub_category));
  if (out.terms.empty() && !out.from_us && !out.before_us) return std::nullopt;
  return out;
}

// Sets in `bits` the ordinals of the rows of the sorted list `sl` (opening time) opened in
// [from_us, before_us) (either bound absent: open): the sets of the buckets wholly inside the
// range, and the rows of the two buckets at its ends. Cost: the range's rows / 64 bucket sets,
// and about 128 index rows.
Result<void> opened_between(const ViewStore& store, const ViewStore::Snapshot* at,
                            const std::string& sl, std::optional<std::int64_t> from_us,
                            std::optional<std::int64_t> before_us,
                            std::vector<std::uint64_t>& bits) {
  auto set = [&](std::uint32_t o) {
    if (bits.size() <= o / 64) bits.resize(o / 64 + 1, 0);
    bits[o / 64] |= std::uint64_t{1} << (o % 64);
  };
  // Suffixes on opening time: '\0' (the empty sort value), then the time (be64).
  const std::string lo =
      std::string(1, '\0') +
      (from_us && *from_us > 0 ? be64(static_cast<std::uint64_t>(*from_us)) : "");
  std::optional<std::string> hi;  // excluded
  if (before_us)
    hi = std::string(1, '\0') +
         be64(static_cast<std::uint64_t>(std::max<std::int64_t>(*before_us, 0)));
  const std::string rows = index_prefix(sl), sets = ordinal_bucket_prefix(sl);
  auto in_range = [&](std::string_view suffix) { return !hi || suffix < *hi; };
  // Sets the rows from `from` (a suffix) while in range, up to the next fence (excluded; a fence
  // at `from` itself, the first row of the bucket walked, when `at_fence`); gives the suffix of the
  // fence that stopped it, if any.
  auto walk_rows = [&](const std::string& from,
                       bool at_fence) -> Result<std::optional<std::string>> {
    std::optional<std::string> fence;
    bool first = true;
    auto ok = store.scan(
        rows, rows + from, false,
        [&](std::string_view key, std::string_view value) {
          const std::string_view id = row_id(value);
          const std::string_view suffix = key.substr(rows.size());
          if (!in_range(suffix)) return false;
          if (is_fence_id(id) && !(first && at_fence)) {
            fence.emplace(suffix);
            return false;
          }
          first = false;
          set(ordinal_of_suffix(suffix));
          return true;
        },
        at);
    if (!ok) return std::unexpected(ok.error());
    return fence;
  };
  // The rows before the first fence in range (the end of the bucket holding `lo`).
  auto fence = walk_rows(lo, false);
  if (!fence) return std::unexpected(fence.error());
  if (!*fence) return {};
  // Then bucket by bucket: a bucket whose next fence is in range is inside it whole.
  std::optional<std::string> pending;  // the fence of the bucket read last
  std::string pending_set;
  auto ok = store.scan(
      sets, sets + **fence, false,
      [&](std::string_view key, std::string_view value) {
        const std::string_view suffix = key.substr(sets.size());
        if (pending) {
          if (!in_range(suffix)) return false;  // `pending` holds the range's end
          for (std::size_t i = 0; i + 4 <= pending_set.size(); i += 4) {
            set(from_be32(std::string_view(pending_set).substr(i, 4)));
          }
        }
        pending.emplace(suffix);
        pending_set.assign(value);
        return true;
      },
      at);
  if (!ok) return std::unexpected(ok.error());
  if (pending) {
    auto last = walk_rows(*pending, true);
    if (!last) return std::unexpected(last.error());
  }
  return {};
}

// The sorted lists whose rows, one list after another, are `list` sorted on `index` in key
// order, when their buckets keep sets of ordinals: the index itself, or sorted on status in a
// tab of several statuses, the statuses' own lists on opening time in the order of their
// labels. Empty when the index keeps no sets.
std::vector<std::string> ordinal_parts(const std::string& list, char index) {
  if (bucket_sets_on(index)) return {sorted(list, index)};
  if (index != 'S') return {};
  const auto sep = list.rfind('\0');
  const std::string_view tab = std::string_view(list).substr(sep + 1);
  std::vector<std::pair<std::string, std::string>> parts;  // (sort value, list of the status)
  for (const auto& st : kStatuses) {
    if (tab_holds(st, tab)) {
      parts.emplace_back(fold_text(st.label), list.substr(0, sep + 1).append(own_list(st)));
    }
  }
  std::sort(parts.begin(), parts.end());
  std::vector<std::string> out;
  for (const auto& [value, part] : parts) out.push_back(sorted(part, 'o'));
  return out;
}

// A search of terms and dates in the lists of a user who keeps term bitmaps: the total and
// the ids at ranks [skip, skip + count) of the query's order. The tickets holding every term
// are the AND of the user's term bitmaps (a few rows per term), and of the ordinals opened in
// the dates (opened_between) when there are dates; each bucket's matches are its
// set of ordinals tested against it (the list's rows / 64 rows of 256 bytes); the page is then
// read from the bucket holding its first row, skipping the buckets without a match and leaving
// each bucket at its last match. Cost: the bucket sets (rows / 64 rows) and, for the page, one
// seek per bucket holding a match of it and the rows of those buckets up to their last match:
// about a plain page's when matches are many, up to about 64 rows per match of the page when
// they are few. nullopt when a bucket's set and its rows disagree (the views are then not what
// the projector writes: the caller answers from the general path, match_ids).
using TermsPage = std::pair<std::uint64_t, std::vector<std::string>>;
Result<std::optional<TermsPage>> terms_page(const ViewStore& store, const std::string& list,
                                            const std::vector<std::string>& parts,
                                            const TermSearch& search, std::uint64_t skip,
                                            std::size_t count, bool descending) {
  const std::string user = list_user(list);
  // One moment for every read: a batch committed between the bucket sets and the rows would
  // make them disagree.
  const auto moment = store.snapshot();
  std::vector<std::uint64_t> match;  // bit o: ticket of ordinal o holds every term so far
  bool first = true;
  auto intersect = [&](std::vector<std::uint64_t>&& bits) {
    if (first) {
      match = std::move(bits);
      first = false;
      return;
    }
    match.resize(std::min(match.size(), bits.size()));
    for (std::size_t i = 0; i < match.size(); ++i) match[i] &= bits[i];
  };
  for (const auto& term : search.terms) {
    std::vector<std::uint64_t> bits;
    const std::string prefix = term_bits_prefix(user, term);
    auto ok = store.scan(
        prefix, "", false,
        [&](std::string_view key, std::string_view value) {
          if (key.size() != prefix.size() + 4) return true;
          const std::size_t base =
              std::size_t{from_be32(key.substr(prefix.size()))} * (kBitsPerChunk / 64);
          const std::size_t words =
              std::min<std::size_t>((value.size() + 7) / 8, kBitsPerChunk / 64);
          if (bits.size() < base + words) bits.resize(base + words, 0);
          for (std::size_t i = 0; i < value.size() && i < kBitsPerChunk / 8; ++i) {
            bits[base + i / 8] |= std::uint64_t{static_cast<unsigned char>(value[i])}
                                  << (8 * (i % 8));
          }
          return true;
        },
        moment.get());
    if (!ok) return std::unexpected(ok.error());
    intersect(std::move(bits));
  }
  if (search.from_us || search.before_us) {
    std::vector<std::uint64_t> opened;
    auto ok = opened_between(store, moment.get(), sorted(list, 'o'), search.from_us,
                             search.before_us, opened);
    if (!ok) return std::unexpected(ok.error());
    intersect(std::move(opened));
  }
  if (std::all_of(match.begin(), match.end(), [](std::uint64_t w) { return w == 0; })) {
    return TermsPage{};  // a term no ticket holds, or none holding them all
  }
  auto holds = [&](std::uint32_t o) {
    return o / 64 < match.size() && ((match[o / 64] >> (o % 64)) & 1) != 0;
  };
  struct Bucket {
    std::size_t part;
    std::string start;  // the full key of its first row; the list's prefix for the head bucket
    std::uint64_t matches;
  };
  std::vector<Bucket> buckets;
  std::uint64_t total = 0;
  for (std::size_t p = 0; p < parts.size(); ++p) {
    const std::string prefix = ordinal_bucket_prefix(parts[p]);
    auto ok = store.scan(
        prefix, "", false,
        [&](std::string_view key, std::string_view value) {
          std::uint64_t n = 0;
          for (std::size_t at = 0; at + 4 <= value.size(); at += 4) {
            n += holds(from_be32(value.substr(at, 4))) ? 1 : 0;
          }
          if (n > 0) {
            buckets.push_back({p, index_prefix(parts[p]).append(key.substr(prefix.size())), n});
            total += n;
          }
          return true;
        },
        moment.get());
    if (!ok) return std::unexpected(ok.error());
  }
  std::vector<std::string> ids;
  if (skip >= total) return TermsPage{total, std::move(ids)};
  // Ranks [lo, hi) in key order.
  const std::uint64_t hi = descending ? total - skip : std::min<std::uint64_t>(total, skip + count);
  const std::uint64_t lo = descending ? (total - skip > count ? total - skip - count : 0) : skip;
  std::uint64_t rank = 0;  // of the next match
  for (const auto& b : buckets) {
    if (rank >= hi) break;
    if (rank + b.matches <= lo) {
      rank += b.matches;
      continue;
    }
    std::uint64_t seen = 0;
    auto ok = store.scan(
        index_prefix(parts[b.part]), b.start, false,
        [&](std::string_view key, std::string_view value) {
          const std::string_view id = row_id(value);
          if (key != b.start && is_fence_id(id)) return false;  // the next bucket
          if (!holds(ordinal_of_suffix(key))) return true;
          if (rank >= lo) ids.emplace_back(id);
          ++rank;
          return ++seen < b.matches && rank < hi;
        },
        moment.get());
    if (!ok) return std::unexpected(ok.error());
    if (seen < b.matches && rank < hi) return std::optional<TermsPage>{};
  }
  if (descending) std::reverse(ids.begin(), ids.end());
  return TermsPage{total, std::move(ids)};
}

// A search on a status of the tab reads the list of that status alone instead (own_list): the
// same rows, in the same order, from a smaller list. The criterion is then dropped (every row
// has it), so that the list's bucket sets and plain pages answer: "Ouvert" in
// "Tous (sauf clôturés)" is "En cours", "Résolu" in "Tous" or in "Actions requises" is the
// list "resolus". A status the tab does not hold stays, and finds nothing.
struct NarrowedSearch {
  std::string list;
  TicketQuery query;
};
NarrowedSearch narrow_by_status(const std::string& list, const TicketQuery& q) {
  NarrowedSearch out{list, q};
  if (!is_emitted(list) || q.search.status.empty()) return out;
  const StatusInfo* status = status_labelled(fold_text(q.search.status));
  const auto sep = list.rfind('\0');
  const std::string_view tab = std::string_view(list).substr(sep + 1);
  if (status == nullptr || !tab_holds(*status, tab)) return out;  // no rows: as asked
  out.list = list.substr(0, sep + 1).append(own_list(*status));
  out.query.search.status.clear();
  return out;
}

// A search on one value of an indexed column and nothing else (a category, a sub-category, a
// status a tab does not hold, which narrow_by_status left): the column and the value. Its matches
// are one range of that column's index, ordered within it by opening time. nullopt otherwise, or
// when the value is longer than the index keeps.
std::optional<std::pair<char, std::string>> lone_value(const Criteria& c, std::string_view list) {
  if (!c.words.empty() || !c.number.empty() || c.from_us || c.before_us) return std::nullopt;
  std::optional<std::pair<char, std::string>> out;
  int criteria = 0;
  for (const auto& [col, value] : {std::pair<char, const std::string*>{'c', &c.category},
                                   {'s', &c.sub_category},
                                   {'S', &c.status}}) {
    if (value->empty()) continue;
    ++criteria;
    out.emplace(col, *value);
  }
  if (criteria != 1 || out->second.size() >= kSortValueMax ||
      columns_of(list).find(out->first) == std::string_view::npos) {
    return std::nullopt;
  }
  return out;
}

// Every match of `list` in the query's order, from the general path (number_match, match_ids).
Result<Matches> search(const ViewStore& store, const std::string& list, const TicketQuery& q) {
  const Criteria c(q.search);
  if (!c.number.empty()) return number_match(store, list, q, c);
  auto matches = match_ids(store, list, c);
  if (!matches) return std::unexpected(matches.error());
  Matches out;
  out.reserve(matches->size());
  const std::string prefix = index_prefix(sorted(list, index_for(list, q.sort)));
  auto ok = store.scan(prefix, "", q.descending, [&](std::string_view key, std::string_view value) {
    const std::string_view id = row_id(value);
    if (matches->contains(id)) out.emplace_back(key.substr(prefix.size()), id);
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  return out;
}

class IndexCursor final : public TicketCursor {
 public:
  IndexCursor(std::shared_ptr<const ViewStore> store, std::string sl, bool descending)
      : store_(std::move(store)), prefix_(index_prefix(sl)), descending_(descending) {}
  Result<std::size_t> next(std::size_t max, std::vector<TicketRow>& out) override {
    if (done_ || max == 0) return 0;
    std::vector<std::string> ids;
    std::string last;
    auto ok = store_->scan(prefix_, last_, descending_,
                           [&](std::string_view key, std::string_view value) {
                             const std::string_view id = row_id(value);
                             if (key == last_) return true;  // given in the previous chunk
                             ids.emplace_back(id);
                             last.assign(key);
                             return ids.size() < max;
                           });
    if (!ok) return std::unexpected(ok.error());
    if (ids.empty()) {
      done_ = true;
      return 0;
    }
    auto rows = rows_of(*store_, ids);
    if (!rows) return std::unexpected(rows.error());
    last_ = std::move(last);
    for (auto& r : *rows) out.push_back(std::move(r));
    return rows->size();
  }

 private:
  std::shared_ptr<const ViewStore> store_;
  std::string prefix_;
  bool descending_;
  std::string last_;
  bool done_ = false;
};

class MatchCursor final : public TicketCursor {
 public:
  MatchCursor(std::shared_ptr<const ViewStore> store,
              std::vector<std::pair<std::string, std::string>> matches)
      : store_(std::move(store)), matches_(std::move(matches)) {}
  Result<std::size_t> next(std::size_t max, std::vector<TicketRow>& out) override {
    const std::size_t end = std::min(matches_.size(), at_ + max);
    std::vector<std::string> ids;
    for (std::size_t i = at_; i < end; ++i) ids.push_back(matches_[i].second);
    auto rows = rows_of(*store_, ids);
    if (!rows) return std::unexpected(rows.error());
    at_ = end;
    for (auto& r : *rows) out.push_back(std::move(r));
    return rows->size();
  }

 private:
  std::shared_ptr<const ViewStore> store_;
  std::vector<std::pair<std::string, std::string>> matches_;
  std::size_t at_ = 0;
};

}  // namespace ticket_rows

using namespace ticket_rows;

std::string fold_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    char32_t cp = c;
    std::size_t len = 1;
    if (c >= 0xF0 && i + 3 < text.size()) {
      cp = ((c & 0x07u) << 18) | ((text[i + 1] & 0x3Fu) << 12) | ((text[i + 2] & 0x3Fu) << 6) |
           (text[i + 3] & 0x3Fu);
      len = 4;
    } else if (c >= 0xE0 && i + 2 < text.size()) {
      cp = ((c & 0x0Fu) << 12) | ((text[i + 1] & 0x3Fu) << 6) | (text[i + 2] & 0x3Fu);
      len = 3;
    } else if (c >= 0xC0 && i + 1 < text.size()) {
      cp = ((c & 0x1Fu) << 6) | (text[i + 1] & 0x3Fu);
      len = 2;
    }
    i += len;
    if (cp < 0x20 || cp == 0x7F) {
      if (cp == '\t' || cp == '\n' || cp == '\r') out.push_back(' ');
      continue;
    }
    if (cp >= 'A' && cp <= 'Z') {
      out.push_back(static_cast<char>(cp - 'A' + 'a'));
    } else if (cp >= 0xC0 && cp <= 0xFF && *kLatin1Folded[cp - 0xC0] != '\0') {
      out += kLatin1Folded[cp - 0xC0];
    } else if (cp == 0x152 || cp == 0x153) {
      out += "oe";  // Œ œ
    } else if (cp == 0x178) {
      out += "y";  // Ÿ
    } else if (cp == 0x2019 || cp == 0x2018) {
      out.push_back('\'');  // typographic apostrophes, as in "d’informations"
    } else {
      append_utf8(out, cp);
    }
  }
  return out;
}

const std::string* ticket_id_of(const events::Payload& payload) noexcept {
  return std::visit(
      [](const auto& e) -> const std::string* {
        if constexpr (requires { e.ticket_id; }) {
          return &e.ticket_id;
        } else {
          return nullptr;
        }
      },
      payload);
}

Result<std::optional<TicketEmitter>> ticket_emitter(const ViewBatch& batch,
                                                    const std::string& ticket_id) {
  auto stored = batch.get(state_key(ticket_id));
  if (!stored) return std::unexpected(stored.error());
  if (!stored->has_value()) return std::optional<TicketEmitter>{};
  auto state = TicketState::decode(**stored);
  if (!state) return fail(errc::poison, "ticket state row is malformed");
  return std::optional<TicketEmitter>{TicketEmitter{state->emitter, state->email}};
}

namespace ticket_rows {

Result<TicketStep> ticket_step(
    const events::Event& event, const TicketState* before,
    const std::function<Result<std::optional<std::string>>()>& detail_row) {
  TicketStep step;
  auto stored_detail = [&]() -> Result<json> {
    auto row = detail_row();
    if (!row) return std::unexpected(row.error());
    if (!row->has_value()) return fail(errc::poison, "ticket detail row is missing");
    json detail = json::parse(**row, nullptr, false);
    if (detail.is_discarded()) return fail(errc::poison, "ticket detail row is not JSON");
    return detail;
  };
  // A deleted draft leaves no row behind.
  if (std::holds_alternative<events::TicketDraftDeleted>(event.payload)) {
    step.deleted = true;
    return step;
  }

  TicketState& after = step.after;
  json detail;
  std::set<std::string> old_words;
  bool formed = false;          // the title or description may have changed
  bool detail_changed = false;  // the detail row is rewritten (status events leave it alone)
  // A new ticket's detail row written without a tree, as json_text would write it: the first
  // form of every ticket, a tree and its dump were a fifth of a folded rebuild.
  std::optional<std::string> fresh_detail;
  auto write_fresh = [&](const auto& e, std::string_view number) {
    std::vector<JsonMember> members{{"category", e.category},
                                    {"description", e.description},
                                    {"destination_service", e.destination_service},
                                    {"destination_structure_id", e.destination_structure_id},
                                    {"emitter_user_id", e.emitter_user_id},
                                    {"emitting_structure_id", e.emitting_structure_id},
                                    {"number", number},
                                    {"sub_category", e.sub_category},
                                    {"ticket_id", e.ticket_id},
                                    {"title", e.title}};
    if constexpr (requires { e.emitter_email; }) {
      if (!e.emitter_email.empty()) members.push_back({"emitter_email", e.emitter_email});
    }
    if (!e.object_number.empty()) {
      members.push_back({"object_number", e.object_number});
      members.push_back({"object_type", e.object_type});
    }
    fresh_detail = json_object_text(std::move(members));
  };
  std::set<std::string> new_words;
  // `number`: "" for a draft, the number given at submission ("Ouvert le").
  auto form = [&](const auto& e, std::string_view number) -> Result<void> {
    formed = true;
    detail_changed = true;
    new_words = terms_of_form(e.title, e.description, e.category, e.sub_category);
    json attachments;  // added to a draft: kept through its edits and its submission
    if (before) {
      auto previous = stored_detail();
      if (!previous) return std::unexpected(previous.error());
      old_words = words_of_detail(*previous);
      after = *before;
      if (previous->contains("attachments")) attachments = std::move((*previous)["attachments"]);
    }
    after.emitter = e.emitter_user_id;
    after.title = e.title;
    after.category = e.category;
    after.sub_category = e.sub_category;
    after.destination = e.destination_structure_id;
    after.destination_service = e.destination_service;
    if constexpr (requires { e.emitter_email; }) after.email = e.emitter_email;
    if (!before) {
      write_fresh(e, number);
      return {};
    }
    detail = json{{"ticket_id", e.ticket_id},
                  {"emitter_user_id", e.emitter_user_id},
                  {"emitting_structure_id", e.emitting_structure_id},
                  {"category", e.category},
                  {"sub_category", e.sub_category},
                  {"title", e.title},
                  {"description", e.description},
                  {"destination_structure_id", e.destination_structure_id},
                  {"destination_service", e.destination_service}};
    if (!attachments.is_null()) detail["attachments"] = std::move(attachments);
    if (!e.object_number.empty()) {  // object-bound: the object, shown in the detail
      detail["object_type"] = e.object_type;
      detail["object_number"] = e.object_number;
    }
    if constexpr (requires { e.emitter_email; }) {
      if (!e.emitter_email.empty()) detail["emitter_email"] = e.emitter_email;  // signed out
    }
    detail["number"] = number;
    return {};
  };
  // Events after submission change the state row; the detail row is read and rewritten only
  // by those that change what it holds (a file, a priority).
  auto moved_to = [&](char status) -> Result<void> {
    if (!before) return fail(errc::poison, "action on a ticket that was never submitted");
    after = *before;
    if (status != 0) after.status = status;
    return {};
  };
  auto change_detail = [&]() -> Result<void> {
    auto row = stored_detail();
    if (!row) return std::unexpected(row.error());
    detail = std::move(*row);
    detail_changed = true;
    return {};
  };
  std::string text;
  Result<void> ok = std::visit(
      Overloaded{
          [&](const events::TicketDraftSaved& e) -> Result<void> {
            if (auto r = form(e, ""); !r) return r;
            after.status = 'B';
            after.opened_at_us = before ? before->opened_at_us
                                        : static_cast<std::uint64_t>(event.meta.occurred_at_us);
            return {};
          },
          [&](const events::TicketSubmitted& e) -> Result<void> {
            if (auto r = form(e, e.number); !r) return r;
            after.status = 'O';
            after.opened_at_us = static_cast<std::uint64_t>(event.meta.occurred_at_us);
            after.number = e.number;
            after.level = '1';
            after.assignee.clear();
            step.number = normalized_number(e.number);
            return {};
          },
          [&](const events::TicketDraftDeleted&) -> Result<void> { return {}; },
          [&](const events::InformationRequested& e) {
            text = e.text;
            return moved_to('W');
          },
          [&](const events::InformationProvided& e) {
            text = e.text;
            return moved_to('O');
          },
          [&](const events::SolutionProposed& e) {
            text = e.text;
            return moved_to('R');
          },
          [&](const events::SolutionAccepted&) { return moved_to('F'); },
          [&](const events::SolutionRefused& e) {
            text = e.reason;
            return moved_to('O');
          },
          [&](const events::TicketClosed& e) {
            text = e.reason;
            return moved_to('F');
          },
          [&](const events::CommentAdded& e) {
            text = e.text;
            return moved_to(0);
          },
          [&](const events::FileAttached& e) -> Result<void> {
            if (auto r = moved_to(0); !r) return r;
            if (auto r = change_detail(); !r) return r;
            // "Pièces jointes" of the detail; the history entry names the file.
            json file{{"attachment_id", e.attachment_id},
                      {"name", e.name},
                      {"media_type", e.media_type},
                      {"size", e.size},
                      {"sha256", e.sha256},
                      {"added_by", event.meta.actor.user_id},
                      {"added_at_us", event.meta.occurred_at_us}};
            detail["attachments"].push_back(std::move(file));
            step.content = e.sha256;
            text = e.name;
            return {};
          },
          [&](const events::TicketAssigned& e) -> Result<void> {
            if (auto r = moved_to(0); !r) return r;
            after.assignee = e.agent_user_id;  // "En cours de traitement" when not empty
            return {};
          },
          [&](const events::TicketEscalated&) -> Result<void> {
            if (auto r = moved_to(0); !r) return r;
            after.level = '2';  // "Envoyé au support"
            after.assignee.clear();
            return {};
          },
          [&](const events::NotificationSent&) -> Result<void> { return {}; },
          // Events of other aggregates (structures, accounts): the caller returned before. A
          // ticket event without its own case fails here at compile time.
          [&](const auto& e) -> Result<void> {
            static_assert(
                !requires { e.ticket_id; }, "every ticket event needs its own case");
            return {};
          },
          [&](const events::PrioritySet& e) -> Result<void> {
            if (auto r = moved_to(0); !r) return r;
            if (auto r = change_detail(); !r) return r;
            detail["priority"] = e.priority;
            detail["priority_recommended"] = e.recommended;
            detail["impact"] = e.impact;
            detail["severity"] = e.severity;
            if (e.priority != e.recommended) text = e.reason;
            return {};
          },
      },
      event.payload);
  if (!ok) return std::unexpected(ok.error());

  if (formed && (!before || old_words != new_words)) step.words = encode_words(new_words);
  step.counted = !before && !after.emitter.empty();
  if (detail_changed) step.detail = fresh_detail ? std::move(*fresh_detail) : json_text(detail);
  // The activity-history entry, written by hand (one per event: a JSON tree and its dump were
  // a few percent of a rebuild), its keys in the order a tree would write them.
  const auto& actor = event.meta.actor;
  std::string& entry = step.history;
  entry = "{";
  append_json_field(entry, "action", events::type_name(event.payload));
  // Who takes the ticket ("the agent is shown"): a take, a reassign and a release read alike
  // from their author alone, and the return to the agent who asked is the emitter's event.
  if (const auto* assigned = std::get_if<events::TicketAssigned>(&event.payload)) {
    append_json_field(entry, "assignee", assigned->agent_user_id);
  }
  append_json_field(entry, "at_us", event.meta.occurred_at_us);
  if (const auto* file = std::get_if<events::FileAttached>(&event.payload)) {
    append_json_field(entry, "attachment_id", file->attachment_id);
  }
  append_json_field(entry, "author", actor.user_id);
  if (!actor.on_behalf_of.empty()) append_json_field(entry, "on_behalf_of", actor.on_behalf_of);
  append_json_field(entry, "role", actor.role);
  if (!text.empty()) append_json_field(entry, "text", text);
  entry.push_back('}');
  return step;
}

}  // namespace ticket_rows

Result<void> TicketViews::apply(const events::Event& event, const events::LogAddress&,
                                ViewBatch& batch) {
  const std::string* ticket_id = ticket_id_of(event.payload);
  if (ticket_id == nullptr) return {};  // not a ticket event
  const std::string& id = *ticket_id;
  auto stored = batch.get(state_key(id));
  if (!stored) return std::unexpected(stored.error());
  std::optional<TicketState> before;
  if (stored->has_value()) {
    before = TicketState::decode(**stored);
    if (!before) return fail(errc::poison, "ticket state row is malformed");
  }
  // The ticket's lists move once per batch, in finish(), from where they stood before the
  // batch's first event of the ticket: noted here.
  const std::string moving = moving_key(id);
  if (!batch.notes().contains(moving)) {
    std::string was;
    if (before) {
      auto words = batch.get(words_row_key(id));
      if (!words) return std::unexpected(words.error());
      put_field(was, **stored);
      put_field(was, words->value_or(""));
    }
    batch.note(moving, was);
  }
  auto step =
      ticket_step(event, before ? &*before : nullptr, [&] { return batch.get(detail_key(id)); });
  if (!step) return std::unexpected(step.error());
  if (step->deleted) {
    if (before) batch.note(new_words_key(id), "");
    batch.del(state_key(id));
    batch.del(detail_key(id));
    for (std::uint64_t v = 1; v < event.version; ++v) batch.del(history_prefix(id) + be64(v));
    return {};
  }
  TicketState& after = step->after;
  // The words row follows the form in finish(), with the lists.
  if (step->words) batch.note(new_words_key(id), *step->words);
  if (step->counted) {
    auto n = emitted_count(batch, after.emitter);
    if (!n) return std::unexpected(n.error());
    batch.add(emitted_count_key(after.emitter), 1);
    // 2^32 tickets from one user is beyond any portal's reach: the ordinal would wrap.
    after.ordinal = static_cast<std::uint32_t>(*n);
    if (*n + 1 == kTermBitmapsFrom) batch.note(std::string(kCountingPrefix) + after.emitter, "");
  }
  if (!step->number.empty()) batch.put(number_key(step->number), id);
  if (!step->content.empty()) batch.put(content_key(step->content), "");
  batch.put(state_key(id), after.encode());
  if (step->detail) batch.put(detail_key(id), *step->detail);
  batch.put(history_prefix(id) + be64(event.version), step->history);
  return {};
}

Result<void> TicketViews::finish(ViewBatch& batch) {
  const auto& notes = batch.notes();
  for (auto it = notes.lower_bound(kCountingPrefix);
       it != notes.end() && std::string_view(it->first).starts_with(kCountingPrefix); ++it) {
    const std::string user = it->first.substr(kCountingPrefix.size());
    if (auto r = start_term_bitmaps(batch, user); !r) return r;
  }
  for (auto it = notes.lower_bound(kMovingPrefix);
       it != notes.end() && std::string_view(it->first).starts_with(kMovingPrefix); ++it) {
    const std::string id = it->first.substr(kMovingPrefix.size());
    std::string was_state, was_words;
    if (!it->second.empty()) {
      std::string_view was = it->second;
      if (!take_field(was, was_state) || !take_field(was, was_words)) {
        return fail(errc::io_error, "a ticket's noted lists are malformed");
      }
    }
    auto state = batch.get(state_key(id));
    if (!state) return std::unexpected(state.error());
    std::optional<std::string> words;  // as the batch leaves them
    if (state->has_value()) {
      if (auto noted = notes.find(new_words_key(id)); noted != notes.end()) {
        words = noted->second;
      } else {
        auto row = batch.get(words_row_key(id));
        if (!row) return std::unexpected(row.error());
        words = row->value_or("");
      }
    }
    // Most batches leave a ticket where they found it (a comment, a file, a priority).
    const bool existed = !it->second.empty();
    if (existed == state->has_value() &&
        (!existed || (was_state == **state && was_words == *words))) {
      continue;
    }
    // Both state rows were decoded by apply() (the noted one) or written by it.
    std::optional<TicketState> before, after;
    if (existed) before = TicketState::decode(was_state);
    if (state->has_value()) after = TicketState::decode(**state);
    const auto old_words = decode_words(was_words);
    const auto new_words = decode_words(words.value_or(""));
    if (auto r = update_lists(batch, id, before, after, old_words, new_words); !r) return r;
    if (!words) {
      if (existed) batch.del(words_row_key(id));
    } else if (!existed || *words != was_words) {
      batch.put(words_row_key(id), *words);
    }
  }
  return {};
}

Result<std::string> emitted_list(const std::string& user, const std::string& tab) {
  if (std::find_if(std::begin(kTicketTabs), std::end(kTicketTabs),
                   [&](const char* t) { return tab == t; }) == std::end(kTicketTabs)) {
    return fail(errc::invalid_argument, "unknown tab " + tab);
  }
  return key_of({"e", user, tab});
}

Result<std::string> emitted_status_list(const std::string& user, const std::string& status) {
  const StatusInfo* s = status_labelled(fold_text(status));
  if (s == nullptr) return fail(errc::invalid_argument, "unknown status " + status);
  return key_of({"e", user, own_list(*s)});
}

Result<std::string> support_queue(int level, QueueScope scope, const std::string& agent) {
  if (level != 1 && level != 2) return fail(errc::invalid_argument, "unknown support level");
  const std::string l = std::to_string(level);
  switch (scope) {
    case QueueScope::all:
      return key_of({"q", l, "all"});
    case QueueScope::unassigned:
      return key_of({"q", l, "unassigned"});
    case QueueScope::mine:
      break;
  }
  return key_of({"q", l, "agent", agent});
}

Result<std::string> received_queue(const std::string& structure_id, const std::string& service,
                                   QueueScope scope, const std::string& user) {
  if (structure_id.empty()) return fail(errc::invalid_argument, "no destination structure");
  switch (scope) {
    case QueueScope::all:
      return key_of({"d", structure_id, service});
    case QueueScope::unassigned:
      return key_of({"d", structure_id, service, "unassigned"});
    case QueueScope::mine:
      break;
  }
  return key_of({"d", structure_id, service, "agent", user});
}

std::optional<TicketSort> parse_ticket_sort(std::string_view name) noexcept {
  static constexpr std::pair<std::string_view, TicketSort> kNames[] = {
      {"number", TicketSort::number},     {"title", TicketSort::title},
      {"category", TicketSort::category}, {"sub_category", TicketSort::sub_category},
      {"status", TicketSort::status},     {"opened_at", TicketSort::opened_at}};
  for (const auto& [n, s] : kNames) {
    if (n == name) return s;
  }
  return std::nullopt;
}

bool TicketSearch::empty() const {
  return number.empty() && words_of(words).empty() && category.empty() && sub_category.empty() &&
         status.empty() && !opened_from_us && !opened_before_us;
}

bool has_search_words(std::string_view text) { return !words_of(text).empty(); }

bool is_ticket_status(const std::string& label) {
  return status_labelled(fold_text(label)) != nullptr;
}

Result<std::uint64_t> list_count(const ViewStore& store, const std::string& list) {
  auto count = store.get(count_key(list));
  if (!count) return std::unexpected(count.error());
  return count->has_value() ? from_be64(**count) : 0;
}

Result<TicketPage> list_tickets(const ViewStore& store, const std::string& list_asked,
                                const TicketQuery& query_asked) {
  const auto [list, query] = narrow_by_status(list_asked, query_asked);
  TicketPage out;
  const std::size_t page_size = std::max<std::size_t>(query.page_size, 1);
  const std::uint64_t skip = (std::max<std::size_t>(query.page, 1) - 1) * std::uint64_t{page_size};
  std::vector<std::string> ids;
  const char index = index_for(list, query.sort);
  if (index == 0) return fail(errc::invalid_argument, "unknown sort");
  const Criteria criteria(query.search);
  const auto value = lone_value(criteria, list);
  const bool by_range = value && (index == value->first || index == 'o');
  // Terms and dates in the emitted list of a user who keeps term bitmaps: the bitmap path.
  std::optional<TermsPage> by_terms;
  const auto parts =
      is_emitted(list) && !by_range ? ordinal_parts(list, index) : std::vector<std::string>{};
  const auto terms = parts.empty() ? std::nullopt : search_terms(criteria);
  if (terms) {
    auto keeps = keeps_term_bitmaps(store, list_user(list));
    if (!keeps) return std::unexpected(keeps.error());
    if (*keeps) {
      auto got = terms_page(store, list, parts, *terms, skip, page_size, query.descending);
      if (!got) return std::unexpected(got.error());
      by_terms = std::move(*got);
    }
  }
  if (by_range) {
    // One range of the value's column index, at its ranks.
    const std::string sl = sorted(list, value->first);
    auto from = ranked_rank_of(store, ranked(sl), value->second + '\0');
    if (!from) return std::unexpected(from.error());
    auto to = ranked_rank_of(store, ranked(sl), value->second + '\1');
    if (!to) return std::unexpected(to.error());
    out.total = *to - *from;
    if (skip < out.total) {
      auto rows = list_count(store, list);
      if (!rows) return std::unexpected(rows.error());
      const std::uint64_t rank = query.descending ? *to - 1 - skip : *from + skip;
      auto got = ids_from_rank(
          store, sl, rank, *rows,
          static_cast<std::size_t>(std::min<std::uint64_t>(page_size, out.total - skip)),
          query.descending);
      if (!got) return std::unexpected(got.error());
      ids = std::move(*got);
    }
  } else if (by_terms) {
    out.total = by_terms->first;
    ids = std::move(by_terms->second);
  } else if (query.search.empty()) {
    auto total = list_count(store, list);
    if (!total) return std::unexpected(total.error());
    out.total = *total;
    if (skip < out.total) {
      const std::uint64_t rank = query.descending ? out.total - 1 - skip : skip;
      auto got =
          ids_from_rank(store, sorted(list, index), rank, out.total, page_size, query.descending);
      if (!got) return std::unexpected(got.error());
      ids = std::move(*got);
    }
  } else {
    if (!criteria.number.empty()) {
      auto match = number_match(store, list, query, criteria);
      if (!match) return std::unexpected(match.error());
      out.total = match->size();
      if (skip == 0 && !match->empty()) ids.push_back(match->front().second);
    } else {
      auto matches = match_ids(store, list, criteria);
      if (!matches) return std::unexpected(matches.error());
      out.total = matches->size();
      auto got = walk_page(store, sorted(list, index), *matches, out.total, skip, page_size,
                           query.descending);
      if (!got) return std::unexpected(got.error());
      ids = std::move(*got);
    }
  }
  auto rows = rows_of(store, ids);
  if (!rows) return std::unexpected(rows.error());
  for (const auto& r : *rows) out.rows.push_back(row_json(r));
  return out;
}

Result<bool> keeps_term_bitmaps(const ViewStore& store, const std::string& user) {
  auto n = emitted_count(store, user);
  if (!n) return std::unexpected(n.error());
  return *n >= kTermBitmapsFrom;
}

Result<TicketPage> list_emitted_tickets(const ViewStore& store, const std::string& user_id,
                                        const std::string& tab, std::size_t page,
                                        std::size_t page_size) {
  auto list = emitted_list(user_id, tab);
  if (!list) return std::unexpected(list.error());
  TicketQuery query;
  query.page = page;
  query.page_size = page_size;
  return list_tickets(store, *list, query);
}

Result<std::unique_ptr<TicketCursor>> export_tickets(std::shared_ptr<const ViewStore> store,
                                                     const std::string& list_asked,
                                                     const TicketQuery& query_asked) {
  const auto [list, query] = narrow_by_status(list_asked, query_asked);
  const char index = index_for(list, query.sort);
  if (index == 0) return fail(errc::invalid_argument, "unknown sort");
  if (query.search.empty()) {
    return std::make_unique<IndexCursor>(std::move(store), sorted(list, index), query.descending);
  }
  auto matches = search(*store, list, query);
  if (!matches) return std::unexpected(matches.error());
  return std::make_unique<MatchCursor>(std::move(store), std::move(*matches));
}

Result<bool> content_named(const ViewStore& store, const std::string& sha256) {
  auto row = store.get(content_key(sha256));
  if (!row) return std::unexpected(row.error());
  return row->has_value();
}

Result<std::optional<std::string>> ticket_detail(const ViewStore& store,
                                                 const std::string& ticket_id) {
  // Three reads that must agree, whatever batch commits between them.
  const auto at = store.snapshot();
  auto row = store.get(detail_key(ticket_id), at.get());
  if (!row || !row->has_value()) return row;
  json detail = json::parse(**row, nullptr, false);
  if (detail.is_discarded()) return fail(errc::io_error, "ticket detail row is not JSON");
  auto stored = store.get(state_key(ticket_id), at.get());
  if (!stored) return std::unexpected(stored.error());
  const auto state = stored->has_value() ? TicketState::decode(**stored) : std::nullopt;
  if (!state) return fail(errc::io_error, "ticket state row is missing or malformed");
  // What follow-up events change comes from the state row and the last history entry: they
  // leave the detail row as it was (TicketViews::apply).
  const TicketRow listed = row_of(ticket_id, *state);
  detail["status"] = listed.status;
  detail["opened_at_us"] = listed.opened_at_us;
  if (state->status != 'B') {  // submitted: "Envoyé au support", "En cours de traitement"
    detail["support_level"] = listed.level;
    detail["assignee"] = listed.assignee;
  }
  json history = json::array();
  std::uint64_t version = 0;
  bool malformed = false;
  const std::string prefix = history_prefix(ticket_id);
  auto ok = store.scan(
      prefix, "", false,
      [&](std::string_view key, std::string_view value) {
        history.push_back(json::parse(value, nullptr, false));
        malformed = malformed || !history.back().is_object() || key.size() != prefix.size() + 8;
        if (!malformed) version = from_be64(key.substr(prefix.size()));
        return !malformed;
      },
      at.get());
  if (!ok) return std::unexpected(ok.error());
  if (history.empty() || malformed) {
    return fail(errc::io_error, "ticket history is missing or malformed");
  }
  detail["updated_at_us"] = history.back().value("at_us", std::int64_t{0});
  detail["version"] = version;
  detail["history"] = std::move(history);
  return std::optional<std::string>{json_text(detail)};
}

}  // namespace chorus::projections
