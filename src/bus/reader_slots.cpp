#include "bus/reader_slots.hpp"

#include "shm/claim_table.hpp"
#include "shm/process.hpp"

#include <agentbus/error.hpp>
#include <agentbus/names.hpp>

#include <cstring>
#include <thread>

namespace agentbus {
namespace {

using shm::ReaderSlot;
using Claims = shm::ClaimTable<ReaderSlot>;
static_assert(shm::kReaderClaiming == shm::ClaimWord::make(shm::ClaimPhase::writing, 0));

// The published word of a slot of `kind` held by this process.
std::uint64_t held_word(std::uint64_t kind) { return kind | shm::owner_bits::holder(shm::self_process()); }

std::string_view reader_name(const ReaderSlot& s) {
  return {s.name, std::min<std::size_t>(s.name_len, shm::kMaxReaderName)};
}

// True if the process that holds (or was setting up) this slot is gone.
bool holder_dead(const ReaderSlot& s, std::uint64_t state) {
  const std::uint64_t kind = state & shm::kReaderKindMask;
  if (kind == shm::kReaderClaiming) return Claims::abandoned(state);
  if (kind == shm::kReaderTailer) return !shm::owner_alive(s.owner.load(std::memory_order_acquire));
  return false;  // free slots are free; durable slots outlive their holder
}

// Takes a free slot, or one a dead tailer left behind, into state "claiming".
ReaderSlot& claim_slot(shm::Ring& ring) {
  auto& control = ring.control();
  for (int pass = 0; pass < 2; ++pass) {
    for (ReaderSlot& s : control.readers) {
      std::uint64_t state = s.state.load(std::memory_order_acquire);
      const bool take = state == shm::kReaderFree || (pass == 1 && holder_dead(s, state));
      if (!take || !Claims::claim(s, state)) continue;
      if (pass == 1) control.counters.dead_sessions_reclaimed.fetch_add(1, std::memory_order_relaxed);
      return s;
    }
  }
  throw Error(Errc::no_space, "room has " + std::to_string(shm::kMaxReaders) +
                                  " readers attached; close some, or drop unused durable readers "
                                  "(`agentbus info` lists them)");
}

}  // namespace

std::uint64_t resolve_start(shm::Ring& ring, const SubscribeOptions& o) {
  switch (o.from) {
    case StartFrom::latest: return ring.tail();
    case StartFrom::earliest: return ring.oldest();
    case StartFrom::id: break;
  }
  const std::uint64_t id = o.from_id, tail = ring.tail();
  if (id == tail) return id;
  if (id > tail)
    throw Error(Errc::invalid_argument, "event id " + std::to_string(id) +
                                            " is in the future (next id is " + std::to_string(tail) + ")");
  if (tail > id + ring.capacity()) return id;  // overwritten: the first read reports an overrun
  if (id % 8 == 0 && ring.is_event_start(id)) return id;
  throw Error(Errc::invalid_argument, "no event with id " + std::to_string(id) + " in this room");
}

AttachedReader attach_tailer(shm::Ring& ring, std::uint64_t start) {
  ReaderSlot& s = claim_slot(ring);
  s.owner.store(shm::pack_owner(shm::self_process()), std::memory_order_relaxed);
  s.name_len = 0;
  s.cursor.store(start, std::memory_order_relaxed);
  Claims::publish(s, held_word(shm::kReaderTailer));
  return {&s, start};
}

ReaderSlot* find_durable(shm::Ring& ring, std::string_view name) noexcept {
  for (ReaderSlot& s : ring.control().readers)
    if ((s.state.load(std::memory_order_acquire) & shm::kReaderKindMask) == shm::kReaderDurable &&
        reader_name(s) == name)
      return &s;
  return nullptr;
}

AttachedReader attach_durable(shm::Ring& ring, std::string_view name, const SubscribeOptions& o) {
  if (name.size() > shm::kMaxReaderName)
    throw Error(Errc::bad_name, "durable reader name is longer than 64 bytes");
  validate_bus_name(name);  // same grammar: no '/'
  const std::uint64_t me = shm::pack_owner(shm::self_process());
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (ReaderSlot* s = find_durable(ring, name)) {
      std::uint64_t owner = s->owner.load(std::memory_order_acquire);
      if (owner != 0 && shm::owner_alive(owner))
        throw Error(Errc::invalid_argument, "durable reader '" + std::string(name) +
                                                "' is in use by pid " + std::to_string(owner >> 32));
      if (!s->owner.compare_exchange_strong(owner, me, std::memory_order_acq_rel)) continue;
      return {s, s->cursor.load(std::memory_order_acquire)};
    }
    // Create it: publish the slot as durable, then make producers respect its cursor.
    ReaderSlot& s = claim_slot(ring);
    std::memcpy(s.name, name.data(), name.size());
    s.name_len = static_cast<std::uint32_t>(name.size());
    s.owner.store(me, std::memory_order_relaxed);
    std::uint64_t cursor = resolve_start(ring, o);
    s.cursor.store(cursor, std::memory_order_seq_cst);
    Claims::publish(s, held_word(shm::kReaderDurable), std::memory_order_seq_cst);
    const std::uint64_t protected_from = ring.register_gate();
    if (cursor < protected_from) {
      cursor = ring.oldest();  // producers may already have passed the requested start
      s.cursor.store(cursor, std::memory_order_seq_cst);
    }
    // Two processes creating the same name at once: the lower slot wins, the other backs off.
    for (ReaderSlot& other : ring.control().readers) {
      if (&other == &s) break;
      // A lower slot still being set up may be the same name: wait for it to settle.
      for (int spins = 0; spins < 10000; ++spins) {
        const std::uint64_t st = other.state.load(std::memory_order_acquire);
        if ((st & shm::kReaderKindMask) != shm::kReaderClaiming || holder_dead(other, st)) break;
        std::this_thread::yield();
      }
      if ((other.state.load(std::memory_order_acquire) & shm::kReaderKindMask) == shm::kReaderDurable &&
          reader_name(other) == name) {
        s.owner.store(0, std::memory_order_relaxed);
        s.state.store(shm::kReaderFree, std::memory_order_release);
        cursor = ~0ull;
        break;
      }
    }
    if (cursor != ~0ull) return {&s, cursor};
  }
  throw Error(Errc::timeout, "could not attach durable reader '" + std::string(name) + "'");
}

void release_reader(ReaderSlot& slot, bool durable, std::uint64_t cursor) noexcept {
  if (durable) {
    slot.cursor.store(cursor, std::memory_order_release);
    slot.owner.store(0, std::memory_order_release);
    return;
  }
  slot.owner.store(0, std::memory_order_relaxed);
  slot.state.store(shm::kReaderFree, std::memory_order_release);
}

}  // namespace agentbus
