// presence.cpp — who is in a room (guarantees in include/agentbus/presence.hpp): handles and
// sessions, opening the table, and the public calls. The entry protocol they share (reading,
// filling, taking over and merging entries) is in coord/presence_table.{hpp,cpp}.
#include <agentbus/presence.hpp>

#include "bus/room_access.hpp"
#include "coord/presence_table.hpp"
#include "coord/region.hpp"
#include "shm/claim_table.hpp"
#include "shm/process.hpp"
#include <agentbus/clock.hpp>
#include <agentbus/hash.hpp>
#include <agentbus/utf8.hpp>

#include <agentbus/error.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <thread>

namespace agentbus {

using coord::presence::Claims;
using coord::presence::Departure;
using coord::presence::Entry;
using coord::presence::Header;
using coord::presence::Slot;
using coord::presence::Snapshot;
using coord::presence::departure;
using coord::presence::kMaxCapacity;
using coord::presence::kRegion;

namespace {

using namespace std::chrono_literals;
using std::uint32_t;
using std::uint64_t;
using std::int64_t;

// role and working_on: single-line text that every renderer can show as is.
void validate_text(std::string_view what, std::string_view text, std::size_t max) {
  if (text.size() > max)
    throw Error(Errc::too_large, std::string(what) + " is " + std::to_string(text.size()) +
                                     " bytes, max " + std::to_string(max));
  if (!util::valid_utf8(text)) throw Error(Errc::invalid_argument, std::string(what) + " is not valid UTF-8");
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f)
      throw Error(Errc::invalid_argument,
                  std::string(what) + " holds a control character; use one line of plain text");
  }
}

void validate_handle(std::string_view handle) {
  if (handle.empty()) throw Error(Errc::bad_name, "agent handle is empty");
  if (handle.size() > kMaxHandleBytes)
    throw Error(Errc::bad_name, "agent handle is " + std::to_string(handle.size()) + " bytes, max " +
                                    std::to_string(kMaxHandleBytes));
  if (handle == "." || handle == "..") throw Error(Errc::bad_name, "agent handle may not be '.' or '..'");
  for (const char ch : handle) {
    const auto c = static_cast<unsigned char>(ch);
    if (!(std::isalnum(c) || c == '.' || c == '_' || c == '-'))
      throw Error(Errc::bad_name, "agent handle '" + std::string(handle) +
                                      "' may hold only letters, digits, '.', '_' and '-'");
  }
}

void validate_ttl(std::chrono::milliseconds ttl) {
  if (ttl <= 0ms || ttl > kMaxPresenceTtl)
    throw Error(Errc::invalid_argument, "presence ttl must be between 1ms and 24h, got " +
                                            std::to_string(ttl.count()) + "ms");
}

shm::ProcessId resolve_session(int pid) {
  if (pid == 0) return shm::self_process();
  if (pid < 0) throw Error(Errc::invalid_argument, "session pid " + std::to_string(pid) + " is negative");
  const shm::ProcessId id{static_cast<uint32_t>(pid), shm::process_start_time(static_cast<uint32_t>(pid))};
  if (id.start_time == 0 || !shm::process_alive(id))
    throw Error(Errc::invalid_argument, "session pid " + std::to_string(pid) + " is not a running process");
  return id;
}

// Eight hex digits that name a session: a mix of its pid and start time, so a handle picked
// by two sessions is qualified differently, and the same session always gets the same token.
std::string session_token(shm::ProcessId id) {
  const uint64_t x = mix64((uint64_t(id.pid) << 32) ^ id.start_time ^ 0x9e3779b97f4a7c15ull);
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(x & 0xffffffffu));
  return buf;
}

std::string qualify_with(std::string_view handle, shm::ProcessId session) {
  const std::string suffix = "-" + session_token(session);
  // Already qualified by this session (e.g. the handle join() returned): keep it.
  if (handle.size() > suffix.size() && handle.ends_with(suffix))
    handle.remove_suffix(suffix.size());
  validate_handle(handle);
  return std::string(handle) + suffix;
}

}  // namespace

Presence::Presence(Room room, const PresenceOptions& options)
    : impl_(std::make_unique<Impl>(std::move(room))) {
  Impl& m = *impl_;
  shm::Segment& seg = *RoomAccess::segment(m.room);
  m.bus = seg.bus();
  if (options.create && (options.capacity == 0 || options.capacity > kMaxCapacity))
    throw Error(Errc::invalid_argument, "presence capacity must be 1.." + std::to_string(kMaxCapacity));
  const uint64_t bytes = sizeof(Header) + uint64_t(options.capacity) * sizeof(Entry);
  const coord::Region region = coord::Region::open(
      seg, m.room.name(), kRegion, bytes, options.create, [&](std::span<std::byte> r) {
        auto* h = reinterpret_cast<Header*>(r.data());
        h->header_bytes = sizeof(Header);
        h->entry_bytes = sizeof(Entry);
        h->capacity = options.capacity;
      });
  auto* h = region.header<Header>();
  region.require(h->header_bytes == sizeof(Header) && h->entry_bytes == sizeof(Entry), "bad sizes");
  region.require(h->capacity != 0 && h->capacity <= kMaxCapacity &&
                     sizeof(Header) + uint64_t(h->capacity) * sizeof(Entry) <= region.size(),
                 "capacity " + std::to_string(h->capacity) + " does not fit the region");
  m.header = h;
  m.capacity = h->capacity;
  m.entries = reinterpret_cast<Entry*>(region.bytes().data() + sizeof(Header));
}

Presence::~Presence() = default;
Presence::Presence(Presence&&) noexcept = default;
Presence& Presence::operator=(Presence&&) noexcept = default;

std::string Presence::qualify(std::string_view handle, int session_pid) {
  return qualify_with(handle, resolve_session(session_pid));
}

std::string Presence::join(std::string_view handle, std::string_view role, std::string_view working_on,
                           const JoinOptions& options) {
  Impl& m = *impl_;
  validate_text("role", role, kMaxRoleBytes);
  validate_text("working_on", working_on, kMaxWorkingOnBytes);
  validate_ttl(options.ttl);
  const shm::ProcessId session = resolve_session(options.session_pid);
  const std::string qualified = qualify_with(handle, session);
  Impl::Fields fields{qualified, role, working_on, session,
                      std::chrono::duration_cast<std::chrono::nanoseconds>(options.ttl).count(), realtime_ns()};

  for (int round = 0; round < 64; ++round) {
    // Our own entry first: joining again refreshes it in place.
    Snapshot snap;
    if (const auto i = m.find(qualified, snap)) {
      if (snap.session != session) {
        if (departure(snap, monotonic_ns()) == Departure::none)
          throw Error(Errc::conflict, "agent handle '" + qualified + "' is held by another session (pid " +
                                          std::to_string(snap.session.pid) + ")");
        // A gone session's entry under our name: fall through and take a slot as usual.
      } else {
        if (!Claims::claim(m.entries[*i], snap.state)) continue;
        const bool was_gone = departure(snap, monotonic_ns()) != Departure::none;
        fields.joined_ns = was_gone ? realtime_ns() : snap.joined_ns;
        const uint64_t live = m.fill(*i, fields);
        if (m.dedupe(*i, live, qualified, session) && was_gone) {
          m.header->joins.fetch_add(1, std::memory_order_relaxed);
          m.publish_joined(qualified, fields);
        }
        return qualified;
      }
    }
    // A new entry: the first one that is free or whose holder is gone.
    for (uint32_t i = 0; i < m.capacity; ++i) {
      std::optional<std::pair<std::string, Departure>> left;
      if (!m.take(i, left)) continue;
      const uint64_t live = m.fill(i, fields);
      if (left) m.publish_left(left->first, left->second == Departure::expired ? "expired" : "session_ended");
      if (m.dedupe(i, live, qualified, session)) {
        m.header->joins.fetch_add(1, std::memory_order_relaxed);
        m.publish_joined(qualified, fields);
      }
      return qualified;
    }
    // Every entry is held. Entries being written right now may free up: look once more,
    // then give up (only busy writers make a second round worthwhile).
    if (round >= 1) break;
    std::this_thread::yield();
  }
  throw Error(Errc::no_space, "presence table of room '" + m.room.name() + "' is full: " +
                                  std::to_string(m.capacity) +
                                  " live agents; entries free up when agents leave, expire or their "
                                  "session ends (a new bus can be created with a larger capacity)");
}

bool Presence::refresh(std::string_view qualified) {
  Impl& m = *impl_;
  for (int round = 0; round < 16; ++round) {
    Snapshot snap;
    const auto i = m.find(qualified, snap);
    if (!i || departure(snap, monotonic_ns()) != Departure::none) return false;
    Entry& e = m.entries[*i];
    e.last_seen_ns.store(monotonic_ns(), std::memory_order_seq_cst);
    // If the entry changed hands meanwhile, our store went to an entry that is being
    // rewritten (its writer sets last_seen itself); look again.
    if (e.state.load(std::memory_order_seq_cst) == snap.state) return true;
  }
  return false;
}

bool Presence::set_working_on(std::string_view qualified, std::string_view working_on) {
  Impl& m = *impl_;
  validate_text("working_on", working_on, kMaxWorkingOnBytes);
  for (int round = 0; round < 16; ++round) {
    Snapshot snap;
    const auto i = m.find(qualified, snap);
    if (!i || departure(snap, monotonic_ns()) != Departure::none) return false;
    if (!Claims::claim(m.entries[*i], snap.state)) continue;
    m.fill(*i, {snap.handle, snap.role, working_on, snap.session, snap.ttl_ns, snap.joined_ns});
    return true;
  }
  return false;
}

bool Presence::leave(std::string_view qualified) {
  Impl& m = *impl_;
  for (int round = 0; round < 16; ++round) {
    Snapshot snap;
    const auto i = m.find(qualified, snap);
    if (!i) return false;
    uint64_t expected = snap.state;
    if (!m.entries[*i].state.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) continue;
    m.header->leaves.fetch_add(1, std::memory_order_relaxed);
    m.publish_left(qualified, "left");
    return true;
  }
  return false;
}

namespace {

AgentInfo to_info(const Snapshot& s, int64_t monotonic_now, int64_t realtime_now) {
  using std::chrono::nanoseconds;
  using std::chrono::system_clock;
  AgentInfo a;
  a.handle = s.handle;
  a.role = s.role;
  a.working_on = s.working_on;
  a.pid = static_cast<int>(s.session.pid);
  const auto to_system = [](int64_t ns) {
    return system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(nanoseconds(ns)));
  };
  a.joined = to_system(s.joined_ns);
  a.last_seen = to_system(realtime_now - std::max<int64_t>(0, monotonic_now - s.last_seen_ns));
  a.ttl = std::chrono::duration_cast<std::chrono::milliseconds>(nanoseconds(s.ttl_ns));
  a.ttl_left = std::chrono::duration_cast<std::chrono::milliseconds>(
      nanoseconds(std::max<int64_t>(0, s.ttl_ns - (monotonic_now - s.last_seen_ns))));
  a.claims = 0;  // presence does not read the task board's region; `agentbus who` fills it
  return a;
}

}  // namespace

std::vector<AgentInfo> Presence::who() const {
  const Impl& m = *impl_;
  std::vector<AgentInfo> out;
  Snapshot snap;
  for (uint32_t i = 0; i < m.capacity; ++i) {
    if (m.read(i, snap) != Slot::live) continue;
    const int64_t now = monotonic_ns();
    if (departure(snap, now) != Departure::none) continue;
    out.push_back(to_info(snap, now, realtime_ns()));
  }
  return out;
}

std::optional<AgentInfo> Presence::find(std::string_view qualified) const {
  const Impl& m = *impl_;
  Snapshot snap;
  if (!m.find(qualified, snap)) return std::nullopt;
  const int64_t now = monotonic_ns();
  if (departure(snap, now) != Departure::none) return std::nullopt;
  return to_info(snap, now, realtime_ns());
}

std::uint32_t Presence::capacity() const noexcept { return impl_->capacity; }

std::vector<Counter> counter_list(const PresenceCounters& c) {
  return {{"joins", c.joins},
          {"leaves", c.leaves},
          {"expired_reclaimed", c.expired_reclaimed},
          {"dead_sessions_reclaimed", c.dead_sessions_reclaimed},
          {"dead_writers_reclaimed", c.dead_writers_reclaimed}};
}

PresenceCounters Presence::counters() const {
  const Header& h = *impl_->header;
  PresenceCounters c;
  c.joins = h.joins.load(std::memory_order_relaxed);
  c.leaves = h.leaves.load(std::memory_order_relaxed);
  c.expired_reclaimed = h.expired_reclaimed.load(std::memory_order_relaxed);
  c.dead_sessions_reclaimed = h.dead_sessions_reclaimed.load(std::memory_order_relaxed);
  c.dead_writers_reclaimed = h.dead_writers_reclaimed.load(std::memory_order_relaxed);
  return c;
}

}  // namespace agentbus
