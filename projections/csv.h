#pragma once
// The one CSV dialect of every export (the API's lists, the replay tool's histories), as French
// spreadsheets open them without an import dialog: UTF-8 with a byte-order mark, ';' between cells,
// every cell quoted, CRLF line ends, and cells a spreadsheet would run as a formula defused.

#include <initializer_list>
#include <string>
#include <string_view>

#include "events/utf8.h"

namespace chorus::projections {

// Starts every export: spreadsheets then read UTF-8, not Windows-1252.
inline constexpr std::string_view kCsvByteOrderMark = "\xEF\xBB\xBF";

// Whether a spreadsheet could run `text` as a formula: it starts with a tab or CR (which some
// strip), or its first character that is not white space nor an invisible format character
// (events::skip_blank) is = + - or @, in ASCII, full width (＝ ＋ － ＠) or small form (﹦ ﹢ ﹣
// ﹫), which some spreadsheets read as the ASCII ones. Pure.
[[nodiscard]] inline bool csv_formula_like(std::string_view text) {
  if (!text.empty() && (text.front() == '\t' || text.front() == '\r')) return true;
  // UTF-8 of the formula signs.
  static constexpr std::string_view kSigns[] = {"=",
                                                "+",
                                                "-",
                                                "@",
                                                "\xEF\xBC\x9D",
                                                "\xEF\xBC\x8B",
                                                "\xEF\xBC\x8D",
                                                "\xEF\xBC\xA0",
                                                "\xEF\xB9\xA6",
                                                "\xEF\xB9\xA2",
                                                "\xEF\xB9\xA3",
                                                "\xEF\xB9\xAB"};
  text = events::skip_blank(text);
  for (auto sign : kSigns) {
    if (text.starts_with(sign)) return true;
  }
  return false;
}

// One cell, quotes included; a cell a spreadsheet could run as a formula (csv_formula_like)
// gets a leading ' so that it stays text ("CSV injection"). Pure, thread-safe.
[[nodiscard]] inline std::string csv_cell(std::string_view text) {
  std::string out = "\"";
  if (csv_formula_like(text)) out.push_back('\'');
  for (char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// One line of cells, ';'-separated, ending in CRLF. Pure, thread-safe.
template <class Cells>
[[nodiscard]] std::string csv_row(const Cells& cells) {
  std::string line;
  bool first = true;
  for (const auto& cell : cells) {
    if (!first) line.push_back(';');
    first = false;
    line += csv_cell(cell);
  }
  line += "\r\n";
  return line;
}

// The same, of cells listed in place.
[[nodiscard]] inline std::string csv_line(std::initializer_list<std::string_view> cells) {
  return csv_row(cells);
}

}  // namespace chorus::projections
