// The 64-bit state word that drives a coordination entry (a task, a lease), moved only by CAS:
//
//   [phase:3 | counter:29 | pid:32]
//
// The counter rises on every new incarnation of the entry (a claim, an acquisition, a reuse),
// so a (phase, counter) pair never repeats and a CAS against a state read earlier cannot
// succeed on a later incarnation (no ABA). The pid is that of the process in a transitional
// phase, rolled back by whoever finds it dead, or the owner's in a stable one.
#pragma once

#include <cstdint>

namespace agentbus::coord {

template <class Phase>
struct StateWord {
  static constexpr std::uint64_t kCounterMask = (1ull << 29) - 1;

  static constexpr std::uint64_t make(Phase p, std::uint64_t counter, std::uint32_t pid) {
    return (static_cast<std::uint64_t>(p) << 61) | ((counter & kCounterMask) << 32) | pid;
  }
  static constexpr Phase phase(std::uint64_t s) { return static_cast<Phase>(s >> 61); }
  static constexpr std::uint32_t counter(std::uint64_t s) {
    return static_cast<std::uint32_t>((s >> 32) & kCounterMask);
  }
  static constexpr std::uint32_t pid(std::uint64_t s) { return static_cast<std::uint32_t>(s); }
};

}  // namespace agentbus::coord
