// The lease table: the steps acquire, renew, release and the queries share
// (coord/lease_table.hpp).
#include "coord/lease_table.hpp"

#include "coord/lease_resources.hpp"
#include "shm/clock.hpp"
#include "shm/fences.hpp"
#include "shm/process.hpp"
#include <agentbus/json_text.hpp>

#include <agentbus/error.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <thread>

namespace agentbus {

using coord::leases::LeaseEntry;
using coord::leases::LeaseFields;
using coord::leases::Phase;
using coord::leases::Snapshot;
using coord::leases::gen_of;
using coord::leases::kSc;
using coord::leases::load_fields;
using coord::leases::make_state;
using coord::leases::phase_of;
using coord::leases::pid_of;
using coord::leases::split_lines;

namespace {

using shm::monotonic_ns;
using Clock = std::chrono::steady_clock;
constexpr auto kTransitionWait = std::chrono::milliseconds(1000);

std::string duration_text(std::chrono::milliseconds d) {
  const std::int64_t ms = std::max<std::int64_t>(0, d.count());
  if (ms < 1000) return std::to_string(ms) + "ms";
  const std::int64_t s = (ms + 999) / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m";
}

std::string utc_text(std::int64_t ns) {
  const std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

bool Leases::Impl::roll_back(LeaseEntry& e, std::uint64_t s) const {
  const Phase p = phase_of(s);
  if (!coord::leases::transitional(p) || coord::leases::LeaseStateWord::holder_alive(s)) return false;
  std::uint64_t back = 0;
  if (p == Phase::renewing) {
    const LeaseFields f = load_fields(e.fields);
    back = make_state(Phase::held, gen_of(s), {f.owner_pid, f.owner_start});
  } else {
    back = make_state(Phase::free, gen_of(s), {});
  }
  if (e.state.compare_exchange_strong(s, back, kSc))
    header->transitions_rolled_back.fetch_add(1, std::memory_order_relaxed);
  return true;
}

std::optional<Snapshot> Leases::Impl::read(std::uint32_t i) const {
  LeaseEntry& e = entry(i);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    Snapshot snap;
    snap.state = e.state.load(kSc);
    const Phase p = phase_of(snap.state);
    if (p == Phase::free || p == Phase::reserving) return std::nullopt;
    snap.token = e.token.load(std::memory_order_acquire);
    snap.deadline_ns = e.deadline_ns.load(std::memory_order_acquire);
    snap.expires_at_ns = e.expires_at_ns.load(std::memory_order_acquire);
    snap.ttl_ms = e.ttl_ms.load(std::memory_order_acquire);
    snap.f = load_fields(e.fields);
    // Sampled before the state is checked again: if the state has not moved, the deadline
    // was current at this instant, so "lapsed at now_ns" is a fact a later renew must see.
    snap.now_ns = monotonic_ns();
    const std::uint64_t again = shm::load_after_reads(e.state);
    if (gen_of(again) != gen_of(snap.state) || phase_of(again) == Phase::free ||
        phase_of(again) == Phase::reserving)
      continue;
    if (phase_of(again) != p) continue;  // e.g. renewing -> held: read the new deadline
    if (snap.f.resources_len > kMaxLeaseResourcesBytes || snap.f.purpose_len > kMaxLeasePurposeBytes ||
        snap.f.owner_len > kMaxLeaseOwnerBytes)
      throw Error(Errc::corrupt, "lease entry " + std::to_string(i) + " of room '" + room.name() +
                                     "' has bad lengths");
    return snap;
  }
  throw Error(Errc::timeout, "lease entry " + std::to_string(i) + " kept changing while being read");
}

bool Leases::Impl::live(const Snapshot& s) const {
  return s.now_ns < s.deadline_ns && shm::process_alive_cached({s.f.owner_pid, s.f.owner_start});
}

LeaseInfo Leases::Impl::info(const Snapshot& s) const {
  LeaseInfo l;
  l.id = s.token;
  l.owner.assign(s.f.owner, s.f.owner_len);
  l.purpose.assign(s.f.purpose, s.f.purpose_len);
  l.resources = split_lines(std::string_view(s.f.resources, s.f.resources_len));
  l.session_pid = static_cast<int>(s.f.owner_pid);
  l.ttl = std::chrono::milliseconds(s.ttl_ms);
  const std::int64_t left = std::max<std::int64_t>(s.deadline_ns - monotonic_ns(), 0);
  l.expires_in = std::chrono::milliseconds((left + 999'999) / 1'000'000);
  l.expires_at_ns = s.expires_at_ns;
  l.acquired_ts_ns = s.f.acquired_ts_ns;
  return l;
}

void Leases::Impl::wait_change(std::uint32_t i, std::uint64_t s, const char* doing) const {
  LeaseEntry& e = entry(i);
  const auto deadline = Clock::now() + kTransitionWait;
  for (int spins = 0; e.state.load(kSc) == s; ++spins) {
    if (roll_back(e, s)) return;
    if (Clock::now() > deadline)
      throw Error(Errc::timeout, std::string("lease entry ") + std::to_string(i) + " stayed " + doing +
                                     " by pid " + std::to_string(pid_of(s)) + " for over a second");
    if (spins < 256) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

std::optional<std::pair<std::uint32_t, Snapshot>> Leases::Impl::lookup(std::uint64_t id, bool live_only) const {
  for (std::uint32_t i = 0; i < capacity; ++i) {
    if (entry(i).token.load(std::memory_order_acquire) != id) continue;
    for (int tries = 0; tries < 1000; ++tries) {
      auto snap = read(i);
      if (!snap || snap->token != id) break;
      const Phase p = phase_of(snap->state);
      if (p == Phase::acquiring) break;
      if (p == Phase::renewing) {
        wait_change(i, snap->state, "being renewed");
        continue;
      }
      if (live_only && !live(*snap)) break;
      return std::make_pair(i, *snap);
    }
  }
  return std::nullopt;
}

LeaseAcquisition Leases::Impl::refusal(std::string_view ours, const Snapshot& theirs, std::string_view their_resource,
                                       bool acquiring) const {
  header->conflicts.fetch_add(1, std::memory_order_relaxed);
  LeaseAcquisition out;
  out.status = LeaseStatus::held;
  out.resource = std::string(ours);
  out.holder = {std::string(their_resource), info(theirs)};
  const LeaseInfo& l = out.holder.lease;
  std::string msg = std::string(ours) + " is ";
  if (acquiring) {
    msg += "being leased right now by " + l.owner + " (lease " + std::to_string(l.id) + ")";
  } else {
    msg += "held by " + l.owner + " (lease " + std::to_string(l.id) +
           (their_resource == ours ? "" : " on " + std::string(their_resource)) + ", expires in " +
           duration_text(l.expires_in) + " at " + utc_text(l.expires_at_ns) + ")";
  }
  if (!l.purpose.empty()) msg += ": " + l.purpose;
  out.reason = std::move(msg);
  return out;
}

void Leases::Impl::audit(std::string_view type, const LeaseInfo& l) {
  std::string payload = "{\"lease\":" + std::to_string(l.id) + ",\"resources\":[";
  for (std::size_t k = 0; k < l.resources.size(); ++k) payload += (k ? "," : "") + util::json_string(l.resources[k]);
  payload += "],\"purpose\":" + util::json_string(l.purpose) + ",\"ttl_ms\":" + std::to_string(l.ttl.count()) +
             ",\"session_pid\":" + std::to_string(l.session_pid) + "}";
  const PublishResult r = room.publish(type, l.owner, payload);
  if (!r.ok())
    throw Error(Errc::timeout, "room '" + room.name() + "' is full: the " + std::string(type) +
                                   " audit event could not be published");
}

}  // namespace agentbus
