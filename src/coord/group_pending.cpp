// The pending list of a consumer group: deliveries in [floor, head) until acked. The floor
// gates producers; settling moves a slot to acked or receipted; reclaiming takes over the
// slots of dead, departed or idle members, acking receipted ones and dead-lettering poison
// ones. See consumer_group_impl.hpp; the slot states are in consumer_group_layout.hpp.
#include "coord/consumer_group_impl.hpp"

#include "shm/backoff.hpp"
#include "shm/clock.hpp"
#include "shm/failpoint.hpp"
#include "shm/fences.hpp"
#include <agentbus/json_text.hpp>

#include <string>

namespace agentbus {

using coord::make_tag;
using coord::PendingPhase;
using coord::PendingSlot;
using coord::tag_epoch;
using coord::tag_is;
using coord::tag_member;
using coord::tag_phase;

void ConsumerGroup::Impl::window_corrupt() const {
  const std::uint64_t floor = h->floor.load(std::memory_order_acquire);
  const std::uint64_t head = h->head.load(std::memory_order_acquire);
  corrupt("floor " + std::to_string(floor) + " and head " + std::to_string(head) + " are too far apart");
}

void ConsumerGroup::Impl::raise_gate() const {
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

void ConsumerGroup::Impl::retire() const {
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

bool ConsumerGroup::Impl::settle(std::uint64_t k, EventId id, std::uint64_t target, bool only_mine) {
  PendingSlot& s = slot(k);
  const auto deadline = Clock::now() + kSettleWait;
  for (shm::Backoff backoff;;) {
    std::uint64_t t = s.tag.load(std::memory_order_acquire);
    if (!tag_is(t, k) || s.pos.load(std::memory_order_acquire) != id || !tag_is(s.tag.load(std::memory_order_acquire), k))
      return false;
    const PendingPhase ph = tag_phase(t);
    if (ph == PendingPhase::reclaiming) {
      // Another member is mid-redelivery: ack what it ends with. A reclaimer that will never
      // finish leaves the event pending: an ack may settle it directly.
      if (!only_mine && adoptable(tag_member(t), tag_epoch(t))) {
        if (s.tag.compare_exchange_strong(t, target, std::memory_order_acq_rel)) return true;
        continue;
      }
      if (Clock::now() > deadline) return false;
      backoff.pause();
      continue;
    }
    if (ph != PendingPhase::pending && ph != PendingPhase::receipted) return false;
    if (only_mine && t != my_tag(k, PendingPhase::pending)) return false;
    if (s.tag.compare_exchange_strong(t, target, std::memory_order_acq_rel)) return true;
  }
}

std::size_t ConsumerGroup::Impl::reclaim(std::optional<std::chrono::milliseconds> min_idle, std::size_t count,
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

bool ConsumerGroup::Impl::redeliver(std::uint64_t k, PendingSlot& s, Delivery& out) {
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

void ConsumerGroup::Impl::dead_letter(std::uint64_t k, PendingSlot& s, const Event& e, std::uint32_t deliveries) {
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

bool ConsumerGroup::Impl::publish_error(const Event& e, const std::string& payload) {
  PublishOptions po;
  po.reply_to = e.id;
  return room.publish("ENGINE_RUNTIME_ERROR", member_name, payload, po).ok();
}

}  // namespace agentbus
