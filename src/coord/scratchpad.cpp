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
// Files: this one opens the region and implements the public calls; the key table (entries,
// claims, binding, sweeping) is coord/scratch_keys.{hpp,cpp}, the block heap coord/scratch_heap.
#include <agentbus/scratchpad.hpp>

#include "bus/room_access.hpp"
#include "coord/scratch_keys.hpp"
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

using namespace coord::scratch;
using coord::ScratchDescriptor;
using coord::ScratchEntry;
using coord::ScratchHeader;
using shm::monotonic_ns;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

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
  shm::Segment& seg = *RoomAccess::segment(room);
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
