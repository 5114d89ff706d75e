// scratchpad.cpp — a room's key -> bytes store with TTL in shared memory. Guarantees are in
// include/agentbus/scratchpad.hpp, the layout in coord/scratchpad_layout.hpp.
//
// Protocol, in short (docs/coordination.md has the long form):
//  * Entry claim: whoever changes an entry (write, remove, bind a key, reclaim) first CASes
//    its `claim` 0 -> pack_owner(self). A claim whose owner is dead (pid + start time) is
//    taken over with a CAS from that exact value; the taker frees the dead writer's blocks.
//    Only the claim holder allocates blocks tagged with the entry, writes the spare
//    descriptor and flips `current`, so claim + tag make "who may free what" unambiguous.
//  * Publishing is a flip: the holder fills the spare descriptor (and, before that, the new
//    value's blocks), then stores `current` = (generation + 1, spare slot) with release. The
//    published descriptor is never written in place, so a dead writer always leaves a
//    complete descriptor behind, and the previous value stays readable while a new one is
//    being written.
//  * Readers take no claim (seqlock): load `current`, copy its descriptor and the value's
//    blocks, then re-load `current`; if it moved, something may have been overwritten, so
//    retry. Blocks of a published value are freed only after a flip, so an unchanged `current`
//    proves the copy is whole. The generation never wraps (63 bits).
//  * New keys: a key is bound to an entry only under its bucket's create claim, after a scan
//    has shown the key is bound nowhere, so a key never lives in two entries.
//  * Memory: a writer that finds no free block sweeps: it reclaims expired values (leaving an
//    `expired` tombstone that keeps the key) and takes over entries of dead writers.
#include <agentbus/scratchpad.hpp>

#include "bus/room_impl.hpp"
#include "coord/region.hpp"
#include "coord/scratch_heap.hpp"
#include "coord/scratchpad_layout.hpp"
#include "shm/clock.hpp"
#include "shm/hash.hpp"
#include "shm/fences.hpp"
#include "shm/failpoint.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"
#include "shm/slot_table.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <span>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace agentbus {

using coord::ScratchDescriptor;
using coord::ScratchEntry;
using coord::ScratchHeader;

namespace {

constexpr coord::RegionKind kRegion{"scratchpad", "#scratch", coord::kScratchMagic, coord::kScratchVersion,
                                    sizeof(ScratchHeader)};

using shm::monotonic_ns;
using shm::realtime_ns;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;


std::uint64_t key_hash(std::string_view key) {
  return shm::fnv1a(key) | 1;  // 0 means "no key" in ScratchEntry::key_hash
}

// Orders the writes that follow (into a spare descriptor or a reused block, which a reader
// holding an old `current` may be copying) after the claim or allocation that preceded them,
// so such a reader's re-check of `current` sees the change. TSan does not model fences; its
// builds copy with relaxed atomics, which it checks without one.
inline void release_fence() noexcept {
#if !defined(__SANITIZE_THREAD__)
  std::atomic_thread_fence(std::memory_order_release);
#endif
}

ScratchDescriptor load_desc(const ScratchDescriptor& src) {
  ScratchDescriptor d;
  shm::copy_from_ring(&d, reinterpret_cast<const std::byte*>(&src), sizeof d);
  return d;
}

std::uint64_t me() { return shm::pack_owner(shm::self_process()); }

std::string_view key_of(const ScratchDescriptor& d) {
  return {d.key, std::min<std::size_t>(d.key_len, coord::kScratchMaxKey)};
}

// Keys: 1..128 bytes of well-formed UTF-8 without C0 controls, DEL or C1 controls, so a key is
// safe to print and to pass on a command line.
void validate_key(std::string_view key) {
  if (key.empty()) throw Error(Errc::bad_name, "scratchpad key is empty");
  if (key.size() > coord::kScratchMaxKey)
    throw Error(Errc::bad_name, "scratchpad key is " + std::to_string(key.size()) +
                                    " bytes; keys are at most 128 bytes");
  const auto bad = [&](std::size_t at, const char* what) {
    throw Error(Errc::bad_name, std::string("scratchpad key has ") + what + " at byte " +
                                    std::to_string(at) +
                                    "; keys are printable UTF-8 without control characters");
  };
  for (std::size_t i = 0; i < key.size();) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) bad(i, "a control character");
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07;
    else bad(i, "invalid UTF-8");
    if (i + len > key.size()) bad(i, "truncated UTF-8");
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(key[i + k]);
      if ((cc & 0xc0) != 0x80) bad(i, "invalid UTF-8");
      cp = (cp << 6) | (cc & 0x3f);
    }
    const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) bad(i, "invalid UTF-8");
    if (cp >= 0x80 && cp <= 0x9f) bad(i, "a control character");
    i += len;
  }
}

// Backs off while waiting for another process: spin briefly, then sleep a little longer each
// time, up to 1 ms.
void back_off(int round) {
  if (round < 16) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(std::min(1000, 20 * (round - 15))));
  }
}

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

}  // namespace

struct Scratchpad::Impl {
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

  [[noreturn]] void corrupt(const std::string& what) const {
    throw coord::corrupt_region(bus, name, kRegion.noun, what);
  }

  // A descriptor is checked wherever it came from: only checked fields are used.
  void check(const ScratchDescriptor& d, std::uint32_t index) const {
    const auto bad = [&](const char* what) { corrupt(std::string(what) + " in entry " + std::to_string(index)); };
    if (d.state > coord::kEntryExpired) bad("unknown state");
    if (d.state == coord::kEntryEmpty) return;
    if (d.key_len == 0 || d.key_len > coord::kScratchMaxKey) bad("key length out of range");
    if (d.state != coord::kEntryValue) return;
    if (d.value_len > max_value_bytes) bad("value length out of range");
    if (d.block_count != heap.blocks_for(d.value_len)) bad("block count does not match the length");
    if (d.block_count > 0 && d.first_block >= heap.block_count) bad("block index out of range");
  }

  // ---- reading ---------------------------------------------------------------------------

  // A consistent copy of entry `i`'s published descriptor and the `current` it belongs to.
  ScratchDescriptor snapshot(std::uint32_t i, std::uint64_t& cur, Clock::time_point deadline) const {
    ScratchEntry& e = entries[i];
    for (int round = 0;; ++round) {
      cur = e.current.load(std::memory_order_acquire);
      const ScratchDescriptor d = load_desc(e.desc[cur & 1]);
      if (shm::load_after_reads(e.current) == cur) {
        check(d, i);
        return d;
      }
      if (Clock::now() > deadline)
        throw Error(Errc::timeout, "entry " + std::to_string(i) + " of the scratchpad of room '" + name +
                                       "' changed on every read for " +
                                       std::to_string(busy_timeout.count()) + " ms");
      back_off(round);
    }
  }

  struct Found {
    std::int64_t index = -1;
    ScratchDescriptor desc{};
    std::uint64_t cur = 0;
  };

  // The entry bound to `key`, with the descriptor that showed it. Every entry is looked at
  // (a hash compare each), so removals leave no holes that could hide a key.
  Found find(std::string_view key, std::uint64_t hash, Clock::time_point deadline) const {
    Found f;
    for (std::uint32_t i = 0; i < key_capacity; ++i) {
      if (entries[i].key_hash.load(std::memory_order_acquire) != hash) continue;
      const ScratchDescriptor d = snapshot(i, f.cur, deadline);
      if (d.state != coord::kEntryEmpty && key_of(d) == key) {
        f.index = i;
        f.desc = d;
        return f;
      }
    }
    return f;
  }

  // ---- claims ------------------------------------------------------------------------------

  // The published descriptor of an entry whose claim we hold (nobody else can change it).
  ScratchDescriptor published(std::uint32_t i) const {
    const ScratchEntry& e = entries[i];
    const ScratchDescriptor d = load_desc(e.desc[e.current.load(std::memory_order_acquire) & 1]);
    check(d, i);
    return d;
  }

  void publish(std::uint32_t i, const ScratchDescriptor& d) const {
    ScratchEntry& e = entries[i];
    const std::uint64_t cur = e.current.load(std::memory_order_relaxed);  // only we change it
    const std::uint64_t spare = (cur & 1) ^ 1;
    shm::copy_to_ring(reinterpret_cast<std::byte*>(&e.desc[spare]), &d, sizeof d);
    e.current.store((((cur >> 1) + 1) << 1) | spare, std::memory_order_release);
  }

  // We now hold entry i's claim, taken from a dead writer: keep what it published, free the
  // rest of its blocks (a half-written value, or an old value it had not freed yet).
  void repair(std::uint32_t i) const {
    ScratchDescriptor d = published(i);
    std::vector<std::uint32_t> keep;
    if (!heap.chain_of(i, d, keep)) {
      // Cannot happen short of memory corruption (values are published whole); drop it.
      ScratchDescriptor empty{};
      publish(i, empty);
      keep.clear();
    }
    heap.free_orphans(i, keep);
    header->dead_writers_reclaimed.fetch_add(1, std::memory_order_relaxed);
  }

  // Takes entry i's claim if it is free or its holder is dead (then repairs it). No waiting;
  // an empty guard when someone alive holds it.
  ClaimGuard try_claim(std::uint32_t i) const {
    std::atomic<std::uint64_t>& claim = entries[i].claim;
    std::uint64_t c = claim.load(std::memory_order_acquire);
    if (c != 0 && shm::owner_alive(c)) return {};
    if (!claim.compare_exchange_strong(c, me(), std::memory_order_acq_rel)) return {};
    ClaimGuard guard(&claim);
    release_fence();
    if (c != 0) repair(i);
    return guard;
  }

  // Takes entry i's claim, waiting for a live holder until `deadline`.
  ClaimGuard claim_entry(std::uint32_t i, std::string_view key, Clock::time_point deadline) const {
    for (int round = 0;; ++round) {
      if (ClaimGuard guard = try_claim(i)) return guard;
      const std::uint64_t c = entries[i].claim.load(std::memory_order_relaxed);
      if (c != 0 && Clock::now() > deadline)
        throw Error(Errc::timeout, "key '" + std::string(key) + "' in room '" + name +
                                       "' is being written by pid " + std::to_string(c >> 32) +
                                       ", still busy after " + std::to_string(busy_timeout.count()) +
                                       " ms");
      back_off(round);
    }
  }

  ClaimGuard claim_create_bucket(std::uint64_t hash, std::string_view key, Clock::time_point deadline) const {
    std::atomic<std::uint64_t>& claim = header->create_claims[(hash >> 8) % coord::kScratchCreateClaims];
    for (int round = 0;; ++round) {
      std::uint64_t c = claim.load(std::memory_order_acquire);
      // A dead holder leaves nothing to repair: binding is a single flip of its entry.
      if ((c == 0 || !shm::owner_alive(c)) &&
          claim.compare_exchange_strong(c, me(), std::memory_order_acq_rel))
        return ClaimGuard(&claim);
      if (c != 0 && Clock::now() > deadline)
        throw Error(Errc::timeout, "cannot add key '" + std::string(key) + "' to room '" + name +
                                       "': pid " + std::to_string(c >> 32) + " has been adding a key for " +
                                       std::to_string(busy_timeout.count()) + " ms");
      back_off(round);
    }
  }

  // ---- writing -----------------------------------------------------------------------------

  // How reusable an entry is for a new key; -1: not at all (a live value).
  static int reuse_rank(const ScratchDescriptor& d, std::int64_t now) {
    switch (d.state) {
      case coord::kEntryEmpty: return 0;
      case coord::kEntryReserved: return 1;  // its creator is gone (we hold or saw no claim)
      case coord::kEntryExpired: return 2;
      default: return (d.expires_ns != 0 && now >= d.expires_ns) ? 3 : -1;
    }
  }

  // Binds `key` to a reusable entry and returns that entry's claim; nullopt if the key turned
  // out to exist already (then overwrite it).
  std::optional<std::pair<std::uint32_t, ClaimGuard>> bind_new(std::string_view key, std::uint64_t hash,
                                                              Clock::time_point deadline) const {
    ClaimGuard bucket = claim_create_bucket(hash, key, deadline);
    if (find(key, hash, deadline).index >= 0) return std::nullopt;
    std::int64_t now = monotonic_ns();
    std::vector<std::pair<int, std::uint32_t>> candidates;
    for (std::uint32_t i = 0; i < key_capacity; ++i) {
      const std::uint64_t c = entries[i].claim.load(std::memory_order_relaxed);
      if (c != 0 && shm::owner_alive(c)) continue;
      std::uint64_t cur = 0;
      const int rank = reuse_rank(snapshot(i, cur, deadline), now);
      if (rank >= 0) candidates.emplace_back(rank, i);
      if (rank == 0) break;  // nothing beats an empty entry
    }
    std::sort(candidates.begin(), candidates.end());
    for (const auto& [rank, i] : candidates) {
      ClaimGuard guard = try_claim(i);
      if (!guard) continue;
      const ScratchDescriptor old = published(i);
      if (reuse_rank(old, monotonic_ns()) < 0) continue;  // rewritten meanwhile
      // The hash first: a lookup must find the entry from the moment the binding is visible.
      entries[i].key_hash.store(hash, std::memory_order_release);
      ScratchDescriptor d{};
      d.state = coord::kEntryReserved;
      d.key_len = static_cast<std::uint32_t>(key.size());
      std::copy_n(key.data(), key.size(), d.key);
      d.first_block = coord::kNoBlock;
      d.written_ns = realtime_ns();
      publish(i, d);
      if (old.state == coord::kEntryValue) {
        header->expired_reclaimed.fetch_add(1, std::memory_order_relaxed);
        heap.free_orphans(i, {});
      }
      return std::make_pair(i, std::move(guard));
    }
    throw Error(Errc::no_space,
                "the scratchpad of room '" + name + "' has no room for key '" + std::string(key) + "': all " +
                    std::to_string(key_capacity) +
                    " keys hold live values or are being written; remove keys (`agentbus scratch rm KEY`), "
                    "write them with a TTL, or use another room");
  }

  // Reclaims expired values of other entries and takes over entries of dead writers; used
  // when the heap has no free block. Never waits: busy entries are skipped.
  void sweep(std::uint32_t own) const {
    const std::int64_t now = monotonic_ns();
    const Clock::time_point deadline = Clock::now() + busy_timeout;
    for (std::uint32_t i = 0; i < key_capacity; ++i) {
      if (i == own) continue;
      const std::uint64_t c = entries[i].claim.load(std::memory_order_relaxed);
      if (c == 0) {
        std::uint64_t cur = 0;
        if (reuse_rank(snapshot(i, cur, deadline), now) != 3) continue;
      }
      ClaimGuard guard = try_claim(i);
      if (!guard) continue;  // live holder, or someone else was quicker
      ScratchDescriptor d = published(i);
      if (reuse_rank(d, monotonic_ns()) != 3) continue;
      d.state = coord::kEntryExpired;  // keep the key, so reads still say "expired"
      d.value_len = 0;
      d.block_count = 0;
      d.first_block = coord::kNoBlock;
      publish(i, d);
      heap.free_orphans(i, {});
      header->expired_reclaimed.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // Takes n free blocks for entry `index` (whose claim we hold), sweeping when the heap is full.
  std::vector<std::uint32_t> allocate(std::uint32_t index, std::uint32_t n, std::string_view key,
                                      std::size_t value_bytes) const {
    std::vector<std::uint32_t> got = heap.allocate(index, n, [&] { sweep(index); });
    if (got.size() < n)
      throw Error(Errc::no_space,
                  "the scratchpad of room '" + name + "' has no memory for key '" + std::string(key) + "' (" +
                      std::to_string(value_bytes) + " bytes): " + std::to_string(heap.free_blocks()) + " of " +
                      std::to_string(heap.block_count) + " blocks of " + std::to_string(heap.block_bytes) +
                      " B are free and the rest hold live values; remove keys (`agentbus scratch rm KEY`) or "
                      "write them with a TTL");
    return got;
  }

  void write_value(std::uint32_t index, std::string_view key, std::string_view value,
                   milliseconds ttl) const {
    const std::uint32_t n = heap.blocks_for(value.size());
    std::vector<std::uint32_t> chain = allocate(index, n, key, value.size());
    for (std::uint32_t k = 0; k < n; ++k) {
      if (k == n / 2) shm::failpoint(shm::Failpoint::scratch_mid_write);
      const std::size_t at = std::size_t(k) * heap.block_bytes;
      shm::copy_to_ring(heap.block(chain[k]), value.data() + at,
                        std::min<std::size_t>(heap.block_bytes, value.size() - at));
    }
    if (n == 0) shm::failpoint(shm::Failpoint::scratch_mid_write);
    ScratchDescriptor d{};
    d.state = coord::kEntryValue;
    d.key_len = static_cast<std::uint32_t>(key.size());
    std::copy_n(key.data(), key.size(), d.key);
    d.value_len = value.size();
    d.first_block = n > 0 ? chain[0] : coord::kNoBlock;
    d.block_count = n;
    d.expires_ns = ttl.count() > 0 ? monotonic_ns() + std::chrono::nanoseconds(ttl).count() : 0;
    d.written_ns = realtime_ns();
    publish(index, d);
    std::sort(chain.begin(), chain.end());
    heap.free_orphans(index, chain);  // the value this one replaced
  }
};

Scratchpad::Scratchpad(const Room& room, const ScratchpadOptions& o) {
  if (o.key_capacity < 1 || o.key_capacity > coord::kScratchMaxKeyCapacity)
    throw Error(Errc::invalid_argument, "ScratchpadOptions::key_capacity must be 1..65536, got " +
                                            std::to_string(o.key_capacity));
  const std::uint64_t wanted_blocks = (o.heap_bytes + coord::kScratchBlockBytes - 1) / coord::kScratchBlockBytes;
  if (wanted_blocks < 1 || wanted_blocks > coord::kScratchMaxBlocks)
    throw Error(Errc::invalid_argument, "ScratchpadOptions::heap_bytes must be 4 KiB .. 4 TiB, got " +
                                            std::to_string(o.heap_bytes));
  if (o.max_value_bytes < 1 || o.max_value_bytes > wanted_blocks * coord::kScratchBlockBytes)
    throw Error(Errc::invalid_argument, "ScratchpadOptions::max_value_bytes must be 1 .. heap_bytes, got " +
                                            std::to_string(o.max_value_bytes));
  if (o.busy_timeout.count() < 0)
    throw Error(Errc::invalid_argument, "ScratchpadOptions::busy_timeout is negative");

  auto impl = std::make_shared<Impl>(room);
  Impl& s = *impl;
  s.name = room.name();
  shm::Segment& seg = *room.impl()->segment;
  s.bus = seg.bus();
  s.busy_timeout = o.busy_timeout;

  const coord::ScratchLayout want =
      coord::scratch_layout(o.key_capacity, coord::kScratchBlockBytes, wanted_blocks);
  const coord::Region region =
      coord::Region::open(seg, s.name, kRegion, want.total_bytes, o.create, [&](std::span<std::byte> r) {
        auto* h = reinterpret_cast<ScratchHeader*>(r.data());  // zero-filled, not yet visible
        h->header_bytes = sizeof(ScratchHeader);
        h->region_bytes = want.total_bytes;
        h->key_capacity = o.key_capacity;
        h->block_bytes = coord::kScratchBlockBytes;
        h->block_count = static_cast<std::uint32_t>(wanted_blocks);
        h->max_value_bytes = o.max_value_bytes;
        h->entries_offset = want.entries_offset;
        h->block_words_offset = want.block_words_offset;
        h->blocks_offset = want.blocks_offset;
      });

  // Trust nothing: every field must describe a layout that fits the region we were given.
  auto* h = region.header<ScratchHeader>();
  region.require(h->header_bytes == sizeof(ScratchHeader), "bad sizes");
  const std::uint32_t cap = h->key_capacity, bs = h->block_bytes, blocks = h->block_count;
  region.require(cap >= 1 && cap <= coord::kScratchMaxKeyCapacity, "key capacity out of range");
  region.require(bs >= 512 && bs <= (1u << 20) && (bs & (bs - 1)) == 0, "block size out of range");
  region.require(blocks >= 1 && blocks <= coord::kScratchMaxBlocks, "block count out of range");
  region.require(h->max_value_bytes >= 1 && h->max_value_bytes <= std::uint64_t(blocks) * bs,
                 "maximum value size out of range");
  const coord::ScratchLayout got = coord::scratch_layout(cap, bs, blocks);
  region.require(h->entries_offset == got.entries_offset && h->block_words_offset == got.block_words_offset &&
                     h->blocks_offset == got.blocks_offset && h->region_bytes == got.total_bytes &&
                     got.total_bytes <= region.size(),
                 "layout does not fit its region");

  s.header = h;
  s.entries = reinterpret_cast<ScratchEntry*>(region.bytes().data() + got.entries_offset);
  s.heap.words = reinterpret_cast<std::atomic<std::uint64_t>*>(region.bytes().data() + got.block_words_offset);
  s.heap.blocks = region.bytes().data() + got.blocks_offset;
  s.heap.alloc_hint = &h->alloc_hint;
  s.key_capacity = cap;
  s.heap.block_bytes = bs;
  s.heap.block_count = blocks;
  s.max_value_bytes = h->max_value_bytes;
  impl_ = std::move(impl);
}

void Scratchpad::write(std::string_view key, std::string_view value, milliseconds ttl) {
  const Impl& s = *impl_;
  validate_key(key);
  if (ttl.count() < 0) throw Error(Errc::invalid_argument, "scratchpad TTL is negative");
  if (value.size() > s.max_value_bytes)
    throw Error(Errc::too_large, "value for key '" + std::string(key) + "' is " + std::to_string(value.size()) +
                                     " bytes; the scratchpad of room '" + s.name + "' takes values of at most " +
                                     std::to_string(s.max_value_bytes) + " bytes");
  const std::uint64_t hash = key_hash(key);
  const Clock::time_point deadline = Clock::now() + s.busy_timeout;
  for (;;) {
    std::uint32_t index = 0;
    ClaimGuard guard;
    const Impl::Found f = s.find(key, hash, deadline);
    if (f.index >= 0) {
      index = static_cast<std::uint32_t>(f.index);
      guard = s.claim_entry(index, key, deadline);
      const ScratchDescriptor d = s.published(index);
      if (d.state == coord::kEntryEmpty || key_of(d) != key) continue;  // removed or rebound meanwhile
    } else {
      auto bound = s.bind_new(key, hash, deadline);
      if (!bound) continue;  // another writer added the key first: overwrite it
      index = bound->first;
      guard = std::move(bound->second);
    }
    s.write_value(index, key, value, ttl);
    return;
  }
}

ScratchValue Scratchpad::read(std::string_view key) const {
  const Impl& s = *impl_;
  validate_key(key);
  const std::uint64_t hash = key_hash(key);
  const Clock::time_point deadline = Clock::now() + s.busy_timeout;
  for (int round = 0;; ++round) {
    const Impl::Found f = s.find(key, hash, deadline);
    ScratchValue out;
    if (f.index < 0) return out;  // absent
    const ScratchDescriptor& d = f.desc;
    out.written_ts_ns = d.written_ns;
    if (d.state == coord::kEntryReserved) return out;  // bound, first value not written yet
    const std::int64_t now = monotonic_ns();
    const bool expired = d.state == coord::kEntryExpired || (d.expires_ns != 0 && now >= d.expires_ns);
    if (d.expires_ns != 0)
      out.ttl_left = std::chrono::duration_cast<milliseconds>(std::chrono::nanoseconds(d.expires_ns - now));
    if (expired) {
      out.status = ScratchStatus::expired;
      return out;
    }
    out.value.resize(d.value_len);
    const bool whole = s.heap.copy_value(static_cast<std::uint32_t>(f.index), d, out.value.data());
    if (shm::load_after_reads(s.entries[f.index].current) == f.cur) {
      if (!whole) s.corrupt("broken block chain in entry " + std::to_string(f.index));
      out.status = ScratchStatus::found;
      return out;
    }
    // Rewritten while we copied: the copy may mix two values. Look again.
    if (Clock::now() > deadline)
      throw Error(Errc::timeout, "key '" + std::string(key) + "' in room '" + s.name +
                                     "' was rewritten during every read for " +
                                     std::to_string(s.busy_timeout.count()) + " ms");
    if (round > 4) back_off(round);
  }
}

ScratchStatus Scratchpad::remove(std::string_view key) {
  const Impl& s = *impl_;
  validate_key(key);
  const std::uint64_t hash = key_hash(key);
  const Clock::time_point deadline = Clock::now() + s.busy_timeout;
  for (;;) {
    const Impl::Found f = s.find(key, hash, deadline);
    if (f.index < 0) return ScratchStatus::absent;
    const auto index = static_cast<std::uint32_t>(f.index);
    ClaimGuard guard = s.claim_entry(index, key, deadline);
    const ScratchDescriptor d = s.published(index);
    if (d.state == coord::kEntryEmpty || key_of(d) != key) continue;
    ScratchStatus status = ScratchStatus::absent;
    if (d.state == coord::kEntryExpired) status = ScratchStatus::expired;
    if (d.state == coord::kEntryValue)
      status = (d.expires_ns != 0 && monotonic_ns() >= d.expires_ns) ? ScratchStatus::expired
                                                                      : ScratchStatus::found;
    s.publish(index, ScratchDescriptor{});
    s.heap.free_orphans(index, {});
    return status;
  }
}

std::vector<ScratchKey> Scratchpad::keys() const {
  const Impl& s = *impl_;
  const Clock::time_point deadline = Clock::now() + s.busy_timeout;
  const std::int64_t now = monotonic_ns();
  std::vector<ScratchKey> out;
  for (std::uint32_t i = 0; i < s.key_capacity; ++i) {
    std::uint64_t cur = 0;
    const ScratchDescriptor d = s.snapshot(i, cur, deadline);
    if (d.state != coord::kEntryValue || (d.expires_ns != 0 && now >= d.expires_ns)) continue;
    ScratchKey k;
    k.key = std::string(key_of(d));
    k.bytes = static_cast<std::size_t>(d.value_len);
    if (d.expires_ns != 0)
      k.ttl_left = std::chrono::duration_cast<milliseconds>(std::chrono::nanoseconds(d.expires_ns - now));
    k.written_ts_ns = d.written_ns;
    out.push_back(std::move(k));
  }
  std::sort(out.begin(), out.end(), [](const ScratchKey& a, const ScratchKey& b) { return a.key < b.key; });
  return out;
}

std::vector<Counter> counter_list(const ScratchpadInfo& c) {
  return {{"keys_live", c.keys_live},
          {"heap_used", c.heap_used},
          {"heap_bytes", c.heap_bytes},
          {"dead_writers_reclaimed", c.dead_writers_reclaimed},
          {"expired_reclaimed", c.expired_reclaimed}};
}

ScratchpadInfo Scratchpad::info() const {
  const Impl& s = *impl_;
  const Clock::time_point deadline = Clock::now() + s.busy_timeout;
  const std::int64_t now = monotonic_ns();
  ScratchpadInfo info;
  info.key_capacity = s.key_capacity;
  for (std::uint32_t i = 0; i < s.key_capacity; ++i) {
    std::uint64_t cur = 0;
    const ScratchDescriptor d = s.snapshot(i, cur, deadline);
    if (d.state != coord::kEntryEmpty || s.entries[i].claim.load(std::memory_order_relaxed) != 0)
      ++info.entries_in_use;
    if (d.state == coord::kEntryValue && (d.expires_ns == 0 || now < d.expires_ns)) ++info.keys_live;
  }
  info.block_bytes = s.heap.block_bytes;
  info.heap_bytes = std::size_t(s.heap.block_count) * s.heap.block_bytes;
  info.heap_used = std::size_t(s.heap.block_count - s.heap.free_blocks()) * s.heap.block_bytes;
  info.max_value_bytes = static_cast<std::size_t>(s.max_value_bytes);
  info.dead_writers_reclaimed = s.header->dead_writers_reclaimed.load(std::memory_order_relaxed);
  info.expired_reclaimed = s.header->expired_reclaimed.load(std::memory_order_relaxed);
  return info;
}

const std::string& Scratchpad::room_name() const noexcept { return impl_->name; }

}  // namespace agentbus
