// Consumer groups: Redis consumer-group semantics over a room. Layout and slot state machine:
// src/coord/consumer_group_layout.hpp; rules: docs/coordination.md "Consumer groups".
#include <agentbus/consumer_group.hpp>

#include "bus/reader_slots.hpp"
#include "bus/room_access.hpp"
#include "coord/consumer_group_layout.hpp"
#include "coord/region.hpp"
#include "shm/layout.hpp"
#include "shm/backoff.hpp"
#include "shm/clock.hpp"
#include "shm/failpoint.hpp"
#include "shm/fences.hpp"
#include "shm/hash.hpp"
#include "shm/process.hpp"
#include "shm/slot_table.hpp"
#include <agentbus/json_text.hpp>

#include <agentbus/error.hpp>
#include <agentbus/names.hpp>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <limits>
#include <thread>
#include <unistd.h>

namespace agentbus {

using coord::make_tag;
using coord::PendingPhase;
using coord::PendingSlot;
using coord::tag_epoch;
using coord::tag_is;
using coord::tag_member;
using coord::tag_phase;

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kSettleWait = std::chrono::milliseconds(1000);  // another process mid-write
// How often a reading member looks for pending events of dead or departed members: the
// "immediate" in immediate reclaim. Blocked readers wake this often to look.
constexpr auto kOrphanScanEvery = std::chrono::milliseconds(10);
constexpr auto kOrphanScanBlocked = std::chrono::milliseconds(50);
constexpr int kSpinsBeforeYield = 256;
constexpr auto kYieldBeforeBlock = std::chrono::microseconds(20);

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


void assign(Event& out, const EventView& v) {
  out.id = v.id;
  out.ts_ns = v.ts_ns;
  out.type.assign(v.type);
  out.agent.assign(v.agent);
  out.to.assign(v.to);
  out.reply_to = v.reply_to;
  out.payload.assign(v.payload);
}

}  // namespace

struct ConsumerGroup::Impl {
  Room room;
  std::shared_ptr<shm::Segment> segment;
  shm::Ring* ring;
  coord::GroupHeader* h = nullptr;
  coord::Member* members = nullptr;
  PendingSlot* slots = nullptr;
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

  PendingSlot& slot(std::uint64_t k) const { return slots[k & (capacity - 1)]; }
  std::uint64_t free_tag(std::uint64_t k) const { return make_tag(k, PendingPhase::free, 0); }

  [[noreturn]] void corrupt(const std::string& what) const {
    throw coord::corrupt_region(segment->bus(), room.name(), "consumer group '" + group + "'", what);
  }

  std::string_view member_name_of(std::uint32_t m) const {
    if (m >= max_members) return {};
    const coord::Member& e = members[m];
    return {e.name, std::min<std::size_t>(e.name_len, coord::kGroupNameBytes)};
  }

  // A pending event of member m, delivered in owner epoch `epoch`, has nobody working on it:
  // m left, its owner died, or the name has been taken over by a new owner since.
  bool orphaned(std::uint32_t m, std::uint32_t epoch) const {
    if (m >= max_members) return true;
    const coord::Member& e = members[m];
    const std::uint64_t owner = e.owner.load(std::memory_order_acquire);
    if (owner == 0 || (e.owner_epoch.load(std::memory_order_acquire) & 0xf) != epoch) return true;
    return owner != my_owner && !shm::owner_alive_cached(owner);
  }

  // A slot member m put in a transitional phase in incarnation `epoch` will never be finished
  // by it: its actor is gone or dead, or the member has been reopened since. Our own member
  // holds nothing mid-way while we look (a handle is used by one thread), so ours is a
  // leftover of an earlier process.
  bool adoptable(std::uint32_t m, std::uint32_t epoch) const {
    if (m == me || m >= max_members) return true;
    const coord::Member& e = members[m];
    if ((e.incarnation.load(std::memory_order_acquire) & 0xf) != epoch) return true;
    const std::uint64_t actor = e.actor.load(std::memory_order_acquire);
    return actor == 0 || !shm::owner_alive_cached(actor);
  }

  std::uint64_t my_tag(std::uint64_t k, PendingPhase p) const {
    const bool transitional = p == PendingPhase::dispatching || p == PendingPhase::reclaiming;
    return make_tag(k, p, me, transitional ? my_incarnation : my_owner_epoch);
  }

  // The floor and the head, read in that order so that floor <= head. At any instant
  // head - floor <= capacity, but the floor may move between the two loads, so only a gap
  // that persists across many reads means the words are not ours to trust.
  std::pair<std::uint64_t, std::uint64_t> window() const {
    std::uint64_t floor = 0, head = 0;
    for (int attempt = 0; attempt < 1000; ++attempt) {
      floor = h->floor.load(std::memory_order_acquire);
      head = h->head.load(std::memory_order_acquire);
      if (floor <= head && head - floor <= capacity) return {floor, head};
    }
    corrupt("floor " + std::to_string(floor) + " and head " + std::to_string(head) + " are too far apart");
  }

  bool interested(std::string_view type) const {
    return all_types || std::find(interests.begin(), interests.end(), type) != interests.end();
  }

  // Where the search for delivery k's event starts: the end of delivery k-1. nullopt when
  // slot k-1 has moved on (the caller's view of the head is stale).
  std::optional<std::uint64_t> start_of(std::uint64_t k) const {
    if (k == 0) return h->start_pos;
    PendingSlot& prev = slot(k - 1);
    const std::uint64_t t1 = prev.tag.load(std::memory_order_acquire);
    const std::uint64_t next = prev.next.load(std::memory_order_acquire);
    const std::uint64_t t2 = shm::load_after_reads(prev.tag);
    if (t1 != t2) return std::nullopt;
    const PendingPhase p = tag_phase(t1);
    const bool written = tag_is(t1, k - 1) && p != PendingPhase::free && p != PendingPhase::dispatching;
    if (!written && t1 != free_tag(k - 1 + capacity)) return std::nullopt;
    return next;
  }

  bool gate_intact() const {
    return (gate->state.load(std::memory_order_acquire) & shm::kReaderKindMask) == shm::kReaderDurable &&
           std::string_view(gate->name, std::min<std::size_t>(gate->name_len, shm::kMaxReaderName)) == gate_name;
  }

  // Producers may overwrite everything before the floor's event: move the gate up to it.
  void raise_gate() const {
    for (int attempt = 0; attempt < 4; ++attempt) {
      const std::uint64_t f = h->floor.load(std::memory_order_acquire);
      std::optional<std::uint64_t> pos;
      if (f < h->head.load(std::memory_order_acquire)) {
        PendingSlot& s = slot(f);
        const std::uint64_t t1 = s.tag.load(std::memory_order_acquire);
        const std::uint64_t p = s.pos.load(std::memory_order_acquire);
        const PendingPhase ph = tag_phase(t1);
        if (tag_is(t1, f) && ph != PendingPhase::free && ph != PendingPhase::dispatching &&
            shm::load_after_reads(s.tag) == t1)
          pos = p;
      }
      if (!pos) pos = start_of(f);
      if (!pos) continue;
      if (!gate_intact()) return;  // retired: the slot may be someone else's reader now
      std::uint64_t cur = gate->cursor.load(std::memory_order_acquire);
      while (cur < *pos && !gate->cursor.compare_exchange_weak(cur, *pos, std::memory_order_acq_rel)) {}
      return;
    }
  }

  // Retires acked deliveries at the floor, then raises the gate.
  void retire() const {
    bool moved = false;
    for (;;) {
      std::uint64_t f = h->floor.load(std::memory_order_acquire);
      if (f >= h->head.load(std::memory_order_acquire)) break;
      PendingSlot& s = slot(f);
      std::uint64_t t = s.tag.load(std::memory_order_acquire);
      if (t == make_tag(f, PendingPhase::acked, 0))
        s.tag.compare_exchange_strong(t, free_tag(f + capacity), std::memory_order_acq_rel);
      else if (t != free_tag(f + capacity))
        break;
      if (h->floor.compare_exchange_strong(f, f + 1, std::memory_order_acq_rel)) moved = true;
    }
    if (moved) raise_gate();
  }

  // A committed record of exactly `len` bytes starts at `pos`: what a slot says is checked
  // against the ring before it is read.
  bool committed_at(std::uint64_t pos, std::uint64_t len) const {
    const shm::PeekResult p = ring->peek(pos);
    return p.kind == shm::Peek::committed && p.len == len;
  }

  bool decode(std::uint64_t pos, std::uint64_t len, Event& out) const {
    EventView view;
    if (!ring->decode(ring->at(pos), len, pos, view)) return false;
    assign(out, view);
    return true;
  }

  // A transitional slot we hold becomes pending for us (delivered) or acked (filtered).
  enum class Step { delivered, filtered, nothing, full, lost };
  Step finish_dispatch(std::uint64_t k, PendingSlot& s, std::uint64_t pos, std::uint64_t len, Delivery& out) {
    shm::failpoint(shm::Failpoint::group_mid_dispatch);
    s.pos.store(pos, std::memory_order_relaxed);
    s.next.store(pos + len, std::memory_order_relaxed);
    s.delivered_ns.store(shm::realtime_ns(), std::memory_order_relaxed);
    s.deliveries.store(1, std::memory_order_relaxed);
    if (!decode(pos, len, out.event)) corrupt("event " + std::to_string(pos) + " does not decode");
    const bool wanted = interested(out.event.type);
    std::uint64_t held = my_tag(k, PendingPhase::dispatching);
    if (!s.tag.compare_exchange_strong(held, wanted ? my_tag(k, PendingPhase::pending) : make_tag(k, PendingPhase::acked, 0),
                                       std::memory_order_acq_rel))
      return Step::lost;  // taken for gone and adopted meanwhile: the adopter delivers it
    std::uint64_t expected = k;
    h->head.compare_exchange_strong(expected, k + 1, std::memory_order_acq_rel);
    if (!wanted) {
      h->counters.filtered.fetch_add(1, std::memory_order_relaxed);
      retire();
      return Step::filtered;
    }
    out.seq = k;
    out.deliveries = 1;
    return Step::delivered;
  }

  // The event delivery k will hand out: the first record at or after `start` that is not
  // padding. Step::nothing when it is not committed yet.
  Step locate(std::uint64_t start, std::uint64_t& pos, std::uint64_t& len) {
    pos = start;
    for (;;) {
      // The tail tells empty from lapped; reading it on every poll would take its cache line
      // from every producer, so a caught-up member looks only now and then.
      shm::PeekResult p = ring->peek(pos, false);
      if (p.kind == shm::Peek::unstamped && (++polls & 63) == 0) p = ring->peek(pos, true);
      switch (p.kind) {
        case shm::Peek::padding: pos += p.len; continue;
        case shm::Peek::committed: len = p.len; stall_pos = ~0ull; return Step::delivered;
        case shm::Peek::lapped:
          if (!find_durable(*ring, gate_name))
            throw Error(Errc::not_found, "consumer group '" + group + "' was retired: its gate (durable reader " +
                                             gate_name + ") was dropped");
          corrupt("event " + std::to_string(pos) + " was overwritten while the group still needed it");
        case shm::Peek::pending: note_stall(pos); return Step::nothing;
        default: return Step::nothing;
      }
    }
  }

  void note_stall(std::uint64_t pos) {
    const auto now = Clock::now();
    if (stall_pos != pos) {
      stall_pos = pos;
      stall_since = now;
    } else if (now - stall_since >= ring->timeouts().stall) {
      ring->repair(pos);  // pads it only if its claimer is confirmed dead
      stall_since = now;
    }
  }

  // Hands out the next new event (or adopts a delivery a dead member was handing out).
  Step dispatch(Delivery& out) {
    const auto deadline = Clock::now() + kSettleWait;
    for (shm::Backoff backoff;;) {
      const auto [f, k] = window();
      if (k - f >= capacity) {
        retire();
        if (h->floor.load(std::memory_order_acquire) == f && h->head.load(std::memory_order_acquire) == k)
          return Step::full;
        continue;
      }
      PendingSlot& s = slot(k);
      std::uint64_t t = s.tag.load(std::memory_order_acquire);
      if (t == free_tag(k)) {
        const std::optional<std::uint64_t> start = start_of(k);
        if (!start) continue;
        std::uint64_t pos = 0, len = 0;
        if (locate(*start, pos, len) != Step::delivered) return Step::nothing;
        if (!s.tag.compare_exchange_strong(t, my_tag(k, PendingPhase::dispatching), std::memory_order_acq_rel))
          continue;
        const Step step = finish_dispatch(k, s, pos, len, out);
        if (step == Step::filtered || step == Step::lost) continue;
        return step;
      }
      if (!tag_is(t, k)) {
        // We raced with the head (it moved on): look again. A slot that keeps an older
        // delivery while the head stays at k is impossible.
        if (h->head.load(std::memory_order_acquire) == k && Clock::now() > deadline)
          corrupt("slot of delivery " + std::to_string(k) + " holds another delivery");
        backoff.pause();
        continue;
      }
      if (tag_phase(t) != PendingPhase::dispatching) {
        std::uint64_t expected = k;  // delivery k is out: help move the head past it
        h->head.compare_exchange_strong(expected, k + 1, std::memory_order_acq_rel);
        continue;
      }
      // Another member is handing out delivery k. Wait for it, or adopt it if nobody will
      // finish it (its process died, or the member was reopened since).
      if (adoptable(tag_member(t), tag_epoch(t))) {
        if (!s.tag.compare_exchange_strong(t, my_tag(k, PendingPhase::dispatching), std::memory_order_acq_rel))
          continue;
        // The head cannot pass k while slot k is dispatching, so slot k-1 stays delivery k-1;
        // its tag may still move (acked, retired), which start_of() reports as a miss.
        std::optional<std::uint64_t> start;
        for (int tries = 0; !start && tries < 100000; ++tries) start = start_of(k);
        std::uint64_t pos = 0, len = 0;
        if (!start || locate(*start, pos, len) != Step::delivered)
          corrupt("delivery " + std::to_string(k) + " has no committed event");
        const Step step = finish_dispatch(k, s, pos, len, out);
        if (step == Step::filtered || step == Step::lost) continue;
        return step;
      }
      // A live member stays mid-dispatch only for a few stores, unless it is stopped: then
      // report nothing new rather than fail, and look again on the next call.
      if (Clock::now() > deadline) return Step::nothing;
      backoff.pause();
    }
  }

  // Slot s holds reclaiming(k, me): deliver it again, or dead-letter it past max_deliveries.
  bool redeliver(std::uint64_t k, PendingSlot& s, Delivery& out) {
    shm::failpoint(shm::Failpoint::group_mid_reclaim);
    const std::uint64_t pos = s.pos.load(std::memory_order_relaxed);
    const std::uint64_t len = s.next.load(std::memory_order_relaxed) - pos;
    const std::uint32_t count = s.deliveries.load(std::memory_order_relaxed) + 1;
    if (!committed_at(pos, len) || !decode(pos, len, out.event))
      corrupt("pending event " + std::to_string(pos) + " is not a committed record");
    if (count > h->max_deliveries) {
      dead_letter(k, s, out.event, count - 1);
      return false;
    }
    s.deliveries.store(count, std::memory_order_relaxed);
    s.delivered_ns.store(shm::realtime_ns(), std::memory_order_relaxed);
    std::uint64_t held = my_tag(k, PendingPhase::reclaiming);
    if (!s.tag.compare_exchange_strong(held, my_tag(k, PendingPhase::pending), std::memory_order_acq_rel))
      return false;  // taken for gone and adopted meanwhile
    h->counters.redelivered.fetch_add(1, std::memory_order_relaxed);
    out.seq = k;
    out.deliveries = count;
    return true;
  }

  // agentroom's dead letter: ENGINE_RUNTIME_ERROR, then the ack. If the ring is full — gated
  // by this very event — the ack goes first and the notice is posted after it.
  void dead_letter(std::uint64_t k, PendingSlot& s, const Event& e, std::uint32_t deliveries) {
    const std::string payload = "{\"error\":\"delivered " + std::to_string(deliveries) +
                                " times without an ack\",\"group\":\"" + group + "\",\"event_id\":" +
                                std::to_string(e.id) + ",\"type\":" + util::json_string(e.type) +
                                ",\"deliveries\":" + std::to_string(deliveries) + "}";
    const bool posted = publish_error(e, payload);
    std::uint64_t held = my_tag(k, PendingPhase::reclaiming);
    if (!s.tag.compare_exchange_strong(held, make_tag(k, PendingPhase::acked, 0), std::memory_order_acq_rel)) return;
    h->counters.dead_lettered.fetch_add(1, std::memory_order_relaxed);
    retire();
    if (!posted) publish_error(e, payload);
  }

  // ENGINE_RUNTIME_ERROR about event e, from this member.
  bool publish_error(const Event& e, const std::string& payload) {
    PublishOptions po;
    po.reply_to = e.id;
    return room.publish("ENGINE_RUNTIME_ERROR", member_name, payload, po).ok();
  }

  // Scans the pending list for events to take over: those of dead or departed members, and
  // with `min_idle` those idle that long. Receipted ones are acked, poison ones dead-lettered.
  std::size_t reclaim(std::optional<std::chrono::milliseconds> min_idle, std::size_t count,
                      std::vector<Delivery>& out) {
    std::size_t got = 0;
    const std::int64_t now = shm::realtime_ns();
    const auto [floor, head] = window();
    for (std::uint64_t k = floor; k < head && got < count; ++k) {
      PendingSlot& s = slot(k);
      std::uint64_t t = s.tag.load(std::memory_order_acquire);
      if (!tag_is(t, k)) continue;
      const PendingPhase ph = tag_phase(t);
      if (ph != PendingPhase::pending && ph != PendingPhase::receipted && ph != PendingPhase::reclaiming) continue;
      const std::uint32_t owner = tag_member(t);
      auto eligible = [&] {
        if (ph == PendingPhase::reclaiming) return adoptable(owner, tag_epoch(t));
        const std::int64_t at = s.delivered_ns.load(std::memory_order_acquire);
        return orphaned(owner, tag_epoch(t)) || (min_idle && now - at >= std::chrono::nanoseconds(*min_idle).count());
      };
      if (!eligible()) continue;
      const std::uint64_t target =
          ph == PendingPhase::receipted ? make_tag(k, PendingPhase::acked, 0) : my_tag(k, PendingPhase::reclaiming);
      if (!s.tag.compare_exchange_strong(t, target, std::memory_order_acq_rel)) continue;
      if (ph == PendingPhase::receipted) {
        h->counters.receipts_honoured.fetch_add(1, std::memory_order_relaxed);
        retire();
        continue;
      }
      // The tag may have come round to the same value (the owner itself reclaimed it): now
      // that nobody else can touch the slot, check again.
      if (!eligible()) {
        std::uint64_t held = target;
        s.tag.compare_exchange_strong(held, t, std::memory_order_acq_rel);
        continue;
      }
      Delivery d;
      if (redeliver(k, s, d)) {
        out.push_back(std::move(d));
        ++got;
      }
    }
    return got;
  }

  std::uint32_t join(std::string_view name);
  void release() noexcept;

  void require_member(const char* what) const {
    if (me == coord::kNoMember)
      throw Error(Errc::invalid_argument, std::string("an observer of group '") + group + "' cannot " + what +
                                              "; open it with a member name");
    if (left) throw Error(Errc::invalid_argument, "member '" + member_name + "' has left group '" + group + "'");
  }
};

// ---- membership ---------------------------------------------------------------------------

// Takes the member named `name` for this process (the actor) and owner: an existing entry,
// or a new one. Conflict when another live process has the handle, or another live owner
// keeps the name.
std::uint32_t ConsumerGroup::Impl::join(std::string_view name) {
  shm::ClaimTable<coord::Member> table({members, max_members}, {.settle_wait = kSettleWait});
  using Outcome = shm::ClaimLookup::Outcome;
  for (;;) {
    const shm::ClaimLookup found = table.find_or_claim(
        shm::fnv1a(name), true, [&](const coord::Member& e) { return member_name_of(static_cast<std::uint32_t>(&e - members)) == name; },
        [&](coord::Member& e) {
          std::copy_n(name.data(), name.size(), e.name);
          e.name_len = static_cast<std::uint32_t>(name.size());
          e.owner_epoch.store(0, std::memory_order_relaxed);
          e.incarnation.store(0, std::memory_order_relaxed);
          e.owner.store(0, std::memory_order_relaxed);
          e.actor.store(0, std::memory_order_relaxed);
        });
    switch (found.outcome) {
      case Outcome::found:
      case Outcome::created: break;
      case Outcome::stuck:
        throw Error(Errc::timeout, "a member entry of group '" + group + "' stayed mid-write for over a second");
      case Outcome::foreign: corrupt("member entry " + std::to_string(found.index) + " has a bad state");
      case Outcome::absent:
      case Outcome::full:
        throw Error(Errc::no_space, "group '" + group + "' has " + std::to_string(max_members) +
                                        " members, its limit; members that left keep their names");
    }
    const std::uint32_t i = found.index;
    coord::Member& e = members[i];
    std::uint64_t actor = e.actor.load(std::memory_order_acquire);
    if (actor != 0 && shm::owner_alive(actor))
      throw Error(Errc::conflict, "member '" + std::string(name) + "' of group '" + group + "' is open in pid " +
                                      std::to_string(actor >> 32));
    if (!e.actor.compare_exchange_strong(actor, my_actor, std::memory_order_acq_rel)) continue;
    std::uint64_t owner = e.owner.load(std::memory_order_acquire);
    if (owner != my_owner) {
      if (owner != 0 && shm::owner_alive(owner)) {
        e.actor.store(0, std::memory_order_release);
        throw Error(Errc::conflict, "member '" + std::string(name) + "' of group '" + group +
                                        "' belongs to the session of pid " + std::to_string(owner >> 32));
      }
      e.owner_epoch.fetch_add(1, std::memory_order_acq_rel);  // its pending events are orphans now
      e.owner.store(my_owner, std::memory_order_release);
    }
    my_incarnation = (e.incarnation.fetch_add(1, std::memory_order_acq_rel) + 1) & 0xf;
    my_owner_epoch = e.owner_epoch.load(std::memory_order_acquire) & 0xf;
    return i;
  }
}

void ConsumerGroup::Impl::release() noexcept {
  if (me >= max_members) return;
  std::uint64_t mine = my_actor;
  members[me].actor.compare_exchange_strong(mine, 0, std::memory_order_acq_rel);
}

ConsumerGroup::ConsumerGroup(Room room, std::string_view group, std::string_view member, const GroupOptions& o) {
  check_group_name("group name", group);
  if (!member.empty()) check_group_name("member name", member);
  if (o.max_deliveries == 0 || o.max_deliveries > 1000)
    throw Error(Errc::invalid_argument, "max_deliveries must be from 1 to 1000");
  if (o.pending_capacity == 0 || o.pending_capacity > (1u << 20))
    throw Error(Errc::invalid_argument, "pending_capacity must be from 1 to 1048576");
  if (o.max_members == 0 || o.max_members > coord::kMaxGroupMembers)
    throw Error(Errc::invalid_argument, "max_members must be from 1 to 256");
  const std::string interests = join_interests(o.interests);
  const std::uint32_t capacity = std::max<std::uint32_t>(std::bit_ceil(o.pending_capacity), 16);
  const std::uint64_t members_off = align64(sizeof(coord::GroupHeader));
  const std::uint64_t slots_off = members_off + std::uint64_t(o.max_members) * sizeof(coord::Member);
  const std::uint64_t bytes = slots_off + std::uint64_t(capacity) * sizeof(PendingSlot);

  auto impl = std::make_unique<Impl>(Impl{room, RoomAccess::segment(room), &RoomAccess::ring(room)});
  Impl& g = *impl;
  g.group = std::string(group);
  g.member_name = std::string(member);
  const std::string region_suffix = "#group." + g.group;
  const std::string region = room.name() + region_suffix;
  g.gate_name = "group." + g.group;
  const std::string& gate_name = g.gate_name;
  if (region.size() > shm::kMaxSlotName)
    throw Error(Errc::bad_name, "room name plus group name is too long: at most " +
                                    std::to_string(shm::kMaxSlotName - 7) + " bytes together");
  const auto initialise = [&](std::span<std::byte> mem) {
    auto* h = reinterpret_cast<coord::GroupHeader*>(mem.data());
    h->capacity = capacity;
    h->max_members = o.max_members;
    h->max_deliveries = o.max_deliveries;
    h->total_bytes = bytes;
    std::copy_n(interests.data(), interests.size(), h->interests);
    h->interests_len = static_cast<std::uint32_t>(interests.size());
    auto* slots = reinterpret_cast<PendingSlot*>(mem.data() + slots_off);
    for (std::uint32_t i = 0; i < capacity; ++i)
      slots[i].tag.store(make_tag(i, PendingPhase::free, 0), std::memory_order_relaxed);
    const shm::ReaderSlot* gate = find_durable(*g.ring, gate_name);
    h->start_pos = gate ? gate->cursor.load(std::memory_order_acquire) : g.ring->tail();
  };
  const std::string noun = "consumer group '" + g.group + "'";
  const coord::RegionKind kind{noun, region_suffix, coord::kGroupMagic, coord::kGroupVersion,
                               sizeof(coord::GroupHeader)};
  std::optional<coord::Region> r = coord::Region::find(*g.segment, room.name(), kind, bytes, false, {});
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
    r = coord::Region::open(*g.segment, room.name(), kind, bytes, true, initialise);
  }
  if (!r) throw Error(Errc::not_found, "room '" + room.name() + "' has no consumer group '" + g.group + "'");
  g.h = r->header<coord::GroupHeader>();
  g.capacity = g.h->capacity;
  g.max_members = g.h->max_members;
  const std::uint64_t have_slots = members_off + std::uint64_t(g.max_members) * sizeof(coord::Member);
  if (!std::has_single_bit(g.capacity) || g.capacity < 16 || g.max_members == 0 ||
      g.max_members > coord::kMaxGroupMembers || g.h->max_deliveries == 0 || g.h->interests_len == 0 ||
      g.h->interests_len > coord::kInterestBytes || g.h->total_bytes > r->size() ||
      have_slots + std::uint64_t(g.capacity) * sizeof(PendingSlot) > g.h->total_bytes)
    g.corrupt("impossible sizes in the header");
  g.members = reinterpret_cast<coord::Member*>(r->bytes().data() + members_off);
  g.slots = reinterpret_cast<PendingSlot*>(r->bytes().data() + have_slots);
  g.interests = split_interests({g.h->interests, g.h->interests_len});
  g.all_types = std::find(g.interests.begin(), g.interests.end(), "*") != g.interests.end();
  g.gate = find_durable(*g.ring, gate_name);
  if (!g.gate)
    throw Error(Errc::not_found, "consumer group '" + g.group + "' was retired: its gate (durable reader " +
                                     gate_name + ") was dropped; use another group name");
  const shm::ProcessId owner =
      o.owner_pid > 0 ? shm::ProcessId{static_cast<std::uint32_t>(o.owner_pid),
                                       shm::process_start_time(static_cast<std::uint32_t>(o.owner_pid))}
                      : shm::self_process();
  if (o.owner_pid > 0 && owner.start_time == 0)
    throw Error(Errc::invalid_argument, "owner process " + std::to_string(o.owner_pid) + " does not exist");
  g.my_owner = shm::pack_owner(owner);
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
    if (spins == kSpinsBeforeYield) block_after = Clock::now() + kYieldBeforeBlock;
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

namespace {

// Moves slot k, holding event `id`, from pending or receipted to `target`.
bool settle(ConsumerGroup::Impl& g, std::uint64_t k, EventId id, std::uint64_t target, bool only_mine) {
  PendingSlot& s = g.slot(k);
  const auto deadline = Clock::now() + kSettleWait;
  for (shm::Backoff backoff;;) {
    std::uint64_t t = s.tag.load(std::memory_order_acquire);
    if (!tag_is(t, k) || s.pos.load(std::memory_order_acquire) != id || !tag_is(s.tag.load(std::memory_order_acquire), k))
      return false;
    const PendingPhase ph = tag_phase(t);
    if (ph == PendingPhase::reclaiming) {
      // Another member is mid-redelivery: ack what it ends with. A reclaimer that will never
      // finish leaves the event pending: an ack may settle it directly.
      if (!only_mine && g.adoptable(tag_member(t), tag_epoch(t))) {
        if (s.tag.compare_exchange_strong(t, target, std::memory_order_acq_rel)) return true;
        continue;
      }
      if (Clock::now() > deadline) return false;
      backoff.pause();
      continue;
    }
    if (ph != PendingPhase::pending && ph != PendingPhase::receipted) return false;
    if (only_mine && t != g.my_tag(k, PendingPhase::pending)) return false;
    if (s.tag.compare_exchange_strong(t, target, std::memory_order_acq_rel)) return true;
  }
}

}  // namespace

AckResult ConsumerGroup::ack(const Delivery& d) {
  Impl& g = *impl_;
  if (!settle(g, d.seq, d.event.id, make_tag(d.seq, PendingPhase::acked, 0), false)) return AckResult::not_pending;
  g.retire();
  return AckResult::acked;
}

AckResult ConsumerGroup::ack(EventId id) {
  Impl& g = *impl_;
  const auto [floor, head] = g.window();
  for (std::uint64_t k = floor; k < head; ++k) {
    if (g.slot(k).pos.load(std::memory_order_acquire) != id) continue;
    if (!settle(g, k, id, make_tag(k, PendingPhase::acked, 0), false)) continue;
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
        settle(g, k, id, g.my_tag(k, PendingPhase::receipted), true))
      return;
  throw Error(Errc::conflict, "event " + std::to_string(id) + " is not pending for member '" + g.member_name +
                                  "' of group '" + g.group + "'");
}

void ConsumerGroup::record_receipt(const Delivery& d) {
  Impl& g = *impl_;
  g.require_member("record a receipt");
  if (!settle(g, d.seq, d.event.id, g.my_tag(d.seq, PendingPhase::receipted), true))
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
  if (!settle(*impl_, d->seq, d->event.id, impl_->my_tag(d->seq, PendingPhase::receipted), true)) return true;
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
