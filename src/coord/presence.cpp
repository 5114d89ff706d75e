// presence.cpp — the presence table (guarantees in include/agentbus/presence.hpp; layout and
// state word in src/coord/presence_layout.hpp).
//
// Every write takes the state word by CAS (free/live/stale -> writing, shm::ClaimTable::claim),
// rewrites the fields, then publishes live with a new generation. A reader copies a live
// entry's fields and checks afterwards that the state word has not changed (a seqlock whose
// sequence is the state word), so it never takes anything and a dead writer cannot block it.
// A writer that died holding an entry is recognised by its pid and start time, and the next
// joiner takes the entry over.
//
// last_seen is the one field written without taking the entry (refresh() is a single store),
// so it lives outside the seqlock: a reader may see a slightly older or newer value; both are
// true statements about when the agent was seen.
#include <agentbus/presence.hpp>

#include "bus/room_access.hpp"
#include "coord/presence_layout.hpp"
#include "coord/region.hpp"
#include "shm/claim_table.hpp"
#include "shm/fences.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"
#include "shm/slot_table.hpp"
#include <agentbus/json_text.hpp>
#include <agentbus/utf8.hpp>

#include <agentbus/error.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <thread>

namespace agentbus {
namespace {

using namespace std::chrono_literals;
using std::uint32_t;
using std::uint64_t;
using std::int64_t;

// A process-local copy of one live entry.
struct Snapshot {
  uint64_t state = 0;
  std::string handle, role, working_on;
  shm::ProcessId session;
  int64_t last_seen_ns = 0, ttl_ns = 0, joined_ns = 0;
};

enum class Slot { free, busy, stale_writer, live };
enum class Departure { none, expired, session_ended };

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
int64_t system_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using coord::presence::Entry;
using coord::presence::Header;
using coord::presence::kMaxCapacity;
using coord::presence::kPresenceMagic;
using coord::presence::kPresenceVersion;
using Claims = shm::ClaimTable<Entry>;
using shm::ClaimPhase;
using shm::ClaimWord;

constexpr coord::RegionKind kRegion{"presence table", "#presence", kPresenceMagic, kPresenceVersion, sizeof(Header)};

// Seqlock writer side: after taking an entry and before overwriting its fields, so that a
// reader that copied any new byte then sees the state word changed. ThreadSanitizer refuses
// atomic_thread_fence; there every field copy is atomic (ring_copy.hpp) and x86 keeps stores
// in order, so nothing is lost by dropping the formal fence.
inline void fence_before_overwrite() noexcept {
#if !defined(__SANITIZE_THREAD__)
  std::atomic_thread_fence(std::memory_order_release);
#endif
}

Departure departure(const Snapshot& s, int64_t now) {
  if (!shm::process_alive(s.session)) return Departure::session_ended;
  if (now - s.last_seen_ns > s.ttl_ns) return Departure::expired;
  return Departure::none;
}

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
  uint64_t x = (uint64_t(id.pid) << 32) ^ id.start_time ^ 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;  // splitmix64 finaliser
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
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


std::string copy_text(const char* field, std::size_t len) {
  std::string out(len, '\0');
  shm::copy_from_ring(out.data(), reinterpret_cast<const std::byte*>(field), len);
  return out;
}

void store_text(char* field, std::string_view text) {
  shm::copy_to_ring(reinterpret_cast<std::byte*>(field), text.data(), text.size());
}

}  // namespace

struct Presence::Impl {
  explicit Impl(Room r) : room(std::move(r)) {}

  Room room;
  Header* header = nullptr;
  Entry* entries = nullptr;
  uint32_t capacity = 0;
  std::string bus;

  // What a writer puts into an entry it holds.
  struct Fields {
    std::string_view handle, role, working_on;
    shm::ProcessId session;
    int64_t ttl_ns = 0;
    int64_t joined_ns = 0;
  };

  // Copies entry i. Waits (bounded) while a live process is writing it: writes take
  // microseconds, and a stopped writer must not stall readers for long.
  Slot read(uint32_t i, Snapshot& out) const {
    Entry& e = entries[i];
    const auto deadline = std::chrono::steady_clock::now() + 2ms;
    for (int attempt = 0;; ++attempt) {
      const uint64_t s1 = e.state.load(std::memory_order_seq_cst);
      if (s1 == 0) return Slot::free;
      const ClaimPhase phase = ClaimWord::phase(s1);
      if (phase == ClaimPhase::ready) {
        const uint64_t lengths = e.lengths.load(std::memory_order_relaxed);
        // Trust no length: a torn or hostile value is clamped, and the check below discards it.
        const std::size_t hl = std::min<std::size_t>(lengths & 0xff, sizeof e.handle);
        const std::size_t rl = std::min<std::size_t>((lengths >> 8) & 0xff, sizeof e.role);
        const std::size_t wl = std::min<std::size_t>((lengths >> 16) & 0xffff, sizeof e.working_on);
        out.handle = copy_text(e.handle, hl);
        out.role = copy_text(e.role, rl);
        out.working_on = copy_text(e.working_on, wl);
        out.session.pid = static_cast<uint32_t>(e.session_pid.load(std::memory_order_relaxed));
        out.session.start_time = e.session_start.load(std::memory_order_relaxed);
        out.ttl_ns = e.ttl_ns.load(std::memory_order_relaxed);
        out.joined_ns = e.joined_ns.load(std::memory_order_relaxed);
        out.last_seen_ns = e.last_seen_ns.load(std::memory_order_relaxed);
        if (shm::load_after_reads(e.state) == s1) {
          out.state = s1;
          return Slot::live;
        }
      } else if (phase == ClaimPhase::writing) {
        if (Claims::abandoned(s1)) return Slot::stale_writer;
      } else {
        throw corrupt("entry " + std::to_string(i) + " has an unknown state");
      }
      if (std::chrono::steady_clock::now() > deadline) return Slot::busy;
      if (attempt > 16) std::this_thread::yield();
    }
  }

  Error corrupt(const std::string& what) const { return coord::corrupt_region(bus, room.name(), kRegion.noun, what); }

  // Entry i with handle `qualified`, live or not yet reclaimed.
  std::optional<uint32_t> find(std::string_view qualified, Snapshot& snap) const {
    for (uint32_t i = 0; i < capacity; ++i)
      if (read(i, snap) == Slot::live && snap.handle == qualified) return i;
    return std::nullopt;
  }

  // Fills entry i, which we hold in writing, and publishes it live. Returns its live state.
  uint64_t fill(uint32_t i, const Fields& f) {
    Entry& e = entries[i];
    const uint64_t generation = (e.generation.load(std::memory_order_relaxed) + 1) & coord::presence::kGenerationMask;
    fence_before_overwrite();
    e.generation.store(generation, std::memory_order_relaxed);
    store_text(e.handle, f.handle);
    store_text(e.role, f.role);
    store_text(e.working_on, f.working_on);
    e.lengths.store(f.handle.size() | (f.role.size() << 8) | (f.working_on.size() << 16),
                    std::memory_order_relaxed);
    e.session_pid.store(f.session.pid, std::memory_order_relaxed);
    e.session_start.store(f.session.start_time, std::memory_order_relaxed);
    e.ttl_ns.store(f.ttl_ns, std::memory_order_relaxed);
    e.joined_ns.store(f.joined_ns, std::memory_order_relaxed);
    e.last_seen_ns.store(steady_ns(), std::memory_order_relaxed);
    const uint64_t live = ClaimWord::make(ClaimPhase::ready, generation);
    // seq_cst: pairs with the seq_cst loads of dedupe() in other joiners (store -> load).
    Claims::publish(e, live, std::memory_order_seq_cst);
    return live;
  }

  // Two joins of one handle from one session can race and create two entries. Each joiner
  // looks for another live entry of its handle after publishing its own; with seq_cst on both
  // sides at least one of the two sees the other, and the higher-numbered entry is dropped.
  // Returns false when our own entry was the one dropped.
  bool dedupe(uint32_t mine, uint64_t my_state, std::string_view qualified, shm::ProcessId session) {
    Snapshot snap;
    for (uint32_t j = 0; j < capacity; ++j) {
      if (j == mine || read(j, snap) != Slot::live) continue;
      if (snap.handle != qualified || snap.session != session) continue;
      if (j > mine) {
        uint64_t expected = snap.state;
        entries[j].state.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
      } else {
        uint64_t expected = my_state;
        entries[mine].state.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
        return false;
      }
    }
    return true;
  }

  void publish_joined(std::string_view qualified, const Fields& f) {
    const std::string payload = "{\"role\":" + util::json_string(f.role) + ",\"working_on\":" +
                                util::json_string(f.working_on) + ",\"pid\":" + std::to_string(f.session.pid) +
                                ",\"ttl_ms\":" + std::to_string(f.ttl_ns / 1'000'000) + "}";
    // Presence is the state; the event only announces it. A room gated full by a slow durable
    // reader (bus_full) must not undo or fail the join, so the status is not checked.
    (void)room.publish("AGENT_JOINED", qualified, payload);
  }

  void publish_left(std::string_view qualified, std::string_view reason) {
    (void)room.publish("AGENT_LEFT", qualified, "{\"reason\":\"" + std::string(reason) + "\"}");
  }

  // Takes entry i for a new agent if it is free, held by a dead writer, or holds an agent that
  // is gone. On success the entry is ours (writing) and `left` names whom it displaced.
  bool take(uint32_t i, std::optional<std::pair<std::string, Departure>>& left) {
    Entry& e = entries[i];
    Snapshot snap;
    const Slot slot = read(i, snap);
    if (slot == Slot::busy) return false;
    if (slot == Slot::free) return Claims::claim(e, 0);
    if (slot == Slot::stale_writer) {
      const uint64_t expected = e.state.load(std::memory_order_acquire);
      if (!Claims::abandoned(expected) || !Claims::claim(e, expected)) return false;
      header->dead_writers_reclaimed.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    if (departure(snap, steady_ns()) == Departure::none) return false;
    if (!Claims::claim(e, snap.state, std::memory_order_seq_cst)) return false;
    // The agent may have refreshed between our copy and the CAS; refresh() stores last_seen
    // and then re-checks the state, so re-reading it now (seq_cst both sides) sees that store.
    snap.last_seen_ns = e.last_seen_ns.load(std::memory_order_seq_cst);
    const Departure why = departure(snap, steady_ns());
    if (why == Departure::none) {
      e.state.store(snap.state, std::memory_order_release);  // untouched: put it back as it was
      return false;
    }
    (why == Departure::expired ? header->expired_reclaimed : header->dead_sessions_reclaimed)
        .fetch_add(1, std::memory_order_relaxed);
    left.emplace(std::move(snap.handle), why);
    return true;
  }
};

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
                      std::chrono::duration_cast<std::chrono::nanoseconds>(options.ttl).count(), system_ns()};

  for (int round = 0; round < 64; ++round) {
    // Our own entry first: joining again refreshes it in place.
    Snapshot snap;
    if (const auto i = m.find(qualified, snap)) {
      if (snap.session != session) {
        if (departure(snap, steady_ns()) == Departure::none)
          throw Error(Errc::conflict, "agent handle '" + qualified + "' is held by another session (pid " +
                                          std::to_string(snap.session.pid) + ")");
        // A gone session's entry under our name: fall through and take a slot as usual.
      } else {
        if (!Claims::claim(m.entries[*i], snap.state)) continue;
        const bool was_gone = departure(snap, steady_ns()) != Departure::none;
        fields.joined_ns = was_gone ? system_ns() : snap.joined_ns;
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
    if (!i || departure(snap, steady_ns()) != Departure::none) return false;
    Entry& e = m.entries[*i];
    e.last_seen_ns.store(steady_ns(), std::memory_order_seq_cst);
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
    if (!i || departure(snap, steady_ns()) != Departure::none) return false;
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

AgentInfo to_info(const Snapshot& s, int64_t steady_now, int64_t system_now) {
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
  a.last_seen = to_system(system_now - std::max<int64_t>(0, steady_now - s.last_seen_ns));
  a.ttl = std::chrono::duration_cast<std::chrono::milliseconds>(nanoseconds(s.ttl_ns));
  a.ttl_left = std::chrono::duration_cast<std::chrono::milliseconds>(
      nanoseconds(std::max<int64_t>(0, s.ttl_ns - (steady_now - s.last_seen_ns))));
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
    const int64_t now = steady_ns();
    if (departure(snap, now) != Departure::none) continue;
    out.push_back(to_info(snap, now, system_ns()));
  }
  return out;
}

std::optional<AgentInfo> Presence::find(std::string_view qualified) const {
  const Impl& m = *impl_;
  Snapshot snap;
  if (!m.find(qualified, snap)) return std::nullopt;
  const int64_t now = steady_ns();
  if (departure(snap, now) != Departure::none) return std::nullopt;
  return to_info(snap, now, system_ns());
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
