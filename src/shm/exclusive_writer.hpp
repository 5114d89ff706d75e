// Exclusive publication: one writer of a room that, while it holds the room's writer lease
// and is armed, publishes with plain stores and release stores only (Aeron's
// ExclusivePublication is the model), beside shared writers that stay correct.
//
// Lease: RingControl::writer_lease, an owner word (pid + start time) taken by CAS from 0 or
// from a holder confirmed dead, released on close. Arming: the holder sets kTailExclusive in
// `tail` by CAS, then clears kWriterUnarmed in `writer_state` by CAS from the value it read
// before (no revoker in progress, same revoke generation). While armed it owns `tail`: it
// writes a record, stamps it COMMITTED (release), then stores the new tail (release), all
// bracketed by writer_busy = 1 / 0. Nothing is visible before the stamp and nothing needs
// repair after a crash: a record committed but not yet in `tail` is found by the next writer
// (settle_tail), a record half written is simply overwritten.
//
// Revoking (a shared writer whose claim finds kTailExclusive, Ring::revoke_exclusive): set
// kWriterUnarmed with one more revoker and a new generation, membarrier_global() (so either
// the holder's busy = 1 is visible now, or its next load of writer_state sees the revoke),
// wait until writer_busy is 0 or the holder is confirmed dead, move `tail` past records the
// holder committed, clear kTailExclusive, and drop the revoker count. The holder then
// publishes through the shared path and re-arms after 64 publishes in a row that nobody else
// interleaved with.
//
// Waking: the holder checks `waiters` with a plain load after its commit; a reader that
// registers as a waiter while a lease is held calls membarrier_global() before it re-checks,
// so it either sees the commit or the holder sees it waiting.
//
// Thread safety: one ExclusiveWriter is used by one thread at a time.
#pragma once

#include "shm/ring.hpp"

namespace agentbus::shm {

class ExclusiveWriter {
 public:
  // Takes the lease (from a dead holder too, counted in dead_writer_leases); throws
  // Error{conflict} when a live process holds it, this one included.
  explicit ExclusiveWriter(Ring& ring);
  ~ExclusiveWriter();
  ExclusiveWriter(const ExclusiveWriter&) = delete;
  ExclusiveWriter& operator=(const ExclusiveWriter&) = delete;

  PublishResult publish(const RecordFields& fields);
  // True while the fast path is armed (no shared writer took it away since).
  [[nodiscard]] bool armed() const noexcept { return armed_; }
  // Gives the lease back; later publishes go through the shared path.
  void release() noexcept;

 private:
  PublishResult publish_shared(const RecordFields& fields, std::uint64_t len);
  bool try_arm();
  void set_unarmed() noexcept;

  Ring& ring_;
  std::uint64_t lease_ = 0;
  std::uint64_t owner_;      // pack_owner() of this process, for record headers
  bool held_ = false;
  bool can_arm_ = false;
  bool armed_ = false;
  std::uint64_t tail_ = 0, limit_ = 0, head_ = 0;  // cached while armed: only we move tail
  unsigned in_a_row_ = 0;
  std::uint64_t expect_next_ = 0;
};

}  // namespace agentbus::shm
