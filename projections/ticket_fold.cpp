#include "projections/ticket_fold.h"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "projections/ranked_list.h"
#include "projections/ticket_rows.h"

namespace chorus::projections {

using namespace ticket_rows;

namespace {

// The streams of write_rows, one per kind of row (their key ranges never overlap).
enum Stream : unsigned {
  kContents,       // a
  kCounts,         // c
  kEmittedCounts,  // ec
  kFences,         // f
  kHistory,        // h
  kBuckets,        // k
  kBucketSets,     // kb
  kNumbers,        // n
  kStates,         // s
  kDetails,        // t
  kTermBits,       // tb
  kWords,          // tw
  kIndexes,        // x
};
static_assert(kIndexes + 1 == TicketFold::kStreams);

// One ticket as its events so far leave it: the rows TicketViews would hold of it.
struct Ticket {
  TicketState state;
  bool fence = false;  // is_fence_id(its id), worked out once
  std::string detail;
  std::string words;    // encode_words
  std::string history;  // its entries in version order, each <version be64><size be32><entry>
};
using Tickets = std::unordered_map<std::string, Ticket>;
using Held = Tickets::value_type;

}  // namespace

struct TicketFold::Impl {
  Tickets tickets;
  std::unordered_map<std::string, std::uint64_t> emitted;  // the ec rows
  std::unordered_map<std::string, std::string> numbers;    // the n rows: number -> ticket id
  std::unordered_set<std::string> contents;                // the a rows: sha256 named
  struct Staged {
    bool active = false;
    const std::string* id = nullptr;  // in the staged event, which outlives the stage
    Tickets::iterator held;           // the ticket's entry, or end() for a new one
    std::uint64_t version = 0;
    TicketStep step;
  } staged;
};

TicketFold::TicketFold() : impl_(std::make_unique<Impl>()) {}
TicketFold::~TicketFold() = default;

std::size_t TicketFold::tickets() const { return impl_->tickets.size(); }

Result<bool> TicketFold::stage(const events::Event& event) {
  auto& staged = impl_->staged;
  staged.active = false;
  const std::string* id = ticket_id_of(event.payload);
  if (id == nullptr) return false;
  auto it = impl_->tickets.find(*id);
  const bool held = it != impl_->tickets.end();
  auto step = ticket_step(event, held ? &it->second.state : nullptr,
                          [&]() -> Result<std::optional<std::string>> {
                            if (!held) return std::optional<std::string>{};
                            return std::optional<std::string>{it->second.detail};
                          });
  if (!step) return std::unexpected(step.error());
  if (step->counted) {
    auto n = impl_->emitted.find(step->after.emitter);
    // 2^32 tickets from one user is beyond any portal's reach, as in TicketViews::apply.
    step->after.ordinal =
        static_cast<std::uint32_t>(n == impl_->emitted.end() ? std::uint64_t{0} : n->second);
  }
  staged.id = id;
  staged.held = it;
  staged.version = event.version;
  staged.step = std::move(*step);
  staged.active = true;
  return true;
}

std::optional<TicketEmitter> TicketFold::emitter(const std::string& ticket_id) const {
  const auto& staged = impl_->staged;
  if (staged.active && *staged.id == ticket_id) {
    if (staged.step.deleted) return std::nullopt;
    return TicketEmitter{staged.step.after.emitter, staged.step.after.email};
  }
  auto it = impl_->tickets.find(ticket_id);
  if (it == impl_->tickets.end()) return std::nullopt;
  return TicketEmitter{it->second.state.emitter, it->second.state.email};
}

void TicketFold::drop() { impl_->staged.active = false; }

void TicketFold::commit() {
  auto& staged = impl_->staged;
  if (!staged.active) return;
  staged.active = false;
  TicketStep& step = staged.step;
  if (step.deleted) {
    // Its rows go with it, history included; its number and contents stay, as in the views.
    if (staged.held != impl_->tickets.end()) impl_->tickets.erase(staged.held);
    return;
  }
  if (step.counted) ++impl_->emitted[step.after.emitter];
  if (staged.held == impl_->tickets.end()) {
    staged.held = impl_->tickets.emplace(*staged.id, Ticket{}).first;
    staged.held->second.fence = is_fence_id(*staged.id);
  }
  Ticket& t = staged.held->second;
  t.state = std::move(step.after);
  if (step.detail) t.detail = std::move(*step.detail);
  if (step.words) t.words = std::move(*step.words);
  if (!step.number.empty()) impl_->numbers[std::move(step.number)] = *staged.id;
  if (!step.content.empty()) impl_->contents.insert(std::move(step.content));
  t.history += be64(staged.version);
  t.history += be32(static_cast<std::uint32_t>(step.history.size()));
  t.history += step.history;
}

Result<void> TicketFold::write_ticket_rows(SortedRowSink& sink) const {
  const auto& tickets = impl_->tickets;
  std::vector<const Held*> by_id;
  by_id.reserve(tickets.size());
  for (const auto& held : tickets) by_id.push_back(&held);
  std::ranges::sort(by_id, [](const Held* a, const Held* b) { return a->first < b->first; });
  for (const Held* h : by_id) {
    const auto& [id, t] = *h;
    if (auto r = sink.add(kStates, state_key(id), t.state.encode()); !r) return r;
    if (auto r = sink.add(kDetails, detail_key(id), t.detail); !r) return r;
    if (auto r = sink.add(kWords, words_row_key(id), t.words); !r) return r;
    const std::string prefix = history_prefix(id);
    for (std::string_view entries = t.history; entries.size() >= 12;) {
      const std::uint32_t size = from_be32(entries.substr(8, 4));
      if (auto r = sink.add(kHistory, prefix + std::string(entries.substr(0, 8)),
                            entries.substr(12, size));
          !r) {
        return r;
      }
      entries.remove_prefix(12 + size);
    }
  }

  std::vector<std::pair<std::string_view, std::string_view>> numbers(impl_->numbers.begin(),
                                                                     impl_->numbers.end());
  std::ranges::sort(numbers);
  for (const auto& [number, id] : numbers) {
    if (auto r = sink.add(kNumbers, number_key(number), id); !r) return r;
  }
  std::vector<std::string_view> contents(impl_->contents.begin(), impl_->contents.end());
  std::ranges::sort(contents);
  for (auto sha256 : contents) {
    if (auto r = sink.add(kContents, content_key(sha256), ""); !r) return r;
  }

  std::vector<std::pair<std::string, std::uint64_t>> emitted(impl_->emitted.begin(),
                                                             impl_->emitted.end());
  std::ranges::sort(emitted);
  for (const auto& [user, n] : emitted) {
    if (auto r = sink.add(kEmittedCounts, emitted_count_key(user), be64(n)); !r) return r;
  }

  return {};
}

Result<void> TicketFold::write_term_bitmaps(SortedRowSink& sink) const {
  // Each keeping user's tickets' terms, by ordinal (the order of tickets within a user does not
  // matter: bits are set in memory first).
  std::map<std::string, std::vector<const Held*>> by_emitter;
  for (const auto& held : impl_->tickets) {
    if (keeps(held.second.state.emitter)) by_emitter[held.second.state.emitter].push_back(&held);
  }
  // Terms hashed (a tree of a user's thousands of terms was most of this), sorted to be written.
  struct TermHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view term) const noexcept {
      return std::hash<std::string_view>{}(term);
    }
  };
  using Chunks = std::map<std::uint32_t, std::string>;
  std::unordered_map<std::string, Chunks, TermHash, std::equal_to<>> bits;
  std::vector<const std::pair<const std::string, Chunks>*> terms;
  for (const auto& [user, held] : by_emitter) {
    bits.clear();
    for (const Held* h : held) {
      const std::uint32_t o = h->second.state.ordinal;
      const std::size_t byte = (o % kBitsPerChunk) / 8;
      for_each_word(h->second.words, [&](std::string_view term) {
        auto at = bits.find(term);
        if (at == bits.end()) at = bits.emplace(std::string(term), Chunks{}).first;
        std::string& chunk = at->second[o / kBitsPerChunk];
        if (chunk.size() <= byte) chunk.resize(byte + 1, '\0');
        chunk[byte] = static_cast<char>(chunk[byte] | (1 << (o % 8)));
      });
    }
    terms.clear();
    for (const auto& term : bits) terms.push_back(&term);
    std::ranges::sort(terms, [](const auto* a, const auto* b) { return a->first < b->first; });
    for (const auto* term : terms) {
      const std::string prefix = term_bits_prefix(user, term->first);
      for (const auto& [chunk, value] : term->second) {
        if (auto r = sink.add(kTermBits, prefix + be32(chunk), value); !r) return r;
      }
    }
  }
  return {};
}

Result<void> TicketFold::write_list_rows(SortedRowSink& sink) const {
  // Hashed, then the few thousand names sorted: a tree keyed by list names that share long
  // prefixes ("e\0<user>\0") was a tenth of this half.
  std::unordered_map<std::string, std::vector<const Held*>> hashed;
  for (const auto& held : impl_->tickets) {
    for (auto& list : lists_of(held.second.state)) hashed[std::move(list)].push_back(&held);
  }
  std::vector<std::pair<const std::string*, const std::vector<const Held*>*>> lists;
  lists.reserve(hashed.size());
  for (const auto& [list, members] : hashed) lists.emplace_back(&list, &members);
  std::ranges::sort(lists, [](const auto& a, const auto& b) { return *a.first < *b.first; });
  for (const auto& [list, members] : lists) {
    if (auto r = sink.add(kCounts, count_key(*list), be64(members->size())); !r) return r;
  }

  // Each list sorted on each of its columns, in key order of the sorted lists' names: the rows
  // (x), fences (f), bucket counts (k) and, for the emitted lists of a user who keeps them, the
  // buckets' ordinals (kb). The live lists hold the same: their fences depend on the ids alone
  // (ranked_list.h), and a bucket counts the rows from its fence to the next.
  struct SortedList {
    std::string name;
    const std::vector<const Held*>* members;
    char col;
  };
  std::vector<SortedList> sorted_lists;
  for (const auto& [list, members] : lists) {
    for (char col : columns_of(*list)) sorted_lists.push_back({sorted(*list, col), members, col});
  }
  std::ranges::sort(sorted_lists,
                    [](const SortedList& a, const SortedList& b) { return a.name < b.name; });
  std::vector<std::pair<std::string, const Held*>> rows;
  std::vector<std::uint32_t> ordinals;
  for (const auto& sl : sorted_lists) {
    rows.clear();
    for (const Held* h : *sl.members) {
      rows.emplace_back(sort_suffix(h->second.state, sl.col, h->first), h);
    }
    std::ranges::sort(rows, [](const auto& a, const auto& b) { return a.first < b.first; });
    const TicketState& first = rows.front().second->second.state;
    const bool sets = is_emitted(sl.name) && bucket_sets_on(sl.col) && keeps(first.emitter);
    const std::string x = index_prefix(sl.name), f = fence_prefix(sl.name),
                      k = bucket_prefix(sl.name), kb = ordinal_bucket_prefix(sl.name);
    std::string bucket;  // "" before the first fence
    std::uint64_t count = 0;
    ordinals.clear();
    auto close_bucket = [&]() -> Result<void> {
      if (count == 0) return {};
      if (auto r = sink.add(kBuckets, k + bucket, be64(count)); !r) return r;
      if (!sets) return {};
      std::ranges::sort(ordinals);
      std::string value;
      value.reserve(ordinals.size() * 4);
      for (auto o : ordinals) value += be32(o);
      return sink.add(kBucketSets, kb + bucket, value);
    };
    for (const auto& [suffix, h] : rows) {
      const auto& [id, t] = *h;
      if (t.fence) {
        if (auto r = close_bucket(); !r) return r;
        bucket = suffix;
        count = 0;
        ordinals.clear();
        if (auto r = sink.add(kFences, f + suffix, ""); !r) return r;
      }
      ++count;
      ordinals.push_back(t.state.ordinal);
      auto r = sl.col == 'o'
                   ? sink.add(kIndexes, x + suffix, terms_row_value(id, t.state.status, t.words))
                   : sink.add(kIndexes, x + suffix, id);
      if (!r) return r;
    }
    if (auto r = close_bucket(); !r) return r;
  }
  return {};
}

bool TicketFold::keeps(const std::string& user) const {
  auto n = impl_->emitted.find(user);
  return n != impl_->emitted.end() && n->second >= kTermBitmapsFrom;
}

}  // namespace chorus::projections
