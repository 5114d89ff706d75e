// The one length check for the fixed-size text fields of coord entries (names, types,
// payloads copied into a table): one error text, whichever primitive refuses.
#pragma once

#include <agentbus/error.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace agentbus::coord {

inline void check_len(std::string_view what, std::string_view value, std::size_t max, bool allow_empty = true) {
  if (!allow_empty && value.empty()) throw Error(Errc::invalid_argument, std::string(what) + " is empty");
  if (value.size() > max)
    throw Error(Errc::too_large, std::string(what) + " is " + std::to_string(value.size()) +
                                     " bytes; the limit is " + std::to_string(max));
}

}  // namespace agentbus::coord
