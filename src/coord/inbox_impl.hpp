// Inbox::Impl (internal): a handle on a room's inbox region. The recipient table and the
// message slots (reserving, filling, committing, scanning) are in inbox_messages.cpp; ask and
// reply, which wait on the room for an answer, in inbox_ask.cpp; the opener and the public
// calls in inbox.cpp. Layout and slot state machine: coord/inbox_layout.hpp.
#pragma once

#include <agentbus/inbox.hpp>

#include "coord/field_check.hpp"
#include "coord/inbox_layout.hpp"
#include "coord/region.hpp"
#include "shm/segment.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus {
namespace coord::inbox {

inline constexpr RegionKind kRegion{"inbox", "#inbox", kInboxMagic, kInboxVersion, sizeof(InboxHeader)};

// Errc::invalid_argument for an empty value unless allow_empty; Errc::too_large past `max`.

}  // namespace coord::inbox

struct Inbox::Impl {
  Room room;
  std::shared_ptr<shm::Segment> segment;
  coord::InboxHeader* header;
  coord::Recipient* recipients;
  std::byte* slots;
  std::uint64_t stride;
  std::uint32_t capacity, per_recipient, recipient_capacity, max_payload;

  coord::MessageSlot& slot(std::uint32_t i) const {
    return *reinterpret_cast<coord::MessageSlot*>(slots + std::uint64_t(i) * stride);
  }
  std::byte* payload_of(coord::MessageSlot& s) const {
    return reinterpret_cast<std::byte*>(&s) + sizeof(coord::MessageSlot);
  }
  [[noreturn]] void corrupt(const std::string& what) const {
    throw coord::corrupt_region(segment->bus(), room.name(), coord::inbox::kRegion.noun, what);
  }

  // ---- recipients --------------------------------------------------------------------------

  static std::string_view name_of(const coord::Recipient& r) {
    return {r.name, std::min<std::size_t>(r.name_len, sizeof r.name)};
  }

  // The recipient entry of `name`: its index, or -1 when absent and !create.
  std::int64_t lookup(std::string_view name, bool create) const;

  std::uint64_t cursor_of(std::uint32_t r) const { return recipients[r].cursor.load(std::memory_order_acquire); }

  // ---- message slots -----------------------------------------------------------------------

  // A ready slot whose message its recipient has acknowledged: free to reuse.
  bool acknowledged(coord::MessageSlot& m) const {
    const std::uint64_t rec = m.recipient.load(std::memory_order_acquire);
    const std::uint64_t seq = m.seq.load(std::memory_order_acquire);
    return rec >= 1 && rec <= recipient_capacity && seq != 0 && seq <= cursor_of(static_cast<std::uint32_t>(rec - 1));
  }

  // Frees a slot (bumping its generation) if it is still in state `s`.
  bool free_slot(coord::MessageSlot& m, std::uint64_t s) const {
    return m.state.compare_exchange_strong(s, coord::slot_state(coord::SlotPhase::free, coord::slot_gen(s) + 1, {}),
                                           std::memory_order_acq_rel);
  }

  // Reserves a slot for recipient `r`; throws no_space when none is free or r's inbox is full.
  std::uint32_t reserve(std::uint32_t r, std::string_view to) const;

  // The messages r's inbox holds, a reservation of ours included: concurrent senders each see
  // the others.
  std::uint32_t held_by(std::uint32_t r) const;

  void fill(std::uint32_t i, std::string_view from, std::string_view type, std::string_view payload,
            std::optional<EventId> reply_to) const;

  // Gives the message its seq and makes it readable.
  std::uint64_t commit(std::uint32_t i, std::uint32_t r, EventId id) const;

  std::uint64_t store_published(EventId id, std::string_view from, std::string_view to, std::string_view type,
                                std::string_view payload, std::optional<EventId> reply_to) const;

  // ---- reading -----------------------------------------------------------------------------

  struct Scan {
    std::map<std::uint64_t, InboxMessage> ready;
    std::set<std::uint64_t> pending;  // seqs a live sender is still storing
    std::uint64_t cursor = 0, next = 1;
  };

  // r's messages after its cursor; without `copy` only their seqs.
  Scan scan(std::uint32_t r, bool copy) const;

  // The readable prefix after the cursor: stops at a seq a live sender is still storing and
  // skips seqs whose sender died before committing.
  static std::vector<std::uint64_t> readable(const Scan& sc, std::size_t max);
};

}  // namespace agentbus
