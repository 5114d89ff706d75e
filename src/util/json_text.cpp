// json_text.cpp — see json_text.hpp.
#include <agentbus/json_text.hpp>

#include <agentbus/utf8.hpp>

#include <cstdio>

namespace agentbus::util {
namespace {

bool plain_ascii(unsigned char c) noexcept { return c >= 0x20 && c < 0x7F && c != '"' && c != '\\'; }

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  std::size_t i = 0;
  while (i < text.size()) {
    // Fast path: a run of printable ASCII needing no escape is appended at once.
    std::size_t j = i;
    while (j < text.size() && plain_ascii(static_cast<unsigned char>(text[j]))) ++j;
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
