#include "replay/views_at.h"

#include <rocksdb/db.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "events/codec.h"
#include "projections/folded_rebuild.h"
#include "projections/runner.h"
#include "projections/standard_views.h"
#include "projections/view_store.h"

namespace chorus::replay {

namespace {

class PrefixCursor final : public events::LogCursor {
 public:
  PrefixCursor(std::unique_ptr<events::LogCursor> inner, events::LogPosition until)
      : inner_(std::move(inner)), until_(std::move(until)) {
    clamp();
  }

  events::Result<std::size_t> poll(std::vector<events::RecordedEvent>& out, std::size_t max,
                                   std::chrono::milliseconds wait) override {
    if (position_.covers(until_)) return std::size_t{0};  // the cut is reached: never wait
    std::vector<events::RecordedEvent> batch;
    auto n = inner_->poll(batch, max, wait);
    if (!n) return std::unexpected(n.error());
    std::size_t kept = 0;
    for (auto& e : batch) {
      if (e.address.partition < until_.next.size() &&
          e.address.offset < until_.next[e.address.partition]) {
        out.push_back(std::move(e));
        ++kept;
      }
    }
    clamp();
    return kept;
  }

  const events::LogPosition& position() const override { return position_; }

 private:
  // The position never goes past the cut, even when the inner cursor read beyond it.
  void clamp() {
    position_ = inner_->position();
    position_.next.resize(std::max(position_.next.size(), until_.next.size()), 0);
    for (std::size_t p = 0; p < position_.next.size(); ++p) {
      const std::uint64_t limit = p < until_.next.size() ? until_.next[p] : 0;
      position_.next[p] = std::min(position_.next[p], limit);
    }
  }

  std::unique_ptr<events::LogCursor> inner_;
  events::LogPosition until_;
  events::LogPosition position_;
};

class PrefixLog final : public events::EventLog {
 public:
  PrefixLog(events::EventLog& inner, events::LogPosition until)
      : inner_(inner), until_(std::move(until)) {}

  events::Result<events::AppendResult> append(std::span<const events::StreamAppend>) override {
    return events::fail(events::errc::invalid_argument, "a log prefix is read-only");
  }
  events::Result<std::vector<events::RecordedEvent>> read_stream(std::string_view stream_id,
                                                                 std::uint64_t from_version,
                                                                 std::size_t max) override {
    auto all = inner_.read_stream(stream_id, from_version, max);
    if (!all) return all;
    std::erase_if(*all, [&](const events::RecordedEvent& e) { return !before_cut(e.address); });
    return all;
  }
  events::Result<std::uint64_t> stream_version(std::string_view stream_id) override {
    auto events = read_stream(stream_id, 1, SIZE_MAX);
    if (!events) return std::unexpected(events.error());
    return events->empty() ? 0 : events->back().version;
  }
  events::Result<std::unique_ptr<events::LogCursor>> follow(
      const events::LogPosition& from) override {
    auto inner = inner_.follow(from);
    if (!inner) return std::unexpected(inner.error());
    return std::make_unique<PrefixCursor>(std::move(*inner), until_);
  }
  events::Result<events::LogPosition> end() override {
    auto end = inner_.end();
    if (!end) return end;
    for (std::size_t p = 0; p < end->next.size(); ++p) {
      end->next[p] = std::min(end->next[p], p < until_.next.size() ? until_.next[p] : 0);
    }
    return end;
  }
  std::uint32_t partition_count() const noexcept override { return inner_.partition_count(); }
  std::string_view kind() const noexcept override { return inner_.kind(); }

 private:
  bool before_cut(const events::LogAddress& a) const {
    return a.partition < until_.next.size() && a.offset < until_.next[a.partition];
  }
  events::EventLog& inner_;
  events::LogPosition until_;
};

}  // namespace

std::unique_ptr<events::EventLog> log_prefix(events::EventLog& inner, events::LogPosition until) {
  return std::make_unique<PrefixLog>(inner, std::move(until));
}

Result<events::LogPosition> position_of(events::EventLog& log, const Moment& at,
                                        const Progress& progress) {
  switch (at.kind) {
    case Moment::Kind::position:
      return at.position;
    case Moment::Kind::end: {
      auto end = log.end();
      if (!end) return fail(errc::log_error, end.error().message);
      return *end;
    }
    case Moment::Kind::version:
      return fail(errc::invalid_argument, "a version names a moment of one stream, not of the log");
    case Moment::Kind::time:
      break;
  }
  auto end = log.end();
  if (!end) return fail(errc::log_error, end.error().message);
  events::LogPosition cut;
  cut.next.assign(end->next.size(), 0);
  std::optional<Error> error;
  auto ok = walk_log(log, progress, [&](std::vector<events::RecordedEvent>& batch) {
    for (const auto& r : batch) {
      auto e = events::decode(r.bytes);
      if (!e) {
        if (!error) error = Error{errc::corruption, e.error().message};
        return;
      }
      if (e->meta.occurred_at_us <= at.time_us) cut.advance_past(r.address);
    }
  });
  if (!ok) return std::unexpected(ok.error());
  if (error) return std::unexpected(*error);
  return cut;
}

Result<RebuiltViews> rebuild_views(events::EventLog& log, const events::LogPosition& until,
                                   const std::string& out_dir, const Progress& progress,
                                   RebuildPath path,
                                   const std::function<void(std::string_view)>& batch_observer) {
  std::error_code ec;
  // New or empty, as an export's: the views are not mixed into something else.
  if (std::filesystem::exists(out_dir, ec) &&
      (!std::filesystem::is_directory(out_dir, ec) || !std::filesystem::is_empty(out_dir, ec))) {
    return fail(errc::invalid_argument, out_dir + " exists and is not an empty directory");
  }
  auto prefix = log_prefix(log, until);
  auto end = prefix->end();
  if (!end) return fail(errc::log_error, end.error().message);
  std::uint64_t total = 0;
  for (auto n : end->next) total += n;
  RebuiltViews out;
  std::shared_ptr<const projections::ViewStore> store;
  std::unique_ptr<projections::Runner> runner;
  std::uint64_t set_aside = 0;
  if (path == RebuildPath::folded) {
    // Laid out as a runner lays out its first generation, for live_views_dir; built aside and
    // moved into place, CURRENT last, only once complete: a rebuild that fails or is killed
    // leaves no views a server or a comparison could take for whole (a store without its
    // tickets, or whose rows a runner would apply again).
    const std::string views_dir = out_dir + "/views";
    const std::string building = views_dir + "/1.building";
    std::filesystem::create_directories(building, ec);
    if (ec) return fail(errc::io_error, "creating " + building + ": " + ec.message());
    auto built = projections::rebuild_folded(*prefix, building, progress);
    if (!built) {
      std::filesystem::remove_all(building, ec);
      return fail(
          built.error().code == projections::errc::log_error ? errc::log_error : errc::io_error,
          built.error().message);
    }
    std::filesystem::rename(building, views_dir + "/1", ec);
    if (ec) return fail(errc::io_error, "renaming " + building + ": " + ec.message());
    {
      std::ofstream current(views_dir + "/CURRENT", std::ios::trunc);
      current << "1\n";
      current.flush();
      if (!current) return fail(errc::io_error, "writing " + views_dir + "/CURRENT");
    }
    out.reached = built->reached;
    set_aside = built->set_aside;
    out.folded = *built;
    auto opened = projections::ViewStore::open(views_dir + "/1");
    if (!opened) return fail(errc::io_error, opened.error().message);
    store = std::move(*opened);
  } else {
    projections::StandardViews views;
    auto opened = projections::Runner::open(*prefix, out_dir, views.list());
    if (!opened) return fail(errc::io_error, opened.error().message);
    runner = std::move(*opened);
    runner->batch_observer = batch_observer;
    // Nobody reads these views before the end: batches as big as a rebuild's.
    runner->max_batch = runner->rebuild_batch;
    int idle = 0;
    while (!runner->applied().covers(*end) && idle < 10) {
      auto n = runner->step(std::chrono::milliseconds(100));
      if (!n) return fail(errc::io_error, n.error().message);
      idle = *n == 0 ? idle + 1 : 0;
      if (progress) {
        std::uint64_t done = 0;
        for (auto x : runner->applied().next) done += x;
        progress(done, total);
      }
    }
    out.reached = runner->applied();
    set_aside = runner->stats().events_set_aside;
    store = runner->store();
  }
  if (set_aside > 0) {
    // Keyed "P:O" as text ("0:10" before "0:9"): put back in log order.
    std::vector<std::pair<std::pair<std::uint32_t, std::uint64_t>, std::string>> listed;
    auto read = store->scan(
        projections::kSetAsidePrefix, "", false, [&](std::string_view key, std::string_view value) {
          const std::string_view at = key.substr(projections::kSetAsidePrefix.size());
          const auto address = parse_address(at).value_or(events::LogAddress{});
          listed.push_back(
              {{address.partition, address.offset}, std::string(at) + " " + std::string(value)});
          return true;
        });
    if (!read) return fail(errc::io_error, read.error().message);
    std::ranges::sort(listed);
    for (auto& [at, text] : listed) out.set_aside.push_back(std::move(text));
  }
  return out;
}

Result<std::string> live_views_dir(const std::string& data_dir) {
  std::ifstream in(data_dir + "/views/CURRENT");
  std::uint64_t n = 0;
  if (!(in >> n)) return fail(errc::io_error, "no views in " + data_dir + " (views/CURRENT)");
  return data_dir + "/views/" + std::to_string(n);
}

Result<std::shared_ptr<projections::ViewStore>> open_live_views(const std::string& data_dir) {
  auto dir = live_views_dir(data_dir);
  if (!dir) return std::unexpected(dir.error());
  auto store = projections::ViewStore::open(*dir, projections::ViewStore::OpenMode::read_only);
  if (!store) {
    return fail(
        store.error().code == projections::errc::corruption ? errc::corruption : errc::io_error,
        store.error().message);
  }
  return std::move(*store);
}

Result<std::vector<RowDifference>> compare_views(const projections::ViewStore& left,
                                                 const projections::ViewStore& right,
                                                 std::size_t limit, std::uint64_t& more) {
  std::unique_ptr<rocksdb::Iterator> a(left.db()->NewIterator(rocksdb::ReadOptions()));
  std::unique_ptr<rocksdb::Iterator> b(right.db()->NewIterator(rocksdb::ReadOptions()));
  std::vector<RowDifference> out;
  more = 0;
  auto note = [&](RowDifference d) {
    if (out.size() < limit) {
      out.push_back(std::move(d));
    } else {
      ++more;
    }
  };
  // A counter at 0 is no row (projections::is_zero_count).
  auto skip_zero_counts = [](rocksdb::Iterator& it) {
    while (it.Valid() && projections::is_zero_count(it.value().ToStringView())) it.Next();
  };
  a->SeekToFirst();
  b->SeekToFirst();
  for (;;) {
    skip_zero_counts(*a);
    skip_zero_counts(*b);
    if (!a->Valid() && !b->Valid()) break;
    const int order = !a->Valid() ? 1 : !b->Valid() ? -1 : a->key().compare(b->key());
    if (order < 0) {
      note({printable(a->key().ToStringView()), printable(a->value().ToStringView()), "(absent)"});
      a->Next();
    } else if (order > 0) {
      note({printable(b->key().ToStringView()), "(absent)", printable(b->value().ToStringView())});
      b->Next();
    } else {
      if (a->value() != b->value()) {
        note({printable(a->key().ToStringView()), printable(a->value().ToStringView()),
              printable(b->value().ToStringView())});
      }
      a->Next();
      b->Next();
    }
  }
  if (!a->status().ok())
    return fail(errc::io_error, "reading " + left.dir() + ": " + a->status().ToString());
  if (!b->status().ok())
    return fail(errc::io_error, "reading " + right.dir() + ": " + b->status().ToString());
  return out;
}

}  // namespace chorus::replay
