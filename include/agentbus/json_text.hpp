// agentbus/json_text.hpp — JSON string literals for whatever text agentbus writes as JSON:
// event payloads it builds (status entries, audit and dead-letter events) and the CLI's --json
// output.
#pragma once

#include <string>
#include <string_view>

namespace agentbus::util {

// Appends `text` as a JSON string literal, quotes included: '"' and '\\' escaped, control
// characters, DEL, C1 controls and U+2028/U+2029 \u-escaped (safe to print and to paste into
// JavaScript), invalid UTF-8 replaced by raw U+FFFD, so escaping what a parser unescaped gives
// the same bytes.
void append_json_string(std::string& out, std::string_view text);

[[nodiscard]] inline std::string json_string(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  append_json_string(out, text);
  return out;
}

}  // namespace agentbus::util
