// The one 64-bit word that says who holds a shared-memory entry and in which phase, moved
// only by CAS. Every claimed entry uses it (room table, inbox recipients, group members,
// tasks, leases), so a writer is identified the same way everywhere:
//
//   [phase:3 | generation:20 | pid:22 | start:19]
//
// Why these widths:
//  * phase: 3 bits, the largest state machine (tasks) has 8 phases.
//  * pid: 22 bits. Linux refuses a pid_max above PID_MAX_LIMIT = 2^22, so every pid fits;
//    make() throws for one that does not rather than truncate it (a truncated pid would name
//    another process).
//  * start: the low 19 bits of the process start time in clock ticks since boot (/proc
//    field 22). With the usual 100 ticks/s they repeat every 2^19 / 100 s ≈ 87 minutes, so a
//    recycled pid is mistaken for the dead holder only if the new process started an exact
//    multiple of ~87 minutes (to the tick) after it. What it cannot confuse: two live
//    processes (pids are unique), or a holder with a process that was never given its pid. A
//    start field of 0 means "not recorded": then only the pid is checked (a real start time
//    whose low bits are 0 is checked the same way, a weaker but never wrong answer).
//  * generation: the remaining 20 bits. It rises on every new incarnation of the entry (a
//    claim, a reserve, a renew), so a (phase, generation) pair repeats only after 2^20
//    incarnations: a CAS against a word read earlier cannot succeed on a later incarnation
//    (no ABA) unless a million transitions happened in between.
#pragma once

#include "shm/process.hpp"

#include <agentbus/error.hpp>

#include <cstdint>
#include <string>

namespace agentbus::shm::owner_bits {

inline constexpr unsigned kStartBits = 19, kPidBits = 22, kGenerationBits = 20, kPhaseBits = 3;
inline constexpr unsigned kPidShift = kStartBits;
inline constexpr unsigned kGenerationShift = kPidShift + kPidBits;
inline constexpr unsigned kPhaseShift = kGenerationShift + kGenerationBits;
static_assert(kPhaseShift + kPhaseBits == 64);

inline constexpr std::uint64_t kStartMask = (1ull << kStartBits) - 1;
inline constexpr std::uint64_t kPidMask = (1ull << kPidBits) - 1;
inline constexpr std::uint64_t kGenerationMask = (1ull << kGenerationBits) - 1;
inline constexpr std::uint64_t kPhaseMask = (1ull << kPhaseBits) - 1;
// The holder part of a word: pid and start time.
inline constexpr std::uint64_t kHolderMask = (1ull << kGenerationShift) - 1;

// The holder bits for `id`; throws Error{invalid_argument} for a pid that does not fit.
constexpr std::uint64_t holder(ProcessId id) {
  if (id.pid > kPidMask)
    throw Error(Errc::invalid_argument, "pid " + std::to_string(id.pid) + " does not fit a 22-bit owner word");
  return (std::uint64_t{id.pid} << kPidShift) | (id.start_time & kStartMask);
}
constexpr std::uint32_t pid(std::uint64_t w) { return static_cast<std::uint32_t>((w >> kPidShift) & kPidMask); }
constexpr std::uint32_t start_bits(std::uint64_t w) { return static_cast<std::uint32_t>(w & kStartMask); }

// True when `id` is the holder recorded in `w` (pid and the start time's low bits).
constexpr bool held_by(std::uint64_t w, ProcessId id) {
  return id.pid <= kPidMask && (w & kHolderMask) == holder(id);
}

// The holder recorded in `w` is still running: its pid exists, is not a zombie, and (when a
// start time was recorded) started at that time. False when no pid is recorded.
[[nodiscard]] bool holder_alive(std::uint64_t w) noexcept;
// holder_alive() with process_alive_cached()'s caching, for scans over many entries.
[[nodiscard]] bool holder_alive_cached(std::uint64_t w) noexcept;

}  // namespace agentbus::shm::owner_bits

namespace agentbus::shm {

// The owner word of a state machine whose phases are the enum `Phase` (values 0..7).
template <class Phase>
struct OwnerWord {
  static constexpr std::uint64_t make(Phase p, std::uint64_t generation, ProcessId who = {}) {
    using namespace owner_bits;
    return ((static_cast<std::uint64_t>(p) & kPhaseMask) << kPhaseShift) |
           ((generation & kGenerationMask) << kGenerationShift) | holder(who);
  }
  // A new phase and generation, the holder of `w` kept (e.g. back from a transition to the
  // phase the holder was in).
  static constexpr std::uint64_t keep_holder(std::uint64_t w, Phase p, std::uint64_t generation) {
    return make(p, generation) | (w & owner_bits::kHolderMask);
  }
  static constexpr Phase phase(std::uint64_t w) { return static_cast<Phase>(w >> owner_bits::kPhaseShift); }
  static constexpr std::uint32_t generation(std::uint64_t w) {
    return static_cast<std::uint32_t>((w >> owner_bits::kGenerationShift) & owner_bits::kGenerationMask);
  }
  static constexpr std::uint32_t pid(std::uint64_t w) { return owner_bits::pid(w); }
  static constexpr bool held_by(std::uint64_t w, ProcessId id) { return owner_bits::held_by(w, id); }
  static bool holder_alive(std::uint64_t w) noexcept { return owner_bits::holder_alive(w); }
  static bool holder_alive_cached(std::uint64_t w) noexcept { return owner_bits::holder_alive_cached(w); }
};

}  // namespace agentbus::shm
