#include "shm/membarrier.hpp"

#include <atomic>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace agentbus::shm {

bool membarrier_register() noexcept {
  // Not cached: a registration belongs to the address space, and a child after fork() has a
  // new one. Registering again is harmless, and an exclusive writer is created rarely.
  const long supported = ::syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (supported < 0 || !(supported & MEMBARRIER_CMD_GLOBAL_EXPEDITED) ||
      !(supported & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED))
    return false;
  return ::syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
}

void membarrier_global() noexcept {
  // Without the syscall no process can have registered, so no exclusive writer is armed and
  // there is nothing to order against; the seq_cst fence keeps this side's own order.
  if (::syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) != 0)
    std::atomic_signal_fence(std::memory_order_seq_cst);
}

}  // namespace agentbus::shm
