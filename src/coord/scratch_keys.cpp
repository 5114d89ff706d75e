#include "coord/scratch_keys.hpp"

#include "shm/clock.hpp"
#include "shm/fences.hpp"
#include "shm/failpoint.hpp"
#include "shm/hash.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <thread>

namespace agentbus {
namespace coord::scratch {

std::uint64_t key_hash(std::string_view key) {
  return shm::fnv1a(key) | 1;  // 0 means "no key" in ScratchEntry::key_hash
}

// Orders the writes that follow (into a spare descriptor or a reused block, which a reader
// holding an old `current` may be copying) after the claim or allocation that preceded them,
// so such a reader's re-check of `current` sees the change. TSan does not model fences; its
// builds copy with relaxed atomics, which it checks without one.
void release_fence() noexcept {
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

}  // namespace coord::scratch

using namespace coord::scratch;
using coord::ScratchDescriptor;
using coord::ScratchEntry;
using shm::monotonic_ns;
using shm::realtime_ns;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

void Scratchpad::Impl::corrupt(const std::string& what) const {
  throw coord::corrupt_region(bus, name, kRegion.noun, what);
}

void Scratchpad::Impl::check(const ScratchDescriptor& d, std::uint32_t index) const {
  const auto bad = [&](const char* what) { corrupt(std::string(what) + " in entry " + std::to_string(index)); };
  if (d.state > coord::kEntryExpired) bad("unknown state");
  if (d.state == coord::kEntryEmpty) return;
  if (d.key_len == 0 || d.key_len > coord::kScratchMaxKey) bad("key length out of range");
  if (d.state != coord::kEntryValue) return;
  if (d.value_len > max_value_bytes) bad("value length out of range");
  if (d.block_count != heap.blocks_for(d.value_len)) bad("block count does not match the length");
  if (d.block_count > 0 && d.first_block >= heap.block_count) bad("block index out of range");
}

ScratchDescriptor Scratchpad::Impl::snapshot(std::uint32_t i, std::uint64_t& cur, Clock::time_point deadline) const {
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

Scratchpad::Impl::Found Scratchpad::Impl::find(std::string_view key, std::uint64_t hash, Clock::time_point deadline) const {
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

ScratchDescriptor Scratchpad::Impl::published(std::uint32_t i) const {
  const ScratchEntry& e = entries[i];
  const ScratchDescriptor d = load_desc(e.desc[e.current.load(std::memory_order_acquire) & 1]);
  check(d, i);
  return d;
}

void Scratchpad::Impl::publish(std::uint32_t i, const ScratchDescriptor& d) const {
  ScratchEntry& e = entries[i];
  const std::uint64_t cur = e.current.load(std::memory_order_relaxed);  // only we change it
  const std::uint64_t spare = (cur & 1) ^ 1;
  shm::copy_to_ring(reinterpret_cast<std::byte*>(&e.desc[spare]), &d, sizeof d);
  e.current.store((((cur >> 1) + 1) << 1) | spare, std::memory_order_release);
}

void Scratchpad::Impl::repair(std::uint32_t i) const {
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

ClaimGuard Scratchpad::Impl::try_claim(std::uint32_t i) const {
  std::atomic<std::uint64_t>& claim = entries[i].claim;
  std::uint64_t c = claim.load(std::memory_order_acquire);
  if (c != 0 && shm::owner_alive(c)) return {};
  if (!claim.compare_exchange_strong(c, me(), std::memory_order_acq_rel)) return {};
  ClaimGuard guard(&claim);
  release_fence();
  if (c != 0) repair(i);
  return guard;
}

ClaimGuard Scratchpad::Impl::claim_entry(std::uint32_t i, std::string_view key, Clock::time_point deadline) const {
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

ClaimGuard Scratchpad::Impl::claim_create_bucket(std::uint64_t hash, std::string_view key, Clock::time_point deadline) const {
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

int Scratchpad::Impl::reuse_rank(const ScratchDescriptor& d, std::int64_t now) {
  switch (d.state) {
    case coord::kEntryEmpty: return 0;
    case coord::kEntryReserved: return 1;  // its creator is gone (we hold or saw no claim)
    case coord::kEntryExpired: return 2;
    default: return (d.expires_ns != 0 && now >= d.expires_ns) ? 3 : -1;
  }
}

std::optional<std::pair<std::uint32_t, ClaimGuard>> Scratchpad::Impl::bind_new(std::string_view key, std::uint64_t hash,
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

void Scratchpad::Impl::sweep(std::uint32_t own) const {
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

std::vector<std::uint32_t> Scratchpad::Impl::allocate(std::uint32_t index, std::uint32_t n, std::string_view key,
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

void Scratchpad::Impl::write_value(std::uint32_t index, std::string_view key, std::string_view value,
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

}  // namespace agentbus
