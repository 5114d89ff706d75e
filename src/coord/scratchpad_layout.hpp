// The scratchpad's shared-memory layout (region "<room>#scratch"), described once; the
// protocol that uses it is in scratchpad.cpp and docs/coordination.md.
//
//   offset 0            ScratchHeader (one page): magic "AGSCRTC1", version, capacities,
//                       offsets, counters, alloc_hint, create_claims[64]
//   entries_offset      ScratchEntry[key_capacity], 384 B each:
//                         claim     0, or pack_owner() of the process changing this entry
//                         current   (generation << 1) | slot: the published descriptor
//                         key_hash  hash of the bound key (a lookup filter; 0: none yet)
//                         desc[2]   ScratchDescriptor: the published one and a spare
//   block_words_offset  u64[block_count]: 0 free, else (entry + 1) << 32 | next block
//   blocks_offset       block_count blocks of block_bytes: value bytes, a value's blocks
//                       chained through their words (kNoBlock ends the chain)
//
// Every structure is trivially copyable, zero-initialisable (a fresh region is all zero: every
// entry empty, every block free) and holds offsets and indices only, validated before use.
#pragma once

#include "shm/layout.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace agentbus::coord {

inline constexpr std::uint64_t kScratchMagic = 0x3143545243534741ull;  // "AGSCRTC1"
inline constexpr std::uint32_t kScratchVersion = 1;
inline constexpr std::uint32_t kScratchBlockBytes = 4096;
inline constexpr std::uint32_t kScratchMaxKeyCapacity = 65536;
inline constexpr std::uint32_t kScratchMaxBlocks = 1u << 30;
inline constexpr std::size_t kScratchMaxKey = 128;
inline constexpr std::size_t kScratchCreateClaims = 64;
inline constexpr std::uint32_t kNoBlock = 0xffffffffu;

enum ScratchState : std::uint32_t {
  kEntryEmpty = 0,     // no key
  kEntryReserved = 1,  // key bound, its first value not written yet (reads: absent)
  kEntryValue = 2,     // key with a value (expired once expires_ns has passed)
  kEntryExpired = 3,   // key whose expired value's blocks were reclaimed (reads: expired)
};

struct ScratchDescriptor {
  std::uint32_t state;        // ScratchState
  std::uint32_t key_len;      // 1..kScratchMaxKey unless empty
  std::uint64_t value_len;
  std::uint32_t first_block;  // kNoBlock when the value has no blocks
  std::uint32_t block_count;  // = ceil(value_len / block_bytes)
  std::int64_t expires_ns;    // CLOCK_MONOTONIC; 0: never
  std::int64_t written_ns;    // CLOCK_REALTIME, for display
  char key[kScratchMaxKey];
};
static_assert(sizeof(ScratchDescriptor) == 168);

struct alignas(shm::kCacheLine) ScratchEntry {
  std::atomic<std::uint64_t> claim;
  std::atomic<std::uint64_t> current;
  std::atomic<std::uint64_t> key_hash;
  ScratchDescriptor desc[2];
};
static_assert(sizeof(ScratchEntry) == 384);

struct ScratchHeader {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t header_bytes;      // sizeof(ScratchHeader)
  std::uint64_t region_bytes;      // bytes the layout uses, at most the region's size
  std::uint32_t key_capacity;
  std::uint32_t block_bytes;
  std::uint32_t block_count;
  std::uint32_t reserved;
  std::uint64_t max_value_bytes;
  std::uint64_t entries_offset;
  std::uint64_t block_words_offset;
  std::uint64_t blocks_offset;
  alignas(shm::kCacheLine) std::atomic<std::uint32_t> alloc_hint;  // where block scans start
  std::atomic<std::uint64_t> dead_writers_reclaimed;
  std::atomic<std::uint64_t> expired_reclaimed;
  // Binding a new key takes the claim of its hash bucket, so two writers of one new key
  // cannot bind it to two entries. 0 or pack_owner() of the holder.
  alignas(shm::kCacheLine) std::atomic<std::uint64_t> create_claims[kScratchCreateClaims];
};
static_assert(sizeof(ScratchHeader) <= shm::kPage);

struct ScratchLayout {
  std::uint64_t entries_offset;
  std::uint64_t block_words_offset;
  std::uint64_t blocks_offset;
  std::uint64_t total_bytes;
};

inline constexpr std::uint64_t page_round(std::uint64_t n) {
  return (n + shm::kPage - 1) / shm::kPage * shm::kPage;
}

// Callers bound the arguments (capacity <= 65536, blocks <= 2^30, block_bytes <= 1 MiB), so
// nothing here overflows.
inline constexpr ScratchLayout scratch_layout(std::uint64_t key_capacity, std::uint64_t block_bytes,
                                              std::uint64_t block_count) {
  ScratchLayout l{};
  l.entries_offset = shm::kPage;
  l.block_words_offset = page_round(l.entries_offset + key_capacity * sizeof(ScratchEntry));
  l.blocks_offset = page_round(l.block_words_offset + block_count * sizeof(std::uint64_t));
  l.total_bytes = l.blocks_offset + block_count * block_bytes;
  return l;
}

}  // namespace agentbus::coord
