// json_text.cpp — see json_text.hpp.
#include <agentbus/json_text.hpp>

#include <agentbus/utf8.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace agentbus::util {
namespace {

bool plain_ascii(unsigned char c) noexcept { return c >= 0x20 && c < 0x7F && c != '"' && c != '\\'; }

// The end of the run of plain_ascii bytes starting at `i`, eight bytes at a time: transcripts,
// provider output and conversation state are kilobytes of such text.
std::size_t plain_run_end(std::string_view text, std::size_t i) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  auto has_zero = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
  while (i + 8 <= text.size()) {
    std::uint64_t w;
    std::memcpy(&w, text.data() + i, 8);
    const std::uint64_t special = ((w - ones * 0x20) & ~w) | w | has_zero(w ^ (ones * 0x7F)) |
                                  has_zero(w ^ (ones * '"')) | has_zero(w ^ (ones * '\\'));
    if (special & highs) break;
    i += 8;
  }
  while (i < text.size() && plain_ascii(static_cast<unsigned char>(text[i]))) ++i;
  return i;
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  std::size_t i = 0;
  while (i < text.size()) {
    // Fast path: a run of printable ASCII needing no escape is appended at once.
    const std::size_t j = plain_run_end(text, i);
    if (j > i) {
      out.append(text.substr(i, j - i));
      i = j;
      continue;
    }
    const auto [cp, len] = decode_utf8(text, i);
    switch (cp) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case kInvalidCodePoint: out += "\xEF\xBF\xBD"; break;  // U+FFFD, raw: idempotent under re-escaping
      default:
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
          out += buf;
        } else {
          out.append(text.substr(i, len));
        }
    }
    i += len;
  }
  out += '"';
}

}  // namespace agentbus::util
