// Room::recent(n): the newest n events, found from the ring's sparse back-link
// (RingControl::recent_index) instead of a walk from the oldest record, so its cost follows n
// and the index block size, not the ring size. The walk between two record boundaries is the
// one a full scan does; an index entry only says where a walk may start.
#include "bus/room_impl.hpp"
#include "shm/ring_copy.hpp"

#include <agentbus/error.hpp>

#include <chrono>
#include <deque>
#include <thread>
#include <utility>

namespace agentbus {
namespace {

using Found = std::deque<std::pair<std::uint64_t, std::uint64_t>>;  // (position, length)

// Waits, at most the stall timeout, for a claim at `pos` to be stamped by its producer.
bool await_stamp(const shm::Ring& ring, std::uint64_t pos) {
  const auto deadline = std::chrono::steady_clock::now() + ring.timeouts().stall;
  while (std::chrono::steady_clock::now() < deadline) {
    const shm::PeekResult p = ring.peek(pos);
    if (p.kind != shm::Peek::pending || p.len > 0) return true;
    std::this_thread::yield();
  }
  return false;
}

enum class Walk { done, lapped, inconsistent };

// Walks record boundaries from `pos` (a record start) to `stop` (a record start, or the tail),
// appending the committed records to `out`.
Walk walk(shm::Ring& ring, std::uint64_t pos, std::uint64_t stop, Found& out, std::uint64_t& unreadable) {
  while (pos < stop) {
    shm::PeekResult p;
    try {
      p = ring.peek(pos);
    } catch (const Error& e) {
      if (e.code() != Errc::corrupt) throw;
      ++unreadable;  // an impossible stamp: step to the next plausible record
      pos = ring.next_intact(pos, stop);
      continue;
    }
    if (p.kind == shm::Peek::lapped) return Walk::lapped;
    if (p.kind == shm::Peek::pending && p.len > 0) {
      // Claimed, not committed: not an event yet, so a snapshot steps over it. If its
      // claimer is dead, pad it now (the liveness check is exact; should it misjudge a
      // claimer that has not yet stored its owner, that claimer's commit CAS fails and it
      // publishes again).
      if (!ring.repair(pos)) pos += p.len;
      continue;
    }
    if (p.kind == shm::Peek::pending) {
      // Claimed and never stamped: a producer about to stamp, one that died first, or a
      // stamp overwritten by a foreign write. A snapshot does not wait for it for long.
      if (await_stamp(ring, pos)) continue;
      ++unreadable;
      pos = ring.next_intact(pos, stop);
      continue;
    }
    if (p.kind != shm::Peek::committed && p.kind != shm::Peek::padding) break;
    if (p.kind == shm::Peek::committed) out.emplace_back(pos, p.len);
    pos += p.len;
  }
  // A walk between two boundaries lands on the second one; anything else means the start was
  // not a boundary after all (a foreign write on the index) or the ring moved under us.
  return pos == stop ? Walk::done : Walk::inconsistent;
}

// The last `n` committed records below `tail`: walk back one index block at a time from the
// newest boundary until n are found or the oldest record is reached. Each stretch is walked
// once, from its block's entry to where the previous walk started.
Walk find_recent(shm::Ring& ring, std::size_t n, Found& found, std::uint64_t& unreadable, bool use_index) {
  const std::uint64_t tail = ring.tail();
  const std::uint64_t oldest = ring.oldest();
  if (tail <= oldest) return Walk::done;
  if (!use_index) {
    Found all;
    // The full scan ends where the records end (an unreadable stretch may stop it short).
    if (walk(ring, oldest, tail, all, unreadable) == Walk::lapped) return Walk::lapped;
    while (all.size() > n) all.pop_front();
    found = std::move(all);
    return Walk::done;
  }
  const std::uint64_t block = ring.index_block();
  std::uint64_t stop = tail;
  std::uint64_t boundary = (tail - 1) & ~(block - 1);
  while (found.size() < n) {
    std::uint64_t start = oldest;
    if (boundary > oldest) {
      const auto hint = ring.index_hint(boundary, oldest);
      if (!hint || *hint >= stop) {  // no usable entry here: try the block before
        boundary -= block;
        continue;
      }
      start = *hint;
    }
    Found stretch;
    const Walk w = walk(ring, start, stop, stretch, unreadable);
    if (w != Walk::done) return w;
    found.insert(found.begin(), stretch.begin(), stretch.end());
    if (start <= oldest) break;
    stop = start;
    boundary = (start - 1) & ~(block - 1);
  }
  while (found.size() > n) found.pop_front();
  return Walk::done;
}

}  // namespace

std::vector<Event> Room::recent(std::size_t n) { return recent_events(n).events; }

RecentEvents Room::recent_events(std::size_t n) {
  shm::Ring& ring = impl_->ring;
  if (n == 0) return {};
  bool use_index = true;
  for (int attempt = 0; attempt < 16; ++attempt) {
    Found found;
    std::uint64_t unreadable = 0;
    const Walk w = find_recent(ring, n, found, unreadable, use_index);
    if (w == Walk::inconsistent) use_index = false;  // distrust the index, walk it all
    if (w != Walk::done) continue;
    // Copy first, decode after: a producer may be lapping these records while we read.
    std::vector<std::byte> copy;
    for (auto [at, len] : found) {
      const std::size_t offset = copy.size();
      copy.resize(offset + len);
      shm::copy_from_ring(copy.data() + offset, ring.at(at), len);
    }
    // Seqlock rule: the copies are good only if no producer has since lapped the oldest one.
    if (!found.empty() && ring.overwritten_since(found.front().first)) continue;
    RecentEvents out;
    out.unreadable = unreadable;
    out.events.reserve(found.size());
    std::size_t offset = 0;
    for (auto [at, len] : found) {
      EventView v;
      if (ring.decode(copy.data() + offset, len, at, v))
        out.events.push_back(v.to_owned());
      else
        ++out.unreadable;  // a committed stamp over an impossible header
      offset += len;
    }
    return out;
  }
  throw Error(Errc::timeout, "room '" + impl_->name + "' is written faster than recent() can copy it");
}

}  // namespace agentbus
