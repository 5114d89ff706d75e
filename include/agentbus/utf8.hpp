// agentbus/utf8.hpp — strict UTF-8 decoding, shared by everything that escapes, sanitises or
// checks text (the library and the CLI): overlong forms, surrogates and values past U+10FFFF
// are invalid. Strictness matters for safety, not pedantry: "\xC0\x9B" is an overlong ESC
// some terminals accept.
#pragma once

#include <cstddef>
#include <string_view>

namespace agentbus::util {

inline constexpr char32_t kInvalidCodePoint = 0xFFFFFFFF;

struct CodePoint {
  char32_t cp;      // kInvalidCodePoint for a byte that starts no valid sequence
  std::size_t len;  // bytes consumed; 1 for an invalid byte
};

inline CodePoint decode_utf8(std::string_view s, std::size_t i) noexcept {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1};
  std::size_t len = 0;
  char32_t cp = 0, min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return {kInvalidCodePoint, 1};
  }
  if (i + len > s.size()) return {kInvalidCodePoint, 1};
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return {kInvalidCodePoint, 1};
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {kInvalidCodePoint, 1};
  return {cp, len};
}

// True when all of `s` is strict UTF-8.
[[nodiscard]] inline bool valid_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    const CodePoint c = decode_utf8(s, i);
    if (c.cp == kInvalidCodePoint) return false;
    i += c.len;
  }
  return true;
}

}  // namespace agentbus::util
