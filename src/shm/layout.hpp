// The shared-memory layout, described once (docs/architecture.md draws it).
//
//  segment:  [SegmentHeader | RoomSlot × max_rooms | heap: room regions, bump-allocated]
//  room:     [RingControl (incl. ReaderSlot × kMaxReaders) | data: ring_bytes]
//  record:   [stamp u64 | owner u64 | ts i64 | type_len u8 | flags u8 | agent_len u8 |
//             to_len u8 | payload_len u32 | (reply_to u64, if flagged) | (origin block, if
//             flagged) | type | agent | to | payload | pad→8]
//  origin:   [id u64 | stream ms u64 | stream seq u64 | reply id u64 | host_len u8 |
//             reply_host_len u8 | origin_flags u8 | pad ×5 | host | reply host]
//
// Every structure here is trivially copyable, zero-initialisable (a fresh segment is all zero
// bytes), and holds no pointers: only offsets, validated before use.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace agentbus::shm {

inline constexpr std::uint64_t kMagic = 0x3153554254474741ull;  // "AGGTBUS1" little-endian
inline constexpr std::uint32_t kLayoutVersion = 7;  // 3: RingControl::head; 4: FNV-1a basis fixed;
                                                    // 5: room slots claimed by owner word (claim_table.hpp);
                                                    // 6: host id in the header, origin block in records;
                                                    // 7: RingControl::recent_index, writer lease
inline constexpr std::size_t kCacheLine = 64;
// Region and slot sizes are rounded up to whole cache lines, so no two writers share one.
[[nodiscard]] constexpr std::uint64_t align64(std::uint64_t n) noexcept { return (n + 63) & ~std::uint64_t{63}; }
inline constexpr std::size_t kPage = 4096;
inline constexpr std::size_t kMaxReaders = 64;
inline constexpr std::size_t kMaxRoomName = 128;
inline constexpr std::size_t kMaxSlotName = 144;  // a room name plus a '#kind' suffix
inline constexpr std::size_t kMaxReaderName = 64;
inline constexpr std::size_t kMaxHostIdBytes = 64;
inline constexpr std::size_t kMinRingBytes = 64 << 10;
inline constexpr std::size_t kMaxRingBytes = 128 << 20;

struct SegmentHeader {
  std::uint64_t magic;
  std::uint32_t layout_version;
  std::uint32_t header_bytes;
  std::uint64_t segment_bytes;
  std::uint32_t max_rooms;
  std::uint32_t creator_pid;
  std::uint64_t creator_start_time;
  std::uint64_t room_table_offset;
  std::uint64_t heap_offset;
  alignas(kCacheLine) std::atomic<std::uint32_t> initialised;  // release-stored last
  alignas(kCacheLine) std::atomic<std::uint64_t> heap_cursor;   // next free heap offset
  std::atomic<std::uint64_t> dead_writers_reclaimed;
  std::uint32_t host_id_len;     // written once by the creator, before `initialised`
  char host_id[kMaxHostIdBytes];
};

// RoomSlot::state is a claim-table owner word (shm/claim_table.hpp): 0 free; writing | pid |
// start time while its creator initialises it; kRoomReady (= shm::kClaimReady). A slot holds
// a room's ring, or a region belonging to a room (its task board, presence
// table, scratchpad), named "<room>#<what>"; '#' cannot appear in a room name.
inline constexpr std::uint64_t kRoomReady = 2ull << 61;

struct alignas(kCacheLine) RoomSlot {
  std::atomic<std::uint64_t> state;
  std::uint64_t region_offset;   // RingControl of this room, from the segment start
  std::uint64_t region_bytes;
  std::uint64_t ring_bytes;
  std::uint32_t max_record_bytes;
  std::uint32_t name_len;
  std::uint32_t kind;            // SlotKind
  std::uint32_t reserved;
  char name[kMaxSlotName];
};
static_assert(sizeof(RoomSlot) == 192);

enum class SlotKind : std::uint32_t { ring = 0, region = 1 };

// ReaderSlot::state: an owner word (shm/owner_word.hpp) whose phase is the slot's kind and
// whose holder is the process that set it; claimed and published through shm::ClaimTable
// (claiming is its "writing" phase). Slots are released and reused.
inline constexpr std::uint64_t kReaderFree = 0;
inline constexpr std::uint64_t kReaderClaiming = 1ull << 61;
inline constexpr std::uint64_t kReaderTailer = 2ull << 61;
inline constexpr std::uint64_t kReaderDurable = 3ull << 61;
inline constexpr std::uint64_t kReaderKindMask = 7ull << 61;

struct alignas(kCacheLine) ReaderSlot {
  std::atomic<std::uint64_t> cursor;  // hot: written by its reader, read by gating producers
  alignas(kCacheLine) std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> owner;   // pack_owner() of the attached process, 0: detached
  std::uint32_t name_len;
  char name[kMaxReaderName];
};

struct RingCounters {
  std::atomic<std::uint64_t> wrap_paddings;
  std::atomic<std::uint64_t> dead_claims_padded;
  std::atomic<std::uint64_t> gaps_padded;
  std::atomic<std::uint64_t> aborted_claims;
  std::atomic<std::uint64_t> overruns;
  std::atomic<std::uint64_t> bus_full;
  std::atomic<std::uint64_t> dead_sessions_reclaimed;
  std::atomic<std::uint64_t> wakeups;
  std::atomic<std::uint64_t> exclusive_revokes;     // a shared writer took the fast path away
  std::atomic<std::uint64_t> dead_writer_leases;    // leases of dead exclusive writers taken back
};

// Producers may claim up to `limit` = min(commit_head, durable cursors) + capacity. The word
// packs limit/8 (48 bits) with a 16-bit registration sequence that a new durable reader bumps,
// so that a limit computed without seeing it can no longer be installed.
//
// `head` is the oldest intact record: a producer moves it, record by record, past everything
// it is about to overwrite before it writes a byte (Ring::reclaim), so readers start there and
// a reader's copy from `start` is intact while head <= start.
//
// `recent_index` is a sparse back-link for recent(n): slot (b / block) mod kRecentIndexSlots holds
// the start of the record covering position b, for each block boundary b (block = capacity /
// kRecentIndexSlots). A producer stores it after its commit. It is a hint: a reader accepts an
// entry only if it lies within one max record below b and at or after `head`, and then walks
// stamps forward from it, so a stale or missing entry costs a step back, never a wrong answer.
inline constexpr std::size_t kRecentIndexSlots = 1024;

struct RingControl {
  alignas(kCacheLine) std::atomic<std::uint64_t> tail;         // next position to claim
  alignas(kCacheLine) std::atomic<std::uint64_t> head;         // oldest intact record start
  alignas(kCacheLine) std::atomic<std::uint64_t> limit_word;
  alignas(kCacheLine) std::atomic<std::uint64_t> commit_head;  // all below: committed/padding
  alignas(kCacheLine) std::atomic<std::uint32_t> futex_seq;
  std::atomic<std::uint32_t> waiters;
  alignas(kCacheLine) RingCounters counters;
  alignas(kCacheLine) ReaderSlot readers[kMaxReaders];
  alignas(kCacheLine) std::atomic<std::uint64_t> recent_index[kRecentIndexSlots];
  // Exclusive publication (shm/exclusive_writer.hpp): the holder's owner word (0: none), and
  // the arming word it reads on every publish ([unarmed:1 | revoke generation:31 | revokers in
  // progress:32]; 0 = armed), both rarely written; and `writer_busy`, written only by the
  // holder, 1 while it is inside a fast-path publish.
  alignas(kCacheLine) std::atomic<std::uint64_t> writer_lease;
  std::atomic<std::uint64_t> writer_state;
  alignas(kCacheLine) std::atomic<std::uint64_t> writer_busy;
};

// `tail` carries this bit while an exclusive writer is armed: it then owns `tail` and moves it
// with plain stores, and a shared claimer's CAS cannot succeed until a revoke clears the bit.
inline constexpr std::uint64_t kTailExclusive = 1ull << 62;
inline constexpr std::uint64_t kWriterUnarmed = 1ull << 63;
inline constexpr std::uint64_t kWriterRevokersMask = (1ull << 32) - 1;
inline constexpr std::uint64_t kWriterGenerationMask = ((1ull << 31) - 1) << 32;

inline constexpr std::uint64_t limit_of(std::uint64_t word) { return (word >> 16) << 3; }
inline constexpr std::uint64_t limit_seq(std::uint64_t word) { return word & 0xffff; }
inline constexpr std::uint64_t make_limit_word(std::uint64_t limit, std::uint64_t seq) {
  return ((limit >> 3) << 16) | (seq & 0xffff);
}

inline constexpr std::size_t kControlBytes = (sizeof(RingControl) + kPage - 1) / kPage * kPage;

// ---- records ----------------------------------------------------------------------------
// The stamp is the commit word: [position/8 mod 2^36 | length/8 (25 bits) | state (3 bits)].
// A stamp "matches" position p when its position field equals p's; anything else at p is stale
// data from an earlier lap, or never written. State 0 never matches (fresh memory is zero).
enum class RecordState : std::uint64_t { claimed = 1, committed = 2, padding = 3, aborted = 4 };

inline constexpr std::uint64_t kStampPosBits = 36;
inline constexpr std::uint64_t kStampLenBits = 25;
inline constexpr std::uint64_t kStampPosMask = (1ull << kStampPosBits) - 1;
inline constexpr std::uint64_t kStampLenMask = (1ull << kStampLenBits) - 1;

inline constexpr std::uint64_t make_stamp(std::uint64_t pos, std::uint64_t len, RecordState s) {
  return (((pos >> 3) & kStampPosMask) << 28) | (((len >> 3) & kStampLenMask) << 3) |
         static_cast<std::uint64_t>(s);
}
inline constexpr bool stamp_matches(std::uint64_t stamp, std::uint64_t pos) {
  const std::uint64_t s = stamp & 7;
  return s >= 1 && s <= 4 && (stamp >> 28) == ((pos >> 3) & kStampPosMask);
}
inline constexpr RecordState stamp_state(std::uint64_t stamp) {
  return static_cast<RecordState>(stamp & 7);
}
inline constexpr std::uint64_t stamp_len(std::uint64_t stamp) {
  return ((stamp >> 3) & kStampLenMask) << 3;
}

inline constexpr std::uint8_t kFlagHasReplyTo = 1;
inline constexpr std::uint8_t kFlagHasOrigin = 2;  // an OriginBlock follows the header

// The part of the header a producer writes as plain data, in one copy. A reply_to, when the
// flag says there is one, follows the header (kReplyToBytes), so a small event with no
// reply_to costs a 32-byte header.
struct RecordMeta {
  std::int64_t ts_ns;
  std::uint8_t type_len;
  std::uint8_t flags;
  std::uint8_t agent_len;
  std::uint8_t to_len;
  std::uint32_t payload_len;
};

struct RecordHeader {
  std::atomic<std::uint64_t> stamp;
  std::atomic<std::uint64_t> owner;  // pack_owner() of the claimer, stored right after claim
  RecordMeta meta;
};
static_assert(sizeof(RecordHeader) == 32);
inline constexpr std::size_t kRecordHeaderBytes = sizeof(RecordHeader);
inline constexpr std::size_t kReplyToBytes = 8;  // after the header, when kFlagHasReplyTo

// Where an imported event was first published; its host names follow it, then the fields.
// Local events have none, so they cost exactly what they did before origins existed.
inline constexpr std::uint8_t kOriginHasReplyOrigin = 1;
struct OriginBlock {
  std::uint64_t id;
  std::uint64_t stream_ms;
  std::uint64_t stream_seq;
  std::uint64_t reply_id;
  std::uint8_t host_len;
  std::uint8_t reply_host_len;
  std::uint8_t origin_flags;
  std::uint8_t pad[5];
};
static_assert(sizeof(OriginBlock) == 40);
inline constexpr std::size_t kOriginBlockBytes = sizeof(OriginBlock);

inline constexpr std::uint64_t align8(std::uint64_t n) { return (n + 7) & ~std::uint64_t{7}; }

}  // namespace agentbus::shm
