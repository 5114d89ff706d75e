// Ring::publish_batch: many records, one claim, one commit.
//
// The batch is claimed as one stretch of `total` bytes and the first record is stamped
// CLAIMED with the length of the whole stretch, so a reader waiting at it, or a repairer
// padding it after its producer died, treats the batch as one record. The other records are
// written complete, stamps COMMITTED included, behind that first stamp; readers only reach them
// by passing it, and the one commit CAS of the first stamp (CLAIMED, whole length -> COMMITTED,
// its own length) publishes them all. A producer killed anywhere before that CAS leaves one
// claimed record of `total` bytes, padded as a whole once its death is confirmed.
#include "shm/ring.hpp"

#include "shm/clock.hpp"
#include "shm/failpoint.hpp"
#include "shm/process.hpp"

#include <agentbus/error.hpp>

#include <string>
#include <vector>

namespace agentbus::shm {

PublishResult Ring::publish_batch(std::span<const RecordFields> batch, std::span<EventId> ids) {
  if (batch.empty()) return {PublishStatus::ok, tail()};
  if (!ids.empty() && ids.size() < batch.size())
    throw Error(Errc::invalid_argument, "publish_batch: room for " + std::to_string(ids.size()) +
                                            " ids given for " + std::to_string(batch.size()) + " events");
  thread_local std::vector<std::uint64_t> lens;
  lens.clear();
  std::uint64_t total = 0;
  for (const RecordFields& f : batch) total += lens.emplace_back(record_bytes(f));
  // Half the ring at most: a batch that meets the buffer end pads the rest of it and starts
  // over at the beginning, and padding plus batch must fit in one ring's worth of room past a
  // reader that is caught up.
  if (total > capacity_ / 2)
    throw Error(Errc::too_large, "a batch of " + std::to_string(batch.size()) + " events takes " +
                                     std::to_string(total) + " bytes, more than half the room's ring (" +
                                     std::to_string(capacity_ / 2) + " of " + std::to_string(capacity_) +
                                     " bytes): publish it in smaller batches");
  if (batch.size() == 1) {
    const PublishResult r = publish(batch[0]);
    if (r.ok() && !ids.empty()) ids[0] = r.id;
    return r;
  }
  const std::uint64_t owner = pack_owner(self_process());
  for (;;) {
    const auto claimed_at = claim(total);
    if (!claimed_at) return {PublishStatus::bus_full, 0};
    const std::uint64_t pos = *claimed_at;
    reclaim(pos + total);
    failpoint(Failpoint::before_stamp);
    if (!stamp_claim(pos, total, owner)) continue;

    const std::int64_t ts = event_time();
    std::uint64_t at = pos;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto* h = reinterpret_cast<RecordHeader*>(data_ + (at & mask_));
      if (i > 0) {
        h->stamp.store(make_stamp(at, lens[i], RecordState::committed), std::memory_order_relaxed);
        h->owner.store(owner, std::memory_order_relaxed);
      }
      write_record(h, batch[i], ts);
      at += lens[i];
    }
    failpoint(Failpoint::before_commit);

    // seq_cst: orders every store above, and the waiter check below (see publish()).
    std::uint64_t expected = make_stamp(pos, total, RecordState::claimed);
    if (!stamp_at(pos).compare_exchange_strong(expected, make_stamp(pos, lens[0], RecordState::committed),
                                               std::memory_order_seq_cst)) {
      control_->counters.aborted_claims.fetch_add(1, std::memory_order_relaxed);
      continue;  // declared dead and padded as a whole: nothing of it is visible
    }
    if (control_->waiters.load(std::memory_order_seq_cst) != 0) wake_readers();
    at = pos;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (!ids.empty()) ids[i] = at;
      note_in_index(at, at + lens[i]);
      at += lens[i];
    }
    return {PublishStatus::ok, pos};
  }
}

}  // namespace agentbus::shm
