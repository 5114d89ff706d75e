// The FNV-1a of include/agentbus/hash.hpp under the name the shared-memory tables use
// (shm::fnv1a). It is part of the segment layout: see kLayoutVersion in shm/layout.hpp.
#pragma once

#include <agentbus/hash.hpp>

namespace agentbus::shm {

using agentbus::fnv1a;
using agentbus::mix64;

}  // namespace agentbus::shm
