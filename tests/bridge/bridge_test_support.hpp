// What the bridge tests share: the build's agentbus-bridge, and a bounded wait long enough
// for other processes talking through Redis (and slower under the sanitizers).
#pragma once

#include "../support/expect.hpp"

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>

namespace bridge_test {

inline std::string bridge_path() {
  const char* p = std::getenv("AGENTBUS_BRIDGE");
  return p && *p ? p : AGENTBUS_BRIDGE_PATH;
}

inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  return agentbus::test::eventually(done, limit);
}

}  // namespace bridge_test
