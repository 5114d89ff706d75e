#include "bus/reader_slots.hpp"
#include "bus/room_impl.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"

#include <agentbus/counter.hpp>
#include <agentbus/error.hpp>

#include <chrono>
#include <deque>
#include <thread>

namespace agentbus {

Room::Room(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

const std::string& Room::name() const noexcept { return impl_->name; }

bool Room::bus_destroyed() const noexcept { return impl_->segment->unlinked(); }

PublishResult Room::publish(std::string_view type, std::string_view agent, std::string_view payload,
                            const PublishOptions& o) {
  return impl_->ring.publish({type, agent, o.to, o.reply_to, payload, o.origin, o.reply_to_origin});
}

std::vector<Event> Room::recent(std::size_t n) { return recent_events(n).events; }

namespace {

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

}  // namespace

RecentEvents Room::recent_events(std::size_t n) {
  shm::Ring& ring = impl_->ring;
  for (int attempt = 0; attempt < 16; ++attempt) {
    // Walk record boundaries from the oldest intact one; remember the last n committed.
    std::deque<std::pair<std::uint64_t, std::uint64_t>> found;  // (position, length)
    const std::uint64_t tail = ring.tail();
    std::uint64_t pos = ring.oldest();
    std::uint64_t unreadable = 0;
    bool lapped = false;
    while (pos < tail) {
      shm::PeekResult p;
      try {
        p = ring.peek(pos);
      } catch (const Error& e) {
        if (e.code() != Errc::corrupt) throw;
        ++unreadable;  // an impossible stamp: step to the next plausible record
        pos = ring.next_intact(pos, tail);
        continue;
      }
      if (p.kind == shm::Peek::lapped) { lapped = true; break; }
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
        pos = ring.next_intact(pos, tail);
        continue;
      }
      if (p.kind != shm::Peek::committed && p.kind != shm::Peek::padding) break;
      if (p.kind == shm::Peek::committed && n > 0) {
        found.emplace_back(pos, p.len);
        if (found.size() > n) found.pop_front();
      }
      pos += p.len;
    }
    if (lapped) continue;
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


bool Room::drop_reader(std::string_view durable_name) {
  shm::ReaderSlot* s = find_durable(impl_->ring, durable_name);
  if (s == nullptr) return false;
  const std::uint64_t owner = s->owner.load(std::memory_order_acquire);
  if (owner != 0 && owner != shm::pack_owner(shm::self_process()) && shm::owner_alive(owner))
    throw Error(Errc::invalid_argument, "durable reader '" + std::string(durable_name) +
                                            "' is attached by live pid " + std::to_string(owner >> 32) +
                                            "; stop that process first");
  release_reader(*s, false, 0);
  return true;
}

RoomInfo Room::info() const {
  const shm::Ring& ring = impl_->ring;
  const shm::RingControl& c = ring.control();
  RoomInfo info;
  info.name = impl_->name;
  info.ring_bytes = ring.capacity();
  info.max_record_bytes = ring.max_record();
  info.tail = ring.tail();
  info.oldest = ring.oldest();
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  info.counters = {get(c.counters.wrap_paddings), get(c.counters.dead_claims_padded),
                   get(c.counters.gaps_padded),   get(c.counters.aborted_claims),
                   get(c.counters.overruns),      get(c.counters.bus_full),
                   get(c.counters.dead_sessions_reclaimed), get(c.counters.wakeups)};
  for (const shm::ReaderSlot& s : c.readers) {
    const std::uint64_t kind = s.state.load(std::memory_order_acquire) & shm::kReaderKindMask;
    if (kind != shm::kReaderTailer && kind != shm::kReaderDurable) continue;
    ReaderInfo r;
    r.durable = kind == shm::kReaderDurable;
    r.name = r.durable ? std::string(s.name, std::min<std::size_t>(s.name_len, shm::kMaxReaderName))
                       : "tailer";
    const std::uint64_t owner = s.owner.load(std::memory_order_acquire);
    r.pid = static_cast<int>(owner >> 32);
    r.alive = owner != 0 && shm::owner_alive(owner);
    r.cursor = s.cursor.load(std::memory_order_acquire);
    r.lag_bytes = info.tail > r.cursor ? info.tail - r.cursor : 0;
    info.readers.push_back(std::move(r));
  }
  return info;
}

std::vector<Counter> counter_list(const RoomCounters& c) {
  return {{"wrap_paddings", c.wrap_paddings},   {"dead_claims_padded", c.dead_claims_padded},
          {"gaps_padded", c.gaps_padded},       {"aborted_claims", c.aborted_claims},
          {"overruns", c.overruns},             {"bus_full", c.bus_full},
          {"dead_sessions_reclaimed", c.dead_sessions_reclaimed}, {"wakeups", c.wakeups}};
}

}  // namespace agentbus
