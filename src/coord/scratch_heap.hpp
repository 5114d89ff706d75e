// The scratchpad's heap: fixed-size blocks, each with one word in shared memory,
//   0 = free, else (entry index + 1) << 32 | next block (kNoBlock ends a chain).
// A value is a chain of blocks tagged with the entry that owns it. Only the holder of an
// entry's claim tags, links or frees that entry's blocks, so "who may free what" needs no
// lock; a reader copies a chain without a claim and relies on the entry's `current` re-check.
// The layout is in coord/scratchpad_layout.hpp; the key table is in coord/scratch_keys.hpp.
#pragma once

#include "coord/scratchpad_layout.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace agentbus::coord {

struct ScratchHeap {
  // Views into the region, checked against it when the scratchpad was opened.
  std::atomic<std::uint64_t>* words = nullptr;
  std::byte* blocks = nullptr;
  std::atomic<std::uint32_t>* alloc_hint = nullptr;  // where block scans start
  std::uint32_t block_bytes = 0;
  std::uint32_t block_count = 0;

  [[nodiscard]] std::uint32_t blocks_for(std::uint64_t bytes) const {
    return static_cast<std::uint32_t>((bytes + block_bytes - 1) / block_bytes);
  }
  [[nodiscard]] std::byte* block(std::uint32_t b) const { return blocks + std::size_t(b) * block_bytes; }

  // Copies the value `d` of entry `index` into `out`. False when the chain does not hold
  // together (the blocks were freed and reused meanwhile; the caller's re-check decides).
  bool copy_value(std::uint32_t index, const ScratchDescriptor& d, char* out) const;

  // The blocks of entry i's value `d`, sorted; false if its chain is broken.
  bool chain_of(std::uint32_t i, const ScratchDescriptor& d, std::vector<std::uint32_t>& out) const;

  // Frees every block tagged with entry `i` except `keep` (sorted). Only the holder of i's
  // claim calls this, and only it tags blocks with i, so nothing here races with an owner.
  void free_orphans(std::uint32_t i, const std::vector<std::uint32_t>& keep) const;

  [[nodiscard]] std::uint32_t free_blocks() const;

  // Takes n free blocks for entry `index` (whose claim the caller holds), chained in order.
  // When the first scan finds too few, `sweep` runs (to free expired values) and a second scan
  // follows. Empty when even that is not enough (then nothing is taken).
  [[nodiscard]] std::vector<std::uint32_t> allocate(std::uint32_t index, std::uint32_t n,
                                                    const std::function<void()>& sweep) const;
};

}  // namespace agentbus::coord
