// Process identity that survives pid reuse: (pid, start time in clock ticks since boot).
#pragma once

#include <cstdint>
#include <sys/types.h>

namespace agentbus::shm {

struct ProcessId {
  std::uint32_t pid = 0;
  std::uint64_t start_time = 0;  // field 22 of /proc/<pid>/stat

  friend bool operator==(const ProcessId&, const ProcessId&) = default;
};

// This process (cached; refreshed after fork()).
[[nodiscard]] ProcessId self_process() noexcept;

// Start time of `pid`, or 0 when there is no such process.
[[nodiscard]] std::uint64_t process_start_time(std::uint32_t pid) noexcept;

// True unless the process is confirmed gone: no such pid, or the pid now belongs to a process
// that started at another time. A zombie counts as dead. start_time 0 means "unknown": then
// only the pid is checked.
[[nodiscard]] bool process_alive(ProcessId id) noexcept;

// process_alive() for hot paths that ask about the same few processes again and again (every
// losing claim checks the holder's session). Per thread, a verdict younger than
// kLivenessTrustMs is reused as is; up to kLivenessCacheMs only the pid's existence is
// re-checked (one kill(pid, 0)); older verdicts re-read /proc. So a killed process is seen
// dead within kLivenessTrustMs, and a recycled pid or a zombie within kLivenessCacheMs.
inline constexpr int kLivenessTrustMs = 10;
inline constexpr int kLivenessCacheMs = 1000;
[[nodiscard]] bool process_alive_cached(ProcessId id) noexcept;
// The start time of `pid` if it is running (one read of /proc): 0 when there is no such
// process or it is a zombie, 1 when /proc is unreadable but the pid exists.
[[nodiscard]] std::uint64_t running_start_time(std::uint32_t pid) noexcept;
// process_start_time(), remembered per thread while the pid exists.
[[nodiscard]] std::uint64_t process_start_time_cached(std::uint32_t pid) noexcept;

// Identity packed into one 64-bit word for slots that must be claimed with a single CAS:
// pid in the high 32 bits, the low 32 bits of the start time below.
[[nodiscard]] constexpr std::uint64_t pack_owner(ProcessId id) noexcept {
  return (std::uint64_t(id.pid) << 32) | (id.start_time & 0xffffffffu);
}
[[nodiscard]] bool owner_alive(std::uint64_t packed) noexcept;
// owner_alive() with process_alive_cached()'s caching, for scans over many entries.
[[nodiscard]] bool owner_alive_cached(std::uint64_t packed) noexcept;

}  // namespace agentbus::shm
