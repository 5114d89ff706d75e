// Copies into and out of ring memory that another process may touch at the same moment: a
// tailer copying a record a producer is lapping, a producer overwriting a word a stale
// repairer is peeking at. Every such reader validates what it read afterwards (stamp or
// seqlock check), so the race is expected. Normal builds use memcpy; ThreadSanitizer builds use
// relaxed per-byte atomics, which is what the C++ memory model asks for here (the idea of
// P1478's atomic_load_per_byte_memcpy) and which TSan can check instead of flagging.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstring>

namespace agentbus::shm {

inline void copy_to_ring(std::byte* dst, const void* src, std::size_t n) noexcept {
  if (n == 0) return;  // src may be null for an empty field
#if defined(__SANITIZE_THREAD__)
  const auto* s = static_cast<const std::byte*>(src);
  for (std::size_t i = 0; i < n; ++i) std::atomic_ref<std::byte>(dst[i]).store(s[i], std::memory_order_relaxed);
#else
  std::memcpy(dst, src, n);
#endif
}

inline void copy_from_ring(void* dst, const std::byte* src, std::size_t n) noexcept {
#if defined(__SANITIZE_THREAD__)
  auto* d = static_cast<std::byte*>(dst);
  for (std::size_t i = 0; i < n; ++i)
    d[i] = std::atomic_ref<std::byte>(const_cast<std::byte&>(src[i])).load(std::memory_order_relaxed);
#else
  std::memcpy(dst, src, n);
#endif
}

}  // namespace agentbus::shm
