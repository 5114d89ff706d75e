// hex.hpp — a word from shared memory as "0x..." for error messages that quote what was found.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace agentbus::util {

[[nodiscard]] inline std::string hex(std::uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace agentbus::util
