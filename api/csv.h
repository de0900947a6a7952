#pragma once
// The one CSV dialect of the API's exports, as French spreadsheets open them without an import
// dialog: UTF-8 with a byte-order mark, ';' between cells, every cell quoted, CRLF line ends,
// and cells a spreadsheet would run as a formula defused.

#include <initializer_list>
#include <string>
#include <string_view>

namespace chorus::api {

// Starts every export: spreadsheets then read UTF-8, not Windows-1252.
inline constexpr std::string_view kCsvByteOrderMark = "\xEF\xBB\xBF";

// Whether a spreadsheet could run `text` as a formula: its first character that is not white
// space (space, tab, CR, LF) is = + - or @, in ASCII or full width (＝ ＋ － ＠, which some
// spreadsheets read as the ASCII ones), or it starts with a tab or CR (which some strip). Pure.
[[nodiscard]] inline bool csv_formula_like(std::string_view text) {
  if (!text.empty() && (text.front() == '\t' || text.front() == '\r')) return true;
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return false;
  const std::string_view rest = text.substr(first);
  if (std::string_view("=+-@").find(rest.front()) != std::string_view::npos) return true;
  for (std::string_view wide : {"\xEF\xBC\x9D", "\xEF\xBC\x8B", "\xEF\xBC\x8D", "\xEF\xBC\xA0"}) {
    if (rest.starts_with(wide)) return true;
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
[[nodiscard]] inline std::string csv_line(std::initializer_list<std::string_view> cells) {
  std::string line;
  for (auto cell : cells) {
    if (!line.empty()) line.push_back(';');
    line += csv_cell(cell);
  }
  line += "\r\n";
  return line;
}

}  // namespace chorus::api
