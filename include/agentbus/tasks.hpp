// agentbus/tasks.hpp — a room's task board: a catalog of task types, tasks, and atomic
// claims with leases and fencing tokens.
//
// A task is an event of a registered type, posted through post_task(); its id is the event
// id. The board keeps each task's state in shared memory beside the room, in a fixed-capacity
// table (TaskBoardOptions): open -> claimed{owner, lease, token} -> done{result}.
//
// Guarantees:
//  * claim() is atomic across every thread and process on the bus: exactly one caller wins an
//    open task. Each successful claim returns a fencing token larger than every earlier token
//    of that task, and renew/complete/release must present the current token, so a claimant
//    whose lease lapsed and was superseded can never complete over the newer claimant.
//  * A claim lasts until its lease (ttl) runs out or its session process dies (pid and
//    start time, so a recycled pid cannot keep it alive); either makes the task claimable
//    again at once. Through the CLI the session is the agent's process, not the CLI's.
//  * complete() stores the result and publishes a TASK_DONE event (agent = claimant,
//    reply_to = task id, payload = result) into the room.
//  * No lock anywhere: a process killed in the middle of any call leaves nothing that blocks
//    others; its half-done transition is rolled back by the next caller that meets it once
//    that process is confirmed dead.
//  * In a room bridged to other hosts (agentbus-bridge attached its board), claims are also
//    decided across hosts: each call wins locally first, then the bridge confirms it in Redis
//    (docs/bridge.md, "Tasks across hosts"). Tasks of other hosts appear on the board; a claim
//    held on another host is reported `held` with holder "agent@host"; a stale claimant of any
//    host is refused. With the room's bridge dead or Redis away, claim/renew/complete/release
//    throw Error{unavailable} rather than decide alone.
//  * Done tasks are kept until their table space is needed by a new task; then the oldest
//    done one is recycled, and state() of its id reports not_found.
//
// Thread safety: a TaskBoard may be shared by threads; all calls are safe concurrently.
#pragma once

#include <agentbus/event.hpp>
#include <agentbus/counter.hpp>
#include <agentbus/room.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus {

namespace coord {
struct TaskBoardAccess;  // the bridge's way in (src/coord/task_arbiter.hpp)
}

struct TaskBoardOptions {
  std::uint32_t task_capacity = 1024;      // tasks held at once (rounded up to a power of two)
  std::uint32_t catalog_capacity = 64;     // task types
  std::uint32_t max_payload_bytes = 4096;  // a task's payload, and a result, at most
  bool create = true;                      // false: Error{not_found} if the room has no board
};

struct TaskType {
  std::string type;         // the event type tasks of this kind carry, e.g. "review"
  std::string description;
  std::string produces;     // free text, agentroom style: what completing it yields
  std::string requires_;    // free text: what it needs first
};

enum class TaskPhase { open, claimed, done };

struct TaskState {
  EventId id = 0;
  TaskPhase phase = TaskPhase::open;
  std::string type;
  std::string creator;      // agent that posted it
  std::string payload;
  std::int64_t created_ts_ns = 0;
  // Claimed (and, for done tasks, who completed it). An open task whose last claim lapsed or
  // whose session ended keeps that claim here (owner_alive false: the session ended):
  std::string claimant;
  std::uint32_t token = 0;       // fencing token of the current or last claim
  int owner_pid = 0;             // session process of the claim
  std::chrono::milliseconds lease_left{0};  // claimed: time until the lease runs out
  bool owner_alive = false;
  // Done:
  std::string result;
  std::int64_t done_ts_ns = 0;
};

struct ClaimOptions {
  std::chrono::milliseconds ttl{std::chrono::minutes(5)};  // lease length
  int session_pid = 0;  // process whose death releases the claim; 0: the calling process
};

// Losing a race is a normal outcome, not an error: claim() reports it here.
enum class ClaimStatus {
  claimed,  // ours: `token` is the fencing token
  held,     // someone else holds a live claim: `holder`, `holder_token`, `lease_left`
  done,     // already completed
};

struct Claim {
  ClaimStatus status = ClaimStatus::claimed;
  EventId id = 0;
  std::uint32_t token = 0;
  std::chrono::milliseconds ttl{0};
  std::string holder;
  std::uint32_t holder_token = 0;
  std::chrono::milliseconds lease_left{0};
  [[nodiscard]] bool ok() const noexcept { return status == ClaimStatus::claimed; }
};

struct TaskBoardCounters {
  std::uint64_t claims = 0;
  std::uint64_t expired_reclaimed = 0;        // claims taken over after their lease ran out
  std::uint64_t dead_sessions_reclaimed = 0;  // claims taken over from dead sessions
  std::uint64_t stale_tokens_refused = 0;     // renew/complete/release with an old token
  std::uint64_t transitions_rolled_back = 0;  // half-done calls of dead processes undone
  std::uint64_t done_recycled = 0;            // done tasks whose space was reused
};
[[nodiscard]] std::vector<Counter> counter_list(const TaskBoardCounters& c);

class TaskBoard {
 public:
  // The board of `room`, created on first use with `options` (later openers get the
  // capacities the creator chose).
  explicit TaskBoard(Room room, const TaskBoardOptions& options = {});
  ~TaskBoard();
  TaskBoard(TaskBoard&&) noexcept;
  TaskBoard& operator=(TaskBoard&&) noexcept;

  // Adds or updates a task type. The type must be a valid event type (1..64 bytes).
  void register_task(const TaskType& type);
  [[nodiscard]] std::vector<TaskType> catalog() const;
  [[nodiscard]] std::optional<TaskType> find_type(std::string_view type) const;

  // Publishes a task: an event of a registered type. Returns its id. Throws Error{not_found}
  // for an unregistered type, Error{too_large} for a payload over max_payload_bytes,
  // Error{no_space} when the table is full of open and claimed tasks.
  EventId post_task(std::string_view type, std::string_view agent, std::string_view payload);

  // Tasks nobody holds (open, or claimed with a lapsed lease or a dead owner), oldest first.
  [[nodiscard]] std::vector<TaskState> open_tasks(std::size_t n = 100) const;

  // Claims task `id` for `agent`. Someone else's live claim, or a done task, is reported in
  // the result (status held / done), not thrown. Throws Error{not_found} for no such task.
  [[nodiscard]] Claim claim(EventId id, std::string_view agent, const ClaimOptions& options = {});
  // Extends the lease. Throws Error{conflict} for a token that is no longer current.
  void renew(EventId id, std::uint32_t token, std::chrono::milliseconds ttl);
  // Marks the task done with `result` and publishes TASK_DONE. Returns that event's id.
  EventId complete(EventId id, std::uint32_t token, std::string_view result);
  // Gives the task back (open again).
  void release(EventId id, std::uint32_t token);

  // Throws Error{not_found} for an unknown (or recycled) id.
  [[nodiscard]] TaskState state(EventId id) const;
  // Claims held now (lease running, session alive), oldest task first.
  [[nodiscard]] std::vector<TaskState> live_claims() const;
  // Live claims held by `agent` (claim load, as `who` shows).
  [[nodiscard]] std::size_t claims_held_by(std::string_view agent) const;
  [[nodiscard]] TaskBoardCounters counters() const;

  struct Impl;

 private:
  friend struct coord::TaskBoardAccess;
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentbus
