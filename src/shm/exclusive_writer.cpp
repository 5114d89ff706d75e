// Exclusive publication: the lease, arming, the fast path, and revoking (see the header).
#include "shm/exclusive_writer.hpp"

#include "shm/backoff.hpp"
#include "shm/clock.hpp"
#include "shm/failpoint.hpp"
#include "shm/membarrier.hpp"
#include "shm/owner_word.hpp"
#include "shm/process.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <string>

namespace agentbus::shm {
namespace {

using Clock = std::chrono::steady_clock;

enum class LeasePhase : std::uint64_t { free = 0, held = 1 };
using LeaseWord = OwnerWord<LeasePhase>;

constexpr unsigned kRearmAfter = 64;  // own shared publishes in a row before arming again

}  // namespace

// ---- the shared side ---------------------------------------------------------------------

bool Ring::revoke_exclusive(Clock::time_point deadline) {
  RingControl& c = *control_;
  std::uint64_t s = c.writer_state.load(std::memory_order_acquire);
  for (;;) {
    const std::uint64_t generation = (s + (1ull << 32)) & kWriterGenerationMask;
    const std::uint64_t next = kWriterUnarmed | generation | ((s & kWriterRevokersMask) + 1);
    if (c.writer_state.compare_exchange_weak(s, next, std::memory_order_seq_cst)) break;
  }
  membarrier_global();  // the holder's busy = 1 is visible now, or it sees the revoke next
  const std::uint64_t holder = c.writer_lease.load(std::memory_order_acquire);
  bool holder_dead = false, idle = true;
  Backoff backoff;
  const auto since = Clock::now();
  while (c.writer_busy.load(std::memory_order_acquire) != 0) {
    const auto now = Clock::now();
    // The stall timeout only triggers the liveness check, as for a stuck claim.
    if (now - since >= timeouts_.stall && (holder == 0 || !LeaseWord::holder_alive(holder))) {
      holder_dead = true;
      break;
    }
    if (now >= deadline) {
      control_->counters.bus_full.fetch_add(1, std::memory_order_relaxed);
      idle = false;
      break;
    }
    backoff.pause();
  }
  if (idle) {
    if (!holder_dead && holder != 0 && !LeaseWord::holder_alive(holder)) holder_dead = true;
    if (holder_dead) c.writer_busy.store(0, std::memory_order_release);  // before a new holder can exist
    settle_tail();
    if (holder_dead && holder != 0) {
      std::uint64_t expected = holder;
      if (c.writer_lease.compare_exchange_strong(expected, 0, std::memory_order_acq_rel))
        c.counters.dead_writer_leases.fetch_add(1, std::memory_order_relaxed);
    }
    c.counters.exclusive_revokes.fetch_add(1, std::memory_order_relaxed);
  }
  c.writer_state.fetch_sub(1, std::memory_order_acq_rel);  // one revoker fewer
  return idle;
}

std::uint64_t Ring::past_committed(std::uint64_t from) const noexcept {
  // Records committed past `tail` can only be an exclusive writer's that died before storing
  // it (or is about to store it); each is whole, its stamp stored last. Trust no length here.
  std::uint64_t pos = from;
  while (pos - from < capacity_) {
    const std::uint64_t len = finished_len(pos, stamp_at(pos).load(std::memory_order_acquire));
    if (len == 0) break;
    pos += len;
  }
  return pos;
}

void Ring::settle_tail() noexcept {
  std::uint64_t t = control_->tail.load(std::memory_order_acquire);
  while (t & kTailExclusive) {
    const std::uint64_t pos = past_committed(t & ~kTailExclusive);
    if (control_->tail.compare_exchange_weak(t, pos, std::memory_order_acq_rel, std::memory_order_acquire)) return;
  }
}

std::uint64_t Ring::reclaim_bulk(std::uint64_t end, std::uint64_t limit) {
  const std::uint64_t needed = end - capacity_;
  // Never past limit - capacity: that is at most every durable cursor and the commit head
  // when the limit was computed, so no unread record loses its place in history, and every
  // record walked is finished.
  const std::uint64_t target = std::min(needed + capacity_ / 16, limit - capacity_);
  for (;;) {
    const std::uint64_t h0 = control_->head.load(std::memory_order_acquire);
    std::uint64_t h = h0;
    while (h < target) {
      const std::uint64_t len = finished_len(h, stamp_at(h).load(std::memory_order_acquire));
      if (len == 0) break;  // e.g. a shared claim not committed yet: far enough if past `needed`
      h += len;
    }
    if (h < needed) {  // the careful walk, which waits on or reports what stopped us
      reclaim(end);
      return control_->head.load(std::memory_order_acquire);
    }
    std::uint64_t expected = h0;
    if (h == h0 || control_->head.compare_exchange_strong(expected, h, std::memory_order_acq_rel)) return h;
  }
}

// ---- the exclusive writer ----------------------------------------------------------------

ExclusiveWriter::ExclusiveWriter(Ring& ring) : ring_(ring), owner_(pack_owner(self_process())) {
  RingControl& c = ring_.control();
  const ProcessId me = self_process();
  std::uint64_t seen = c.writer_lease.load(std::memory_order_acquire);
  for (;;) {
    if (seen != 0 && LeaseWord::holder_alive(seen))
      throw Error(Errc::conflict, "this room already has an exclusive writer (pid " +
                                      std::to_string(LeaseWord::pid(seen)) +
                                      "); publish through Room::publish, or close that writer first");
    lease_ = LeaseWord::make(LeasePhase::held, LeaseWord::generation(seen) + 1, me);
    if (c.writer_lease.compare_exchange_weak(seen, lease_, std::memory_order_seq_cst)) break;
  }
  held_ = true;
  set_unarmed();
  if (seen != 0) {  // a dead holder's: its busy flag, its exclusive bit, records not in tail
    c.writer_busy.store(0, std::memory_order_release);
    c.counters.dead_writer_leases.fetch_add(1, std::memory_order_relaxed);
    ring_.settle_tail();
  }
  can_arm_ = membarrier_register();
  try_arm();
}

ExclusiveWriter::~ExclusiveWriter() { release(); }

void ExclusiveWriter::set_unarmed() noexcept {
  ring_.control().writer_state.fetch_or(kWriterUnarmed, std::memory_order_seq_cst);
  armed_ = false;
}

void ExclusiveWriter::release() noexcept {
  if (!held_) return;
  RingControl& c = ring_.control();
  set_unarmed();
  // Between publishes `tail` is exact: only the bit has to go.
  std::uint64_t t = c.tail.load(std::memory_order_acquire);
  while ((t & kTailExclusive) &&
         !c.tail.compare_exchange_weak(t, t & ~kTailExclusive, std::memory_order_acq_rel)) {
  }
  std::uint64_t expected = lease_;
  c.writer_lease.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
  held_ = false;
}

bool ExclusiveWriter::try_arm() {
  if (!held_ || !can_arm_) return false;
  RingControl& c = ring_.control();
  const std::uint64_t s0 = c.writer_state.load(std::memory_order_acquire);
  if ((s0 & kWriterRevokersMask) != 0) return false;
  std::uint64_t t = c.tail.load(std::memory_order_acquire);
  while (!(t & kTailExclusive) &&
         !c.tail.compare_exchange_weak(t, t | kTailExclusive, std::memory_order_seq_cst)) {
  }
  // A revoker since s0 changed the generation: it, or the next shared writer, clears the bit.
  std::uint64_t expected = s0;
  if (!c.writer_state.compare_exchange_strong(expected, s0 & ~kWriterUnarmed, std::memory_order_seq_cst))
    return false;
  tail_ = ring_.tail_position();
  limit_ = limit_of(c.limit_word.load(std::memory_order_acquire));
  head_ = c.head.load(std::memory_order_acquire);
  armed_ = true;
  return true;
}

PublishResult ExclusiveWriter::publish_shared(const RecordFields& f, std::uint64_t len) {
  const PublishResult r = ring_.publish(f);
  if (!r.ok()) return r;
  in_a_row_ = r.id == expect_next_ ? in_a_row_ + 1 : 0;
  expect_next_ = r.id + len;
  if (in_a_row_ >= kRearmAfter && held_) {
    in_a_row_ = 0;
    try_arm();
  }
  return r;
}

PublishResult ExclusiveWriter::publish(const RecordFields& f) {
  const std::uint64_t len = ring_.record_bytes(f);
  if (!armed_) return publish_shared(f, len);
  RingControl& c = ring_.control();
  const std::uint64_t capacity = ring_.capacity();
  std::optional<Clock::time_point> deadline;
  for (;;) {
    c.writer_busy.store(1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the CPU's order: membarrier_global()
    if (c.writer_state.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      c.writer_busy.store(0, std::memory_order_release);
      armed_ = false;
      in_a_row_ = 0;
      return publish_shared(f, len);
    }
    failpoint(Failpoint::exclusive_before_write);
    const std::uint64_t to_end = capacity - (tail_ & (capacity - 1));
    const bool wraps = len > to_end;
    const std::uint64_t at = wraps ? tail_ + to_end : tail_;
    const std::uint64_t end = at + len;
    if (end > limit_) [[unlikely]] {
      limit_ = limit_of(c.limit_word.load(std::memory_order_acquire));
      if (end > limit_) {
        // Out of room: leave the fast path while waiting, so a revoker is not held up.
        c.writer_busy.store(0, std::memory_order_release);
        if (!deadline) deadline = Clock::now() + ring_.timeouts().publish;
        if (!ring_.wait_for_room(end, *deadline)) return {PublishStatus::bus_full, 0};
        limit_ = limit_of(c.limit_word.load(std::memory_order_acquire));
        continue;
      }
    }
    if (end > head_ + capacity) head_ = ring_.reclaim_bulk(end, limit_);
    if (wraps) {
      ring_.stamp_at(tail_).store(make_stamp(tail_, to_end, RecordState::padding), std::memory_order_release);
      ring_.note_in_index(tail_, at);
      c.counters.wrap_paddings.fetch_add(1, std::memory_order_relaxed);
    }
    auto* h = reinterpret_cast<RecordHeader*>(const_cast<std::byte*>(ring_.at(at)));
    h->owner.store(owner_, std::memory_order_relaxed);
    ring_.write_record(h, f, ring_.event_time());
    failpoint(Failpoint::exclusive_before_commit);
    h->stamp.store(make_stamp(at, len, RecordState::committed), std::memory_order_release);
    failpoint(Failpoint::exclusive_before_tail);
    c.tail.store(end | kTailExclusive, std::memory_order_release);
    tail_ = end;
    ring_.note_in_index(at, end);
    c.writer_busy.store(0, std::memory_order_release);
    if (c.waiters.load(std::memory_order_relaxed) != 0) ring_.wake_readers();
    return {PublishStatus::ok, at};
  }
}

}  // namespace agentbus::shm
