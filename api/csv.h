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

// One cell, quotes included; a leading = + - @ tab or CR gets a ' so that the cell stays text
// ("CSV injection"). Pure, thread-safe.
[[nodiscard]] inline std::string csv_cell(std::string_view text) {
  std::string out = "\"";
  if (!text.empty() && std::string_view("=+-@\t\r").find(text.front()) != std::string_view::npos) {
    out.push_back('\'');
  }
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
