// The one length check for the fixed-size text fields of coord entries (names, types,
// payloads copied into a table): one error text, whichever primitive refuses. The check is
// inline because it runs on every claim and post; the message is built out of line.
#pragma once

#include <cstddef>
#include <string_view>

namespace agentbus::coord {

// Throws Error{invalid_argument} ("<what> is empty") or Error{too_large}.
[[noreturn]] void refuse_len(std::string_view what, std::size_t size, std::size_t max);

inline void check_len(std::string_view what, std::string_view value, std::size_t max, bool allow_empty = true) {
  if (value.size() <= max && (allow_empty || !value.empty())) [[likely]]
    return;
  refuse_len(what, value.size(), max);
}

}  // namespace agentbus::coord
