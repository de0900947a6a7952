#pragma once
// Fixed-width big-endian numbers: as RocksDB keys they sort as the numbers do. Shared by the
// embedded log's layout and the views' key layouts.

#include <cstdint>
#include <string>
#include <string_view>

namespace chorus::events {

[[nodiscard]] inline std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return out;
}

// Reads the first 8 bytes of `s` (fewer when `s` is shorter).
[[nodiscard]] inline std::uint64_t from_be64(std::string_view s) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8 && i < s.size(); ++i)
    v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

[[nodiscard]] inline std::string be32(std::uint32_t v) {
  std::string out(4, '\0');
  for (int i = 3; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return out;
}

// Reads the first 4 bytes of `s` (fewer when `s` is shorter).
[[nodiscard]] inline std::uint32_t from_be32(std::string_view s) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4 && i < s.size(); ++i)
    v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

}  // namespace chorus::events
