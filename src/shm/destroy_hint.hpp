// The one fix for a bus whose shared memory cannot be trusted: every error that reports a
// corrupt or incompatible segment, room or region ends with this, so users learn one command.
#pragma once

#include <string>
#include <string_view>

namespace agentbus::shm {

inline std::string destroy_hint(std::string_view bus) {
  return "remove the bus with `agentbus --bus " + std::string(bus) +
         " destroy` and open it again (processes still using it keep their mapping)";
}

}  // namespace agentbus::shm
