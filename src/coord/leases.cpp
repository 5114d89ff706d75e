// Resource leases: all-or-none acquisition of `kind:name` sets, path-ancestry aware.
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
#include <agentbus/leases.hpp>

#include "bus/room_access.hpp"
#include "coord/leases_layout.hpp"
#include "coord/region.hpp"
#include "shm/layout.hpp"
#include "shm/clock.hpp"
#include "shm/fences.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"
#include "shm/slot_table.hpp"
#include <agentbus/json_text.hpp>

#include <agentbus/error.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <ctime>
#include <thread>
#include <unistd.h>

namespace agentbus {

using coord::leases::LeaseEntry;
using coord::leases::LeaseFields;
using coord::leases::LeasesHeader;
using coord::leases::Phase;
using coord::leases::gen_of;
using coord::leases::make_state;
using coord::leases::phase_of;
using coord::leases::pid_of;

namespace {

constexpr coord::RegionKind kRegion{"lease table", "#leases", coord::leases::kMagic, coord::leases::kVersion,
                                    sizeof(LeasesHeader)};

using shm::monotonic_ns;
using shm::realtime_ns;
using Clock = std::chrono::steady_clock;
constexpr auto kTransitionWait = std::chrono::milliseconds(1000);
constexpr auto kSc = std::memory_order_seq_cst;

using shm::align64;

std::uint64_t layout_bytes(std::uint32_t capacity, std::uint64_t& entries_offset, std::uint64_t& stride) {
  entries_offset = align64(sizeof(LeasesHeader));
  stride = align64(sizeof(LeaseEntry));
  return entries_offset + std::uint64_t(capacity) * stride;
}

LeaseFields load_fields(const LeaseFields& src) {
  LeaseFields out;
  shm::copy_from_ring(&out, reinterpret_cast<const std::byte*>(&src), sizeof(LeaseFields));
  return out;
}


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

std::vector<std::string> split_lines(std::string_view blob) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < blob.size()) {
    const std::size_t nl = std::min(blob.find('\n', start), blob.size());
    out.emplace_back(blob.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

std::string_view kind_of(std::string_view r) { return r.substr(0, r.find(':')); }
std::string_view name_of(std::string_view r) { return r.substr(r.find(':') + 1); }

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

}  // namespace

void validate_lease_resource(std::string_view r) {
  const std::string quoted = "resource '" + std::string(r.substr(0, 600)) + "'";
  if (r.empty()) throw Error(Errc::bad_name, "a resource is empty; the form is kind:name, e.g. path:src/main.cpp");
  if (r.size() > kMaxLeaseResourceBytes)
    throw Error(Errc::bad_name, quoted + " is longer than " + std::to_string(kMaxLeaseResourceBytes) + " bytes");
  const std::size_t colon = r.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == r.size())
    throw Error(Errc::bad_name, quoted + " is not of the form kind:name (e.g. path:src/main.cpp, branch:main)");
  for (const char c : r.substr(0, colon))
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      throw Error(Errc::bad_name, quoted + ": the kind may hold only a-z, 0-9, '_' and '-'");
  for (const char c : r)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      throw Error(Errc::bad_name, quoted + " holds whitespace or a control character");
  if (kind_of(r) != "path") return;
  // Relative paths are relative to the repository root; an absolute one is a place outside it
  // (agentbus/lease_paths.hpp makes both from what a user types).
  std::string_view path = name_of(r);
  if (path.front() == '/') path.remove_prefix(1);
  if (path.find_first_of("*?[]") != std::string_view::npos)
    throw Error(Errc::bad_name, quoted + " holds a glob character; lease the directory instead");
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = path.find('/', start);
    const std::string_view seg = path.substr(start, slash == std::string_view::npos ? path.npos : slash - start);
    if (seg.empty())
      throw Error(Errc::bad_name, quoted + " has an empty path segment (\"//\" or a trailing '/')");
    if (seg == "." || seg == "..")
      throw Error(Errc::bad_name, quoted + " has a '" + std::string(seg) + "' segment; use a clean path");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
}

bool lease_resources_conflict(std::string_view a, std::string_view b) {
  if (a == b) return true;
  if (kind_of(a) != "path" || kind_of(b) != "path") return false;
  const std::string_view x = name_of(a), y = name_of(b);
  const std::string_view shorter = x.size() < y.size() ? x : y, longer = x.size() < y.size() ? y : x;
  return longer.size() > shorter.size() && longer.substr(0, shorter.size()) == shorter &&
         longer[shorter.size()] == '/';
}

struct Leases::Impl {
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
  bool roll_back(LeaseEntry& e, std::uint64_t s) const {
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

  // Entry `i` read consistently while it is announced (acquiring, held or renewing);
  // nullopt when it is not. The gen moves on every reserve and every renew, so an unchanged
  // gen and phase mean nothing read here changed.
  std::optional<Snapshot> read(std::uint32_t i) const {
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

  bool live(const Snapshot& s) const {
    return s.now_ns < s.deadline_ns && shm::process_alive_cached({s.f.owner_pid, s.f.owner_start});
  }

  LeaseInfo info(const Snapshot& s) const {
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

  // Waits (bounded) until entry `i` leaves state `s`.
  void wait_change(std::uint32_t i, std::uint64_t s, const char* doing) const {
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

  // The live lease with id `id` (held or renewing), with its index.
  std::optional<std::pair<std::uint32_t, Snapshot>> lookup(std::uint64_t id, bool live_only) const {
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

  LeaseAcquisition refusal(std::string_view ours, const Snapshot& theirs, std::string_view their_resource,
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

  void audit(std::string_view type, const LeaseInfo& l) {
    std::string payload = "{\"lease\":" + std::to_string(l.id) + ",\"resources\":[";
    for (std::size_t k = 0; k < l.resources.size(); ++k) payload += (k ? "," : "") + util::json_string(l.resources[k]);
    payload += "],\"purpose\":" + util::json_string(l.purpose) + ",\"ttl_ms\":" + std::to_string(l.ttl.count()) +
               ",\"session_pid\":" + std::to_string(l.session_pid) + "}";
    const PublishResult r = room.publish(type, l.owner, payload);
    if (!r.ok())
      throw Error(Errc::timeout, "room '" + room.name() + "' is full: the " + std::string(type) +
                                     " audit event could not be published");
  }
};

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

LeaseAcquisition Leases::acquire(std::string_view owner, const std::vector<std::string>& resources, std::string_view purpose,
                          const LeaseOptions& o) {
  Impl& m = *impl_;
  if (owner.empty()) throw Error(Errc::invalid_argument, "a lease needs an owner");
  if (owner.size() > kMaxLeaseOwnerBytes)
    throw Error(Errc::too_large, "owner is longer than " + std::to_string(kMaxLeaseOwnerBytes) + " bytes");
  if (purpose.size() > kMaxLeasePurposeBytes)
    throw Error(Errc::too_large, "purpose is longer than " + std::to_string(kMaxLeasePurposeBytes) + " bytes");
  if (o.ttl <= std::chrono::milliseconds::zero() || o.ttl > kMaxLeaseTtl)
    throw Error(Errc::invalid_argument, "a lease's ttl must be from 1ms to 24h");
  if (resources.empty()) throw Error(Errc::invalid_argument, "a lease needs at least one resource");
  for (const std::string& r : resources) validate_lease_resource(r);
  std::vector<std::string> canon = resources;
  std::sort(canon.begin(), canon.end());
  canon.erase(std::unique(canon.begin(), canon.end()), canon.end());
  if (canon.size() > kMaxLeaseResources)
    throw Error(Errc::too_large, "a lease holds at most " + std::to_string(kMaxLeaseResources) + " resources");
  std::string blob;
  for (const std::string& r : canon) blob += (blob.empty() ? "" : "\n") + r;
  if (blob.size() > kMaxLeaseResourcesBytes)
    throw Error(Errc::too_large, "the resources of a lease take at most " + std::to_string(kMaxLeaseResourcesBytes) +
                                     " bytes");

  const auto session = static_cast<std::uint32_t>(o.session_pid != 0 ? o.session_pid : static_cast<int>(m.self_pid));
  LeaseFields f{};
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

  const std::uint32_t start = (m.self_pid * 2654435761u) % m.capacity;
  for (int attempt = 0; attempt < 64; ++attempt) {
    // 1. Reserve: a free entry, or the entry of a lapsed lease or a dead session.
    std::int64_t pick = -1;
    std::uint64_t pick_state = 0;
    bool was_expired = false, was_dead = false;
    for (std::uint32_t k = 0; k < m.capacity && pick < 0; ++k) {
      const std::uint32_t i = (start + k) % m.capacity;
      LeaseEntry& e = m.entry(i);
      const std::uint64_t s = e.state.load(kSc);
      const Phase p = phase_of(s);
      if (p == Phase::free) {
        pick = i;
        pick_state = s;
      } else if (p == Phase::held) {
        auto snap = m.read(i);
        if (!snap || snap->state != s) continue;
        if (snap->now_ns >= snap->deadline_ns) was_expired = true;
        else if (!shm::process_alive_cached({snap->f.owner_pid, snap->f.owner_start})) was_dead = true;
        else continue;
        pick = i;
        pick_state = s;
      } else if (m.roll_back(e, s)) {
        --k;  // undone (a dead process's): look at it again (unsigned wrap at 0 is fine)
      }
    }
    if (pick < 0)
      throw Error(Errc::no_space, "the lease table of room '" + m.room.name() + "' is full (" +
                                      std::to_string(m.capacity) + " live leases); release some, or create "
                                      "the table with a larger capacity");
    const auto i = static_cast<std::uint32_t>(pick);
    LeaseEntry& e = m.entry(i);
    const std::uint32_t gen = gen_of(pick_state) + 1;
    const std::uint64_t reserving = make_state(Phase::reserving, gen, shm::self_process());
    if (!e.state.compare_exchange_strong(pick_state, reserving, kSc)) continue;
    if (was_expired) m.header->expired_reclaimed.fetch_add(1, std::memory_order_relaxed);
    if (was_dead) m.header->dead_sessions_reclaimed.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t token = m.header->next_token.fetch_add(1, kSc) + 1;
    f.acquired_ts_ns = realtime_ns();
    shm::copy_to_ring(reinterpret_cast<std::byte*>(&e.fields), &f, sizeof f);
    e.token.store(token, std::memory_order_release);
    e.ttl_ms.store(o.ttl.count(), std::memory_order_release);
    e.deadline_ns.store(monotonic_ns() + std::chrono::nanoseconds(o.ttl).count(), std::memory_order_release);
    e.expires_at_ns.store(realtime_ns() + std::chrono::nanoseconds(o.ttl).count(), std::memory_order_release);

    // 2. Announce.
    std::uint64_t expected = reserving;
    const std::uint64_t acquiring = make_state(Phase::acquiring, gen, shm::self_process());
    if (!e.state.compare_exchange_strong(expected, acquiring, kSc)) continue;  // taken for dead

    // 3. Check every other announced lease.
    auto back_off = [&] {
      std::uint64_t cur = acquiring;
      e.state.compare_exchange_strong(cur, make_state(Phase::free, gen, {}), kSc);
    };
    std::optional<LeaseAcquisition> lost;
    try {
      for (std::uint32_t j = 0; j < m.capacity && !lost; ++j) {
        if (j == i) continue;
        for (;;) {
          auto snap = m.read(j);
          if (!snap) break;
          const Phase p = phase_of(snap->state);
          if (coord::leases::transitional(p) && m.roll_back(m.entry(j), snap->state)) continue;
          const std::vector<std::string> theirs =
              split_lines(std::string_view(snap->f.resources, snap->f.resources_len));
          const std::string* ours_hit = nullptr;
          const std::string* theirs_hit = nullptr;
          for (const std::string& a : canon) {
            for (const std::string& b : theirs)
              if (lease_resources_conflict(a, b)) {
                ours_hit = &a;
                theirs_hit = &b;
                break;
              }
            if (ours_hit) break;
          }
          if (!ours_hit) break;
          if (p == Phase::held) {
            if (m.live(*snap)) lost = m.refusal(*ours_hit, *snap, *theirs_hit, false);
            break;
          }
          if (p == Phase::renewing) {
            m.wait_change(j, snap->state, "being renewed");
            continue;
          }
          // acquiring
          if (snap->token < token) {
            lost = m.refusal(*ours_hit, *snap, *theirs_hit, true);
            break;
          }
          m.wait_change(j, snap->state, "being acquired");
        }
      }
    } catch (...) {
      back_off();
      throw;
    }
    if (lost) {
      back_off();
      return *std::move(lost);
    }

    // 4. Win.
    expected = acquiring;
    if (!e.state.compare_exchange_strong(expected, make_state(Phase::held, gen, {session, f.owner_start}), kSc)) continue;
    m.header->acquired.fetch_add(1, std::memory_order_relaxed);
    LeaseInfo l;
    l.id = token;
    l.owner = std::string(owner);
    l.resources = canon;
    l.purpose = std::string(purpose);
    l.session_pid = static_cast<int>(session);
    l.ttl = o.ttl;
    l.expires_in = o.ttl;
    l.expires_at_ns = e.expires_at_ns.load(std::memory_order_acquire);
    l.acquired_ts_ns = f.acquired_ts_ns;
    try {
      m.audit("LEASE_ACQUIRED", l);
    } catch (...) {
      std::uint64_t held = make_state(Phase::held, gen, {session, f.owner_start});
      e.state.compare_exchange_strong(held, make_state(Phase::free, gen, {}), kSc);
      throw;
    }
    LeaseAcquisition won;
    won.lease = std::move(l);
    return won;
  }
  throw Error(Errc::timeout, "could not take a lease entry: the table kept changing");
}

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
