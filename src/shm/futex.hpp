// Shared (not private) futex wait/wake on a 32-bit word in shared memory.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace agentbus::shm {

// Sleeps while *word == expected, at most `timeout`. Returns on wake, timeout, signal or
// value change; callers re-check their condition.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                std::chrono::nanoseconds timeout) noexcept;
void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept;

}  // namespace agentbus::shm
