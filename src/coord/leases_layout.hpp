// The lease table's shared-memory layout, in the region "<room>#leases".
//
//   [LeasesHeader][LeaseEntry × capacity]
//
// Every entry is one lease, driven by an owner word (shm/owner_word.hpp) [phase | gen | pid | start]:
//
//   free/lapsed held --reserve--> reserving --announce--> acquiring --win--> held --release--> free
//                                                            |                 |  ^
//                                                            +--back off--> free  +-- renewing (renew)
//
// `reserving` is private to the acquirer (it writes the fields; nobody else looks at them);
// `acquiring` announces the lease to other acquirers before it is checked for conflicts (see
// the protocol in lease_acquire.cpp). The transitional phases (reserving, acquiring, renewing) carry
// the pid and start time of the process making the change; whoever meets one that is dead
// rolls it back. In `held` the holder is the lease's session process. gen rises on every reserve and every renew, so a state
// never repeats (no ABA). A held entry whose ttl lapsed or whose session died is free: any
// acquirer may reserve it directly.
//
// Fields are written only in `reserving` (and the atomics deadline/expiry/ttl in `renewing`),
// and read seqlock style (state, copy, state again with the same gen).
#pragma once

#include "shm/layout.hpp"
#include "shm/owner_word.hpp"

#include <agentbus/leases.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace agentbus::coord::leases {

inline constexpr std::uint64_t kMagic = 0x31455341454c4741ull;  // "AGLEASE1"
inline constexpr std::uint32_t kVersion = 2;  // 2: owner words (pid + start time)

enum class Phase : std::uint64_t { free = 0, reserving = 1, acquiring = 2, held = 3, renewing = 4 };

using LeaseStateWord = shm::OwnerWord<Phase>;
constexpr auto make_state = LeaseStateWord::make;
constexpr auto phase_of = LeaseStateWord::phase;
constexpr auto gen_of = LeaseStateWord::generation;
constexpr auto pid_of = LeaseStateWord::pid;
constexpr bool transitional(Phase p) {
  return p == Phase::reserving || p == Phase::acquiring || p == Phase::renewing;
}

struct LeasesHeader {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t capacity;
  std::uint64_t entry_stride;
  std::uint64_t entries_offset;
  std::uint64_t total_bytes;
  alignas(shm::kCacheLine) std::atomic<std::uint64_t> next_token;  // last token handed out
  alignas(shm::kCacheLine) std::atomic<std::uint64_t> acquired;
  std::atomic<std::uint64_t> conflicts;
  std::atomic<std::uint64_t> expired_reclaimed;
  std::atomic<std::uint64_t> dead_sessions_reclaimed;
  std::atomic<std::uint64_t> transitions_rolled_back;
};

// Written by the acquirer while reserving.
struct LeaseFields {
  std::int64_t acquired_ts_ns;  // CLOCK_REALTIME
  std::uint64_t owner_start;    // process start time of the session
  std::uint32_t owner_pid;
  std::uint16_t resources_len;  // bytes of `resources`: canonical resources joined by '\n'
  std::uint16_t purpose_len;
  std::uint8_t owner_len;
  char owner[kMaxLeaseOwnerBytes];
  char purpose[kMaxLeasePurposeBytes];
  char resources[kMaxLeaseResourcesBytes];
};

struct alignas(shm::kCacheLine) LeaseEntry {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> token;        // fencing token = lease id (written while reserving)
  std::atomic<std::int64_t> deadline_ns;   // CLOCK_MONOTONIC, system-wide
  std::atomic<std::int64_t> expires_at_ns; // CLOCK_REALTIME, for display
  std::atomic<std::int64_t> ttl_ms;
  LeaseFields fields;
};

}  // namespace agentbus::coord::leases
