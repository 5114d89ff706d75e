#include "coord/scratch_heap.hpp"

#include "shm/ring_copy.hpp"

#include <algorithm>

namespace agentbus::coord {
namespace {

// Orders the writes that follow (into a reused block, which a reader holding an old `current`
// may be copying) after the allocation that preceded them. TSan does not model fences; its
// builds copy with relaxed atomics, which it checks without one.
inline void release_fence() noexcept {
#if !defined(__SANITIZE_THREAD__)
  std::atomic_thread_fence(std::memory_order_release);
#endif
}

}  // namespace

bool ScratchHeap::copy_value(std::uint32_t index, const ScratchDescriptor& d, char* out) const {
  std::uint32_t b = d.first_block;
  std::uint64_t left = d.value_len;
  for (std::uint32_t n = 0; n < d.block_count; ++n) {
    if (b >= block_count) return false;
    const std::uint64_t w = words[b].load(std::memory_order_relaxed);
    if ((w >> 32) != index + 1ull) return false;
    const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(left, block_bytes));
    shm::copy_from_ring(out, block(b), chunk);
    out += chunk;
    left -= chunk;
    b = static_cast<std::uint32_t>(w);
  }
  return left == 0;
}

bool ScratchHeap::chain_of(std::uint32_t i, const ScratchDescriptor& d, std::vector<std::uint32_t>& out) const {
  out.clear();
  if (d.state != kEntryValue) return true;
  std::uint32_t b = d.first_block;
  for (std::uint32_t n = 0; n < d.block_count; ++n) {
    if (b >= block_count) return false;
    const std::uint64_t w = words[b].load(std::memory_order_relaxed);
    if ((w >> 32) != i + 1ull) return false;
    out.push_back(b);
    b = static_cast<std::uint32_t>(w);
  }
  std::sort(out.begin(), out.end());
  return std::adjacent_find(out.begin(), out.end()) == out.end();
}

void ScratchHeap::free_orphans(std::uint32_t i, const std::vector<std::uint32_t>& keep) const {
  const std::uint64_t tag = i + 1ull;
  for (std::uint32_t b = 0; b < block_count; ++b) {
    const std::uint64_t w = words[b].load(std::memory_order_relaxed);
    if ((w >> 32) == tag && !std::binary_search(keep.begin(), keep.end(), b))
      words[b].store(0, std::memory_order_release);
  }
}

std::uint32_t ScratchHeap::free_blocks() const {
  std::uint32_t n = 0;
  for (std::uint32_t b = 0; b < block_count; ++b) n += words[b].load(std::memory_order_relaxed) == 0;
  return n;
}

std::vector<std::uint32_t> ScratchHeap::allocate(std::uint32_t index, std::uint32_t n,
                                                 const std::function<void()>& sweep) const {
  std::vector<std::uint32_t> got;
  if (n == 0) return got;
  got.reserve(n);
  const std::uint64_t tag = (index + 1ull) << 32 | kNoBlock;
  for (int pass = 0; pass < 2 && got.size() < n; ++pass) {
    if (pass == 1) sweep();
    const std::uint32_t start = alloc_hint->load(std::memory_order_relaxed) % block_count;
    std::uint32_t b = start;
    for (std::uint32_t k = 0; k < block_count && got.size() < n; ++k) {
      std::uint64_t w = words[b].load(std::memory_order_relaxed);
      if (w == 0 && words[b].compare_exchange_strong(w, tag, std::memory_order_acq_rel)) got.push_back(b);
      b = b + 1 == block_count ? 0 : b + 1;
    }
    alloc_hint->store(b, std::memory_order_relaxed);
  }
  if (got.size() < n) {
    for (std::uint32_t blk : got) words[blk].store(0, std::memory_order_release);
    return {};
  }
  for (std::uint32_t k = 0; k + 1 < n; ++k)
    words[got[k]].store((index + 1ull) << 32 | got[k + 1], std::memory_order_relaxed);
  release_fence();
  return got;
}

}  // namespace agentbus::coord
