#include "shm/clock.hpp"
#include "shm/ring.hpp"

#include "shm/backoff.hpp"
#include "shm/failpoint.hpp"
#include "shm/futex.hpp"
#include "shm/fences.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"
#include "util/hex.hpp"

#include <agentbus/error.hpp>
#include <agentbus/names.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>

namespace agentbus::shm {
namespace {

using Clock = std::chrono::steady_clock;

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

static_assert(kMaxHostIdBytes == agentbus::kMaxHostIdBytes);

// The origin block and its host names; returns where the fields start.
std::byte* write_origin(std::byte* at, const OriginRef& origin, const std::optional<OriginRef>& reply) {
  OriginBlock block{};
  block.id = origin.id;
  block.stream_ms = origin.stream.ms;
  block.stream_seq = origin.stream.seq;
  block.host_len = static_cast<std::uint8_t>(origin.host.size());
  if (reply) {
    block.reply_id = reply->id;
    block.reply_host_len = static_cast<std::uint8_t>(reply->host.size());
    block.origin_flags = kOriginHasReplyOrigin;
  }
  copy_to_ring(at, &block, sizeof block);
  at += sizeof block;
  copy_to_ring(at, origin.host.data(), origin.host.size());
  at += origin.host.size();
  if (reply) {
    copy_to_ring(at, reply->host.data(), reply->host.size());
    at += reply->host.size();
  }
  return at;
}

}  // namespace

Ring::Ring(RingControl* control, std::byte* data, std::uint64_t capacity,
           std::uint64_t max_record, Timeouts timeouts, std::string_view local_host) noexcept
    : control_(control),
      data_(data),
      capacity_(capacity),
      mask_(capacity - 1),
      max_record_(max_record),
      index_shift_(static_cast<unsigned>(std::countr_zero(std::max<std::uint64_t>(capacity / kRecentIndexSlots, 8)))),
      timeouts_(timeouts),
      local_host_(local_host) {}

void Ring::initialise(RingControl& control, std::uint64_t capacity) noexcept {
  control.limit_word.store(make_limit_word(capacity, 0), std::memory_order_release);
}

std::uint64_t Ring::finished_len(std::uint64_t pos, std::uint64_t stamp) const noexcept {
  const std::uint64_t len = stamp_len(stamp);
  const bool finished = stamp_matches(stamp, pos) &&
                        (stamp_state(stamp) == RecordState::committed || stamp_state(stamp) == RecordState::padding) &&
                        len >= 8 && (pos & mask_) + len <= capacity_;
  return finished ? len : 0;
}

std::atomic<std::uint64_t>& Ring::stamp_at(std::uint64_t pos) const noexcept {
  return *reinterpret_cast<std::atomic<std::uint64_t>*>(data_ + (pos & mask_));
}

std::uint64_t Ring::tail() const noexcept { return tail_position(); }
std::uint64_t Ring::tail_position() const noexcept {
  return control_->tail.load(std::memory_order_acquire) & ~kTailExclusive;
}
// Producers write only below `limit` (they acquire it before claiming), and the limit moves
// about once per lap, so checking it first keeps a caught-up reader off the head's cache line.
// Past that, the head decides: a producer moves it past whatever it overwrites before writing.
bool Ring::overwritten_since(std::uint64_t start) const noexcept {
  if (limit_of(load_after_reads(control_->limit_word)) <= start + capacity_) return false;
  return control_->head.load(std::memory_order_acquire) > start;
}
std::uint64_t Ring::oldest() const noexcept {
  return control_->head.load(std::memory_order_acquire);
}

// Before writing below `end`, everything at or before `end - capacity` is given up: move the
// head over whole records until it is past that. The records walked are committed or padding
// (they lie below the commit head: the limit that let our claim through guarantees it) and
// nobody overwrites them before the head has passed them, so a stamp that does not match
// means another producer moved the head meanwhile. Each step is one CAS from a boundary we
// read, so a producer killed anywhere leaves the head on a boundary and stalls nobody.
void Ring::reclaim(std::uint64_t end) {
  if (end <= capacity_) return;
  const std::uint64_t needed = end - capacity_;
  std::uint64_t h = control_->head.load(std::memory_order_acquire);
  for (int unchanged = 0; h < needed;) {
    const std::uint64_t stamp = stamp_at(h).load(std::memory_order_acquire);
    const std::uint64_t len = finished_len(h, stamp);
    if (len == 0) {
      const std::uint64_t again = control_->head.load(std::memory_order_acquire);
      if (again != h) {
        h = again;
        continue;
      }
      // Only a foreign write can leave a mismatch under an unmoved head; allow for a store
      // still on its way before calling it that.
      if (++unchanged < 1024) {
        cpu_relax();
        continue;
      }
      throw Error(Errc::corrupt, "record at position " + std::to_string(h) + " has stamp " +
                                     util::hex(stamp) + ", expected a committed or padding record "
                                     "of 8.." + std::to_string(capacity_ - (h & mask_)) + " bytes for that position");
    }
    if (control_->head.compare_exchange_weak(h, h + len, std::memory_order_acq_rel,
                                             std::memory_order_acquire))
      h += len;
  }
}

// ---- producing ---------------------------------------------------------------------------

std::int64_t Ring::event_time() const noexcept {
  if (!timeouts_.coarse_clock) return realtime_ns();
  timespec t{};
  clock_gettime(CLOCK_REALTIME_COARSE, &t);
  return std::int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

void Ring::write_record(RecordHeader* h, const RecordFields& f, std::int64_t ts_ns) noexcept {
  const RecordMeta meta{ts_ns,
                        static_cast<std::uint8_t>(f.type.size()),
                        static_cast<std::uint8_t>((f.reply_to ? kFlagHasReplyTo : 0) |
                                                  (f.origin ? kFlagHasOrigin : 0)),
                        static_cast<std::uint8_t>(f.agent.size()),
                        static_cast<std::uint8_t>(f.to.size()),
                        static_cast<std::uint32_t>(f.payload.size())};
  copy_to_ring(reinterpret_cast<std::byte*>(&h->meta), &meta, sizeof meta);
  auto* body = reinterpret_cast<std::byte*>(h) + kRecordHeaderBytes;
  if (f.reply_to) {
    const std::uint64_t reply_to = *f.reply_to;
    copy_to_ring(body, &reply_to, kReplyToBytes);
    body += kReplyToBytes;
  }
  if (f.origin) body = write_origin(body, *f.origin, f.reply_to_origin);
  for (const std::string_view field : {f.type, f.agent, f.to, f.payload}) {
    copy_to_ring(body, field.data(), field.size());
    body += field.size();
  }
}

bool Ring::stamp_claim(std::uint64_t pos, std::uint64_t len, std::uint64_t owner) {
  auto& stamp = stamp_at(pos);
  std::uint64_t seen = stamp.load(std::memory_order_relaxed);
  // A matching stamp here can only be a repairer's ABORTED mark: we were presumed dead.
  if (stamp_matches(seen, pos) ||
      !stamp.compare_exchange_strong(seen, make_stamp(pos, len, RecordState::claimed),
                                     std::memory_order_acq_rel)) {
    control_->counters.aborted_claims.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  reinterpret_cast<RecordHeader*>(data_ + (pos & mask_))->owner.store(owner, std::memory_order_relaxed);
  failpoint(Failpoint::after_claim);
  return true;
}

PublishResult Ring::publish(const RecordFields& f) {
  const std::uint64_t len = record_bytes(f);
  const std::uint64_t owner = pack_owner(self_process());
  for (;;) {
    const auto claimed_at = claim(len);
    if (!claimed_at) return {PublishStatus::bus_full, 0};
    const std::uint64_t pos = *claimed_at;
    reclaim(pos + len);
    failpoint(Failpoint::before_stamp);

    if (!stamp_claim(pos, len, owner)) continue;
    auto* h = reinterpret_cast<RecordHeader*>(data_ + (pos & mask_));
    auto& stamp = h->stamp;
    const std::uint64_t claimed = make_stamp(pos, len, RecordState::claimed);

    write_record(h, f, event_time());
    failpoint(Failpoint::before_commit);

    // seq_cst: ordered before the waiter check below (Dekker with Subscription's block wait).
    std::uint64_t expected = claimed;
    if (!stamp.compare_exchange_strong(expected, make_stamp(pos, len, RecordState::committed),
                                       std::memory_order_seq_cst)) {
      // A repairer declared us dead and padded the claim; nothing we wrote is visible.
      control_->counters.aborted_claims.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (control_->waiters.load(std::memory_order_seq_cst) != 0) wake_readers();
    note_in_index(pos, pos + len);
    return {PublishStatus::ok, pos};
  }
}

std::optional<std::uint64_t> Ring::claim(std::uint64_t len) {
  std::uint64_t t = control_->tail.load(std::memory_order_relaxed);
  std::optional<Clock::time_point> deadline;
  for (;;) {
    const std::uint64_t to_end = capacity_ - (t & mask_);
    const bool wraps = len > to_end;
    const std::uint64_t end = t + (wraps ? to_end : len);
    if (t & kTailExclusive) [[unlikely]] {
      if (!deadline) deadline = Clock::now() + timeouts_.publish;
      if (!revoke_exclusive(*deadline)) return std::nullopt;
      t = control_->tail.load(std::memory_order_relaxed);
      continue;
    }
    if (end > limit_of(control_->limit_word.load(std::memory_order_acquire))) {
      if (!deadline) deadline = Clock::now() + timeouts_.publish;
      if (!wait_for_room(end, *deadline)) return std::nullopt;
      t = control_->tail.load(std::memory_order_relaxed);
      continue;
    }
    if (!control_->tail.compare_exchange_weak(t, end, std::memory_order_acq_rel,
                                              std::memory_order_relaxed))
      continue;
    if (!wraps) return t;
    // Records never straddle the end: fill the rest of the buffer with padding and retry.
    // Only the padding's stamp is written, so only the record under it is given up.
    reclaim(t + 8);
    auto& stamp = stamp_at(t);
    std::uint64_t seen = stamp.load(std::memory_order_relaxed);
    if (!stamp_matches(seen, t))
      stamp.compare_exchange_strong(seen, make_stamp(t, to_end, RecordState::padding),
                                    std::memory_order_release);
    note_in_index(t, end);
    control_->counters.wrap_paddings.fetch_add(1, std::memory_order_relaxed);
    t = end;
  }
}

// Slow path of claim(): the ring is full up to `limit`. Recompute it, repair a dead claimer
// holding the commit head, or wait for durable readers, until `deadline`.
bool Ring::wait_for_room(std::uint64_t end, Clock::time_point deadline) {
  Backoff backoff;
  std::uint64_t stalled_head = ~0ull;
  Clock::time_point stalled_since{};
  for (;;) {
    if (end <= recompute_limit()) return true;
    const std::uint64_t head = control_->commit_head.load(std::memory_order_acquire);
    const auto now = Clock::now();
    if (head + capacity_ < end) {
      // Blocked by an uncommitted record at the commit head: check its claimer once stalled.
      if (head != stalled_head) {
        stalled_head = head;
        stalled_since = now;
      } else if (now - stalled_since >= timeouts_.stall) {
        if (repair(head)) continue;
        stalled_since = now;
      }
    }
    if (now >= deadline) {
      control_->counters.bus_full.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    backoff.pause();
  }
}

std::uint64_t Ring::advance_commit_head() {
  std::uint64_t head = control_->commit_head.load(std::memory_order_acquire);
  const std::uint64_t start = head;
  const std::uint64_t t = tail_position();
  while (head < t) {
    const PeekResult p = peek(head);
    if (p.kind != Peek::committed && p.kind != Peek::padding) break;
    head += p.len;
  }
  if (head == start) return head;
  std::uint64_t cur = start;
  while (cur < head && !control_->commit_head.compare_exchange_weak(
                           cur, head, std::memory_order_acq_rel, std::memory_order_acquire)) {
  }
  return std::max(cur, head);
}

std::uint64_t Ring::recompute_limit() {
  for (;;) {
    std::uint64_t word = control_->limit_word.load(std::memory_order_acquire);
    std::uint64_t floor = advance_commit_head();
    for (const ReaderSlot& r : control_->readers) {
      if ((r.state.load(std::memory_order_acquire) & kReaderKindMask) != kReaderDurable) continue;
      floor = std::min(floor, r.cursor.load(std::memory_order_acquire));
    }
    const std::uint64_t limit = std::max(floor + capacity_, limit_of(word));
    if (limit == limit_of(word)) return limit;
    if (control_->limit_word.compare_exchange_strong(word, make_limit_word(limit, limit_seq(word)),
                                                     std::memory_order_acq_rel))
      return limit;
  }
}

std::uint64_t Ring::register_gate() noexcept {
  // Bump the sequence so any limit computed before our cursor was visible cannot be stored.
  std::uint64_t word = control_->limit_word.load(std::memory_order_acquire);
  while (!control_->limit_word.compare_exchange_weak(
      word, make_limit_word(limit_of(word), limit_seq(word) + 1), std::memory_order_seq_cst)) {
  }
  return limit_of(word) - capacity_;
}

void Ring::note_in_index(std::uint64_t pos, std::uint64_t end) noexcept {
  const std::uint64_t block = index_block();
  for (std::uint64_t b = (pos + block - 1) & ~(block - 1); b < end; b += block)
    control_->recent_index[(b >> index_shift_) % kRecentIndexSlots].store(pos, std::memory_order_release);
}

std::optional<std::uint64_t> Ring::index_hint(std::uint64_t boundary, std::uint64_t oldest) const noexcept {
  const std::uint64_t v =
      control_->recent_index[(boundary >> index_shift_) % kRecentIndexSlots].load(std::memory_order_acquire);
  // Entries of earlier laps, of a producer that died before storing one, or scribbled on by a
  // foreign write all fail one of these; the walk from an accepted one checks every stamp.
  if (v % 8 != 0 || v > boundary || boundary - v >= max_record_ || v < oldest) return std::nullopt;
  if (!stamp_matches(stamp_at(v).load(std::memory_order_acquire), v)) return std::nullopt;
  return v;
}

void Ring::wake_readers() noexcept {
  control_->futex_seq.fetch_add(1, std::memory_order_release);
  control_->counters.wakeups.fetch_add(1, std::memory_order_relaxed);
  futex_wake_all(control_->futex_seq);
}

}  // namespace agentbus::shm
