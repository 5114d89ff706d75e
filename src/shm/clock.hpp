// The clocks of include/agentbus/clock.hpp under the names the shared-memory code has always
// used (shm::realtime_ns, shm::monotonic_ns): one definition, two spellings.
#pragma once

#include <agentbus/clock.hpp>

namespace agentbus::shm {

using agentbus::monotonic_ns;
using agentbus::realtime_ns;

}  // namespace agentbus::shm
