// The asymmetric fence of exclusive publication (shm/exclusive_writer.hpp). The exclusive
// writer's fast path has no locked instruction, so its stores may sit in its store buffer
// past its next load; the rare other side (a revoking writer, a reader about to sleep) calls
// membarrier_global() instead, which makes every running thread of every registered process
// execute a full barrier before it returns. Linux 4.16+ (MEMBARRIER_CMD_GLOBAL_EXPEDITED).
#pragma once

namespace agentbus::shm {

// Registers this process as a target of membarrier_global(); false when the kernel lacks it
// (then an exclusive writer never arms its fast path and publishes as a shared writer).
bool membarrier_register() noexcept;
// A full barrier on every CPU running a registered process.
void membarrier_global() noexcept;

}  // namespace agentbus::shm
