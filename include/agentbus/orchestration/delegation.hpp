// agentbus/orchestration/delegation.hpp — delegating a task to a worker process (RoomKit's
// kit.delegate), through the TaskBoard, so the worker is any process on the host.
//
// delegate(parent_room, type, task) posts a task of `type` on the board of the room
// "delegations/<type>" (the type's queue, served by `agentbus worker --type TYPE`). The
// delegation is named "task-<12 hex>" and addressed as the child room "<parent>/task-<12 hex>"
// (RoomKit's "<parent>::task-<hex>"); its payload carries the parent's metadata envelope, the
// context, who to notify and the result rules (docs/delegation.md has the JSON).
// A room per delegation would use up the bus's fixed room table (256 rooms, never freed), so the
// child room is the delegation's address, in results and inbox messages, not a room of its own.
//
// Guarantees:
//  * Exactly one result per delegation: the board's claim is a CAS and complete() needs the
//    current fencing token, so a worker that lost its claim (lease lapsed, or taken over after
//    its process died) cannot complete over the one that holds it now.
//  * A result is `completed` only if the worker's output is non-empty; otherwise `failed`.
//  * The winning worker delivers the result to the notified agent's inbox in the parent room
//    (type TASK_RESULT, text capped at kResultCapChars characters). A worker killed between
//    completing and delivering leaves the result on the board (wait() still sees it) but not
//    in the inbox.
//  * cancel() is idempotent. A task no worker holds yet is closed on the board (no worker ever
//    runs it); one a worker is running is marked, the worker ends its provider's call (a
//    CommandProvider's process group is killed within about 40 ms) and completes the task as
//    cancelled. Either way this handle reports cancelled at once.
//  * Waiting yields the CPU for 0.5 ms, then sleeps on the queue room's futex: an idle waiter
//    costs no CPU, and a quick result costs no wake-up.
// Thread safety: a DelegatedTask and a Delegator may be used from several threads.
#pragma once

#include <agentbus/bus.hpp>
#include <agentbus/event.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::orchestration {

inline constexpr std::string_view kDelegationQueuePrefix = "delegations/";
inline constexpr std::string_view kTaskResultEvent = "TASK_RESULT";  // the inbox message
inline constexpr std::size_t kResultCapChars = 4000;

enum class TaskStatus { pending, in_progress, completed, failed, cancelled };
[[nodiscard]] std::string_view to_string(TaskStatus s) noexcept;

struct DelegatedTaskResult {
  std::string task_id;        // "task-<12 hex>"
  std::string child_room_id;  // "<parent>/task-<12 hex>"
  std::string parent_room_id;
  std::string agent_id;       // the type delegated to
  std::string worker;         // who completed it (empty while not finished, or cancelled here)
  TaskStatus status = TaskStatus::pending;
  std::optional<std::string> output;
  std::optional<std::string> error;
  std::uint64_t duration_ms = 0;
  std::string metadata = "{}";  // the parent's envelope, a JSON object
  bool from_cache = false;
  [[nodiscard]] bool finished() const noexcept {
    return status == TaskStatus::completed || status == TaskStatus::failed || status == TaskStatus::cancelled;
  }
};

struct DelegateOptions {
  std::string context = "{}";   // a JSON object handed to the worker's provider
  std::string metadata = "{}";  // the parent's metadata envelope (a JSON object), copied in
  bool wait = false;            // true: delegate() returns only once the task has finished
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};  // with wait: Error{timeout} after
  std::string notify;           // the agent whose inbox gets the result; empty: the delegator
  bool require_structured_result = false;  // the output must be a JSON object
  std::uint32_t max_result_retries = 3;    // re-asks of the provider for a structured result
};

struct DelegationState;  // shared by a handle and its Delegator (src/orchestration/)

class DelegatedTask {
 public:
  explicit DelegatedTask(std::shared_ptr<DelegationState> state);
  [[nodiscard]] const std::string& task_id() const noexcept;
  [[nodiscard]] const std::string& child_room_id() const noexcept;
  [[nodiscard]] EventId board_id() const noexcept;  // the task's id on the queue room's board
  // The state now (reads the board; never blocks).
  [[nodiscard]] DelegatedTaskResult result() const;
  [[nodiscard]] TaskStatus status() const { return result().status; }
  // Waits until the task has finished. Throws Error{timeout} ("delegated task task-... did not
  // finish within 200 ms") when it has not by then.
  DelegatedTaskResult wait(std::chrono::milliseconds timeout) const;
  // true if this call cancelled it; false if it had finished or was cancelled already.
  bool cancel();

 private:
  std::shared_ptr<DelegationState> state_;
};

// RoomKit's CompletedTaskCache: completed results by (room, agent, normalised task text), kept
// for a TTL. The key's task part is the first 16 hex digits of a 64-bit FNV-1a of the trimmed,
// lower-cased text (RoomKit: sha256; no crypto library is a dependency here, and this is a
// cache key, not a security boundary). In-process; thread-safe.
class CompletedTaskCache {
 public:
  explicit CompletedTaskCache(std::chrono::milliseconds ttl = std::chrono::minutes(5));
  [[nodiscard]] static std::string task_key(std::string_view task);
  void put(const std::string& room, const std::string& agent, std::string_view task, DelegatedTaskResult result);
  // A live entry (marked from_cache); an expired one is removed and nullopt returned.
  [[nodiscard]] std::optional<DelegatedTaskResult> get(const std::string& room, const std::string& agent,
                                                       std::string_view task);
  // The task texts cached for `room`, newest first, at most `limit`.
  [[nodiscard]] std::vector<std::string> recent_context(const std::string& room, std::size_t limit = 5);
  [[nodiscard]] std::size_t size() const;

 private:
  struct Entry {
    std::string task;
    DelegatedTaskResult result;
    std::chrono::steady_clock::time_point stored;
  };
  std::chrono::milliseconds ttl_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

struct DelegatorOptions {
  std::shared_ptr<CompletedTaskCache> cache;  // null: no cache
  bool serialize_per_room = false;            // one delegation at a time per parent room
  WaitStrategy wait = WaitStrategy::block;
};

class Delegator {
 public:
  // `agent` is the delegating agent: the creator of the tasks and, by default, who is notified.
  Delegator(Bus bus, std::string agent, DelegatorOptions options = {});
  ~Delegator();
  Delegator(const Delegator&) = delete;
  Delegator& operator=(const Delegator&) = delete;

  // Throws Error{not_found} "room 'x' not found" for a parent room that does not exist,
  // Error{invalid_argument} for an invalid type ("invalid agent or task type '...'"), an empty
  // task, context or metadata that is not a JSON object, and for a parent that is itself a
  // child task room ("delegation from a child task room is refused (no recursion): ...").
  // With wait, throws Error{timeout} like DelegatedTask::wait.
  DelegatedTask delegate(std::string_view parent_room, std::string_view type, std::string_view task,
                         const DelegateOptions& options = {});
  // Cancels a delegation this delegator made. false for an unknown id or one already finished.
  bool cancel(std::string_view task_id);
  // Cancels every delegation of this delegator still pending or in progress.
  void close();

 private:
  Bus bus_;
  std::string agent_;
  DelegatorOptions options_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<DelegationState>, std::less<>> tasks_;
  std::map<std::string, std::shared_ptr<std::mutex>, std::less<>> room_locks_;
  // Each type's queue room and board, opened once: opening them is most of a delegation's cost.
  struct Queue;
  std::map<std::string, std::shared_ptr<Queue>, std::less<>> queues_;
  std::shared_ptr<Queue> queue_for(std::string_view type);
};

// True for a room name whose last segment is "task-" and 12 lower-case hex digits.
[[nodiscard]] bool is_child_task_room(std::string_view room) noexcept;

}  // namespace agentbus::orchestration
