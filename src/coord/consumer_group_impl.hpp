// ConsumerGroup::Impl (internal): one member's handle on a group's region. Its work is split by
// concept, one file each:
//   group_members.cpp   the member table: joining, releasing, who is alive to finish a slot
//   group_dispatch.cpp  handing out new deliveries from the ring
//   group_pending.cpp   the pending list: the floor and its gate, settling, reclaiming
// The public calls and the opener are in consumer_group.cpp; the layout and the slot state
// machine are in coord/consumer_group_layout.hpp; rules: docs/coordination.md "Consumer groups".
#pragma once

#include <agentbus/consumer_group.hpp>

#include "coord/consumer_group_layout.hpp"
#include "coord/region.hpp"
#include "shm/layout.hpp"
#include "shm/ring.hpp"
#include "shm/segment.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agentbus {

struct ConsumerGroup::Impl {
  using Clock = std::chrono::steady_clock;
  static constexpr auto kSettleWait = std::chrono::milliseconds(1000);  // another process mid-write

  Room room;
  std::shared_ptr<shm::Segment> segment;
  shm::Ring* ring;
  coord::GroupHeader* h = nullptr;
  coord::Member* members = nullptr;
  coord::PendingSlot* slots = nullptr;
  std::uint32_t capacity = 0, max_members = 0;
  std::string group{}, member_name{}, gate_name{};  // gate_name: "group.<group>"
  std::uint32_t me = 0;
  std::uint64_t my_owner = 0, my_actor = 0;
  std::uint32_t my_incarnation = 0, my_owner_epoch = 0;  // mod 16, as in the tags
  bool left = false;
  bool all_types = false;
  std::vector<std::string> interests{};
  shm::ReaderSlot* gate = nullptr;
  Clock::time_point next_orphan_scan{};
  std::uint64_t stall_pos = ~0ull;
  Clock::time_point stall_since{};
  std::uint32_t polls = 0;
  std::chrono::nanoseconds yield_before_block{};

  coord::PendingSlot& slot(std::uint64_t k) const { return slots[k & (capacity - 1)]; }
  std::uint64_t free_tag(std::uint64_t k) const { return coord::make_tag(k, coord::PendingPhase::free, 0); }

  std::uint64_t my_tag(std::uint64_t k, coord::PendingPhase p) const {
    const bool transitional = p == coord::PendingPhase::dispatching || p == coord::PendingPhase::reclaiming;
    return coord::make_tag(k, p, me, transitional ? my_incarnation : my_owner_epoch);
  }

  [[noreturn]] void corrupt(const std::string& what) const {
    throw coord::corrupt_region(segment->bus(), room.name(), "consumer group '" + group + "'", what);
  }

  void require_member(const char* what) const {
    if (me == coord::kNoMember)
      throw Error(Errc::invalid_argument, std::string("an observer of group '") + group + "' cannot " + what +
                                              "; open it with a member name");
    if (left) throw Error(Errc::invalid_argument, "member '" + member_name + "' has left group '" + group + "'");
  }

  // ---- the member table (group_members.cpp) -------------------------------------------------

  std::string_view member_name_of(std::uint32_t m) const {
    if (m >= max_members) return {};
    const coord::Member& e = members[m];
    return {e.name, std::min<std::size_t>(e.name_len, coord::kGroupNameBytes)};
  }

  // A pending event of member m, delivered in owner epoch `epoch`, has nobody working on it:
  // m left, its owner died, or the name has been taken over by a new owner since.
  bool orphaned(std::uint32_t m, std::uint32_t epoch) const;

  // A slot member m put in a transitional phase in incarnation `epoch` will never be finished
  // by it: its actor is gone or dead, or the member has been reopened since. Our own member
  // holds nothing mid-way while we look (a handle is used by one thread), so ours is a
  // leftover of an earlier process.
  bool adoptable(std::uint32_t m, std::uint32_t epoch) const;

  // Takes the member named `name` for this process (the actor) and owner: an existing entry,
  // or a new one. Conflict when another live process has the handle, or another live owner
  // keeps the name.
  std::uint32_t join(std::string_view name);
  void release() noexcept;

  // ---- dispatch (group_dispatch.cpp) --------------------------------------------------------

  bool interested(std::string_view type) const {
    return all_types || std::find(interests.begin(), interests.end(), type) != interests.end();
  }

  // Where the search for delivery k's event starts: the end of delivery k-1. nullopt when
  // slot k-1 has moved on (the caller's view of the head is stale).
  std::optional<std::uint64_t> start_of(std::uint64_t k) const;

  // A committed record of exactly `len` bytes starts at `pos`: what a slot says is checked
  // against the ring before it is read.
  bool committed_at(std::uint64_t pos, std::uint64_t len) const;
  bool decode(std::uint64_t pos, std::uint64_t len, Event& out) const;

  enum class Step { delivered, filtered, nothing, full, lost };

  // Hands out the next new event (or adopts a delivery a dead member was handing out).
  Step dispatch(Delivery& out);

  // A transitional slot we hold becomes pending for us (delivered) or acked (filtered).
  Step finish_dispatch(std::uint64_t k, coord::PendingSlot& s, std::uint64_t pos, std::uint64_t len, Delivery& out);

  // The event delivery k will hand out: the first record at or after `start` that is not
  // padding. Step::nothing when it is not committed yet.
  Step locate(std::uint64_t start, std::uint64_t& pos, std::uint64_t& len);

  // A record that stays uncommitted past the ring's stall timeout is repaired.
  void note_stall(std::uint64_t pos);

  // ---- the pending list (group_pending.cpp) -------------------------------------------------

  // The floor and the head, read in that order so that floor <= head. At any instant
  // head - floor <= capacity, but the floor may move between the two loads, so only a gap
  // that persists across many reads means the words are not ours to trust.
  // Inline: dispatch and ack both call these on every event.
  std::pair<std::uint64_t, std::uint64_t> window() const {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const std::uint64_t floor = h->floor.load(std::memory_order_acquire);
      const std::uint64_t head = h->head.load(std::memory_order_acquire);
      if (floor <= head && head - floor <= capacity) [[likely]]
        return {floor, head};
    }
    window_corrupt();
  }
  [[noreturn]] void window_corrupt() const;

  bool gate_intact() const {
    return (gate->state.load(std::memory_order_acquire) & shm::kReaderKindMask) == shm::kReaderDurable &&
           std::string_view(gate->name, std::min<std::size_t>(gate->name_len, shm::kMaxReaderName)) == gate_name;
  }

  // Producers may overwrite everything before the floor's event: move the gate up to it.
  void raise_gate() const;

  // Retires acked deliveries at the floor, then raises the gate.
  void retire() const;

  // Moves slot k, holding event `id`, from pending or receipted to `target`.
  bool settle(std::uint64_t k, EventId id, std::uint64_t target, bool only_mine);

  // Scans the pending list for events to take over: those of dead or departed members, and
  // with `min_idle` those idle that long. Receipted ones are acked, poison ones dead-lettered.
  std::size_t reclaim(std::optional<std::chrono::milliseconds> min_idle, std::size_t count,
                      std::vector<Delivery>& out);

  // Slot s holds reclaiming(k, me): deliver it again, or dead-letter it past max_deliveries.
  bool redeliver(std::uint64_t k, coord::PendingSlot& s, Delivery& out);

  // agentroom's dead letter: ENGINE_RUNTIME_ERROR, then the ack. If the ring is full — gated
  // by this very event — the ack goes first and the notice is posted after it.
  void dead_letter(std::uint64_t k, coord::PendingSlot& s, const Event& e, std::uint32_t deliveries);

  // ENGINE_RUNTIME_ERROR about event e, from this member.
  bool publish_error(const Event& e, const std::string& payload);
};

}  // namespace agentbus
