// The presence table's shared-memory layout, in the region "<room>#presence":
//
//   [Header, 128 B: magic "AGBPRES1", version, sizes, capacity | counters]
//   [Entry × capacity, 512 B each]
//     +0 state  +8 generation  +16 session pid  +24 session start time  +32 last seen (steady ns)
//     +40 ttl ns  +48 joined (realtime ns)  +56 lengths  +64 handle[128]  +192 role[64]
//     +256 working_on[256]
//
// Entry::state is the only word that decides who may write an entry, a claim-table owner
// word (shm/claim_table.hpp, shm/owner_word.hpp) whose entries are released and reused:
//   0                                   free
//   writing | pid | start time          a process holds it and is (re)writing the fields
//   ready (live) | generation           readable; the generation is the seqlock's sequence
#pragma once

#include "coord/region.hpp"

#include <agentbus/presence.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace agentbus::coord::presence {

using std::uint32_t;
using std::uint64_t;
using std::int64_t;

constexpr uint64_t kPresenceMagic = 0x3153455250424741ull;  // "AGBPRES1" little-endian
constexpr uint32_t kPresenceVersion = 2;  // 2: the state word is an owner word
constexpr uint32_t kMaxCapacity = 1u << 16;

constexpr uint64_t kGenerationMask = (1ull << 56) - 1;  // Entry::generation

struct alignas(64) Header {
  uint64_t magic;
  uint32_t version;
  uint32_t header_bytes;
  uint32_t entry_bytes;
  uint32_t capacity;
  alignas(64) std::atomic<uint64_t> joins;
  std::atomic<uint64_t> leaves;
  std::atomic<uint64_t> expired_reclaimed;
  std::atomic<uint64_t> dead_sessions_reclaimed;
  std::atomic<uint64_t> dead_writers_reclaimed;
};
static_assert(sizeof(Header) == 128);
static_assert(offsetof(Header, version) == offsetof(coord::RegionPrefix, version));

struct alignas(64) Entry {
  std::atomic<uint64_t> state;
  std::atomic<uint64_t> generation;  // last generation published; written only while held in writing
  std::atomic<uint64_t> session_pid;
  std::atomic<uint64_t> session_start;
  std::atomic<int64_t> last_seen_ns;  // steady clock: CLOCK_MONOTONIC is one clock for all processes
  std::atomic<int64_t> ttl_ns;
  std::atomic<int64_t> joined_ns;     // system clock, for display
  std::atomic<uint64_t> lengths;      // handle | role << 8 | working_on << 16
  char handle[kMaxQualifiedHandleBytes];
  char role[kMaxRoleBytes];
  char working_on[kMaxWorkingOnBytes];
};
static_assert(sizeof(Entry) == 512);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

}  // namespace agentbus::coord::presence
