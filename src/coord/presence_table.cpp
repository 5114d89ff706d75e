// presence_table.cpp — the presence table's entry protocol (guarantees in
// include/agentbus/presence.hpp; layout and state word in src/coord/presence_layout.hpp).
//
// Every write takes the state word by CAS (free/live/stale -> writing, shm::ClaimTable::claim),
// rewrites the fields, then publishes live with a new generation. A reader copies a live
// entry's fields and checks afterwards that the state word has not changed (a seqlock whose
// sequence is the state word), so it never takes anything and a dead writer cannot block it.
// A writer that died holding an entry is recognised by its pid and start time, and the next
// joiner takes the entry over.
//
// last_seen is the one field written without taking the entry (refresh() is a single store),
// so it lives outside the seqlock: a reader may see a slightly older or newer value; both are
// true statements about when the agent was seen.
//
// Files: this one holds the entry protocol (Presence::Impl, coord/presence_table.hpp);
// presence.cpp the names and the public calls.
#include "coord/presence_table.hpp"

#include "shm/fences.hpp"
#include "shm/ring_copy.hpp"
#include <agentbus/clock.hpp>
#include <agentbus/json_text.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>

namespace agentbus {

using namespace std::chrono_literals;
using coord::presence::Claims;
using coord::presence::Departure;
using coord::presence::Entry;
using coord::presence::kRegion;
using coord::presence::Slot;
using coord::presence::Snapshot;
using shm::ClaimPhase;
using shm::ClaimWord;
using std::int64_t;
using std::uint32_t;
using std::uint64_t;

namespace {

// Seqlock writer side: after taking an entry and before overwriting its fields, so that a
// reader that copied any new byte then sees the state word changed. ThreadSanitizer refuses
// atomic_thread_fence; there every field copy is atomic (ring_copy.hpp) and x86 keeps stores
// in order, so nothing is lost by dropping the formal fence.
inline void fence_before_overwrite() noexcept {
#if !defined(__SANITIZE_THREAD__)
  std::atomic_thread_fence(std::memory_order_release);
#endif
}

std::string copy_text(const char* field, std::size_t len) {
  std::string out(len, '\0');
  shm::copy_from_ring(out.data(), reinterpret_cast<const std::byte*>(field), len);
  return out;
}

void store_text(char* field, std::string_view text) {
  shm::copy_to_ring(reinterpret_cast<std::byte*>(field), text.data(), text.size());
}

}  // namespace

Departure coord::presence::departure(const Snapshot& s, int64_t now) {
  if (!shm::process_alive(s.session)) return Departure::session_ended;
  if (now - s.last_seen_ns > s.ttl_ns) return Departure::expired;
  return Departure::none;
}

Slot Presence::Impl::read(uint32_t i, Snapshot& out) const {
  Entry& e = entries[i];
  const auto deadline = std::chrono::steady_clock::now() + 2ms;
  for (int attempt = 0;; ++attempt) {
    const uint64_t s1 = e.state.load(std::memory_order_seq_cst);
    if (s1 == 0) return Slot::free;
    const ClaimPhase phase = ClaimWord::phase(s1);
    if (phase == ClaimPhase::ready) {
      const uint64_t lengths = e.lengths.load(std::memory_order_relaxed);
      // Trust no length: a torn or hostile value is clamped, and the check below discards it.
      const std::size_t hl = std::min<std::size_t>(lengths & 0xff, sizeof e.handle);
      const std::size_t rl = std::min<std::size_t>((lengths >> 8) & 0xff, sizeof e.role);
      const std::size_t wl = std::min<std::size_t>((lengths >> 16) & 0xffff, sizeof e.working_on);
      out.handle = copy_text(e.handle, hl);
      out.role = copy_text(e.role, rl);
      out.working_on = copy_text(e.working_on, wl);
      out.session.pid = static_cast<uint32_t>(e.session_pid.load(std::memory_order_relaxed));
      out.session.start_time = e.session_start.load(std::memory_order_relaxed);
      out.ttl_ns = e.ttl_ns.load(std::memory_order_relaxed);
      out.joined_ns = e.joined_ns.load(std::memory_order_relaxed);
      out.last_seen_ns = e.last_seen_ns.load(std::memory_order_relaxed);
      if (shm::load_after_reads(e.state) == s1) {
        out.state = s1;
        return Slot::live;
      }
    } else if (phase == ClaimPhase::writing) {
      if (Claims::abandoned(s1)) return Slot::stale_writer;
    } else {
      throw corrupt("entry " + std::to_string(i) + " has an unknown state");
    }
    if (std::chrono::steady_clock::now() > deadline) return Slot::busy;
    if (attempt > 16) std::this_thread::yield();
  }
}

Error Presence::Impl::corrupt(const std::string& what) const {
  return coord::corrupt_region(bus, room.name(), kRegion.noun, what);
}

std::optional<uint32_t> Presence::Impl::find(std::string_view qualified, Snapshot& snap) const {
  for (uint32_t i = 0; i < capacity; ++i)
    if (read(i, snap) == Slot::live && snap.handle == qualified) return i;
  return std::nullopt;
}

uint64_t Presence::Impl::fill(uint32_t i, const Fields& f) {
  Entry& e = entries[i];
  const uint64_t generation = (e.generation.load(std::memory_order_relaxed) + 1) & coord::presence::kGenerationMask;
  fence_before_overwrite();
  e.generation.store(generation, std::memory_order_relaxed);
  store_text(e.handle, f.handle);
  store_text(e.role, f.role);
  store_text(e.working_on, f.working_on);
  e.lengths.store(f.handle.size() | (f.role.size() << 8) | (f.working_on.size() << 16),
                  std::memory_order_relaxed);
  e.session_pid.store(f.session.pid, std::memory_order_relaxed);
  e.session_start.store(f.session.start_time, std::memory_order_relaxed);
  e.ttl_ns.store(f.ttl_ns, std::memory_order_relaxed);
  e.joined_ns.store(f.joined_ns, std::memory_order_relaxed);
  e.last_seen_ns.store(monotonic_ns(), std::memory_order_relaxed);
  const uint64_t live = ClaimWord::make(ClaimPhase::ready, generation);
  // seq_cst: pairs with the seq_cst loads of dedupe() in other joiners (store -> load).
  Claims::publish(e, live, std::memory_order_seq_cst);
  return live;
}

// Two joins of one handle from one session can race and create two entries. Each joiner
// looks for another live entry of its handle after publishing its own; with seq_cst on both
// sides at least one of the two sees the other, and the higher-numbered entry is dropped.
bool Presence::Impl::dedupe(uint32_t mine, uint64_t my_state, std::string_view qualified, shm::ProcessId session) {
  Snapshot snap;
  for (uint32_t j = 0; j < capacity; ++j) {
    if (j == mine || read(j, snap) != Slot::live) continue;
    if (snap.handle != qualified || snap.session != session) continue;
    if (j > mine) {
      uint64_t expected = snap.state;
      entries[j].state.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
    } else {
      uint64_t expected = my_state;
      entries[mine].state.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
      return false;
    }
  }
  return true;
}

void Presence::Impl::publish_joined(std::string_view qualified, const Fields& f) {
  const std::string payload = "{\"role\":" + util::json_string(f.role) + ",\"working_on\":" +
                              util::json_string(f.working_on) + ",\"pid\":" + std::to_string(f.session.pid) +
                              ",\"ttl_ms\":" + std::to_string(f.ttl_ns / 1'000'000) + "}";
  // Presence is the state; the event only announces it. A room gated full by a slow durable
  // reader (bus_full) must not undo or fail the join, so the status is not checked.
  (void)room.publish("AGENT_JOINED", qualified, payload);
}

void Presence::Impl::publish_left(std::string_view qualified, std::string_view reason) {
  (void)room.publish("AGENT_LEFT", qualified, "{\"reason\":\"" + std::string(reason) + "\"}");
}

bool Presence::Impl::take(uint32_t i, std::optional<std::pair<std::string, Departure>>& left) {
  Entry& e = entries[i];
  Snapshot snap;
  const Slot slot = read(i, snap);
  if (slot == Slot::busy) return false;
  if (slot == Slot::free) return Claims::claim(e, 0);
  if (slot == Slot::stale_writer) {
    const uint64_t expected = e.state.load(std::memory_order_acquire);
    if (!Claims::abandoned(expected) || !Claims::claim(e, expected)) return false;
    header->dead_writers_reclaimed.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  if (departure(snap, monotonic_ns()) == Departure::none) return false;
  if (!Claims::claim(e, snap.state, std::memory_order_seq_cst)) return false;
  // The agent may have refreshed between our copy and the CAS; refresh() stores last_seen
  // and then re-checks the state, so re-reading it now (seq_cst both sides) sees that store.
  snap.last_seen_ns = e.last_seen_ns.load(std::memory_order_seq_cst);
  const Departure why = departure(snap, monotonic_ns());
  if (why == Departure::none) {
    e.state.store(snap.state, std::memory_order_release);  // untouched: put it back as it was
    return false;
  }
  (why == Departure::expired ? header->expired_reclaimed : header->dead_sessions_reclaimed)
      .fetch_add(1, std::memory_order_relaxed);
  left.emplace(std::move(snap.handle), why);
  return true;
}

}  // namespace agentbus
