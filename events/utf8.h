#pragma once
// The text an event carries is UTF-8 (FlatBuffers strings are): the API refuses anything else
// on the way in (api/router.cpp, api/json_body.cpp), and readers of a log written otherwise (by
// another producer, or before the API checked every field) replace what is not
// (projections/json_text.h). Pure, header-only.

#include <cstddef>
#include <string_view>

namespace chorus::events {

// The length of the well-formed UTF-8 sequence at the start of `text` (RFC 3629: no overlong
// form, no surrogate, nothing past U+10FFFF), 0 when there is none (`text` empty included).
// Pure, thread-safe.
[[nodiscard]] inline std::size_t utf8_sequence(std::string_view text) noexcept {
  if (text.empty()) return 0;
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  }
  if (len == 0 || text.size() < len || b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < len; ++i) {
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  }
  return len;
}

// Whether `text` is well-formed UTF-8 holding no control character: none of C0 (but tab, line
// feed and carriage return when `line_breaks`), DEL, C1 (U+0080 to U+009F), nor the
// bidirectional embeddings, overrides and isolates (U+202A to U+202E, U+2066 to U+2069), which
// reorder what follows them where the text is shown ("facture\u202Efdp.exe" reads as
// "facture" + "exe.pdf"). A NUL would cut a view key (its parts are joined by NUL); the others
// are invisible where the text is shown. Pure, thread-safe.
[[nodiscard]] inline bool is_plain_text(std::string_view text, bool line_breaks) noexcept {
  while (!text.empty()) {
    const std::size_t len = utf8_sequence(text);
    if (len == 0) return false;
    const auto c = static_cast<unsigned char>(text[0]);
    if (len == 1 &&
        (c == 0x7F || (c < 0x20 && !(line_breaks && (c == '\t' || c == '\n' || c == '\r'))))) {
      return false;
    }
    if (len == 2 && c == 0xC2 && static_cast<unsigned char>(text[1]) < 0xA0) return false;
    if (len == 3 && c == 0xE2) {
      const auto b1 = static_cast<unsigned char>(text[1]);
      const auto b2 = static_cast<unsigned char>(text[2]);
      if ((b1 == 0x80 && b2 >= 0xAA && b2 <= 0xAE) || (b1 == 0x81 && b2 >= 0xA6 && b2 <= 0xA9)) {
        return false;
      }
    }
    text.remove_prefix(len);
  }
  return true;
}

// `text` from its first character that is neither white space (ASCII, no-break and typographic
// spaces, ideographic space) nor an invisible character (zero-width spaces and joiners,
// left-to-right and right-to-left marks, word joiner and invisible operators, soft hyphen,
// variation selectors, Hangul fillers, byte-order mark): what a reader sees first. Empty when
// `text` shows nothing. Pure, thread-safe.
[[nodiscard]] inline std::string_view skip_blank(std::string_view text) noexcept {
  static constexpr std::string_view kBlank[] = {
      " ",
      "\t",
      "\r",
      "\n",
      "\xC2\xA0" /* U+00A0 */,
      "\xC2\xAD" /* U+00AD soft hyphen */,
      "\xE1\x85\x9F",
      "\xE1\x85\xA0" /* U+115F, U+1160 Hangul fillers */,
      "\xE1\x9A\x80" /* U+1680 */,
      "\xE1\xA0\x8E" /* U+180E */,
      "\xE2\x80\x80",
      "\xE2\x80\x81",
      "\xE2\x80\x82",
      "\xE2\x80\x83",
      "\xE2\x80\x84",
      "\xE2\x80\x85",
      "\xE2\x80\x86",
      "\xE2\x80\x87",
      "\xE2\x80\x88",
      "\xE2\x80\x89",
      "\xE2\x80\x8A",
      "\xE2\x80\x8B",
      "\xE2\x80\x8C",
      "\xE2\x80\x8D",
      "\xE2\x80\x8E",
      "\xE2\x80\x8F" /* U+2000-U+200F */,
      "\xE2\x80\xA8",
      "\xE2\x80\xA9" /* U+2028, U+2029 */,
      "\xE2\x80\xAF" /* U+202F */,
      "\xE2\x81\x9F" /* U+205F */,
      "\xE2\x81\xA0",
      "\xE2\x81\xA1",
      "\xE2\x81\xA2",
      "\xE2\x81\xA3",
      "\xE2\x81\xA4" /* U+2060-U+2064 */,
      "\xE3\x80\x80" /* U+3000 */,
      "\xE3\x85\xA4" /* U+3164 Hangul filler */,
      "\xEF\xB8\x80",
      "\xEF\xB8\x81",
      "\xEF\xB8\x82",
      "\xEF\xB8\x83",
      "\xEF\xB8\x84",
      "\xEF\xB8\x85",
      "\xEF\xB8\x86",
      "\xEF\xB8\x87",
      "\xEF\xB8\x88",
      "\xEF\xB8\x89",
      "\xEF\xB8\x8A",
      "\xEF\xB8\x8B",
      "\xEF\xB8\x8C",
      "\xEF\xB8\x8D",
      "\xEF\xB8\x8E",
      "\xEF\xB8\x8F" /* U+FE00-U+FE0F variation selectors */,
      "\xEF\xBB\xBF" /* U+FEFF */,
      "\xEF\xBE\xA0" /* U+FFA0 Hangul filler */};
  for (bool skipped = true; skipped && !text.empty();) {
    skipped = false;
    for (auto blank : kBlank) {
      if (text.starts_with(blank)) {
        text.remove_prefix(blank.size());
        skipped = true;
      }
    }
  }
  return text;
}

}  // namespace chorus::events
