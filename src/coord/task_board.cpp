#include <agentbus/tasks.hpp>

#include "bus/room_access.hpp"
#include "coord/region.hpp"
#include "coord/task_board_layout.hpp"
#include "shm/layout.hpp"
#include "shm/clock.hpp"
#include "shm/fences.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"
#include "shm/slot_table.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <ctime>
#include <thread>
#include <unistd.h>

namespace agentbus {

using coord::Phase;
using coord::make_state;
using coord::phase_of;
using coord::pid_of;
using coord::token_of;

namespace {

constexpr coord::RegionKind kRegion{"task board", "#tasks", coord::kTaskBoardMagic, coord::kTaskBoardVersion,
                                    sizeof(coord::TaskBoardHeader)};

using shm::monotonic_ns;
using shm::realtime_ns;
using Clock = std::chrono::steady_clock;
constexpr auto kTransitionWait = std::chrono::milliseconds(1000);  // bound on waiting for others
constexpr auto kInsertWait = std::chrono::milliseconds(200);       // a posted task being inserted


using shm::align64;

template <class T>
void store_fields(T& dst, const T& src) {
  shm::copy_to_ring(reinterpret_cast<std::byte*>(&dst), &src, sizeof(T));
}
template <class T>
T load_fields(const T& src) {
  T out;
  shm::copy_from_ring(&out, reinterpret_cast<const std::byte*>(&src), sizeof(T));
  return out;
}

void check_len(std::string_view what, std::string_view value, std::size_t max, bool allow_empty = true) {
  if (!allow_empty && value.empty()) throw Error(Errc::invalid_argument, std::string(what) + " is empty");
  if (value.size() > max)
    throw Error(Errc::too_large, std::string(what) + " is " + std::to_string(value.size()) +
                                     " bytes; the limit is " + std::to_string(max));
}

template <std::size_t N>
std::uint32_t put(char (&dst)[N], std::string_view s) {
  std::copy_n(s.data(), s.size(), dst);
  return static_cast<std::uint32_t>(s.size());
}
template <std::size_t N>
std::string get(const char (&src)[N], std::uint64_t len) {
  return std::string(src, std::min<std::uint64_t>(len, N));
}

std::uint64_t mix(std::uint64_t x) {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

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

struct TaskBoard::Impl {
  Room room;
  std::shared_ptr<shm::Segment> segment;  // keeps the mapping alive
  coord::TaskBoardHeader* header;
  coord::CatalogEntry* catalog;
  std::atomic<std::uint64_t>* keys;
  std::byte* entries;
  std::uint64_t stride;
  std::uint32_t capacity, catalog_capacity, max_payload;
  std::uint32_t self_pid;

  coord::TaskEntry& entry(std::uint32_t i) const {
    return *reinterpret_cast<coord::TaskEntry*>(entries + std::uint64_t(i) * stride);
  }
  std::byte* payload_of(coord::TaskEntry& e) const {
    return reinterpret_cast<std::byte*>(&e) + sizeof(coord::TaskEntry);
  }
  std::byte* result_of(coord::TaskEntry& e) const { return payload_of(e) + max_payload; }

  std::uint32_t bucket(std::uint64_t id, int which) const {
    const std::uint64_t h = mix(id / 8 + (which == 0 ? 0 : 0x9e3779b97f4a7c15ull));
    return static_cast<std::uint32_t>(h % (capacity / coord::kBucketEntries)) * coord::kBucketEntries;
  }

  // The entry holding task `id`, or -1. Keys are only meaningful while the entry is not free.
  std::int64_t lookup(EventId id) const {
    for (int which = 0; which < 2; ++which) {
      const std::uint32_t b = bucket(id, which);
      for (std::uint32_t k = 0; k < coord::kBucketEntries; ++k)
        if (keys[b + k].load(std::memory_order_acquire) == id + 1 &&
            phase_of(entry(b + k).state.load(std::memory_order_acquire)) != Phase::free)
          return b + k;
    }
    return -1;
  }

  bool alive(std::uint32_t pid, std::uint64_t start) const {
    return shm::process_alive_cached({pid, start});
  }

  // A transition left half done by a dead process: undo it. Returns true if the state moved.
  bool roll_back(coord::TaskEntry& e, std::uint64_t s) const {
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

  // Waits (bounded) while another live process is mid-transition on `e`.
  std::uint64_t settled_state(coord::TaskEntry& e, EventId id) const {
    const auto deadline = Clock::now() + kTransitionWait;
    for (int spins = 0;; ++spins) {
      std::uint64_t s = e.state.load(std::memory_order_acquire);
      if (!coord::transitional(phase_of(s))) return s;
      if (roll_back(e, s)) continue;
      if (Clock::now() > deadline)
        throw Error(Errc::timeout, "task " + std::to_string(id) + " stayed mid-update by pid " +
                                       std::to_string(pid_of(s)) + " for over a second");
      // A transition takes well under a microsecond: spin first, then give the core away.
      if (spins < 256) __builtin_ia32_pause();
      else if (spins < 512) std::this_thread::yield();
      else std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  // The entry of `id`, waiting briefly if its event was just posted and is being inserted.
  coord::TaskEntry& find(EventId id, std::uint32_t* index = nullptr) const {
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

  std::string holder_text(coord::TaskEntry& e, std::uint64_t s) const {
    const coord::ClaimFields c = load_fields(e.claim);
    const std::int64_t left = e.lease_deadline_ns.load(std::memory_order_acquire) - monotonic_ns();
    return get(c.claimant, c.claimant_len) + " (token " + std::to_string(token_of(s)) + ", pid " +
           std::to_string(pid_of(s)) + ", lease ends in " + std::to_string(std::max<std::int64_t>(left, 0) / 1'000'000) +
           " ms)";
  }

  [[noreturn]] void stale(EventId id, std::uint32_t token, coord::TaskEntry& e, std::uint64_t s) const {
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
};

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

TaskBoard::~TaskBoard() = default;
TaskBoard::TaskBoard(TaskBoard&&) noexcept = default;
TaskBoard& TaskBoard::operator=(TaskBoard&&) noexcept = default;

// ---- catalog ------------------------------------------------------------------------------

namespace {

using CatalogClaims = shm::ClaimTable<coord::CatalogEntry>;

TaskType to_type(const coord::CatalogFields& f) {
  return {get(f.type, f.type_len), get(f.description, f.description_len), get(f.produces, f.produces_len),
          get(f.requires_, f.requires_len)};
}

bool same(const TaskType& a, const TaskType& b) {
  return a.type == b.type && a.description == b.description && a.produces == b.produces &&
         a.requires_ == b.requires_;
}

// Every ready entry (only those of type `only`, when given), read consistently, with its
// generation. Filtering compares the type before copying the rest of an entry (~1 KiB).
std::vector<std::pair<std::uint64_t, TaskType>> read_catalog(const TaskBoard::Impl& m,
                                                             std::string_view only = {}) {
  std::vector<std::pair<std::uint64_t, TaskType>> out;
  for (std::uint32_t i = 0; i < m.catalog_capacity; ++i) {
    coord::CatalogEntry& e = m.catalog[i];
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const std::uint64_t s1 = e.state.load(std::memory_order_acquire);
      if (CatalogClaims::being_written(s1)) {
        std::this_thread::yield();  // being written (perhaps a type being updated in place)
        continue;
      }
      if (shm::ClaimWord::phase(s1) != shm::ClaimPhase::ready) break;
      if (!only.empty()) {
        const std::uint32_t len = load_fields(e.fields.type_len);
        char type[sizeof e.fields.type];
        shm::copy_from_ring(type, reinterpret_cast<const std::byte*>(e.fields.type), sizeof type);
        const bool match = len == only.size() && std::string_view(type, len) == only;
        if (shm::load_after_reads(e.state) != s1) continue;
        if (!match) break;
      }
      const std::uint64_t generation = e.generation.load(std::memory_order_relaxed);
      const coord::CatalogFields f = load_fields(e.fields);
      if (shm::load_after_reads(e.state) != s1) continue;
      if (f.type_len == 0 || f.type_len > sizeof f.type || f.description_len > sizeof f.description ||
          f.produces_len > sizeof f.produces || f.requires_len > sizeof f.requires_)
        throw Error(Errc::corrupt, "task catalog entry " + std::to_string(i) + " has bad lengths");
      out.emplace_back(generation, to_type(f));
      break;
    }
  }
  return out;
}

}  // namespace

void TaskBoard::register_task(const TaskType& t) {
  coord::CatalogFields f{};
  check_len("task type", t.type, sizeof f.type, false);
  check_len("task description", t.description, sizeof f.description);
  check_len("task 'produces'", t.produces, sizeof f.produces);
  check_len("task 'requires'", t.requires_, sizeof f.requires_);
  if (const auto existing = find_type(t.type); existing && same(*existing, t)) return;
  f.type_len = put(f.type, t.type);
  f.description_len = put(f.description, t.description);
  f.produces_len = put(f.produces, t.produces);
  f.requires_len = put(f.requires_, t.requires_);

  Impl& m = *impl_;
  // A free entry (or one a dead writer left); failing that, this type's current entry,
  // rewritten in place (readers wait out the write instead of missing the type).
  auto usable = [&](std::uint64_t s, const coord::CatalogEntry& e, bool in_place) {
    if (!in_place) return s == 0 || CatalogClaims::abandoned(s);
    if (shm::ClaimWord::phase(s) != shm::ClaimPhase::ready) return false;
    const coord::CatalogFields of = load_fields(e.fields);
    return get(of.type, of.type_len) == t.type;
  };
  for (std::uint32_t n = 0; n < 2 * m.catalog_capacity; ++n) {
    const std::uint32_t i = n % m.catalog_capacity;
    coord::CatalogEntry& e = m.catalog[i];
    const std::uint64_t s = e.state.load(std::memory_order_acquire);
    if (!usable(s, e, n >= m.catalog_capacity)) continue;
    if (!CatalogClaims::claim(e, s)) continue;
    store_fields(e.fields, f);
    const std::uint64_t gen = m.header->catalog_generation.fetch_add(1, std::memory_order_acq_rel) + 1;
    e.generation.store(gen, std::memory_order_relaxed);
    CatalogClaims::publish(e, shm::ClaimWord::make(shm::ClaimPhase::ready, gen));
    // Retire older versions of this type, so lookups find one and their space is reused.
    for (std::uint32_t j = 0; j < m.catalog_capacity; ++j) {
      if (j == i) continue;
      coord::CatalogEntry& old = m.catalog[j];
      std::uint64_t os = old.state.load(std::memory_order_acquire);
      if (shm::ClaimWord::phase(os) != shm::ClaimPhase::ready || old.generation.load(std::memory_order_relaxed) >= gen)
        continue;
      const coord::CatalogFields of = load_fields(old.fields);
      if (get(of.type, of.type_len) == t.type) old.state.compare_exchange_strong(os, 0, std::memory_order_acq_rel);
    }
    return;
  }
  throw Error(Errc::no_space, "task catalog of room '" + m.room.name() + "' is full (" +
                                  std::to_string(m.catalog_capacity) + " types)");
}

std::vector<TaskType> TaskBoard::catalog() const {
  auto all = read_catalog(*impl_);
  // Newest version of each type; a retirement may race with this read.
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.second.type != b.second.type ? a.second.type < b.second.type : a.first > b.first;
  });
  std::vector<TaskType> out;
  for (auto& [gen, t] : all)
    if (out.empty() || out.back().type != t.type) out.push_back(std::move(t));
  return out;
}

std::optional<TaskType> TaskBoard::find_type(std::string_view type) const {
  std::optional<std::pair<std::uint64_t, TaskType>> best;
  if (type.empty()) return std::nullopt;
  for (auto& entry : read_catalog(*impl_, type))
    if (!best || entry.first > best->first) best = std::move(entry);
  if (!best) return std::nullopt;
  return std::move(best->second);
}

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
      return id;
    // Rolled back by someone who thought we were dead (a recycled pid): insert again.
  }
  throw Error(Errc::timeout, "could not insert task " + std::to_string(id) + ": the table kept changing");
}

Claim TaskBoard::claim(EventId id, std::string_view agent, const ClaimOptions& o) {
  Impl& m = *impl_;
  coord::ClaimFields c{};
  check_len("agent", agent, sizeof c.claimant, false);
  if (o.ttl <= std::chrono::milliseconds::zero())
    throw Error(Errc::invalid_argument, "a claim's ttl must be positive");
  const auto pid = static_cast<std::uint32_t>(o.session_pid != 0 ? o.session_pid : static_cast<int>(m.self_pid));
  c.owner_pid = pid;
  c.owner_start = shm::process_start_time_cached(pid);
  if (c.owner_start == 0)
    throw Error(Errc::invalid_argument, "session process " + std::to_string(pid) + " does not exist");
  c.claimant_len = static_cast<std::uint8_t>(put(c.claimant, agent));

  coord::TaskEntry& e = m.find(id);
  for (;;) {
    // Someone live is claiming, renewing or completing it right now: we lost, no need to wait.
    const std::uint64_t now_state = e.state.load(std::memory_order_acquire);
    const Phase now_phase = phase_of(now_state);
    if (coord::transitional(now_phase) && now_phase != Phase::reserving &&
        coord::TaskStateWord::holder_alive_cached(now_state)) {
      Claim lost;
      lost.status = now_phase == Phase::completing ? ClaimStatus::done : ClaimStatus::held;
      lost.id = id;
      lost.holder_token = token_of(now_state);
      return lost;
    }
    std::uint64_t s = m.settled_state(e, id);
    bool expired = false, dead = false;
    switch (phase_of(s)) {
      case Phase::open: break;
      case Phase::claimed: {
        const coord::ClaimFields held = load_fields(e.claim);
        const std::int64_t deadline = e.lease_deadline_ns.load(std::memory_order_acquire);
        if (e.state.load(std::memory_order_acquire) != s) continue;
        expired = monotonic_ns() >= deadline;
        dead = !expired && !m.alive(held.owner_pid, held.owner_start);
        if (!expired && !dead) {
          Claim lost{ClaimStatus::held, id, 0, o.ttl, get(held.claimant, held.claimant_len), token_of(s),
                     std::chrono::milliseconds((deadline - monotonic_ns() + 999'999) / 1'000'000)};
          return lost;
        }
        break;
      }
      case Phase::done: {
        Claim lost;
        lost.status = ClaimStatus::done;
        lost.id = id;
        return lost;
      }
      default:
        throw Error(Errc::not_found, "no task " + std::to_string(id) + " in room '" + m.room.name() + "'");
    }
    const std::uint64_t claiming = make_state(Phase::claiming, token_of(s) + 1, shm::self_process());
    if (!e.state.compare_exchange_strong(s, claiming, std::memory_order_acq_rel)) continue;
    store_fields(e.claim, c);
    e.lease_deadline_ns.store(monotonic_ns() + std::chrono::nanoseconds(o.ttl).count(), std::memory_order_release);
    std::uint64_t expected = claiming;
    if (!e.state.compare_exchange_strong(expected, make_state(Phase::claimed, token_of(claiming), {pid, c.owner_start}),
                                         std::memory_order_acq_rel))
      continue;  // rolled back by someone who took us for dead: try again
    m.header->claims.fetch_add(1, std::memory_order_relaxed);
    if (expired) m.header->expired_reclaimed.fetch_add(1, std::memory_order_relaxed);
    if (dead) m.header->dead_sessions_reclaimed.fetch_add(1, std::memory_order_relaxed);
    Claim won;
    won.id = id;
    won.token = token_of(claiming);
    won.ttl = o.ttl;
    return won;
  }
}

void TaskBoard::renew(EventId id, std::uint32_t token, std::chrono::milliseconds ttl) {
  Impl& m = *impl_;
  if (ttl <= std::chrono::milliseconds::zero()) throw Error(Errc::invalid_argument, "ttl must be positive");
  coord::TaskEntry& e = m.find(id);
  for (;;) {
    std::uint64_t s = m.settled_state(e, id);
    if (phase_of(s) != Phase::claimed || token_of(s) != token) m.stale(id, token, e, s);
    const std::uint64_t renewing = make_state(Phase::renewing, token, shm::self_process());
    if (!e.state.compare_exchange_strong(s, renewing, std::memory_order_acq_rel)) continue;
    e.lease_deadline_ns.store(monotonic_ns() + std::chrono::nanoseconds(ttl).count(), std::memory_order_release);
    std::uint64_t expected = renewing;
    if (e.state.compare_exchange_strong(expected, coord::TaskStateWord::keep_holder(s, Phase::claimed, token),
                                        std::memory_order_acq_rel))
      return;
  }
}

EventId TaskBoard::complete(EventId id, std::uint32_t token, std::string_view result) {
  Impl& m = *impl_;
  check_len("task result", result, m.max_payload);
  coord::TaskEntry& e = m.find(id);
  for (;;) {
    std::uint64_t s = m.settled_state(e, id);
    if (phase_of(s) != Phase::claimed || token_of(s) != token) m.stale(id, token, e, s);
    const std::uint64_t completing = make_state(Phase::completing, token, shm::self_process());
    if (!e.state.compare_exchange_strong(s, completing, std::memory_order_acq_rel)) continue;
    const coord::ClaimFields c = load_fields(e.claim);
    PublishOptions po;
    po.reply_to = id;
    const PublishResult done_event = m.room.publish("TASK_DONE", get(c.claimant, c.claimant_len), result, po);
    if (!done_event.ok()) {
      std::uint64_t back = completing;
      e.state.compare_exchange_strong(back, s, std::memory_order_acq_rel);
      throw Error(Errc::timeout, "room '" + m.room.name() + "' is full: TASK_DONE could not be published; "
                                     "the claim is kept, complete again later");
    }
    shm::copy_to_ring(m.result_of(e), result.data(), result.size());
    store_fields(e.done, coord::DoneFields{realtime_ns(), static_cast<std::uint32_t>(result.size())});
    std::uint64_t expected = completing;
    if (e.state.compare_exchange_strong(expected, make_state(Phase::done, token, {}), std::memory_order_acq_rel))
      return done_event.id;
    // Rolled back meanwhile (we were taken for dead): the claim stands; report the event anyway.
    return done_event.id;
  }
}

void TaskBoard::release(EventId id, std::uint32_t token) {
  Impl& m = *impl_;
  coord::TaskEntry& e = m.find(id);
  for (;;) {
    std::uint64_t s = m.settled_state(e, id);
    if (phase_of(s) != Phase::claimed || token_of(s) != token) m.stale(id, token, e, s);
    if (e.state.compare_exchange_strong(s, make_state(Phase::open, token, {}), std::memory_order_acq_rel)) return;
  }
}

namespace {

// A consistent copy of entry `i` if it holds task `id` (seqlock: state, copy, same state).
std::optional<TaskState> read_task(const TaskBoard::Impl& m, std::uint32_t i, EventId id) {
  coord::TaskEntry& e = m.entry(i);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const std::uint64_t s = e.state.load(std::memory_order_acquire);
    const Phase p = phase_of(s);
    if (p == Phase::free || p == Phase::reserving) return std::nullopt;
    if (coord::transitional(p)) {
      m.roll_back(e, s);
      std::this_thread::yield();
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
  std::vector<TaskState> out;
  for (std::uint32_t i = 0; i < m.capacity; ++i) {
    const Phase p = phase_of(m.entry(i).state.load(std::memory_order_acquire));
    if (p != Phase::open && p != Phase::claimed) continue;
    const std::uint64_t key = m.keys[i].load(std::memory_order_acquire);
    if (key == 0) continue;
    if (auto t = read_task(m, i, key - 1)) {
      if (t->phase == TaskPhase::open) out.push_back(std::move(*t));
    }
  }
  std::sort(out.begin(), out.end(), [](const TaskState& a, const TaskState& b) { return a.id < b.id; });
  if (out.size() > n) out.resize(n);
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
