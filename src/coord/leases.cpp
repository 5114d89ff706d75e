// Resource leases: opening the lease table, renew, release and the queries. Guarantees are in
// include/agentbus/leases.hpp, the layout and state machine in coord/leases_layout.hpp. The
// acquisition protocol, and why it is race-free, is in lease_acquire.cpp; the resource grammar
// in lease_resources.cpp; what these calls share (Leases::Impl) in coord/lease_table.{hpp,cpp}.
#include <agentbus/leases.hpp>

#include "bus/room_access.hpp"
#include "coord/lease_table.hpp"
#include "coord/region.hpp"
#include "shm/layout.hpp"
#include "shm/clock.hpp"
#include "shm/process.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <optional>
#include <unistd.h>

namespace agentbus {

using coord::leases::LeaseEntry;
using coord::leases::LeasesHeader;
using coord::leases::Phase;
using coord::leases::gen_of;
using coord::leases::kSc;
using coord::leases::make_state;
using coord::leases::phase_of;

namespace {

constexpr coord::RegionKind kRegion{"lease table", "#leases", coord::leases::kMagic, coord::leases::kVersion,
                                    sizeof(LeasesHeader)};

using shm::monotonic_ns;
using shm::realtime_ns;

using shm::align64;

std::uint64_t layout_bytes(std::uint32_t capacity, std::uint64_t& entries_offset, std::uint64_t& stride) {
  entries_offset = align64(sizeof(LeasesHeader));
  stride = align64(sizeof(LeaseEntry));
  return entries_offset + std::uint64_t(capacity) * stride;
}

}  // namespace

Leases::Leases(Room room, const LeasesOptions& o) {
  if (o.capacity == 0 || o.capacity > 65536) throw Error(Errc::invalid_argument, "lease capacity must be from 1 to 65536");
  std::uint64_t entries_off = 0, stride = 0;
  const std::uint64_t bytes = layout_bytes(o.capacity, entries_off, stride);
  const auto& seg = RoomAccess::segment(room);
  const coord::Region region =
      coord::Region::open(*seg, room.name(), kRegion, bytes, o.create, [&](std::span<std::byte> r) {
        auto* h = reinterpret_cast<LeasesHeader*>(r.data());
        h->capacity = o.capacity;
        h->entry_stride = stride;
        h->entries_offset = entries_off;
        h->total_bytes = bytes;
      });
  auto* h = region.header<LeasesHeader>();
  std::uint64_t e2 = 0, s2 = 0;
  region.require(h->capacity != 0 && h->capacity <= 65536 && layout_bytes(h->capacity, e2, s2) == h->total_bytes &&
                     h->total_bytes <= region.size() && e2 == h->entries_offset && s2 == h->entry_stride,
                 "inconsistent layout");
  impl_ = std::make_unique<Impl>(Impl{room, seg, h, region.bytes().data() + h->entries_offset, h->entry_stride,
                                      h->capacity, static_cast<std::uint32_t>(::getpid())});
}

Leases::~Leases() = default;
Leases::Leases(Leases&&) noexcept = default;
Leases& Leases::operator=(Leases&&) noexcept = default;

std::uint32_t Leases::capacity() const noexcept { return impl_->capacity; }

LeaseRenewal Leases::renew(std::uint64_t id, std::string_view owner, std::chrono::milliseconds ttl) {
  Impl& m = *impl_;
  if (ttl <= std::chrono::milliseconds::zero() || ttl > kMaxLeaseTtl)
    throw Error(Errc::invalid_argument, "a lease's ttl must be from 1ms to 24h");
  for (int attempt = 0; attempt < 1000; ++attempt) {
    auto found = m.lookup(id, false);
    if (!found)
      return {RenewStatus::gone, {},
              "no lease " + std::to_string(id) + " in room '" + m.room.name() + "' (released, or lapsed and reused)"};
    auto& [i, snap] = *found;
    LeaseInfo l = m.info(snap);
    if (l.owner != owner)
      throw Error(Errc::conflict, "lease " + std::to_string(id) + " is held by " + l.owner + ", not " + std::string(owner));
    LeaseEntry& e = m.entry(i);
    std::uint64_t s = snap.state;
    // A renew is a new incarnation (gen + 1): a reserver or scanner that judged the old
    // state lapsed cannot CAS against it, and re-reads see that something changed.
    const std::uint64_t renewing = make_state(Phase::renewing, gen_of(s) + 1, shm::self_process());
    if (!e.state.compare_exchange_strong(s, renewing, kSc)) continue;
    // Judged inside `renewing`, so a lease a scanner found lapsed cannot be revived.
    const bool lapsed = monotonic_ns() >= e.deadline_ns.load(std::memory_order_acquire);
    const bool dead = !lapsed && !shm::process_alive({snap.f.owner_pid, snap.f.owner_start});
    if (!lapsed && !dead) {
      e.ttl_ms.store(ttl.count(), std::memory_order_release);
      e.deadline_ns.store(monotonic_ns() + std::chrono::nanoseconds(ttl).count(), std::memory_order_release);
      e.expires_at_ns.store(realtime_ns() + std::chrono::nanoseconds(ttl).count(), std::memory_order_release);
    }
    std::uint64_t expected = renewing;
    const std::uint64_t renewed = coord::leases::LeaseStateWord::keep_holder(snap.state, Phase::held, gen_of(renewing));
    const bool back = e.state.compare_exchange_strong(expected, renewed, kSc);  // gens only rise
    if (lapsed || dead)
      return {RenewStatus::lapsed, {},
              "lease " + std::to_string(id) + " of " + l.owner + " has " +
                  (lapsed ? "lapsed" : "ended: its session process died") + "; acquire the resources again"};
    if (!back) continue;  // rolled back (taken for dead): try again
    l.ttl = ttl;
    l.expires_in = ttl;
    l.expires_at_ns = e.expires_at_ns.load(std::memory_order_acquire);
    m.audit("LEASE_RENEWED", l);
    return {RenewStatus::renewed, std::move(l), {}};
  }
  throw Error(Errc::timeout, "lease " + std::to_string(id) + " kept changing");
}

bool Leases::release(std::uint64_t id, std::string_view owner) {
  Impl& m = *impl_;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    auto found = m.lookup(id, true);
    if (!found) return false;
    auto& [i, snap] = *found;
    LeaseInfo l = m.info(snap);
    if (l.owner != owner)
      throw Error(Errc::conflict, "lease " + std::to_string(id) + " is held by " + l.owner + ", not " + std::string(owner));
    std::uint64_t s = snap.state;
    if (!m.entry(i).state.compare_exchange_strong(s, make_state(Phase::free, gen_of(s), {}), kSc)) continue;
    m.audit("LEASE_RELEASED", l);
    return true;
  }
  throw Error(Errc::timeout, "lease " + std::to_string(id) + " kept changing");
}

std::vector<LeaseInfo> Leases::list() const {
  const Impl& m = *impl_;
  std::vector<LeaseInfo> out;
  for (std::uint32_t i = 0; i < m.capacity; ++i) {
    const Phase p = phase_of(m.entry(i).state.load(kSc));
    if (p != Phase::held && p != Phase::renewing) continue;
    auto snap = m.read(i);
    if (!snap || phase_of(snap->state) == Phase::acquiring || !m.live(*snap)) continue;
    out.push_back(m.info(*snap));
  }
  std::sort(out.begin(), out.end(), [](const LeaseInfo& a, const LeaseInfo& b) { return a.id < b.id; });
  return out;
}

std::optional<LeaseInfo> Leases::find(std::uint64_t id) const {
  auto found = impl_->lookup(id, true);
  if (!found) return std::nullopt;
  return impl_->info(found->second);
}

std::vector<LeaseHolder> Leases::holders_of(std::string_view resource) const {
  validate_lease_resource(resource);
  std::vector<LeaseHolder> out;
  for (LeaseInfo& l : list()) {
    for (const std::string& r : l.resources)
      if (lease_resources_conflict(resource, r)) {
        out.push_back({r, std::move(l)});
        break;
      }
  }
  return out;
}

std::optional<LeaseHolder> Leases::holder_of(std::string_view resource) const {
  auto all = holders_of(resource);
  if (all.empty()) return std::nullopt;
  return std::move(all.front());
}

std::vector<Counter> counter_list(const LeasesCounters& c) {
  return {{"acquired", c.acquired},
          {"conflicts", c.conflicts},
          {"expired_reclaimed", c.expired_reclaimed},
          {"dead_sessions_reclaimed", c.dead_sessions_reclaimed},
          {"transitions_rolled_back", c.transitions_rolled_back}};
}

LeasesCounters Leases::counters() const {
  const LeasesHeader& h = *impl_->header;
  auto get = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  return {get(h.acquired), get(h.conflicts), get(h.expired_reclaimed), get(h.dead_sessions_reclaimed),
          get(h.transitions_rolled_back)};
}

}  // namespace agentbus
