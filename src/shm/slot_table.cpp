#include "shm/slot_table.hpp"

#include "shm/destroy_hint.hpp"
#include "shm/hash.hpp"
#include "shm/process.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

namespace agentbus::shm {
namespace {

using Clock = std::chrono::steady_clock;

// Runs while we hold the slot in state "creating"; publishes it ready.
void fill_slot(RoomSlot& slot, std::string_view name, const std::function<void(RoomSlot&)>& initialise) {
  std::memcpy(slot.name, name.data(), name.size());
  slot.name_len = static_cast<std::uint32_t>(name.size());
  initialise(slot);
  slot.state.store(kRoomReady, std::memory_order_release);
}

}  // namespace

std::string_view slot_name(const RoomSlot& slot) noexcept {
  return {slot.name, std::min<std::size_t>(slot.name_len, kMaxSlotName)};
}

RoomSlot* find_or_create_slot(Segment& seg, std::string_view name, bool create,
                              const std::function<void(RoomSlot&)>& initialise) {
  if (name.size() > kMaxSlotName) throw Error(Errc::bad_name, "slot name too long: " + std::string(name));
  const std::uint32_t n = seg.header().max_rooms;
  RoomSlot* table = seg.room_table();
  const std::uint64_t me = kRoomCreating | self_process().pid;
  const std::uint64_t h = fnv1a(name);
  for (std::uint32_t i = 0; i < n; ++i) {
    RoomSlot& slot = table[(h + i) % n];
    const auto wait_deadline = Clock::now() + std::chrono::milliseconds(2000);
    for (;;) {
      std::uint64_t s = slot.state.load(std::memory_order_acquire);
      if (s == 0) {
        if (!create) return nullptr;
        if (!slot.state.compare_exchange_strong(s, me, std::memory_order_acq_rel)) continue;
        fill_slot(slot, name, initialise);
        return &slot;
      }
      if (s == kRoomReady) {
        if (slot_name(slot) == name) return &slot;
        break;  // another name: keep probing
      }
      // Anything but "creating by pid" here was written by no agentbus process: leave it alone
      // and keep probing, so the other rooms still work.
      if ((s & ~std::uint64_t{0xffffffffu}) != kRoomCreating) break;
      // Being created. Wait for its creator; take over if the creator died (only when creating:
      // a read never changes the segment).
      const auto creator = static_cast<std::uint32_t>(s & 0xffffffffu);
      if (process_alive({creator, 0}) && Clock::now() <= wait_deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        continue;
      }
      if (!create) break;
      if (process_alive({creator, 0}))
        throw Error(Errc::timeout, "a slot on bus '" + seg.bus() + "' is still being created by pid " +
                                       std::to_string(creator));
      if (!slot.state.compare_exchange_strong(s, me, std::memory_order_acq_rel)) continue;
      seg.header().stale_room_inits_recovered.fetch_add(1, std::memory_order_relaxed);
      // The dead creator may have been creating another name: the slot is ours to name now.
      fill_slot(slot, name, initialise);
      return &slot;
    }
  }
  if (!create) return nullptr;
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
