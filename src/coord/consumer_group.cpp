// Consumer groups: Redis consumer-group semantics over a room. This file holds the opener and
// the public calls; the member table, dispatch and the pending list are in the files listed in
// src/coord/consumer_group_impl.hpp. Layout and slot state machine:
// src/coord/consumer_group_layout.hpp; rules: docs/coordination.md "Consumer groups".
#include <agentbus/consumer_group.hpp>

#include "bus/reader_slots.hpp"
#include "bus/room_access.hpp"
#include "coord/consumer_group_impl.hpp"
#include "coord/consumer_group_layout.hpp"
#include "coord/region.hpp"
#include "shm/layout.hpp"
#include "shm/failpoint.hpp"
#include "shm/fences.hpp"
#include "shm/process.hpp"
#include <agentbus/json_text.hpp>

#include <agentbus/error.hpp>

#include <algorithm>
#include <bit>
#include <thread>

namespace agentbus {

using coord::make_tag;
using coord::PendingPhase;
using coord::PendingSlot;
using coord::tag_epoch;
using coord::tag_is;
using coord::tag_member;
using coord::tag_phase;

namespace {

using Clock = ConsumerGroup::Impl::Clock;
// How often a reading member looks for pending events of dead or departed members: the
// "immediate" in immediate reclaim. Blocked readers wake this often to look.
constexpr auto kOrphanScanEvery = std::chrono::milliseconds(10);
constexpr auto kOrphanScanBlocked = std::chrono::milliseconds(50);
constexpr int kSpinsBeforeYield = 256;

using shm::align64;

void check_group_name(std::string_view what, std::string_view name) {
  if (name.empty() || name.size() > coord::kGroupNameBytes)
    throw Error(Errc::bad_name, "a " + std::string(what) + " must be 1 to 64 bytes");
  if (name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != std::string_view::npos)
    throw Error(Errc::bad_name, "the " + std::string(what) + " '" + std::string(name) + "' has a character outside [A-Za-z0-9._-]");
}

std::string join_interests(const std::vector<std::string>& interests) {
  if (interests.empty()) throw Error(Errc::invalid_argument, "a group needs at least one interest (\"*\" for all)");
  std::string joined;
  for (const std::string& t : interests) {
    if (t.empty() || t.size() > kMaxTypeBytes || t.find(',') != std::string::npos)
      throw Error(Errc::invalid_argument, "interest '" + t + "' is not an event type (1 to 64 bytes, no ',')");
    if (!joined.empty()) joined += ',';
    joined += t;
  }
  if (joined.size() > coord::kInterestBytes)
    throw Error(Errc::too_large, "interests take " + std::to_string(joined.size()) + " bytes; the limit is " +
                                     std::to_string(coord::kInterestBytes));
  return joined;
}

std::vector<std::string> split_interests(std::string_view joined) {
  std::vector<std::string> out;
  while (!joined.empty()) {
    const auto comma = joined.find(',');
    out.emplace_back(joined.substr(0, comma));
    joined = comma == std::string_view::npos ? std::string_view{} : joined.substr(comma + 1);
  }
  return out;
}

// ---- opening ------------------------------------------------------------------------------

void check_options(std::string_view group, std::string_view member, const GroupOptions& o) {
  check_group_name("group name", group);
  if (!member.empty()) check_group_name("member name", member);
  if (o.max_deliveries == 0 || o.max_deliveries > 1000)
    throw Error(Errc::invalid_argument, "max_deliveries must be from 1 to 1000");
  if (o.pending_capacity == 0 || o.pending_capacity > (1u << 20))
    throw Error(Errc::invalid_argument, "pending_capacity must be from 1 to 1048576");
  if (o.max_members == 0 || o.max_members > coord::kMaxGroupMembers)
    throw Error(Errc::invalid_argument, "max_members must be from 1 to 256");
}

// Where the parts of a group created with these options go (consumer_group_layout.hpp).
struct GroupLayout {
  std::uint32_t capacity;
  std::uint64_t members_off, slots_off, bytes;
};

GroupLayout layout_for(const GroupOptions& o) {
  GroupLayout l;
  l.capacity = std::max<std::uint32_t>(std::bit_ceil(o.pending_capacity), 16);
  l.members_off = align64(sizeof(coord::GroupHeader));
  l.slots_off = l.members_off + std::uint64_t(o.max_members) * sizeof(coord::Member);
  l.bytes = l.slots_off + std::uint64_t(l.capacity) * sizeof(PendingSlot);
  return l;
}

// The group's region, created (with its gate) when absent and o.create.
coord::Region open_region(ConsumerGroup::Impl& g, const GroupOptions& o, const std::string& interests,
                          const GroupLayout& layout) {
  const Room& room = g.room;
  const std::string region_suffix = "#group." + g.group;
  const std::string region = room.name() + region_suffix;
  const std::string& gate_name = g.gate_name;
  if (region.size() > shm::kMaxSlotName)
    throw Error(Errc::bad_name, "room name plus group name is too long: at most " +
                                    std::to_string(shm::kMaxSlotName - 7) + " bytes together");
  const auto initialise = [&](std::span<std::byte> mem) {
    auto* h = reinterpret_cast<coord::GroupHeader*>(mem.data());
    h->capacity = layout.capacity;
    h->max_members = o.max_members;
    h->max_deliveries = o.max_deliveries;
    h->total_bytes = layout.bytes;
    std::copy_n(interests.data(), interests.size(), h->interests);
    h->interests_len = static_cast<std::uint32_t>(interests.size());
    auto* slots = reinterpret_cast<PendingSlot*>(mem.data() + layout.slots_off);
    for (std::uint32_t i = 0; i < layout.capacity; ++i)
      slots[i].tag.store(make_tag(i, PendingPhase::free, 0), std::memory_order_relaxed);
    const shm::ReaderSlot* gate = find_durable(*g.ring, gate_name);
    h->start_pos = gate ? gate->cursor.load(std::memory_order_acquire) : g.ring->tail();
  };
  const std::string noun = "consumer group '" + g.group + "'";
  const coord::RegionKind kind{noun, region_suffix, coord::kGroupMagic, coord::kGroupVersion,
                               sizeof(coord::GroupHeader)};
  std::optional<coord::Region> r = coord::Region::find(*g.segment, room.name(), kind, layout.bytes, false, {});
  if (!r && o.create) {
    // The gate first — a durable reader nobody holds, whose cursor is the group's floor — so
    // that nothing the group will deliver can be overwritten before the group exists. It is
    // made outside the region's initialiser, which must not throw.
    if (!find_durable(*g.ring, gate_name)) {
      SubscribeOptions so;
      so.from = o.from;
      so.from_id = o.from_id;
      const AttachedReader a = attach_durable(*g.ring, gate_name, so);
      release_reader(*a.slot, true, a.cursor);
    }
    r = coord::Region::open(*g.segment, room.name(), kind, layout.bytes, true, initialise);
  }
  if (!r) throw Error(Errc::not_found, "room '" + room.name() + "' has no consumer group '" + g.group + "'");
  return std::move(*r);
}

// Points g at the region's parts, trusting only sizes that fit the region, and finds the gate.
void map_region(ConsumerGroup::Impl& g, const coord::Region& r, std::uint64_t members_off) {
  g.h = r.header<coord::GroupHeader>();
  g.capacity = g.h->capacity;
  g.max_members = g.h->max_members;
  const std::uint64_t have_slots = members_off + std::uint64_t(g.max_members) * sizeof(coord::Member);
  if (!std::has_single_bit(g.capacity) || g.capacity < 16 || g.max_members == 0 ||
      g.max_members > coord::kMaxGroupMembers || g.h->max_deliveries == 0 || g.h->interests_len == 0 ||
      g.h->interests_len > coord::kInterestBytes || g.h->total_bytes > r.size() ||
      have_slots + std::uint64_t(g.capacity) * sizeof(PendingSlot) > g.h->total_bytes)
    g.corrupt("impossible sizes in the header");
  g.members = reinterpret_cast<coord::Member*>(r.bytes().data() + members_off);
  g.slots = reinterpret_cast<PendingSlot*>(r.bytes().data() + have_slots);
  g.interests = split_interests({g.h->interests, g.h->interests_len});
  g.all_types = std::find(g.interests.begin(), g.interests.end(), "*") != g.interests.end();
  g.gate = find_durable(*g.ring, g.gate_name);
  if (!g.gate)
    throw Error(Errc::not_found, "consumer group '" + g.group + "' was retired: its gate (durable reader " +
                                     g.gate_name + ") was dropped; use another group name");
}

// The process whose death releases the member's pending events.
shm::ProcessId owner_process(const GroupOptions& o) {
  const shm::ProcessId owner =
      o.owner_pid > 0 ? shm::ProcessId{static_cast<std::uint32_t>(o.owner_pid),
                                       shm::process_start_time(static_cast<std::uint32_t>(o.owner_pid))}
                      : shm::self_process();
  if (o.owner_pid > 0 && owner.start_time == 0)
    throw Error(Errc::invalid_argument, "owner process " + std::to_string(o.owner_pid) + " does not exist");
  return owner;
}

}  // namespace

ConsumerGroup::ConsumerGroup(Room room, std::string_view group, std::string_view member, const GroupOptions& o) {
  check_options(group, member, o);
  const std::string interests = join_interests(o.interests);
  const GroupLayout layout = layout_for(o);

  auto impl = std::make_unique<Impl>(Impl{room, RoomAccess::segment(room), &RoomAccess::ring(room)});
  Impl& g = *impl;
  g.group = std::string(group);
  g.member_name = std::string(member);
  g.gate_name = "group." + g.group;
  g.yield_before_block = std::max<std::chrono::nanoseconds>(o.yield_before_block, std::chrono::nanoseconds::zero());
  const coord::Region r = open_region(g, o, interests, layout);
  map_region(g, r, layout.members_off);
  g.my_owner = shm::pack_owner(owner_process(o));
  g.my_actor = shm::pack_owner(shm::self_process());
  g.me = member.empty() ? static_cast<std::uint32_t>(coord::kNoMember) : g.join(member);
  impl_ = std::move(impl);
}

ConsumerGroup::ConsumerGroup(ConsumerGroup&&) noexcept = default;
ConsumerGroup& ConsumerGroup::operator=(ConsumerGroup&& other) noexcept {
  if (this != &other) {
    if (impl_) impl_->release();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
ConsumerGroup::~ConsumerGroup() {
  if (impl_) impl_->release();
}

const std::string& ConsumerGroup::member() const noexcept { return impl_->member_name; }

// ---- reading ------------------------------------------------------------------------------

std::optional<Delivery> ConsumerGroup::read(std::chrono::nanoseconds timeout) {
  Impl& g = *impl_;
  g.require_member("read");
  const auto deadline = Clock::now() + timeout;
  std::vector<Delivery> taken;
  Delivery out;
  Clock::time_point block_after{};
  for (int spins = 0;; ++spins) {
    if (Clock::now() >= g.next_orphan_scan) {
      g.next_orphan_scan = Clock::now() + kOrphanScanEvery;
      if (g.reclaim(std::nullopt, 1, taken) > 0) return std::move(taken.front());
    }
    const Impl::Step step = g.dispatch(out);
    if (step == Impl::Step::delivered) return out;
    if (timeout <= std::chrono::nanoseconds::zero() || Clock::now() >= deadline) return std::nullopt;
    if (step == Impl::Step::full || spins < kSpinsBeforeYield) {
      if (step == Impl::Step::full) std::this_thread::sleep_for(std::chrono::microseconds(200));
      else __builtin_ia32_pause();
      continue;
    }
    if (spins == kSpinsBeforeYield) block_after = Clock::now() + g.yield_before_block;
    if (Clock::now() < block_after) {
      std::this_thread::yield();
      continue;
    }
    // Sleep until a publish, bounded so that orphans and stalled claims are still looked at.
    const std::uint32_t seq = g.ring->publish_seq();
    struct Waiter {
      shm::Ring& ring;
      explicit Waiter(shm::Ring& r) : ring(r) { ring.add_waiter(); }
      ~Waiter() { ring.remove_waiter(); }
    } waiter(*g.ring);
    const Impl::Step again = g.dispatch(out);
    if (again == Impl::Step::delivered) return out;
    if (again == Impl::Step::nothing) {
      auto left = std::min<Clock::duration>(deadline - Clock::now(), kOrphanScanBlocked);
      if (g.stall_pos != ~0ull) left = std::min<Clock::duration>(left, g.ring->timeouts().stall);
      g.ring->wait_for_publish(seq, std::chrono::duration_cast<std::chrono::nanoseconds>(left));
      g.next_orphan_scan = Clock::now();
    }
  }
}

std::vector<Delivery> ConsumerGroup::autoclaim(std::chrono::milliseconds min_idle, std::size_t count) {
  impl_->require_member("autoclaim");
  std::vector<Delivery> out;
  impl_->reclaim(min_idle, count, out);
  return out;
}

// ---- acknowledging ------------------------------------------------------------------------

AckResult ConsumerGroup::ack(const Delivery& d) {
  Impl& g = *impl_;
  if (!g.settle(d.seq, d.event.id, make_tag(d.seq, PendingPhase::acked, 0), false)) return AckResult::not_pending;
  g.retire();
  return AckResult::acked;
}

AckResult ConsumerGroup::ack(EventId id) {
  Impl& g = *impl_;
  const auto [floor, head] = g.window();
  for (std::uint64_t k = floor; k < head; ++k) {
    if (g.slot(k).pos.load(std::memory_order_acquire) != id) continue;
    if (!g.settle(k, id, make_tag(k, PendingPhase::acked, 0), false)) continue;
    g.retire();
    return AckResult::acked;
  }
  return AckResult::not_pending;
}

void ConsumerGroup::record_receipt(EventId id) {
  Impl& g = *impl_;
  g.require_member("record a receipt");
  const auto [floor, head] = g.window();
  for (std::uint64_t k = floor; k < head; ++k)
    if (g.slot(k).pos.load(std::memory_order_acquire) == id &&
        g.settle(k, id, g.my_tag(k, PendingPhase::receipted), true))
      return;
  throw Error(Errc::conflict, "event " + std::to_string(id) + " is not pending for member '" + g.member_name +
                                  "' of group '" + g.group + "'");
}

void ConsumerGroup::record_receipt(const Delivery& d) {
  Impl& g = *impl_;
  g.require_member("record a receipt");
  if (!g.settle(d.seq, d.event.id, g.my_tag(d.seq, PendingPhase::receipted), true))
    throw Error(Errc::conflict, "event " + std::to_string(d.event.id) + " is no longer pending for member '" +
                                    g.member_name + "' of group '" + g.group + "'");
}

bool ConsumerGroup::process(std::chrono::nanoseconds timeout, const std::function<void(const Event&)>& work) {
  std::optional<Delivery> d = read(timeout);
  if (!d) return false;
  try {
    work(d->event);
  } catch (const std::exception& e) {
    impl_->publish_error(d->event, std::string("{\"error\":") + util::json_string(e.what()) + "}");
    ack(*d);
    return true;
  }
  shm::failpoint(shm::Failpoint::group_before_receipt);
  // Taken over meanwhile (idle past someone's autoclaim): its new holder settles it.
  if (!impl_->settle(d->seq, d->event.id, impl_->my_tag(d->seq, PendingPhase::receipted), true)) return true;
  shm::failpoint(shm::Failpoint::group_before_ack);
  ack(*d);
  return true;
}

void ConsumerGroup::leave() {
  Impl& g = *impl_;
  if (g.me == coord::kNoMember || g.left) return;
  g.left = true;
  std::uint64_t owner = g.my_owner;
  g.members[g.me].owner.compare_exchange_strong(owner, 0, std::memory_order_acq_rel);
}

// ---- looking ------------------------------------------------------------------------------

std::vector<PendingEntry> ConsumerGroup::pending(std::size_t n) const {
  const Impl& g = *impl_;
  std::vector<PendingEntry> out;
  const auto [floor, head] = g.window();
  for (std::uint64_t k = floor; k < head && out.size() < n; ++k) {
    PendingSlot& s = g.slot(k);
    const std::uint64_t t = s.tag.load(std::memory_order_acquire);
    const PendingPhase ph = tag_phase(t);
    if (!tag_is(t, k) || (ph != PendingPhase::pending && ph != PendingPhase::receipted && ph != PendingPhase::reclaiming))
      continue;
    PendingEntry e;
    e.seq = k;
    e.id = s.pos.load(std::memory_order_acquire);
    e.delivered_ns = s.delivered_ns.load(std::memory_order_acquire);
    e.deliveries = s.deliveries.load(std::memory_order_acquire);
    const std::uint64_t len = s.next.load(std::memory_order_acquire) - e.id;
    Event ev;
    const bool decoded = g.committed_at(e.id, len) && g.decode(e.id, len, ev);
    if (shm::load_after_reads(s.tag) != t) continue;  // moved on while we looked: the copy may be torn
    e.owner = std::string(g.member_name_of(tag_member(t)));
    e.owner_alive = ph == PendingPhase::reclaiming ? !g.adoptable(tag_member(t), tag_epoch(t))
                                                   : !g.orphaned(tag_member(t), tag_epoch(t));
    e.receipt = ph == PendingPhase::receipted;
    if (decoded) e.type = std::move(ev.type);
    out.push_back(std::move(e));
  }
  return out;
}

GroupInfo ConsumerGroup::info() const {
  const Impl& g = *impl_;
  GroupInfo info;
  info.name = g.group;
  info.interests = g.interests;
  info.max_deliveries = g.h->max_deliveries;
  info.pending_capacity = g.capacity;
  const std::uint64_t head = g.h->head.load(std::memory_order_acquire);
  info.dispatched = head;
  info.next_id = g.start_of(head).value_or(0);
  info.floor_id = g.gate->cursor.load(std::memory_order_acquire);
  const auto& c = g.h->counters;
  info.counters = {c.redelivered.load(), c.filtered.load(), c.dead_lettered.load(), c.receipts_honoured.load()};
  std::vector<std::uint64_t> per_member(g.max_members, 0);
  for (const PendingEntry& e : pending(g.capacity)) {
    ++info.pending;
    for (std::uint32_t m = 0; m < g.max_members; ++m)
      if (g.member_name_of(m) == e.owner) ++per_member[m];
  }
  for (std::uint32_t m = 0; m < g.max_members; ++m) {
    if (g.members[m].state.load(std::memory_order_acquire) != coord::kMemberReady) continue;
    const std::uint64_t owner = g.members[m].owner.load(std::memory_order_acquire);
    info.members.push_back({std::string(g.member_name_of(m)), static_cast<int>(owner >> 32),
                            owner != 0 && shm::owner_alive(owner), per_member[m]});
  }
  return info;
}

}  // namespace agentbus
