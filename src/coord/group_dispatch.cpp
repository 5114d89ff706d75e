// Dispatch: handing out a consumer group's next new delivery from the room's ring with one
// CAS per slot, and adopting a delivery a dead member was handing out. See
// consumer_group_impl.hpp; the slot states are in consumer_group_layout.hpp.
#include "coord/consumer_group_impl.hpp"

#include "bus/reader_slots.hpp"
#include "shm/backoff.hpp"
#include "shm/clock.hpp"
#include "shm/failpoint.hpp"
#include "shm/fences.hpp"

#include <agentbus/error.hpp>

#include <string>

namespace agentbus {

using coord::make_tag;
using coord::PendingPhase;
using coord::PendingSlot;
using coord::tag_epoch;
using coord::tag_is;
using coord::tag_member;
using coord::tag_phase;

namespace {

void assign(Event& out, const EventView& v) {
  out.id = v.id;
  out.ts_ns = v.ts_ns;
  out.type.assign(v.type);
  out.agent.assign(v.agent);
  out.to.assign(v.to);
  out.reply_to = v.reply_to;
  out.payload.assign(v.payload);
  out.origin.host.assign(v.origin.host);
  out.origin.id = v.origin.id;
  out.origin.stream = v.origin.stream;
  out.imported = v.imported;
  if (v.reply_to_origin)
    out.reply_to_origin = Origin::from(*v.reply_to_origin);
  else
    out.reply_to_origin.reset();
}

}  // namespace

std::optional<std::uint64_t> ConsumerGroup::Impl::start_of(std::uint64_t k) const {
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

bool ConsumerGroup::Impl::committed_at(std::uint64_t pos, std::uint64_t len) const {
  const shm::PeekResult p = ring->peek(pos);
  return p.kind == shm::Peek::committed && p.len == len;
}

bool ConsumerGroup::Impl::decode(std::uint64_t pos, std::uint64_t len, Event& out) const {
  EventView view;
  if (!ring->decode(ring->at(pos), len, pos, view)) return false;
  assign(out, view);
  return true;
}

ConsumerGroup::Impl::Step ConsumerGroup::Impl::dispatch(Delivery& out) {
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

ConsumerGroup::Impl::Step ConsumerGroup::Impl::finish_dispatch(std::uint64_t k, PendingSlot& s, std::uint64_t pos,
                                                                std::uint64_t len, Delivery& out) {
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

ConsumerGroup::Impl::Step ConsumerGroup::Impl::locate(std::uint64_t start, std::uint64_t& pos, std::uint64_t& len) {
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

void ConsumerGroup::Impl::note_stall(std::uint64_t pos) {
  const auto now = Clock::now();
  if (stall_pos != pos) {
    stall_pos = pos;
    stall_since = now;
  } else if (now - stall_since >= ring->timeouts().stall) {
    ring->repair(pos);  // pads it only if its claimer is confirmed dead
    stall_since = now;
  }
}

}  // namespace agentbus
