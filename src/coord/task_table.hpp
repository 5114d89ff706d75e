// The task board's table (internal): TaskBoard::Impl, the entries tasks live in, and what
// every call on a task shares: finding its entry, waiting out or rolling back another
// process's transition, refusing a stale token, and reading an entry consistently. The layout
// and the state machine are in coord/task_board_layout.hpp; the calls on tasks are in
// task_board.cpp, the catalog of task types in task_catalog.cpp.
#pragma once

#include <agentbus/tasks.hpp>

#include "coord/task_board_layout.hpp"
#include "coord/field_check.hpp"
#include "shm/hash.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"
#include "shm/segment.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace agentbus {
namespace bridge {
struct BusState;
struct RoomState;
}  // namespace bridge
namespace coord::tasks {

// Fields outside the state word are copied through ring_copy, so that ThreadSanitizer checks
// the seqlock protocol (task_board_layout.hpp).
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

using coord::check_len;

template <std::size_t N>
std::uint32_t put(char (&dst)[N], std::string_view s) {
  std::copy_n(s.data(), s.size(), dst);
  return static_cast<std::uint32_t>(s.size());
}
template <std::size_t N>
std::string get(const char (&src)[N], std::uint64_t len) {
  return std::string(src, std::min<std::uint64_t>(len, N));
}



}  // namespace coord::tasks

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
  // The room's bridge state, once found (task_arbiter.cpp); regions never move once made.
  struct BridgeRegions {
    std::atomic<bridge::RoomState*> room{nullptr};
    std::atomic<bridge::BusState*> bus{nullptr};
  };
  std::unique_ptr<BridgeRegions> bridge_regions = std::make_unique<BridgeRegions>();

  coord::TaskEntry& entry(std::uint32_t i) const {
    return *reinterpret_cast<coord::TaskEntry*>(entries + std::uint64_t(i) * stride);
  }
  std::byte* payload_of(coord::TaskEntry& e) const {
    return reinterpret_cast<std::byte*>(&e) + sizeof(coord::TaskEntry);
  }
  std::byte* result_of(coord::TaskEntry& e) const { return payload_of(e) + max_payload; }

  std::uint32_t bucket(std::uint64_t id, int which) const {
    const std::uint64_t h = mix64(id / 8 + (which == 0 ? 0 : 0x9e3779b97f4a7c15ull));
    return static_cast<std::uint32_t>(h % (capacity / coord::kBucketEntries)) * coord::kBucketEntries;
  }

  // The entry holding task `id`, or -1. Keys are only meaningful while the entry is not free.
  std::int64_t lookup(EventId id) const;

  bool alive(std::uint32_t pid, std::uint64_t start) const {
    return shm::process_alive_cached({pid, start});
  }

  // A transition left half done by a dead process: undo it. Returns true if the state moved.
  bool roll_back(coord::TaskEntry& e, std::uint64_t s) const;
  // Waits (bounded) while another live process is mid-transition on `e`.
  std::uint64_t settled_state(coord::TaskEntry& e, EventId id) const;
  // Puts task `id` (already published) into a free entry, or the done one finished longest
  // ago. Throws Error{no_space} when every entry is open or claimed.
  void insert(EventId id, const coord::TaskFields& f, std::string_view payload);
  // The entry of `id`, waiting briefly if its event was just posted and is being inserted.
  coord::TaskEntry& find(EventId id, std::uint32_t* index = nullptr) const;
  std::string holder_text(coord::TaskEntry& e, std::uint64_t s) const;
  // Counts the refusal and throws Error{conflict} saying what the task is now.
  [[noreturn]] void stale(EventId id, std::uint32_t token, coord::TaskEntry& e, std::uint64_t s) const;
};

namespace coord::tasks {

// A consistent copy of entry `i` if it holds task `id` (seqlock: state, copy, same state).
std::optional<TaskState> read_task(const TaskBoard::Impl& m, std::uint32_t i, EventId id);

}  // namespace coord::tasks
}  // namespace agentbus
