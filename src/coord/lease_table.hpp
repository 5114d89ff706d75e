// The lease table (internal): Leases::Impl, its entries read consistently (Snapshot), and
// what acquire, renew, release and the queries share: rolling back a dead process's change,
// waiting out a live one, finding a lease by id, the refusal text and the audit events. The
// layout and the state machine are in coord/leases_layout.hpp; the acquisition protocol is in
// lease_acquire.cpp.
#pragma once

#include <agentbus/leases.hpp>

#include "coord/leases_layout.hpp"
#include "shm/ring_copy.hpp"
#include "shm/segment.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

namespace agentbus {
namespace coord::leases {

// State words are loaded and changed seq_cst: the acquisition protocol's argument
// (lease_acquire.cpp) rests on one total order of announces and scan loads.
inline constexpr auto kSc = std::memory_order_seq_cst;

inline LeaseFields load_fields(const LeaseFields& src) {
  LeaseFields out;
  shm::copy_from_ring(&out, reinterpret_cast<const std::byte*>(&src), sizeof(LeaseFields));
  return out;
}

// One entry read consistently.
struct Snapshot {
  std::uint64_t state = 0;
  std::uint64_t token = 0;
  std::int64_t deadline_ns = 0;
  std::int64_t expires_at_ns = 0;
  std::int64_t ttl_ms = 0;
  std::int64_t now_ns = 0;  // CLOCK_MONOTONIC when the fields were known to be current
  LeaseFields f;
};

}  // namespace coord::leases

struct Leases::Impl {
  using LeaseEntry = coord::leases::LeaseEntry;
  using LeasesHeader = coord::leases::LeasesHeader;
  using Snapshot = coord::leases::Snapshot;

  Room room;
  std::shared_ptr<shm::Segment> segment;
  LeasesHeader* header;
  std::byte* entries;
  std::uint64_t stride;
  std::uint32_t capacity;
  std::uint32_t self_pid;

  LeaseEntry& entry(std::uint32_t i) const {
    return *reinterpret_cast<LeaseEntry*>(entries + std::uint64_t(i) * stride);
  }

  // A transition left half done by a dead process: undo it. True if it was one.
  bool roll_back(LeaseEntry& e, std::uint64_t s) const;
  // Entry `i` read consistently while it is announced (acquiring, held or renewing);
  // nullopt when it is not. The gen moves on every reserve and every renew, so an unchanged
  // gen and phase mean nothing read here changed.
  std::optional<Snapshot> read(std::uint32_t i) const;
  // Ttl running and session alive, as of the snapshot.
  bool live(const Snapshot& s) const;
  LeaseInfo info(const Snapshot& s) const;
  // Waits (bounded) until entry `i` leaves state `s`.
  void wait_change(std::uint32_t i, std::uint64_t s, const char* doing) const;
  // The live lease with id `id` (held or renewing), with its index.
  std::optional<std::pair<std::uint32_t, Snapshot>> lookup(std::uint64_t id, bool live_only) const;
  // acquire()'s result when `theirs` holds (or is acquiring) `their_resource`, which conflicts
  // with our `ours`; counts the conflict.
  LeaseAcquisition refusal(std::string_view ours, const Snapshot& theirs, std::string_view their_resource,
                           bool acquiring) const;
  // Publishes LEASE_ACQUIRED / _RENEWED / _RELEASED; Error{timeout} when the room is full.
  void audit(std::string_view type, const LeaseInfo& l);
};

}  // namespace agentbus
