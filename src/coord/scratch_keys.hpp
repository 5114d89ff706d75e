// The scratchpad's key table (internal): Scratchpad::Impl, the entries a key is bound to, and
// the claim that guards each. The protocol is at the top of scratchpad.cpp; the layout is in
// coord/scratchpad_layout.hpp; the values' blocks are in coord/scratch_heap.hpp.
#pragma once

#include <agentbus/scratchpad.hpp>

#include "coord/region.hpp"
#include "coord/scratch_heap.hpp"
#include "coord/scratchpad_layout.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agentbus {
namespace coord::scratch {

inline constexpr RegionKind kRegion{"scratchpad", "#scratch", kScratchMagic, kScratchVersion, sizeof(ScratchHeader)};

std::uint64_t key_hash(std::string_view key);
// Orders the writes that follow (into a spare descriptor or a reused block, which a reader
// holding an old `current` may be copying) after the claim or allocation that preceded them,
// so such a reader's re-check of `current` sees the change. TSan does not model fences; its
// builds copy with relaxed atomics, which it checks without one.
void release_fence() noexcept;
ScratchDescriptor load_desc(const ScratchDescriptor& src);
std::uint64_t me();
std::string_view key_of(const ScratchDescriptor& d);
// Keys: 1..128 bytes of well-formed UTF-8 without C0 controls, DEL or C1 controls, so a key is
// safe to print and to pass on a command line.
void validate_key(std::string_view key);
// Backs off while waiting for another process: spin briefly, then sleep a little longer each
// time, up to 1 ms.
void back_off(int round);

// Owns a claim word (an entry's, or a create bucket's) until destroyed.
class ClaimGuard {
 public:
  ClaimGuard() = default;
  explicit ClaimGuard(std::atomic<std::uint64_t>* word) : word_(word) {}
  ClaimGuard(ClaimGuard&& o) noexcept : word_(std::exchange(o.word_, nullptr)) {}
  ClaimGuard& operator=(ClaimGuard&& o) noexcept {
    if (this != &o) {
      release();
      word_ = std::exchange(o.word_, nullptr);
    }
    return *this;
  }
  ~ClaimGuard() { release(); }
  explicit operator bool() const noexcept { return word_ != nullptr; }
  void release() noexcept {
    if (word_ != nullptr) word_->store(0, std::memory_order_release);
    word_ = nullptr;
  }

 private:
  std::atomic<std::uint64_t>* word_ = nullptr;
};

}  // namespace coord::scratch

struct Scratchpad::Impl {
  using Clock = std::chrono::steady_clock;
  using milliseconds = std::chrono::milliseconds;
  using ClaimGuard = coord::scratch::ClaimGuard;
  using ScratchDescriptor = coord::ScratchDescriptor;
  using ScratchEntry = coord::ScratchEntry;
  using ScratchHeader = coord::ScratchHeader;

  Room room;  // keeps the segment mapped
  std::string name;
  std::string bus;
  ScratchHeader* header = nullptr;
  ScratchEntry* entries = nullptr;
  coord::ScratchHeap heap;
  // Validated copies of the header's capacities: process-local, so trusted.
  std::uint32_t key_capacity = 0;
  std::uint64_t max_value_bytes = 0;
  milliseconds busy_timeout{0};

  explicit Impl(Room r) : room(std::move(r)) {}

  [[noreturn]] void corrupt(const std::string& what) const;

  // A descriptor is checked wherever it came from: only checked fields are used.
  void check(const ScratchDescriptor& d, std::uint32_t index) const;

  // ---- reading ---------------------------------------------------------------------------

  // A consistent copy of entry `i`'s published descriptor and the `current` it belongs to.
  ScratchDescriptor snapshot(std::uint32_t i, std::uint64_t& cur, Clock::time_point deadline) const;

  struct Found {
    std::int64_t index = -1;
    ScratchDescriptor desc{};
    std::uint64_t cur = 0;
  };

  // The entry bound to `key`, with the descriptor that showed it. Every entry is looked at
  // (a hash compare each), so removals leave no holes that could hide a key.
  Found find(std::string_view key, std::uint64_t hash, Clock::time_point deadline) const;

  // ---- claims ------------------------------------------------------------------------------

  // The published descriptor of an entry whose claim we hold (nobody else can change it).
  ScratchDescriptor published(std::uint32_t i) const;

  void publish(std::uint32_t i, const ScratchDescriptor& d) const;

  // We now hold entry i's claim, taken from a dead writer: keep what it published, free the
  // rest of its blocks (a half-written value, or an old value it had not freed yet).
  void repair(std::uint32_t i) const;

  // Takes entry i's claim if it is free or its holder is dead (then repairs it). No waiting;
  // an empty guard when someone alive holds it.
  ClaimGuard try_claim(std::uint32_t i) const;

  // Takes entry i's claim, waiting for a live holder until `deadline`.
  ClaimGuard claim_entry(std::uint32_t i, std::string_view key, Clock::time_point deadline) const;

  ClaimGuard claim_create_bucket(std::uint64_t hash, std::string_view key, Clock::time_point deadline) const;

  // ---- writing -----------------------------------------------------------------------------

  // How reusable an entry is for a new key; -1: not at all (a live value).
  static int reuse_rank(const ScratchDescriptor& d, std::int64_t now);

  // Binds `key` to a reusable entry and returns that entry's claim; nullopt if the key turned
  // out to exist already (then overwrite it).
  std::optional<std::pair<std::uint32_t, ClaimGuard>> bind_new(std::string_view key, std::uint64_t hash,
                                                              Clock::time_point deadline) const;

  // Reclaims expired values of other entries and takes over entries of dead writers; used
  // when the heap has no free block. Never waits: busy entries are skipped.
  void sweep(std::uint32_t own) const;

  // Takes n free blocks for entry `index` (whose claim we hold), sweeping when the heap is full.
  std::vector<std::uint32_t> allocate(std::uint32_t index, std::uint32_t n, std::string_view key,
                                      std::size_t value_bytes) const;

  void write_value(std::uint32_t index, std::string_view key, std::string_view value,
                   milliseconds ttl) const;
};

}  // namespace agentbus
