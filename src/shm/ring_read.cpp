// The ring's read side: peeking at a record by its stamp, decoding it, repairing a record or a
// gap a dead producer left, and waiting for the next publication (see shm/ring.hpp).
#include "shm/ring.hpp"

#include "shm/fences.hpp"
#include "shm/futex.hpp"
#include "shm/membarrier.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"

#include <agentbus/error.hpp>

#include <cstring>

namespace agentbus::shm {

// ---- reading -----------------------------------------------------------------------------

PeekResult Ring::peek(std::uint64_t pos, bool consult_tail) const {
  const std::uint64_t stamp = stamp_at(pos).load(std::memory_order_acquire);
  if (stamp_matches(stamp, pos)) {
    const std::uint64_t len = stamp_len(stamp);
    // Trust nothing: a record is at least a stamp, never straddles the end, and fits.
    const bool sane = len >= 8 && (pos & mask_) + len <= capacity_;
    switch (stamp_state(stamp)) {
      case RecordState::committed:
        if (!sane || len < kRecordHeaderBytes || len > max_record_) break;
        return {Peek::committed, len};
      case RecordState::padding:
        if (!sane) break;
        return {Peek::padding, len};
      case RecordState::claimed:
        return {Peek::pending, sane ? len : 0};
      case RecordState::aborted:
        return {Peek::pending, 0};
    }
    throw Error(Errc::corrupt, "corrupt record at position " + std::to_string(pos) +
                                   ": length " + std::to_string(len) + " is out of bounds");
  }
  if (!consult_tail) return {Peek::unstamped, 0};
  const std::uint64_t t = tail_position();
  if (t > pos + capacity_) return {Peek::lapped, 0};
  if (t > pos) return {Peek::pending, 0};  // claimed, stamp not yet stored
  return {Peek::empty, 0};
}

bool Ring::is_event_start(std::uint64_t pos) const noexcept {
  const std::uint64_t stamp = stamp_at(pos).load(std::memory_order_acquire);
  return stamp_matches(stamp, pos) && (stamp_state(stamp) == RecordState::committed ||
                                       stamp_state(stamp) == RecordState::claimed);
}

bool Ring::decode(const std::byte* rec, std::uint64_t len, std::uint64_t id,
                  EventView& out) const noexcept {
  const RecordMeta& m = reinterpret_cast<const RecordHeader*>(rec)->meta;
  const std::uint64_t fields =
      std::uint64_t(m.type_len) + m.agent_len + m.to_len + std::uint64_t(m.payload_len);
  // Every length below comes from shared memory: check them all against `len` first.
  const std::uint64_t base = kRecordHeaderBytes + ((m.flags & kFlagHasReplyTo) ? kReplyToBytes : 0);
  if (len < base) return false;
  const char* p = reinterpret_cast<const char*>(rec) + kRecordHeaderBytes;
  out.reply_to.reset();
  if (m.flags & kFlagHasReplyTo) {
    EventId reply_to;
    copy_from_ring(&reply_to, reinterpret_cast<const std::byte*>(p), kReplyToBytes);
    out.reply_to = reply_to;
    p += kReplyToBytes;
  }
  out.origin = {local_host_, id, {}};
  out.imported = false;
  out.reply_to_origin.reset();
  if (m.flags & kFlagHasOrigin) {
    if (len < base + kOriginBlockBytes) return false;
    OriginBlock block;
    copy_from_ring(&block, reinterpret_cast<const std::byte*>(p), sizeof block);
    const bool has_reply = (block.origin_flags & kOriginHasReplyOrigin) != 0;
    if (block.host_len == 0 || block.host_len > kMaxHostIdBytes ||
        block.reply_host_len > kMaxHostIdBytes || has_reply != (block.reply_host_len != 0))
      return false;
    const std::uint64_t need = base + kOriginBlockBytes + block.host_len +
                               block.reply_host_len + fields;
    if (need > len || m.type_len == 0) return false;
    p += kOriginBlockBytes;
    out.origin = {{p, block.host_len}, block.id, {block.stream_ms, block.stream_seq}};
    out.imported = true;
    p += block.host_len;
    if (has_reply) out.reply_to_origin = OriginRef{{p, block.reply_host_len}, block.reply_id, {}};
    p += block.reply_host_len;
  } else if (base + fields > len || m.type_len == 0) {
    return false;
  }
  out.id = id;
  out.ts_ns = m.ts_ns;
  out.type = {p, m.type_len};
  p += m.type_len;
  out.agent = {p, m.agent_len};
  p += m.agent_len;
  out.to = {p, m.to_len};
  p += m.to_len;
  out.payload = {p, m.payload_len};
  return true;
}

bool Ring::repair(std::uint64_t pos) {
  auto& stamp = stamp_at(pos);
  std::uint64_t seen = stamp.load(std::memory_order_acquire);
  if (!stamp_matches(seen, pos)) return repair_gap(pos);
  if (stamp_state(seen) == RecordState::aborted) return repair_gap(pos);  // a repairer died
  if (stamp_state(seen) != RecordState::claimed) return false;
  const auto* h = reinterpret_cast<const RecordHeader*>(data_ + (pos & mask_));
  if (owner_alive(h->owner.load(std::memory_order_acquire))) return false;  // slow, not dead
  if (!stamp.compare_exchange_strong(seen, make_stamp(pos, stamp_len(seen), RecordState::padding),
                                     std::memory_order_acq_rel))
    return true;  // committed or repaired meanwhile: progress either way
  control_->counters.dead_claims_padded.fetch_add(1, std::memory_order_relaxed);
  if (control_->waiters.load(std::memory_order_seq_cst) != 0) wake_readers();
  return true;
}

// The claim at `pos` was never stamped (its claimer died between winning the tail CAS and
// stamping). Nobody knows its length, so pad up to the next stamped record: first mark `pos`
// ABORTED (a live claimer there now fails its stamp CAS), then every word up to the next real
// stamp, the tail or the buffer end, then publish the padding.
bool Ring::repair_gap(std::uint64_t pos) {
  const std::uint64_t t = tail_position();
  if (t <= pos || t > pos + capacity_) return false;
  auto& head_stamp = stamp_at(pos);
  std::uint64_t seen = head_stamp.load(std::memory_order_acquire);
  const std::uint64_t mark_pos = make_stamp(pos, 0, RecordState::aborted);
  if (stamp_matches(seen, pos) && stamp_state(seen) != RecordState::aborted) return false;
  reclaim(pos + 8);  // the dead claimer may have died before giving up what it would overwrite
  if (seen != mark_pos && !head_stamp.compare_exchange_strong(seen, mark_pos))
    return stamp_matches(seen, pos);  // stamped meanwhile by a live claimer: nothing to do

  const std::uint64_t buffer_end = pos - (pos & mask_) + capacity_;
  const std::uint64_t stop = std::min(t, buffer_end);
  std::uint64_t end = pos + 8;
  for (; end < stop; end += 8) {
    auto& word = stamp_at(end);
    std::uint64_t w = word.load(std::memory_order_acquire);
    if (stamp_matches(w, end)) {
      if (stamp_state(w) == RecordState::aborted) continue;
      break;  // a real record: the gap ends here
    }
    reclaim(end + 8);
    if (!word.compare_exchange_strong(w, make_stamp(end, 0, RecordState::aborted))) {
      if (stamp_matches(w, end) && stamp_state(w) != RecordState::aborted) break;
    }
  }
  std::uint64_t expected = mark_pos;
  if (!head_stamp.compare_exchange_strong(
          expected, make_stamp(pos, end - pos, RecordState::padding), std::memory_order_acq_rel))
    return true;  // another repairer finished first
  control_->counters.gaps_padded.fetch_add(1, std::memory_order_relaxed);
  if (control_->waiters.load(std::memory_order_seq_cst) != 0) wake_readers();
  return true;
}

// ---- waiting -----------------------------------------------------------------------------

std::uint32_t Ring::publish_seq() const noexcept {
  return control_->futex_seq.load(std::memory_order_acquire);
}
void Ring::add_waiter() noexcept {
  control_->waiters.fetch_add(1, std::memory_order_seq_cst);
  store_load_fence();
  // An exclusive writer checks `waiters` with a plain load after a plain commit: make its
  // commit visible before we re-check, or our registration visible before its check.
  if (control_->writer_lease.load(std::memory_order_relaxed) != 0) membarrier_global();
}
void Ring::remove_waiter() noexcept { control_->waiters.fetch_sub(1, std::memory_order_relaxed); }
void Ring::wait_for_publish(std::uint32_t seen_seq, std::chrono::nanoseconds timeout) noexcept {
  futex_wait(control_->futex_seq, seen_seq, timeout);
}

}  // namespace agentbus::shm
