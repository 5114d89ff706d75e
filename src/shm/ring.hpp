// Ring: the multi-producer log of one room (design brief §4, docs/architecture.md).
//
// Claim: a CAS loop on `tail`, bounded by `limit` (the oldest uncommitted record or durable
// cursor, plus capacity) so no producer ever writes over a record that is still being written
// or that a durable reader has not passed. A claim that would straddle the end of the buffer
// becomes a padding record and is retried.
// Stamp: the claimer CASes the record's stamp from whatever stale value it finds to CLAIMED,
// then stores its identity. Commit: one CAS CLAIMED → COMMITTED, seq_cst, after the body.
// Repair: a record that stays uncommitted past the stall timeout is padded only when its
// claimer is confirmed dead; a claim never stamped is padded by marking every word of the gap
// ABORTED first, so a live-but-slow producer loses its CAS and retries instead of writing
// over a padded region.
#pragma once

#include "shm/layout.hpp"

#include <agentbus/event.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace agentbus::shm {

struct RecordFields {
  std::string_view type;
  std::string_view agent;
  std::string_view to;
  std::optional<std::uint64_t> reply_to;
  std::string_view payload;
  // Imported events only: stored in an OriginBlock (layout.hpp). Absent for local events.
  std::optional<OriginRef> origin{};
  std::optional<OriginRef> reply_to_origin{};
};

// What a reader finds at a position.
enum class Peek {
  committed,  // a complete record of `len` bytes
  padding,    // skip `len` bytes
  pending,    // claimed and not committed yet; `len` is the claim's length once stamped, else 0
  empty,      // nothing published at this position yet
  lapped,     // overwritten: the position is more than a capacity behind the tail
  unstamped,  // no stamp for this position yet; the tail was not consulted (see peek)
};

struct PeekResult {
  Peek kind;
  std::uint64_t len = 0;
};

class Ring {
 public:
  struct Timeouts {
    std::chrono::nanoseconds stall{std::chrono::milliseconds(100)};
    std::chrono::nanoseconds publish{std::chrono::seconds(1)};
    // Stamp events with CLOCK_REALTIME_COARSE (vDSO, ~5 ns, a tick's resolution: 4 ms here)
    // instead of CLOCK_REALTIME (~21 ns). Process-local, RoomOptions::coarse_timestamps.
    bool coarse_clock = false;
  };

  // `local_host` names this bus in the origin of local events; it must outlive the ring (the
  // segment header's host id, which never changes after creation).
  Ring(RingControl* control, std::byte* data, std::uint64_t capacity, std::uint64_t max_record,
       Timeouts timeouts, std::string_view local_host = {}) noexcept;

  // Sets up a zeroed control block for a ring of `capacity` bytes.
  static void initialise(RingControl& control, std::uint64_t capacity) noexcept;

  // Size of the record holding these fields; throws Error{too_large} past max_record, and
  // Error{bad_name} for an origin host that is not a host id.
  [[nodiscard]] std::uint64_t record_bytes(const RecordFields& f) const;

  PublishResult publish(const RecordFields& fields);
  // Publishes `batch` with one claim of all its records and one commit (ring_batch.cpp); the
  // ids go to `ids` when it is not empty (it must then hold batch.size()). Throws
  // Error{too_large} for a batch larger than half the ring, or holding a record past max_record.
  PublishResult publish_batch(std::span<const RecordFields> batch, std::span<EventId> ids = {});

  // Throws Error{corrupt} when the stamp at `pos` carries an impossible length.
  // With consult_tail false, a position without a matching stamp is reported as `unstamped`
  // instead of being classified empty / pending / lapped by reading the tail: a caught-up
  // reader polling the tail on every spin would steal its cache line from every producer.
  [[nodiscard]] PeekResult peek(std::uint64_t pos, bool consult_tail = true) const;
  // True if a (committed or claimed) event record starts at `pos`.
  [[nodiscard]] bool is_event_start(std::uint64_t pos) const noexcept;
  [[nodiscard]] const std::byte* at(std::uint64_t pos) const noexcept { return data_ + (pos & mask_); }

  // Pads the uncommitted record at `pos` if its claimer is dead, or the never-stamped gap
  // there. Call only after waiting at least the stall timeout on it. True if it changed.
  bool repair(std::uint64_t pos);

  // Walks the committed prefix forward; returns the new commit head.
  std::uint64_t advance_commit_head();

  // Decodes and validates the record at `rec` (which holds `len` bytes) into a view; false
  // when a length in it (an origin block's included) does not fit in `len`.
  [[nodiscard]] bool decode(const std::byte* rec, std::uint64_t len, std::uint64_t id,
                            EventView& out) const noexcept;

  // Futex wake-up, see docs/architecture.md "Wake-up".
  void wait_for_publish(std::uint32_t seen_seq, std::chrono::nanoseconds timeout) noexcept;
  [[nodiscard]] std::uint32_t publish_seq() const noexcept;
  void add_waiter() noexcept;
  void remove_waiter() noexcept;

  // Durable readers: a new one must call this after storing its cursor; returns the lowest
  // position producers still promise not to overwrite.
  std::uint64_t register_gate() noexcept;

  [[nodiscard]] RingControl& control() const noexcept { return *control_; }
  [[nodiscard]] std::uint64_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::uint64_t max_record() const noexcept { return max_record_; }
  [[nodiscard]] const Timeouts& timeouts() const noexcept { return timeouts_; }
  [[nodiscard]] std::uint64_t tail() const noexcept;
  // The seqlock check that ends a racy copy of records from `start` on: could a producer
  // have overwritten any of it since?
  [[nodiscard]] bool overwritten_since(std::uint64_t start) const noexcept;
  // The oldest intact record (a record boundary); see RingControl::head.
  [[nodiscard]] std::uint64_t oldest() const noexcept;

  // What is wrong with the control words (positions out of order or range, a durable reader
  // cursor past the tail), or empty if nothing is. Never changes the ring.
  [[nodiscard]] std::string check_control() const;
  // The first position after `pos` and before `end` that carries a plausible record stamp
  // (for skipping an unreadable record); `end` if none.
  [[nodiscard]] std::uint64_t next_intact(std::uint64_t pos, std::uint64_t end) const noexcept;

  // The sparse back-link of recent(n) (RingControl::recent_index): block boundaries are
  // multiples of index_block(). index_hint(b) is a record start at or below the boundary `b`,
  // within one max record of it and not before `oldest`, or nullopt when the entry is missing
  // or stale, or when no stamp for its own position lies there. It is a hint: peek it.
  [[nodiscard]] std::uint64_t index_block() const noexcept { return 1ull << index_shift_; }
  [[nodiscard]] std::optional<std::uint64_t> index_hint(std::uint64_t boundary,
                                                        std::uint64_t oldest) const noexcept;

 private:
  friend class ExclusiveWriter;
  // `tail` without the exclusive-writer bit (layout.hpp, kTailExclusive).
  [[nodiscard]] std::uint64_t tail_position() const noexcept;
  // A shared claimer found the exclusive bit in `tail`: take the fast path away from its
  // holder (exclusive_writer.cpp). False when a live holder stayed inside a publish past
  // `deadline` (BusFull for the caller).
  bool revoke_exclusive(std::chrono::steady_clock::time_point deadline);
  // Moves `tail` past records an exclusive writer committed but did not publish in it (it
  // died first) and clears the exclusive bit. Only when no armed writer can store `tail`.
  void settle_tail() noexcept;
  // The end of the run of whole committed or padding records starting at `from`.
  [[nodiscard]] std::uint64_t past_committed(std::uint64_t from) const noexcept;
  // reclaim() for the exclusive writer: walks every record up to a sixteenth of the ring past
  // what `end` needs (at most to limit - capacity) and moves the head there with one CAS.
  // Returns the new head.
  std::uint64_t reclaim_bulk(std::uint64_t end, std::uint64_t limit);
  // Stores `pos` as the covering record of every block boundary in [pos, end).
  void note_in_index(std::uint64_t pos, std::uint64_t end) noexcept;
  std::atomic<std::uint64_t>& stamp_at(std::uint64_t pos) const noexcept;
  // The length of the finished (committed or padding) record whose stamp, read at `pos`, is
  // `stamp`, or 0 when it is not one: unfinished, foreign, or a length leaving the buffer.
  [[nodiscard]] std::uint64_t finished_len(std::uint64_t pos, std::uint64_t stamp) const noexcept;
  // Claims `len` bytes; returns the position, or nullopt after publish timeout (BusFull).
  std::optional<std::uint64_t> claim(std::uint64_t len);
  // Stamps the claim at `pos` CLAIMED (length `len`) and stores `owner`; false (counted in
  // aborted_claims) when a repairer marked it first because we looked dead: claim again.
  bool stamp_claim(std::uint64_t pos, std::uint64_t len, std::uint64_t owner);
  // The header fields and body of a record whose stamp and owner are already stored.
  void write_record(RecordHeader* h, const RecordFields& f, std::int64_t ts_ns) noexcept;
  // An event timestamp from the clock this handle was asked for.
  [[nodiscard]] std::int64_t event_time() const noexcept;
  // Moves the head past everything a write below `end` overwrites; throws Error{corrupt}.
  void reclaim(std::uint64_t end);
  bool wait_for_room(std::uint64_t end, std::chrono::steady_clock::time_point deadline);
  std::uint64_t recompute_limit();
  bool repair_gap(std::uint64_t pos);
  void wake_readers() noexcept;

  RingControl* control_;
  std::byte* data_;
  std::uint64_t capacity_;
  std::uint64_t mask_;
  std::uint64_t max_record_;
  unsigned index_shift_;
  Timeouts timeouts_;
  std::string_view local_host_;
};

}  // namespace agentbus::shm
