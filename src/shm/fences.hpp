// The two fences the ring needs, in one place, because ThreadSanitizer does not model
// std::atomic_thread_fence (GCC refuses it under -Werror=tsan). Under TSan each is replaced
// by the nearest thing TSan understands; on x86 both forms compile to the same ordering.
#pragma once

#include <atomic>
#include <cstdint>

namespace agentbus::shm {

// Seqlock check: loads `word` only after every earlier read (the racy copy) has completed.
inline std::uint64_t load_after_reads(std::atomic<std::uint64_t>& word) noexcept {
#if defined(__SANITIZE_THREAD__)
  return word.fetch_add(0, std::memory_order_acq_rel);  // a release RMW also orders prior reads
#else
  std::atomic_thread_fence(std::memory_order_acquire);
  return word.load(std::memory_order_relaxed);
#endif
}

// Store→load barrier for the waiter handshake (register as waiter, then re-check for events;
// a publisher commits, then checks for waiters). Under TSan the seq_cst RMW that registers the
// waiter already is a full barrier on x86, so only the formal C++ fence is dropped.
inline void store_load_fence() noexcept {
#if !defined(__SANITIZE_THREAD__)
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace agentbus::shm
