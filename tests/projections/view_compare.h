#pragma once
// Compares two view stores row by row: how tests prove "equal to a fresh rebuild".

#include <filesystem>
#include <map>
#include <string>

#include "projections/folded_rebuild.h"
#include "projections/view_store.h"

namespace chorus::projections::testing {

// Empty when every row is equal (a counter at 0 being no row, view_store.h); else a description of
// the first differences (at most 10).
inline std::string differences(const ViewStore& a, const ViewStore& b) {
  std::map<std::string, std::string> rows_a, rows_b;
  auto collect = [](const ViewStore& s, std::map<std::string, std::string>& out) {
    (void)s.scan("", "", false, [&](std::string_view k, std::string_view v) {
      if (!is_zero_count(v)) out.emplace(k, v);
      return true;
    });
  };
  collect(a, rows_a);
  collect(b, rows_b);
  std::string report;
  int shown = 0;
  auto printable = [](const std::string& k) {
    std::string out;
    for (char c : k) out += (c == '\0') ? '|' : c;
    return out;
  };
  // A counter (8 bytes) as its number, anything else as it is.
  auto value = [&](const std::string& v) {
    return v.size() == 8 ? std::to_string(static_cast<std::int64_t>(from_be64(v))) : printable(v);
  };
  for (const auto& [k, v] : rows_a) {
    auto it = rows_b.find(k);
    if ((it == rows_b.end() || it->second != v) && shown++ < 10) {
      report += (it == rows_b.end()
                     ? "only in first: " + printable(k) + " = " + value(v)
                     : "differs: " + printable(k) + ": " + value(v) + " vs " + value(it->second)) +
                "\n";
    }
  }
  for (const auto& [k, v] : rows_b) {
    if (!rows_a.contains(k) && shown++ < 10) {
      report += "only in second: " + printable(k) + " = " + value(v) + "\n";
    }
  }
  if (rows_a.size() != rows_b.size()) {
    report += "row counts " + std::to_string(rows_a.size()) + " vs " +
              std::to_string(rows_b.size()) + "\n";
  }
  return report;
}

// The views a folded rebuild of `log` (folded_rebuild.h) leaves in `dir` (removed after),
// compared with `live` as differences() compares: empty when equal.
inline std::string folded_differences(events::EventLog& log, const ViewStore& live,
                                      const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::string report;
  if (auto built = rebuild_folded(log, dir); !built) {
    report = "folded rebuild failed: " + built.error().message;
  } else if (auto store = ViewStore::open(dir); !store) {
    report = "folded views cannot be opened: " + store.error().message;
  } else {
    report = differences(live, **store);
  }
  std::filesystem::remove_all(dir);
  return report;
}

}  // namespace chorus::projections::testing
