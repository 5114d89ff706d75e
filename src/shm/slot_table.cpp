#include "shm/slot_table.hpp"

#include "shm/claim_table.hpp"
#include "shm/destroy_hint.hpp"
#include "shm/hash.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

namespace agentbus::shm {

static_assert(kRoomReady == kClaimReady);

std::string_view slot_name(const RoomSlot& slot) noexcept {
  return {slot.name, std::min<std::size_t>(slot.name_len, kMaxSlotName)};
}

RoomSlot* find_or_create_slot(Segment& seg, std::string_view name, bool create,
                              const std::function<void(RoomSlot&)>& initialise) {
  if (name.size() > kMaxSlotName) throw Error(Errc::bad_name, "slot name too long: " + std::string(name));
  const std::uint32_t n = seg.header().max_rooms;
  // A creator waits 2 s for a live one; a foreign word, or a creator a read outwaits, is
  // probed past so the other rooms still work.
  ClaimTable<RoomSlot> table({seg.room_table(), n}, {.settle_wait = std::chrono::milliseconds(2000),
                                                     .probe_past_foreign = true,
                                                     .probe_past_stuck_reads = true});
  const ClaimLookup found = table.find_or_claim(
      fnv1a(name), create, [&](const RoomSlot& slot) { return slot_name(slot) == name; },
      [&](RoomSlot& slot) {
        std::memcpy(slot.name, name.data(), name.size());
        slot.name_len = static_cast<std::uint32_t>(name.size());
        failpoint(Failpoint::claim_mid_write);
        initialise(slot);
      });
  using Outcome = ClaimLookup::Outcome;
  switch (found.outcome) {
    case Outcome::found: return &seg.room_table()[found.index];
    case Outcome::created:
      if (found.took_over) seg.header().dead_writers_reclaimed.fetch_add(1, std::memory_order_relaxed);
      return &seg.room_table()[found.index];
    case Outcome::absent: return nullptr;
    case Outcome::stuck:
      throw Error(Errc::timeout, "a slot on bus '" + seg.bus() + "' is still being created by pid " +
                                     std::to_string(ClaimWord::pid(found.word)));
    case Outcome::full:
    case Outcome::foreign: break;
  }
  throw Error(Errc::no_space, "bus '" + seg.bus() + "' has no free slot (" + std::to_string(n) +
                                  " rooms and room regions); recreate it with a larger max_rooms");
}

std::span<std::byte> open_region(Segment& seg, std::string_view name, std::uint64_t bytes,
                                 bool create,
                                 const std::function<void(std::span<std::byte>)>& initialise) {
  RoomSlot* slot = find_or_create_slot(seg, name, create, [&](RoomSlot& s) {
    if (s.region_offset == 0 || s.region_bytes < bytes) {
      s.region_offset = seg.allocate(bytes);
      s.region_bytes = bytes;
    } else {
      seg.commit_region(s.region_offset, s.region_bytes);  // a dead creator's region
    }
    std::memset(seg.base() + s.region_offset, 0, bytes);
    s.ring_bytes = 0;
    s.max_record_bytes = 0;
    s.kind = static_cast<std::uint32_t>(SlotKind::region);
    initialise({seg.base() + s.region_offset, bytes});
  });
  if (slot == nullptr) return {};
  const std::uint64_t off = slot->region_offset;
  const bool sane = slot->kind == static_cast<std::uint32_t>(SlotKind::region) &&
                    off >= seg.header().heap_offset && off % kPage == 0 &&
                    slot->region_bytes > 0 && off <= seg.size() &&
                    seg.size() - off >= slot->region_bytes;
  if (!sane)
    throw Error(Errc::corrupt, "region '" + std::string(name) + "' of bus '" + seg.bus() +
                                   "' is corrupt; " + destroy_hint(seg.bus()));
  return {seg.base() + off, slot->region_bytes};
}

}  // namespace agentbus::shm
