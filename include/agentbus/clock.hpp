// agentbus/clock.hpp — the two clocks agentbus reads: CLOCK_REALTIME for event and record
// timestamps people read, CLOCK_MONOTONIC (system-wide, so comparable across processes) for
// leases, TTLs and deadlines kept in shared memory. Public so that the CLI stamps and ages
// what it shows with the very clock the library wrote.
#pragma once

#include <cstdint>
#include <ctime>

namespace agentbus {

[[nodiscard]] inline std::int64_t realtime_ns() noexcept {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return std::int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

[[nodiscard]] inline std::int64_t monotonic_ns() noexcept {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return std::int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace agentbus
