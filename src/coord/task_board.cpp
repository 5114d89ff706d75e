// The task board's calls on tasks: opening the board, posting, claiming, renewing,
// completing, releasing, and the queries. Guarantees are in include/agentbus/tasks.hpp, the
// layout and state machine in coord/task_board_layout.hpp; the steps these calls share (finding
// an entry, rolling back a dead process's transition, reading consistently) are in
// coord/task_table.{hpp,cpp}, the catalog of task types in task_catalog.cpp.
#include <agentbus/tasks.hpp>

#include "bus/room_access.hpp"
#include "coord/region.hpp"
#include "coord/task_arbiter.hpp"
#include "coord/task_table.hpp"
#include "shm/layout.hpp"
#include "shm/clock.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <bit>
#include <unistd.h>

namespace agentbus {

using coord::Phase;
using coord::make_state;
using coord::phase_of;
using coord::token_of;
using namespace coord::tasks;

namespace {

constexpr coord::RegionKind kRegion{"task board", "#tasks", coord::kTaskBoardMagic, coord::kTaskBoardVersion,
                                    sizeof(coord::TaskBoardHeader)};

using shm::monotonic_ns;
using shm::realtime_ns;

using shm::align64;

std::uint64_t layout_bytes(std::uint32_t tasks, std::uint32_t catalog, std::uint32_t payload,
                           std::uint64_t& catalog_offset, std::uint64_t& keys_offset,
                           std::uint64_t& entries_offset, std::uint64_t& stride) {
  catalog_offset = align64(sizeof(coord::TaskBoardHeader));
  keys_offset = align64(catalog_offset + std::uint64_t(catalog) * sizeof(coord::CatalogEntry));
  entries_offset = align64(keys_offset + std::uint64_t(tasks) * 8);
  stride = align64(sizeof(coord::TaskEntry) + 2ull * payload);
  return entries_offset + std::uint64_t(tasks) * stride;
}

}  // namespace

TaskBoard::TaskBoard(Room room, const TaskBoardOptions& o) {
  if (o.task_capacity == 0 || o.task_capacity > (1u << 20))
    throw Error(Errc::invalid_argument, "task_capacity must be from 1 to 1048576");
  if (o.catalog_capacity == 0 || o.catalog_capacity > 4096)
    throw Error(Errc::invalid_argument, "catalog_capacity must be from 1 to 4096");
  if (o.max_payload_bytes == 0 || o.max_payload_bytes > (1u << 20))
    throw Error(Errc::invalid_argument, "max_payload_bytes must be from 1 to 1 MiB");
  const std::uint32_t tasks = std::max<std::uint32_t>(std::bit_ceil(o.task_capacity), coord::kBucketEntries);
  std::uint64_t cat_off = 0, keys_off = 0, entries_off = 0, stride = 0;
  const std::uint64_t bytes =
      layout_bytes(tasks, o.catalog_capacity, o.max_payload_bytes, cat_off, keys_off, entries_off, stride);

  const auto& seg = RoomAccess::segment(room);
  const coord::Region region =
      coord::Region::open(*seg, room.name(), kRegion, bytes, o.create, [&](std::span<std::byte> r) {
        auto* h = reinterpret_cast<coord::TaskBoardHeader*>(r.data());
        h->task_capacity = tasks;
        h->catalog_capacity = o.catalog_capacity;
        h->max_payload_bytes = o.max_payload_bytes;
        h->entry_stride = stride;
        h->catalog_offset = cat_off;
        h->keys_offset = keys_off;
        h->entries_offset = entries_off;
        h->total_bytes = bytes;
      });

  // Trust nothing in the header: recompute the layout from its capacities and compare.
  auto* h = region.header<coord::TaskBoardHeader>();
  std::uint64_t c2 = 0, k2 = 0, e2 = 0, s2 = 0;
  const bool shape_ok = h->task_capacity >= coord::kBucketEntries && h->task_capacity <= (1u << 20) &&
                        std::has_single_bit(h->task_capacity) && h->catalog_capacity >= 1 &&
                        h->catalog_capacity <= 4096 && h->max_payload_bytes >= 1 &&
                        h->max_payload_bytes <= (1u << 20);
  region.require(shape_ok &&
                     layout_bytes(h->task_capacity, h->catalog_capacity, h->max_payload_bytes, c2, k2, e2, s2) ==
                         h->total_bytes &&
                     h->total_bytes <= region.size() && c2 == h->catalog_offset && k2 == h->keys_offset &&
                     e2 == h->entries_offset && s2 == h->entry_stride,
                 "inconsistent layout");

  std::byte* base = region.bytes().data();
  impl_ = std::make_unique<Impl>(Impl{
      room, seg, h, reinterpret_cast<coord::CatalogEntry*>(base + h->catalog_offset),
      reinterpret_cast<std::atomic<std::uint64_t>*>(base + h->keys_offset), base + h->entries_offset,
      h->entry_stride, h->task_capacity, h->catalog_capacity, h->max_payload_bytes,
      static_cast<std::uint32_t>(::getpid())});
}

bool coord::has_task_board(const Room& room) {
  return coord::Region::find(*RoomAccess::segment(room), room.name(), kRegion, 0, false, {}).has_value();
}

TaskBoard::~TaskBoard() = default;
TaskBoard::TaskBoard(TaskBoard&&) noexcept = default;
TaskBoard& TaskBoard::operator=(TaskBoard&&) noexcept = default;

// ---- tasks --------------------------------------------------------------------------------

EventId TaskBoard::post_task(std::string_view type, std::string_view agent, std::string_view payload) {
  Impl& m = *impl_;
  coord::TaskFields f{};
  check_len("task payload", payload, m.max_payload);
  check_len("agent", agent, sizeof f.creator);
  if (!find_type(type))
    throw Error(Errc::not_found, "task type '" + std::string(type) + "' is not registered in room '" +
                                     m.room.name() + "'; register it first (`agentbus register`)");
  const PublishResult published = m.room.publish(type, agent, payload);
  if (!published.ok())
    throw Error(Errc::timeout, "room '" + m.room.name() + "' is full: a durable reader is not keeping up");
  const EventId id = published.id;

  f.created_ts_ns = realtime_ns();
  f.payload_len = static_cast<std::uint32_t>(payload.size());
  f.type_len = static_cast<std::uint8_t>(put(f.type, type));
  f.creator_len = static_cast<std::uint8_t>(put(f.creator, agent));
  m.insert(id, f, payload);
  return id;
}

void TaskBoard::Impl::insert(EventId id, const coord::TaskFields& f, std::string_view payload) {
  Impl& m = *this;
  for (int attempt = 0; attempt < 64; ++attempt) {
    // A free entry in either bucket; else the done task finished longest ago.
    std::int64_t pick = -1;
    std::uint64_t pick_state = 0;
    std::int64_t oldest_done = INT64_MAX;
    for (int which = 0; which < 2 && pick < 0; ++which) {
      const std::uint32_t b = m.bucket(id, which);
      for (std::uint32_t k = 0; k < coord::kBucketEntries; ++k) {
        coord::TaskEntry& e = m.entry(b + k);
        const std::uint64_t s = e.state.load(std::memory_order_acquire);
        if (phase_of(s) == Phase::free) {
          pick = b + k;
          pick_state = s;
          break;
        }
        if (phase_of(s) == Phase::done) {
          const std::int64_t done_at = load_fields(e.done).done_ts_ns;
          if (done_at < oldest_done) {
            oldest_done = done_at;
            pick = -2 - static_cast<std::int64_t>(b + k);  // remembered, still looking for a free one
            pick_state = s;
          }
        } else if (coord::transitional(phase_of(s))) {
          m.roll_back(e, s);
        }
      }
    }
    if (pick == -1) {
      throw Error(Errc::no_space, "task table of room '" + m.room.name() + "' has no space for task " +
                                      std::to_string(id) + " (" + std::to_string(m.capacity) +
                                      " entries, full of open and claimed tasks); complete or release "
                                      "some, or create the board with a larger task_capacity. The event "
                                      "stays in the room but is not a task.");
    }
    const bool recycling = pick < -1;
    const auto i = static_cast<std::uint32_t>(recycling ? -2 - pick : pick);
    coord::TaskEntry& e = m.entry(i);
    const std::uint64_t reserving = make_state(Phase::reserving, token_of(pick_state) + 1, shm::self_process());
    if (!e.state.compare_exchange_strong(pick_state, reserving, std::memory_order_acq_rel)) continue;
    if (recycling) m.header->done_recycled.fetch_add(1, std::memory_order_relaxed);
    m.keys[i].store(id + 1, std::memory_order_release);
    store_fields(e.task, f);
    shm::copy_to_ring(m.payload_of(e), payload.data(), payload.size());
    std::uint64_t expected = reserving;
    if (e.state.compare_exchange_strong(expected, make_state(Phase::open, token_of(reserving), {}),
                                        std::memory_order_acq_rel))
      return;
    // Rolled back by someone who thought we were dead (a recycled pid): insert again.
  }
  throw Error(Errc::timeout, "could not insert task " + std::to_string(id) + ": the table kept changing");
}

// ---- queries ------------------------------------------------------------------------------

namespace {

bool holds(const TaskState& t) {
  return t.phase == TaskPhase::claimed && t.owner_alive && t.lease_left.count() > 0;
}

}  // namespace

TaskState TaskBoard::state(EventId id) const {
  std::uint32_t i = 0;
  (void)impl_->find(id, &i);
  if (auto t = read_task(*impl_, i, id)) return *t;
  throw Error(Errc::not_found, "no task " + std::to_string(id) + " in room '" + impl_->room.name() + "'");
}

std::vector<TaskState> TaskBoard::open_tasks(std::size_t n) const {
  const Impl& m = *impl_;
  // Ids first, in order; then only as many records read (payload copies, liveness checks) as
  // it takes to find n open ones. A worker asking for a few of many queued tasks reads a few.
  std::vector<std::pair<EventId, std::uint32_t>> candidates;
  for (std::uint32_t i = 0; i < m.capacity; ++i) {
    const Phase p = phase_of(m.entry(i).state.load(std::memory_order_acquire));
    if (p != Phase::open && p != Phase::claimed) continue;
    const std::uint64_t key = m.keys[i].load(std::memory_order_acquire);
    if (key != 0) candidates.emplace_back(key - 1, i);
  }
  std::sort(candidates.begin(), candidates.end());
  std::vector<TaskState> out;
  for (const auto& [id, i] : candidates) {
    if (out.size() >= n) break;
    if (auto t = read_task(m, i, id); t && t->phase == TaskPhase::open) out.push_back(std::move(*t));
  }
  return out;
}

std::vector<TaskState> TaskBoard::live_claims() const {
  const Impl& m = *impl_;
  std::vector<TaskState> out;
  for (std::uint32_t i = 0; i < m.capacity; ++i) {
    if (phase_of(m.entry(i).state.load(std::memory_order_acquire)) != Phase::claimed) continue;
    const std::uint64_t key = m.keys[i].load(std::memory_order_acquire);
    if (key == 0) continue;
    if (auto t = read_task(m, i, key - 1); t && holds(*t)) out.push_back(std::move(*t));
  }
  std::sort(out.begin(), out.end(), [](const TaskState& a, const TaskState& b) { return a.id < b.id; });
  return out;
}

std::size_t TaskBoard::claims_held_by(std::string_view agent) const {
  std::size_t held = 0;
  for (const TaskState& t : live_claims()) held += t.claimant == agent ? 1 : 0;
  return held;
}

std::vector<Counter> counter_list(const TaskBoardCounters& c) {
  return {{"claims", c.claims},
          {"expired_reclaimed", c.expired_reclaimed},
          {"dead_sessions_reclaimed", c.dead_sessions_reclaimed},
          {"stale_tokens_refused", c.stale_tokens_refused},
          {"transitions_rolled_back", c.transitions_rolled_back},
          {"done_recycled", c.done_recycled}};
}

TaskBoardCounters TaskBoard::counters() const {
  const coord::TaskBoardHeader& h = *impl_->header;
  auto get_counter = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  return {get_counter(h.claims),
          get_counter(h.expired_reclaimed),
          get_counter(h.dead_sessions_reclaimed),
          get_counter(h.stale_tokens_refused),
          get_counter(h.transitions_rolled_back),
          get_counter(h.done_recycled)};
}

}  // namespace agentbus
