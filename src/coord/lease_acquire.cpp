// Leases::acquire: all-or-none acquisition of `kind:name` sets, path-ancestry aware.
//
// THE ACQUISITION PROTOCOL (announce, then check)
//
// A per-resource hash table cannot see that `path:src` and `path:src/a.cpp` conflict, so every
// acquirer checks every lease in the (small) table. To make check-and-take race-free:
//
//  1. Reserve an entry (free, or a lapsed/dead lease): CAS to `reserving` (invisible to others),
//     write the canonical resources, owner, purpose, deadline, and a fresh token from the
//     room-wide counter (tokens are unique and increasing).
//  2. Announce: CAS reserving -> acquiring (seq_cst).
//  3. Scan every other entry (seq_cst loads). For each one whose resources conflict with ours:
//       held or renewing, lease live      -> conflict: back off (CAS acquiring -> free), report.
//       held, lapsed or session dead      -> not a lease any more (lapsing is sticky: renew
//                                            refuses a lapsed lease), ignore.
//       acquiring with a LOWER token      -> it goes first: back off, report.
//       acquiring with a HIGHER token     -> wait (bounded) until it resolves, then look again.
//       renewing                          -> wait (bounded) until it settles, then look again.
//       free / reserving                  -> not announced, ignore.
//  4. Win: CAS acquiring -> held (session pid).
//
// Why two conflicting acquirers A and B can never both hold: both announce before they scan,
// and announces and scan loads are seq_cst, so in the single total order one announce comes
// first, say A's. B's scan of A's entry comes after B's announce, hence after A's: B sees A
// acquiring or held (or already gone, in which case the leases do not overlap in time). Held
// and live: B backs off. Acquiring with a lower token: B backs off. Acquiring with a higher
// token: B waits until A resolves; A then is held (B backs off) or gone (no overlap). So B
// cannot win while A holds.
//
// Why someone wins (no livelock), and nobody deadlocks: a process waits only for an acquiring
// entry with a higher token than its own, so wait-for edges always point to higher tokens: no
// cycle, no deadlock, and every wait ends (a dead waiter target is rolled back; a stopped one
// makes the wait time out after a second). Among racers whose sets pairwise conflict, the one
// with the lowest token that announced backs off only for a live held lease; so when none was
// held before, one of them wins. No one waits on a lock: conflicts fail fast.
//
// Renewal: renew CASes held -> renewing, then checks the deadline and session: a lapsed lease
// is refused (Errc::expired), so once a scanner judged a lease lapsed it stays lapsed. A scanner
// that meets `renewing` waits for it to settle, so it never judges a deadline being rewritten.
//
// acquire() below is those steps in order, one function each.
#include <agentbus/leases.hpp>

#include "coord/lease_resources.hpp"
#include "coord/lease_table.hpp"
#include "shm/clock.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace agentbus {

using coord::leases::LeaseEntry;
using coord::leases::LeaseFields;
using coord::leases::Phase;
using coord::leases::gen_of;
using coord::leases::kSc;
using coord::leases::make_state;
using coord::leases::phase_of;
using shm::monotonic_ns;
using shm::realtime_ns;

namespace {

// What acquire() writes into the entry it reserves, checked and laid out once per call.
struct Request {
  std::vector<std::string> canonical;  // the resources, sorted and de-duplicated
  LeaseFields fields{};                // all but acquired_ts_ns, which each attempt sets
  std::uint32_t session = 0;
};

Request make_request(const Leases::Impl& m, std::string_view owner, const std::vector<std::string>& resources,
                     std::string_view purpose, const LeaseOptions& o) {
  if (owner.empty()) throw Error(Errc::invalid_argument, "a lease needs an owner");
  if (owner.size() > kMaxLeaseOwnerBytes)
    throw Error(Errc::too_large, "owner is longer than " + std::to_string(kMaxLeaseOwnerBytes) + " bytes");
  if (purpose.size() > kMaxLeasePurposeBytes)
    throw Error(Errc::too_large, "purpose is longer than " + std::to_string(kMaxLeasePurposeBytes) + " bytes");
  if (o.ttl <= std::chrono::milliseconds::zero() || o.ttl > kMaxLeaseTtl)
    throw Error(Errc::invalid_argument, "a lease's ttl must be from 1ms to 24h");
  Request r;
  r.canonical = coord::leases::canonical_resources(resources);
  const std::string blob = coord::leases::resource_lines(r.canonical);

  const auto session = static_cast<std::uint32_t>(o.session_pid != 0 ? o.session_pid : static_cast<int>(m.self_pid));
  LeaseFields& f = r.fields;
  f.owner_pid = session;
  f.owner_start = shm::process_start_time_cached(session);
  if (f.owner_start == 0)
    throw Error(Errc::invalid_argument, "session process " + std::to_string(session) + " does not exist");
  f.owner_len = static_cast<std::uint8_t>(owner.size());
  std::copy_n(owner.data(), owner.size(), f.owner);
  f.purpose_len = static_cast<std::uint16_t>(purpose.size());
  std::copy_n(purpose.data(), purpose.size(), f.purpose);
  f.resources_len = static_cast<std::uint16_t>(blob.size());
  std::copy_n(blob.data(), blob.size(), f.resources);
  r.session = session;
  return r;
}

// An entry step 1 may reserve: free, or holding a lapsed lease or a dead session's.
struct Candidate {
  std::uint32_t index = 0;
  std::uint64_t state = 0;
  bool was_expired = false, was_dead = false;
};

// 1a. The first reusable entry from `start` on; Error{no_space} when every one holds a live lease.
Candidate find_reusable(Leases::Impl& m, std::uint32_t start) {
  for (std::uint32_t k = 0; k < m.capacity; ++k) {
    const std::uint32_t i = (start + k) % m.capacity;
    LeaseEntry& e = m.entry(i);
    const std::uint64_t s = e.state.load(kSc);
    const Phase p = phase_of(s);
    if (p == Phase::free) return {i, s};
    if (p == Phase::held) {
      auto snap = m.read(i);
      if (!snap || snap->state != s) continue;
      if (snap->now_ns >= snap->deadline_ns) return {i, s, true, false};
      if (!shm::process_alive_cached({snap->f.owner_pid, snap->f.owner_start})) return {i, s, false, true};
    } else if (m.roll_back(e, s)) {
      --k;  // undone (a dead process's): look at it again (unsigned wrap at 0 is fine)
    }
  }
  throw Error(Errc::no_space, "the lease table of room '" + m.room.name() + "' is full (" +
                                  std::to_string(m.capacity) + " live leases); release some, or create "
                                  "the table with a larger capacity");
}

// An entry we hold in reserving, and the states we move it through.
struct Reservation {
  std::uint32_t index = 0;
  std::uint32_t gen = 0;
  std::uint64_t token = 0;
  std::uint64_t reserving = 0, acquiring = 0;
};

// 1b. Takes `c` (CAS to reserving) and writes the lease into it, with a fresh token; nullopt
// when the entry changed since it was looked at.
std::optional<Reservation> reserve(Leases::Impl& m, const Candidate& c, Request& r, std::chrono::milliseconds ttl) {
  LeaseEntry& e = m.entry(c.index);
  Reservation res;
  res.index = c.index;
  res.gen = gen_of(c.state) + 1;
  res.reserving = make_state(Phase::reserving, res.gen, shm::self_process());
  std::uint64_t expected = c.state;
  if (!e.state.compare_exchange_strong(expected, res.reserving, kSc)) return std::nullopt;
  if (c.was_expired) m.header->expired_reclaimed.fetch_add(1, std::memory_order_relaxed);
  if (c.was_dead) m.header->dead_sessions_reclaimed.fetch_add(1, std::memory_order_relaxed);
  res.token = m.header->next_token.fetch_add(1, kSc) + 1;
  r.fields.acquired_ts_ns = realtime_ns();
  shm::copy_to_ring(reinterpret_cast<std::byte*>(&e.fields), &r.fields, sizeof r.fields);
  e.token.store(res.token, std::memory_order_release);
  e.ttl_ms.store(ttl.count(), std::memory_order_release);
  e.deadline_ns.store(monotonic_ns() + std::chrono::nanoseconds(ttl).count(), std::memory_order_release);
  e.expires_at_ns.store(realtime_ns() + std::chrono::nanoseconds(ttl).count(), std::memory_order_release);
  res.acquiring = make_state(Phase::acquiring, res.gen, shm::self_process());
  return res;
}

// 2. Announces the lease to other acquirers (reserving -> acquiring); false when we were
// rolled back meanwhile (taken for dead).
bool announce(Leases::Impl& m, const Reservation& res) {
  std::uint64_t expected = res.reserving;
  return m.entry(res.index).state.compare_exchange_strong(expected, res.acquiring, kSc);
}

// 3, for entry `j`: looks until it settles; the refusal if it holds a live conflicting lease
// or is acquiring one with a lower token.
std::optional<LeaseAcquisition> refusal_by(Leases::Impl& m, std::uint32_t j, const Reservation& res,
                                           const std::vector<std::string>& ours) {
  for (;;) {
    auto snap = m.read(j);
    if (!snap) return std::nullopt;
    const Phase p = phase_of(snap->state);
    if (coord::leases::transitional(p) && m.roll_back(m.entry(j), snap->state)) continue;
    const std::vector<std::string> theirs =
        coord::leases::split_lines(std::string_view(snap->f.resources, snap->f.resources_len));
    const auto hit = coord::leases::first_conflict(ours, theirs);
    if (!hit) return std::nullopt;
    if (p == Phase::held) {
      if (m.live(*snap)) return m.refusal(*hit->ours, *snap, *hit->theirs, false);
      return std::nullopt;
    }
    if (p == Phase::renewing) {
      m.wait_change(j, snap->state, "being renewed");
      continue;
    }
    // acquiring
    if (snap->token < res.token) return m.refusal(*hit->ours, *snap, *hit->theirs, true);
    m.wait_change(j, snap->state, "being acquired");
  }
}

// 3. Checks every other announced lease; the first refusal, if any.
std::optional<LeaseAcquisition> first_refusal(Leases::Impl& m, const Reservation& res,
                                              const std::vector<std::string>& ours) {
  for (std::uint32_t j = 0; j < m.capacity; ++j) {
    if (j == res.index) continue;
    if (auto lost = refusal_by(m, j, res, ours)) return lost;
  }
  return std::nullopt;
}

// Gives a refused (or failed) acquisition's entry back: acquiring -> free.
void back_off(Leases::Impl& m, const Reservation& res) {
  std::uint64_t cur = res.acquiring;
  m.entry(res.index).state.compare_exchange_strong(cur, make_state(Phase::free, res.gen, {}), kSc);
}

// 4. Wins (acquiring -> held by the session); false when we were rolled back meanwhile.
bool win(Leases::Impl& m, const Reservation& res, const Request& r) {
  std::uint64_t expected = res.acquiring;
  return m.entry(res.index).state.compare_exchange_strong(
      expected, make_state(Phase::held, res.gen, {r.session, r.fields.owner_start}), kSc);
}

// The lease just won, announced as LEASE_ACQUIRED. A lease nobody was told of must not stand:
// if the event cannot be published, the entry is freed again and the error thrown.
LeaseAcquisition publish_acquired(Leases::Impl& m, const Reservation& res, const Request& r,
                                  std::string_view owner, std::string_view purpose, std::chrono::milliseconds ttl) {
  LeaseEntry& e = m.entry(res.index);
  m.header->acquired.fetch_add(1, std::memory_order_relaxed);
  LeaseInfo l;
  l.id = res.token;
  l.owner = std::string(owner);
  l.resources = r.canonical;
  l.purpose = std::string(purpose);
  l.session_pid = static_cast<int>(r.session);
  l.ttl = ttl;
  l.expires_in = ttl;
  l.expires_at_ns = e.expires_at_ns.load(std::memory_order_acquire);
  l.acquired_ts_ns = r.fields.acquired_ts_ns;
  try {
    m.audit("LEASE_ACQUIRED", l);
  } catch (...) {
    std::uint64_t held = make_state(Phase::held, res.gen, {r.session, r.fields.owner_start});
    e.state.compare_exchange_strong(held, make_state(Phase::free, res.gen, {}), kSc);
    throw;
  }
  LeaseAcquisition won;
  won.lease = std::move(l);
  return won;
}

}  // namespace

LeaseAcquisition Leases::acquire(std::string_view owner, const std::vector<std::string>& resources, std::string_view purpose,
                          const LeaseOptions& o) {
  Impl& m = *impl_;
  Request request = make_request(m, owner, resources, purpose, o);
  const std::uint32_t start = (m.self_pid * 2654435761u) % m.capacity;
  for (int attempt = 0; attempt < 64; ++attempt) {
    const std::optional<Reservation> res = reserve(m, find_reusable(m, start), request, o.ttl);
    if (!res || !announce(m, *res)) continue;
    std::optional<LeaseAcquisition> lost;
    try {
      lost = first_refusal(m, *res, request.canonical);
    } catch (...) {
      back_off(m, *res);
      throw;
    }
    if (lost) {
      back_off(m, *res);
      return *std::move(lost);
    }
    if (!win(m, *res, request)) continue;
    return publish_acquired(m, *res, request, owner, purpose, o.ttl);
  }
  throw Error(Errc::timeout, "could not take a lease entry: the table kept changing");
}

}  // namespace agentbus
