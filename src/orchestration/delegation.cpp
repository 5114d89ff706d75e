// Delegating: the Delegator posts tasks on a type's queue board; a DelegatedTask reads its
// state from the board and waits on the queue room for the TASK_DONE that settles it.
#include "orchestration/delegation_state.hpp"
#include "orchestration/json_object.hpp"

#include <agentbus/clock.hpp>
#include <agentbus/error.hpp>
#include <agentbus/hash.hpp>
#include <agentbus/names.hpp>
#include <agentbus/scratchpad.hpp>
#include <agentbus/subscription.hpp>

#include <cstdio>
#include <random>

namespace agentbus::orchestration {

namespace {

constexpr std::string_view kCancelEvent = "TASK_CANCEL";
// A block-mode wait yields the CPU for half a millisecond before it sleeps: a quick task's
// TASK_DONE then finds the waiter awake, which saves a futex wake-up (tens of us on a VM) for
// a core yielded that long per event seen while waiting.
constexpr auto kAwakeWait = std::chrono::microseconds(500);

std::string new_task_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^ mix64(static_cast<std::uint64_t>(realtime_ns()))};
  char hex[13];
  std::snprintf(hex, sizeof hex, "%012llx", static_cast<unsigned long long>(rng() & 0xffffffffffffull));
  return std::string("task-") + hex;
}

void require_json_object(std::string_view text, std::string_view what) {
  if (text == "{}") return;  // the default
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  std::string why;
  if (!json::parse_object(parser, text, obj, why))
    throw Error(Errc::invalid_argument, std::string(what) + " must be a JSON object: " + why);
}

std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace

// ---- DelegatedTask ----

DelegatedTask::DelegatedTask(std::shared_ptr<DelegationState> state) : state_(std::move(state)) {}
const std::string& DelegatedTask::task_id() const noexcept { return state_->base.task_id; }
const std::string& DelegatedTask::child_room_id() const noexcept { return state_->base.child_room_id; }
EventId DelegatedTask::board_id() const noexcept { return state_->board_id; }

DelegatedTaskResult DelegatedTask::result() const {
  if (state_->fixed) return *state_->fixed;
  DelegatedTaskResult r = state_->base;
  TaskState t;
  try {
    t = state_->board.state(state_->board_id);
  } catch (const Error& e) {
    if (e.code() != Errc::not_found) throw;
    r.status = TaskStatus::failed;
    r.error = "the task's record on the board was recycled before its result was read";
    return r;
  }
  if (t.phase == TaskPhase::done) {
    decode_result(t.result, r);
    if (r.duration_ms == 0 && t.done_ts_ns > t.created_ts_ns)
      r.duration_ms = static_cast<std::uint64_t>((t.done_ts_ns - t.created_ts_ns) / 1'000'000);
  } else {
    r.status = t.phase == TaskPhase::claimed ? TaskStatus::in_progress : TaskStatus::pending;
  }
  // Cancelled here is final for this handle, even if a worker finished in the meantime.
  if (state_->cancelled_here.load() && r.status != TaskStatus::cancelled) {
    r.status = TaskStatus::cancelled;
    r.output.reset();
    r.error = "cancelled by " + state_->delegator;
  }
  return r;
}

DelegatedTaskResult DelegatedTask::wait(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  DelegatedTaskResult r = result();
  if (r.finished()) return r;
  SubscribeOptions so;
  so.wait = state_->wait;
  so.yield_before_block = kAwakeWait;
  Subscription sub = state_->queue.subscribe(so);  // from now: the check below closes the race
  for (;;) {
    r = result();
    if (r.finished()) break;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      throw Error(Errc::timeout, "delegated task " + r.task_id + " did not finish within " + ms_text(timeout));
    // Any event may be ours (TASK_DONE, TASK_CANCEL) or not; the board says which.
    (void)sub.next(deadline - now);
  }
  if (r.status == TaskStatus::completed && state_->cache)
    state_->cache->put(r.parent_room_id, r.agent_id, state_->task, r);
  return r;
}

bool DelegatedTask::cancel() {
  if (state_->fixed) return false;
  if (state_->cancelled_here.load()) return false;
  const DelegatedTaskResult now = result();
  if (now.finished()) return false;
  ClaimOptions co;
  co.ttl = std::chrono::minutes(1);
  const Claim c = state_->board.claim(state_->board_id, state_->delegator, co);
  if (c.status == ClaimStatus::done) return false;
  if (state_->cancelled_here.exchange(true)) return false;
  if (c.ok()) {
    DelegatedTaskResult closed = state_->base;
    closed.status = TaskStatus::cancelled;
    closed.error = "cancelled by " + state_->delegator;
    closed.worker = state_->delegator;
    (void)state_->board.complete(state_->board_id, c.token, encode_result(closed, 4096));
  } else {
    // A worker runs it: ask it to complete as cancelled, and wake every waiter.
    Scratchpad(state_->queue).write(cancel_key(state_->board_id), state_->delegator, std::chrono::hours(1));
    PublishOptions eo;
    eo.reply_to = state_->board_id;
    (void)state_->queue.publish(kCancelEvent, state_->delegator, state_->base.task_id, eo);
  }
  return true;
}

// ---- Delegator ----

Delegator::Delegator(Bus bus, std::string agent, DelegatorOptions options)
    : bus_(std::move(bus)), agent_(std::move(agent)), options_(std::move(options)) {
  if (agent_.empty()) throw Error(Errc::invalid_argument, "a delegator needs the delegating agent's name");
}

Delegator::~Delegator() = default;

struct Delegator::Queue {
  Room room;
  std::shared_ptr<TaskBoard> board;
  bool type_registered = false;
};

std::shared_ptr<Delegator::Queue> Delegator::queue_for(std::string_view type) {
  std::lock_guard lock(mutex_);
  auto it = queues_.find(type);
  if (it != queues_.end()) return it->second;
  Room room = bus_.room(std::string(kDelegationQueuePrefix) + std::string(type));
  auto board = std::make_shared<TaskBoard>(room, delegation_board_options());
  auto q = std::make_shared<Queue>(Queue{std::move(room), std::move(board)});
  queues_.emplace(std::string(type), q);
  return q;
}

DelegatedTask Delegator::delegate(std::string_view parent_room, std::string_view type, std::string_view task,
                                  const DelegateOptions& options) {
  if (is_child_task_room(parent_room))
    throw Error(Errc::invalid_argument,
                "delegation from a child task room is refused (no recursion): " + std::string(parent_room));
  const std::string queue_name = std::string(kDelegationQueuePrefix) + std::string(type);
  try {
    if (type.empty() || type.size() > 64 || type.find('/') != std::string_view::npos) throw Error(Errc::bad_name, "");
    validate_room_name(queue_name);
  } catch (const Error&) {
    throw Error(Errc::invalid_argument, "invalid agent or task type '" + std::string(type) +
                                            "': 1..64 bytes of [A-Za-z0-9._-]");
  }
  if (task.find_first_not_of(" \t\r\n") == std::string_view::npos)
    throw Error(Errc::invalid_argument, "the task to delegate is empty");
  require_json_object(options.context, "context");
  require_json_object(options.metadata, "metadata");
  RoomOptions existing;
  existing.create = false;
  std::optional<Room> parent;
  try {
    parent.emplace(bus_.room(parent_room, existing));
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) throw Error(Errc::not_found, "room '" + std::string(parent_room) + "' not found");
    throw;
  }

  std::shared_ptr<std::mutex> room_lock;
  std::unique_lock<std::mutex> serial;
  if (options_.serialize_per_room) {
    {
      std::lock_guard lock(mutex_);
      auto& slot = room_locks_[std::string(parent_room)];
      if (!slot) slot = std::make_shared<std::mutex>();
      room_lock = slot;
    }
    serial = std::unique_lock(*room_lock);
  }

  const std::shared_ptr<Queue> queue = queue_for(type);
  auto state = std::make_shared<DelegationState>(bus_, queue->room, queue->board);
  state->delegator = agent_;
  state->task = std::string(task);
  state->wait = options_.wait;
  state->cache = options_.cache;
  const std::string task_id = new_task_id();
  state->base.task_id = task_id;
  state->base.child_room_id = std::string(parent_room) + "/" + task_id;
  state->base.parent_room_id = std::string(parent_room);
  state->base.agent_id = std::string(type);
  state->base.metadata = options.metadata;

  if (options_.cache) {
    if (auto hit = options_.cache->get(state->base.parent_room_id, state->base.agent_id, task)) {
      state->fixed = std::move(hit);
      return DelegatedTask(state);
    }
  }

  {
    std::lock_guard lock(mutex_);
    if (!queue->type_registered && !state->board.find_type(type))
      state->board.register_task({std::string(type), "a task delegated to a worker of this type",
                                  "the worker's output (docs/delegation.md)", ""});
    queue->type_registered = true;
  }
  DelegatedPayload p;
  p.task_id = task_id;
  p.child_room = state->base.child_room_id;
  p.parent_room = state->base.parent_room_id;
  p.delegator = agent_;
  p.notify = options.notify.empty() ? agent_ : options.notify;
  p.task = std::string(task);
  p.context = options.context;
  p.metadata = options.metadata;
  p.require_structured_result = options.require_structured_result;
  p.max_result_retries = options.max_result_retries;
  state->board_id = state->board.post_task(type, agent_, encode_payload(p));
  {
    std::lock_guard lock(mutex_);
    tasks_[task_id] = state;
  }
  DelegatedTask handle(state);
  if (options.wait) (void)handle.wait(options.timeout);
  return handle;
}

bool Delegator::cancel(std::string_view task_id) {
  std::shared_ptr<DelegationState> state;
  {
    std::lock_guard lock(mutex_);
    const auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return false;
    state = it->second;
  }
  return DelegatedTask(state).cancel();
}

void Delegator::close() {
  std::vector<std::shared_ptr<DelegationState>> all;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, s] : tasks_) all.push_back(s);
  }
  for (const auto& s : all) (void)DelegatedTask(s).cancel();
}

}  // namespace agentbus::orchestration
