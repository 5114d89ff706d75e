// The ring's checks: its control words (what Bus runs when it attaches a room), the step over
// an unreadable record, and the fields of a record about to be published.
#include "shm/ring.hpp"

#include <agentbus/error.hpp>
#include <agentbus/names.hpp>

#include <string>

namespace agentbus::shm {

std::string Ring::check_control() const {
  auto bad = [](const char* word, std::uint64_t value, const std::string& expected) {
    return std::string(word) + " is " + std::to_string(value) + ", expected " + expected;
  };
  // Each pair is loaded lower bound first: both words only grow, so a racing producer cannot
  // make a sane ring look broken.
  const std::uint64_t head = control_->head.load(std::memory_order_acquire);
  const std::uint64_t commit = control_->commit_head.load(std::memory_order_acquire);
  const std::uint64_t raw_tail = control_->tail.load(std::memory_order_acquire);
  const std::uint64_t tail = raw_tail & ~kTailExclusive;  // the bit: an exclusive writer owns it
  const std::uint64_t limit = limit_of(control_->limit_word.load(std::memory_order_acquire));
  constexpr std::uint64_t kMaxPosition = 1ull << 60;
  if (tail % 8 != 0 || tail >= kMaxPosition)
    return bad("tail", raw_tail, "a multiple of 8 below 2^60");
  if (head % 8 != 0 || head > tail) return bad("head", head, "a multiple of 8 from 0 to tail " + std::to_string(tail));
  if (commit % 8 != 0 || commit > tail)
    return bad("commit_head", commit, "a multiple of 8 from 0 to tail " + std::to_string(tail));
  if (limit < capacity_ || tail > limit)
    return bad("limit", limit, "from tail " + std::to_string(tail) + " and at least " + std::to_string(capacity_));
  const std::uint64_t tail_now = tail_position();
  if (tail_now > control_->head.load(std::memory_order_acquire) + 2 * capacity_)
    return bad("tail", tail_now, "at most two ring capacities (" + std::to_string(2 * capacity_) +
                                     ") past head " + std::to_string(head));
  const std::uint64_t limit_now = limit_of(control_->limit_word.load(std::memory_order_acquire));
  const std::uint64_t commit_now = control_->commit_head.load(std::memory_order_acquire);
  if (limit_now > commit_now + capacity_)
    return bad("limit", limit_now, "at most commit_head " + std::to_string(commit_now) + " + capacity " +
                                       std::to_string(capacity_));
  // A reader may already have read what an exclusive writer committed and not yet covered
  // with `tail` (or never will: it died there); such records count as published here.
  const auto reader_limit = [&] {
    const std::uint64_t t = control_->tail.load(std::memory_order_acquire);
    return (t & kTailExclusive) ? past_committed(t & ~kTailExclusive) : t;
  };
  for (std::size_t i = 0; i < kMaxReaders; ++i) {
    const ReaderSlot& r = control_->readers[i];
    const std::uint64_t kind = r.state.load(std::memory_order_acquire) & kReaderKindMask;
    if (kind > kReaderDurable)
      return "reader slot " + std::to_string(i) + " has state kind " + std::to_string(kind >> 56) + ", expected 0..3";
    if (kind != kReaderDurable) continue;
    const std::uint64_t cursor = r.cursor.load(std::memory_order_acquire);
    if (cursor % 8 != 0 || cursor > reader_limit())
      return "durable reader slot " + std::to_string(i) + ": " +
             bad("cursor", cursor, "a multiple of 8 up to the tail");
    if (r.name_len == 0 || r.name_len > kMaxReaderName)
      return "durable reader slot " + std::to_string(i) + ": " +
             bad("name_len", r.name_len, "1.." + std::to_string(kMaxReaderName));
  }
  return {};
}

std::uint64_t Ring::next_intact(std::uint64_t pos, std::uint64_t end) const noexcept {
  for (pos = align8(pos + 1); pos < end; pos += 8) {
    const std::uint64_t stamp = stamp_at(pos).load(std::memory_order_acquire);
    if (!stamp_matches(stamp, pos)) continue;
    const std::uint64_t len = stamp_len(stamp);
    if (len < 8 || (pos & mask_) + len > capacity_) continue;
    if (stamp_state(stamp) == RecordState::padding) return pos;
    if (stamp_state(stamp) == RecordState::committed && len >= kRecordHeaderBytes && len <= max_record_)
      return pos;
  }
  return end;
}

std::uint64_t Ring::record_bytes(const RecordFields& f) const {
  if (f.type.empty()) throw Error(Errc::invalid_argument, "event type must not be empty");
  if (f.type.size() > kMaxTypeBytes)
    throw Error(Errc::too_large, "event type is " + std::to_string(f.type.size()) +
                                     " bytes, max " + std::to_string(kMaxTypeBytes));
  if (f.agent.size() > kMaxAgentBytes)
    throw Error(Errc::too_large, "agent id is " + std::to_string(f.agent.size()) +
                                     " bytes, max " + std::to_string(kMaxAgentBytes));
  if (f.to.size() > kMaxAgentBytes)
    throw Error(Errc::too_large, "recipient id is " + std::to_string(f.to.size()) +
                                     " bytes, max " + std::to_string(kMaxAgentBytes));
  std::uint64_t origin_bytes = 0;
  if (f.origin) {
    validate_host_id(f.origin->host);
    origin_bytes = kOriginBlockBytes + f.origin->host.size();
    if (f.reply_to_origin) {
      validate_host_id(f.reply_to_origin->host);
      origin_bytes += f.reply_to_origin->host.size();
    }
  } else if (f.reply_to_origin) {
    throw Error(Errc::invalid_argument, "reply_to_origin is for imported events: publish it with an origin");
  }
  const std::uint64_t fixed =
      kRecordHeaderBytes + (f.reply_to ? kReplyToBytes : 0) + origin_bytes + f.type.size() + f.agent.size() +
      f.to.size();
  const std::uint64_t total = align8(fixed + f.payload.size());
  if (total > max_record_) {
    throw Error(Errc::too_large,
                "payload is " + std::to_string(f.payload.size()) + " bytes, max " +
                    std::to_string(max_record_ - fixed) +
                    " bytes in this room (create the room with a larger max_record_bytes, or "
                    "put the data in a file and publish its path)");
  }
  return total;
}

}  // namespace agentbus::shm
