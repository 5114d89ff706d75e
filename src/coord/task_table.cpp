// The task table: the steps every call on a task shares (coord/task_table.hpp).
#include "coord/task_table.hpp"

#include "bus/room_access.hpp"
#include "shm/clock.hpp"
#include "shm/fences.hpp"
#include "shm/process.hpp"

#include <agentbus/error.hpp>

#include <chrono>
#include <thread>

namespace agentbus {

using coord::Phase;
using coord::make_state;
using coord::phase_of;
using coord::pid_of;
using coord::token_of;
using namespace coord::tasks;

namespace {

using shm::monotonic_ns;
using Clock = std::chrono::steady_clock;
constexpr auto kInsertWait = std::chrono::milliseconds(200);       // a posted task being inserted
constexpr auto kReadWait = std::chrono::seconds(12);               // over the arbiter's wait

}  // namespace


std::int64_t TaskBoard::Impl::lookup(EventId id) const {
  for (int which = 0; which < 2; ++which) {
    const std::uint32_t b = bucket(id, which);
    for (std::uint32_t k = 0; k < coord::kBucketEntries; ++k)
      if (keys[b + k].load(std::memory_order_acquire) == id + 1 &&
          phase_of(entry(b + k).state.load(std::memory_order_acquire)) != Phase::free)
        return b + k;
  }
  return -1;
}

bool TaskBoard::Impl::roll_back(coord::TaskEntry& e, std::uint64_t s) const {
  const Phase p = phase_of(s);
  if (!coord::transitional(p) || coord::TaskStateWord::holder_alive(s)) return false;
  std::uint64_t back = 0;
  switch (p) {
    case Phase::reserving: back = make_state(Phase::free, token_of(s), {}); break;
    case Phase::claiming: back = make_state(Phase::open, token_of(s), {}); break;
    case Phase::completing:
    case Phase::renewing: {
      const coord::ClaimFields c = load_fields(e.claim);
      back = make_state(Phase::claimed, token_of(s), {c.owner_pid, c.owner_start});
      break;
    }
    default: return false;
  }
  if (e.state.compare_exchange_strong(s, back, std::memory_order_acq_rel))
    header->transitions_rolled_back.fetch_add(1, std::memory_order_relaxed);
  return true;
}

std::uint64_t TaskBoard::Impl::settled_state(coord::TaskEntry& e, EventId id) const {
  const auto deadline = Clock::now() + kReadWait;
  for (int spins = 0;; ++spins) {
    std::uint64_t s = e.state.load(std::memory_order_acquire);
    if (!coord::transitional(phase_of(s))) return s;
    if (roll_back(e, s)) continue;
    if (Clock::now() > deadline)
      throw Error(Errc::timeout, "task " + std::to_string(id) + " stayed mid-update by pid " +
                                     std::to_string(pid_of(s)) + " for over " +
                                     std::to_string(kReadWait.count()) + " s");
    // A transition takes well under a microsecond: spin first, then give the core away.
    if (spins < 256) __builtin_ia32_pause();
    else if (spins < 512) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

coord::TaskEntry& TaskBoard::Impl::find(EventId id, std::uint32_t* index) const {
  const auto deadline = Clock::now() + kInsertWait;
  for (;;) {
    const std::int64_t i = lookup(id);
    if (i >= 0) {
      if (index) *index = static_cast<std::uint32_t>(i);
      return entry(static_cast<std::uint32_t>(i));
    }
    shm::Ring& ring = RoomAccess::ring(room);
    const bool posted = id < ring.tail() && ring.is_event_start(id);
    if (!posted || Clock::now() > deadline)
      throw Error(Errc::not_found, "no task " + std::to_string(id) + " in room '" + room.name() +
                                       "' (never posted as a task, or done and recycled)");
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

std::string TaskBoard::Impl::holder_text(coord::TaskEntry& e, std::uint64_t s) const {
  const coord::ClaimFields c = load_fields(e.claim);
  const std::int64_t left = e.lease_deadline_ns.load(std::memory_order_acquire) - monotonic_ns();
  return get(c.claimant, c.claimant_len) + " (token " + std::to_string(token_of(s)) + ", pid " +
         std::to_string(pid_of(s)) + ", lease ends in " + std::to_string(std::max<std::int64_t>(left, 0) / 1'000'000) +
         " ms)";
}

void TaskBoard::Impl::stale(EventId id, std::uint32_t token, coord::TaskEntry& e, std::uint64_t s) const {
  header->stale_tokens_refused.fetch_add(1, std::memory_order_relaxed);
  std::string now;
  switch (phase_of(s)) {
    case Phase::claimed: now = "it is claimed by " + holder_text(e, s); break;
    case Phase::done: now = "it is done"; break;
    default: now = "it is open (released, or its lease lapsed and was taken back)"; break;
  }
  throw Error(Errc::conflict, "token " + std::to_string(token) + " for task " + std::to_string(id) +
                                  " is stale: " + now);
}

namespace coord::tasks {

std::optional<TaskState> read_task(const TaskBoard::Impl& m, std::uint32_t i, EventId id) {
  coord::TaskEntry& e = m.entry(i);
  // A transition in a bridged room waits for Redis (up to kReadWait); elsewhere it is brief.
  const auto deadline = Clock::now() + kReadWait;
  for (int attempt = 0; Clock::now() < deadline; ++attempt) {
    const std::uint64_t s = e.state.load(std::memory_order_acquire);
    const Phase p = phase_of(s);
    if (p == Phase::free || p == Phase::reserving) return std::nullopt;
    if (coord::transitional(p)) {
      m.roll_back(e, s);
      if (attempt < 256) std::this_thread::yield();
      else std::this_thread::sleep_for(std::chrono::microseconds(50));
      continue;
    }
    const coord::TaskFields f = load_fields(e.task);
    const coord::ClaimFields c = load_fields(e.claim);
    const coord::DoneFields d = load_fields(e.done);
    const std::int64_t deadline = e.lease_deadline_ns.load(std::memory_order_acquire);
    if (f.payload_len > m.max_payload || d.result_len > m.max_payload || f.type_len > sizeof f.type ||
        f.creator_len > sizeof f.creator || c.claimant_len > sizeof c.claimant)
      throw Error(Errc::corrupt, "task entry " + std::to_string(i) + " has bad lengths");
    TaskState t;
    t.payload.resize(f.payload_len);
    shm::copy_from_ring(t.payload.data(), m.payload_of(e), f.payload_len);
    if (p == Phase::done) {
      t.result.resize(d.result_len);
      shm::copy_from_ring(t.result.data(), m.result_of(e), d.result_len);
    }
    if (shm::load_after_reads(e.state) != s || m.keys[i].load(std::memory_order_acquire) != id + 1) {
      if (m.keys[i].load(std::memory_order_acquire) != id + 1) return std::nullopt;
      continue;
    }
    t.id = id;
    t.type = get(f.type, f.type_len);
    t.creator = get(f.creator, f.creator_len);
    t.created_ts_ns = f.created_ts_ns;
    t.token = token_of(s);
    if (p == Phase::claimed || p == Phase::done) {
      t.claimant = get(c.claimant, c.claimant_len);
      t.owner_pid = static_cast<int>(c.owner_pid);
    }
    if (p == Phase::claimed) {
      t.owner_alive = m.alive(c.owner_pid, c.owner_start);
      // Rounded up, so that 0 means exactly "lapsed", as claim() judges it.
      const std::int64_t left_ns = std::max<std::int64_t>(deadline - monotonic_ns(), 0);
      t.lease_left = std::chrono::milliseconds((left_ns + 999'999) / 1'000'000);
      // A claim that no longer holds is open, as claim() and open_tasks() treat it: state() must
      // not tell one caller "claimed" while open_tasks() offers the task to the next.
      t.phase = t.owner_alive && t.lease_left.count() > 0 ? TaskPhase::claimed : TaskPhase::open;
    } else if (p == Phase::done) {
      t.phase = TaskPhase::done;
      t.done_ts_ns = d.done_ts_ns;
    } else {
      t.phase = TaskPhase::open;
    }
    return t;
  }
  throw Error(Errc::timeout, "task " + std::to_string(id) + " kept changing while being read");
}

}  // namespace coord::tasks
}  // namespace agentbus
