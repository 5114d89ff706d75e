// The inbox's shared-memory layout, in the region "<room>#inbox".
//
//   [InboxHeader][Recipient × recipient_capacity][MessageSlot × capacity]
//
// Recipients are found by open addressing on a hash of the name and are never freed, so the
// first free entry on a name's probe path proves the name absent: they form a shm::ClaimTable
// (shm/claim_table.hpp), Recipient::state its owner word (kRecipientReady when readable).
//
// Every message slot is driven by one owner word (shm/owner_word.hpp) [phase | gen | pid | start]:
//   free --reserve (gen+1)--> reserved|pid --commit--> ready --ack/reclaim (gen+1)--> free
//   reserved|dead pid --reclaim (gen+1)--> free
// The recipient index and seq are atomics written while reserved (seq last, just before the
// recipient's next_seq is advanced by CAS); the other fields and the payload are written while
// reserved and read seqlock style (state, copy, same state again) through ring_copy.
#pragma once

#include "shm/claim_table.hpp"
#include "shm/layout.hpp"
#include "shm/owner_word.hpp"

#include <atomic>
#include <cstdint>

namespace agentbus::coord {

inline constexpr std::uint64_t kInboxMagic = 0x31584f424e494741ull;  // "AGINBOX1"
inline constexpr std::uint32_t kInboxVersion = 3;  // 2: owner words (pid + start time); 3: plain FNV-1a

enum class SlotPhase : std::uint64_t { free = 0, reserved = 1, ready = 2 };
using MessageWord = shm::OwnerWord<SlotPhase>;

constexpr std::uint64_t slot_state(SlotPhase p, std::uint64_t gen, shm::ProcessId sender) {
  return MessageWord::make(p, gen, sender);
}
constexpr SlotPhase slot_phase(std::uint64_t s) { return MessageWord::phase(s); }
constexpr std::uint64_t slot_gen(std::uint64_t s) { return MessageWord::generation(s); }

inline constexpr std::uint64_t kRecipientReady = shm::kClaimReady;

struct InboxHeader {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t capacity;
  std::uint32_t per_recipient;
  std::uint32_t recipient_capacity;
  std::uint32_t max_payload_bytes;
  std::uint32_t reserved_;
  std::uint64_t slot_stride;
  std::uint64_t recipients_offset;
  std::uint64_t slots_offset;
  std::uint64_t total_bytes;
  alignas(shm::kCacheLine) std::atomic<std::uint64_t> stored;
  std::atomic<std::uint64_t> full_refusals;
  std::atomic<std::uint64_t> dead_writers_reclaimed;
  std::atomic<std::uint64_t> asks_reclaimed;
};

struct alignas(shm::kCacheLine) Recipient {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> next_seq;   // the seq the next stored message gets (starts at 1)
  std::atomic<std::uint64_t> cursor;     // highest acknowledged seq
  std::atomic<std::uint64_t> ask_owner;  // shm::pack_owner of the asking process, 0: none
  std::atomic<std::uint64_t> ask_id;     // the pending ask's event id (informational)
  std::uint32_t name_len;
  char name[128];
};

// Written by the sender while it holds the slot reserved.
struct MessageFields {
  std::uint64_t event_id;
  std::int64_t ts_ns;
  std::uint64_t reply_to;  // valid when has_reply_to
  std::uint32_t payload_len;
  std::uint8_t has_reply_to, type_len, from_len;
  char type[64];
  char from[128];
};

struct alignas(shm::kCacheLine) MessageSlot {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> recipient;  // recipient index + 1; 0 not yet known
  std::atomic<std::uint64_t> seq;        // 0 not yet assigned
  MessageFields fields;
  // followed by payload[max_payload_bytes]
};

}  // namespace agentbus::coord
