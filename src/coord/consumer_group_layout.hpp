// Shared-memory layout of a consumer group: region "<room>#group.<name>".
//
//   [GroupHeader | Member × max_members | PendingSlot × capacity]
//
// Deliveries are numbered 0, 1, 2, ... in log order; delivery k lives in slot k mod capacity.
// `head` is the next delivery to hand out, `floor` the oldest one not yet retired; every
// delivery in [floor, head) has a slot, so head - floor <= capacity.
//
// A slot's tag says which delivery it holds and in what state, moved only by CAS:
//
//   [seq mod 2^46 | member:10 | phase:4 | epoch:4]
//
//   free(k)               ready to hold delivery k
//   dispatching(k, m)     member m is filling in delivery k (position, time, count)
//   pending(k, m)         delivered to m, not acked
//   reclaiming(k, m)      m is taking it over (redelivery or dead letter)
//   receipted(k, m)       m recorded that the work is done; the ack is still missing
//   acked(k)              done; retired when the floor reaches it (-> free(k + capacity))
//
// A member has one *actor* at a time (the process holding its handle) and an *owner* (the
// process whose life keeps its pending events: the actor, or the agent's session for the CLI).
// In a transitional phase the epoch is the member's incarnation (bumped whenever a process
// takes the member's handle); in pending/receipted it is the member's owner epoch (bumped when
// a new owner takes the name over). So:
//  * a transitional slot may be adopted once its actor is dead or gone, or the member has been
//    reopened since (the epoch no longer matches): nobody is finishing it;
//  * a pending slot is orphaned once its owner left or died, or the name has a new owner.
// Transitional phases are left only by CAS from the exact tag held, so an actor wrongly taken
// for dead loses its work instead of overwriting an adopter's. The slot's other words are
// written only by the holder of a transitional phase, and read under a tag re-check (seqlock).
#pragma once

#include "shm/claim_table.hpp"

#include <atomic>
#include <cstdint>

namespace agentbus::coord {

inline constexpr std::uint64_t kGroupMagic = 0x3150524753554241ull;  // "ABUSGRP1"
inline constexpr std::uint32_t kGroupVersion = 3;  // 3: members claimed by owner word, hash-probed
inline constexpr std::uint32_t kMaxGroupMembers = 256;
inline constexpr std::size_t kGroupNameBytes = 64;
inline constexpr std::size_t kInterestBytes = 1024;  // comma-separated types, or "*"

enum class PendingPhase : std::uint64_t {
  free = 0, dispatching = 1, pending = 2, reclaiming = 3, receipted = 4, acked = 5,
};

inline constexpr std::uint64_t kSeqBits = 46;
inline constexpr std::uint64_t kSeqMask = (1ull << kSeqBits) - 1;
inline constexpr std::uint64_t kNoMember = 0x3ff;

inline constexpr std::uint64_t make_tag(std::uint64_t seq, PendingPhase phase, std::uint64_t member,
                                        std::uint64_t epoch = 0) {
  return ((seq & kSeqMask) << 18) | ((member & 0x3ff) << 8) | (static_cast<std::uint64_t>(phase) << 4) | (epoch & 0xf);
}
inline constexpr bool tag_is(std::uint64_t tag, std::uint64_t seq) { return (tag >> 18) == (seq & kSeqMask); }
inline constexpr PendingPhase tag_phase(std::uint64_t tag) { return static_cast<PendingPhase>((tag >> 4) & 0xf); }
inline constexpr std::uint32_t tag_member(std::uint64_t tag) { return static_cast<std::uint32_t>((tag >> 8) & 0x3ff); }
inline constexpr std::uint32_t tag_epoch(std::uint64_t tag) { return static_cast<std::uint32_t>(tag & 0xf); }

struct GroupCountersShm {
  std::atomic<std::uint64_t> redelivered, filtered, dead_lettered, receipts_honoured;
};

struct GroupHeader {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t capacity;        // pending slots, a power of two
  std::uint32_t max_members;
  std::uint32_t max_deliveries;
  std::uint64_t start_pos;       // position delivery 0 starts looking from
  std::uint64_t total_bytes;
  std::uint32_t interests_len;
  char interests[kInterestBytes];
  alignas(64) std::atomic<std::uint64_t> head;   // next delivery
  alignas(64) std::atomic<std::uint64_t> floor;  // oldest delivery not retired
  alignas(64) GroupCountersShm counters;
};

// The members form a shm::ClaimTable (shm/claim_table.hpp) probed from the name's FNV-1a
// hash; entries are never freed. Member::state is its owner word, kMemberReady when readable.
inline constexpr std::uint64_t kMemberReady = shm::kClaimReady;

struct alignas(64) Member {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> owner;        // pack_owner(): keeps its pending events; 0: left
  std::atomic<std::uint64_t> actor;        // pack_owner() of the process holding the handle; 0: none
  std::atomic<std::uint32_t> owner_epoch;  // bumped when a new owner takes the name over
  std::atomic<std::uint32_t> incarnation;  // bumped whenever a process takes the handle
  std::uint32_t name_len;
  char name[kGroupNameBytes];
};

struct alignas(64) PendingSlot {
  std::atomic<std::uint64_t> tag;
  std::atomic<std::uint64_t> pos;           // event id
  std::atomic<std::uint64_t> next;          // first position after the event
  std::atomic<std::int64_t> delivered_ns;   // CLOCK_REALTIME of the latest delivery
  std::atomic<std::uint32_t> deliveries;
};

}  // namespace agentbus::coord
