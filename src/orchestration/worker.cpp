// A worker: claims delegated tasks on its types' queue boards and runs its provider on them.
#include "orchestration/delegation_state.hpp"

#include <agentbus/clock.hpp>
#include <agentbus/error.hpp>
#include <agentbus/inbox.hpp>
#include <agentbus/names.hpp>
#include <agentbus/orchestration/worker.hpp>
#include <agentbus/scratchpad.hpp>
#include <agentbus/subscription.hpp>

#include <simdjson.h>

#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unistd.h>

namespace agentbus::orchestration {

namespace {

struct Queue {
  std::string type;
  Room room;
  TaskBoard board;
  Subscription sub;
  Scratchpad pad;  // where the delegator marks a task cancelled
};

struct SharedStats {
  std::mutex mutex;
  WorkerStats stats;
  void add(std::uint64_t WorkerStats::*field) {
    std::lock_guard lock(mutex);
    ++(stats.*field);
  }
};

bool cancel_requested(const Queue& q, EventId id) {
  try {
    return q.pad.read(cancel_key(id)).found();
  } catch (const Error&) {
    return false;
  }
}

// One per serving thread, for the thread's life: while the provider works on a task, renews
// the claim every lease/3 (until the claim is lost: complete() will tell) and looks for the
// delegator's cancel mark every 20 ms, so that a cancelled task's provider call is ended (its
// process group killed) instead of run out. A thread started per task cost more than a short
// task itself.
class TaskKeeper {
 public:
  static constexpr std::chrono::milliseconds kCancelPoll{20};

  explicit TaskKeeper(std::chrono::milliseconds lease) : lease_(lease), thread_([this] { run(); }) {}
  ~TaskKeeper() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Watches task `id` until end(); the flag turns true once the task is seen cancelled.
  const std::atomic<bool>* begin(Queue& q, EventId id, std::uint32_t token) {
    {
      std::lock_guard lock(mutex_);
      task_ = Task{&q, id, token};
      cancelled_.store(false);
    }
    cv_.notify_all();
    return &cancelled_;
  }
  // After end() returns, nothing more is done for the task (no late renew, no late flag).
  void end() {
    std::unique_lock lock(mutex_);
    task_.reset();
    cv_.notify_all();
    cv_.wait(lock, [this] { return !checking_; });
  }

 private:
  struct Task {
    Queue* queue;
    EventId id;
    std::uint32_t token;
  };

  void run() {
    std::unique_lock lock(mutex_);
    std::optional<EventId> watched;
    auto renew_at = std::chrono::steady_clock::now();
    bool renewing = false;
    while (!stopping_) {
      if (!task_) {
        watched.reset();
        cv_.wait(lock, [this] { return stopping_ || task_.has_value(); });
        continue;
      }
      if (watched != task_->id) {  // a new task: its lease was just taken
        watched = task_->id;
        renew_at = std::chrono::steady_clock::now() + lease_ / 3;
        renewing = true;
      }
      const EventId id = task_->id;
      // A short lease is renewed in time too: the poll is never longer than a third of it.
      const auto poll = std::min<std::chrono::milliseconds>(kCancelPoll, lease_ / 3);
      if (cv_.wait_for(lock, poll, [&] { return stopping_ || !task_ || task_->id != id; })) continue;
      const Task t = *task_;
      checking_ = true;
      lock.unlock();
      if (!cancelled_.load() && cancel_requested(*t.queue, t.id)) cancelled_.store(true);
      if (renewing && std::chrono::steady_clock::now() >= renew_at) {
        try {
          t.queue->board.renew(t.id, t.token, lease_);
          renew_at = std::chrono::steady_clock::now() + lease_ / 3;
        } catch (const Error&) {
          renewing = false;  // taken over (or unavailable): complete() will tell
        }
      }
      lock.lock();
      checking_ = false;
      cv_.notify_all();
    }
  }

  const std::chrono::milliseconds lease_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<Task> task_;
  bool checking_ = false;
  bool stopping_ = false;
  std::atomic<bool> cancelled_{false};
  std::thread thread_;  // last: starts once the members above exist
};

// Ends a TaskKeeper's watch however the provider's call ends.
struct KeeperWatch {
  TaskKeeper& keeper;
  ~KeeperWatch() { keeper.end(); }
};

bool is_json_object(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(text.data(), text.size()).get(doc)) return false;
  return doc.is_object();
}

// Runs the provider; re-asks up to max_result_retries times for a structured result.
DelegatedTaskResult run_provider(const WorkerOptions& o, const DelegatedPayload& p, const std::string& type,
                                 const std::atomic<bool>* cancel) {
  DelegatedTaskResult r;
  ProviderRequest req;
  req.cancel = cancel;
  req.run_id = p.task_id;
  req.agent = AgentInfo{type, "worker", "serves tasks delegated to '" + type + "'"};
  if (p.context != "{}") req.messages.push_back({"system", "", "Context: " + p.context});
  req.messages.push_back({"user", "", p.task});
  const std::uint32_t attempts = p.require_structured_result ? p.max_result_retries + 1 : 1;
  for (std::uint32_t attempt = 0; attempt < attempts; ++attempt) {
    req.step = attempt;
    const CallResult call = o.provider->call(req, o.task_timeout);
    if (!call.ok()) {
      r.status = TaskStatus::failed;
      r.error = call.error;
      return r;
    }
    const std::string& text = call.reply.text;
    if (text.empty()) {
      r.status = TaskStatus::failed;
      r.error = "agent '" + type + "' returned an empty output";
      return r;
    }
    if (!p.require_structured_result || is_json_object(text)) {
      r.status = TaskStatus::completed;
      r.output = text;
      return r;
    }
    req.messages.push_back({"assistant", type, text});
    req.messages.push_back({"user", "", "Your reply was not a JSON object. Reply with one JSON object only."});
  }
  r.status = TaskStatus::failed;
  r.error = "agent '" + type + "' gave no JSON object after " + std::to_string(attempts) + " attempts";
  return r;
}

// The parent rooms' inboxes a serving thread has delivered to, opened once each.
class Inboxes {
 public:
  explicit Inboxes(Bus& bus) : bus_(bus) {}
  Inbox& of(const std::string& room) {
    auto it = open_.find(room);
    if (it != open_.end()) return it->second;
    RoomOptions existing;
    existing.create = false;
    return open_.emplace(room, Inbox(bus_.room(room, existing))).first->second;
  }

 private:
  Bus& bus_;
  std::map<std::string, Inbox, std::less<>> open_;
};

void deliver_to_inbox(Inboxes& inboxes, const std::string& worker, const DelegatedPayload& p, const DelegatedTaskResult& r) {
  std::string head = "[delegated task " + p.task_id + " (" + p.child_room + ") to " + r.agent_id + ": " +
                     std::string(to_string(r.status)) + "]\n";
  const std::string body = r.output ? *r.output : r.error.value_or("");
  const std::size_t budget = head.size() < 4096 ? 4096 - head.size() : 0;
  (void)inboxes.of(p.parent_room).send(worker, p.notify, kTaskResultEvent, head + cap_utf8(body, kResultCapChars, budget));
}

void serve_task(Inboxes& inboxes, TaskKeeper& keeper, Queue& q, const TaskState& t, const Claim& c,
                const WorkerOptions& o, const std::string& name, SharedStats& stats) {
  if (!t.claimant.empty()) stats.add(&WorkerStats::taken_over);  // someone held it before
  std::string why;
  const auto payload = decode_payload(t.payload, why);
  DelegatedTaskResult r;
  r.agent_id = q.type;
  r.worker = name;
  if (!payload) {
    r.status = TaskStatus::failed;
    r.error = "unreadable delegated task: " + why;
  } else if (cancel_requested(q, t.id)) {
    r.status = TaskStatus::cancelled;
  } else {
    const std::atomic<bool>* cancelled = keeper.begin(q, t.id, c.token);
    const KeeperWatch watch{keeper};
    DelegatedTaskResult ran = run_provider(o, *payload, q.type, cancelled);
    r.status = ran.status;
    r.output = std::move(ran.output);
    r.error = std::move(ran.error);
  }
  if (r.status != TaskStatus::cancelled && cancel_requested(q, t.id)) {
    r.status = TaskStatus::cancelled;
    r.output.reset();
  }
  if (r.status == TaskStatus::cancelled) r.error = "cancelled by " + (payload ? payload->delegator : std::string("the delegator"));
  const std::int64_t now = realtime_ns();
  r.duration_ms = now > t.created_ts_ns ? static_cast<std::uint64_t>((now - t.created_ts_ns) / 1'000'000) : 0;
  try {
    (void)q.board.complete(t.id, c.token, encode_result(r, delegation_board_options().max_payload_bytes));
  } catch (const Error& e) {
    if (e.code() == Errc::conflict) {
      stats.add(&WorkerStats::stale_refused);
      std::fprintf(stderr, "worker %s: task %llu was taken over; our result is dropped (%s)\n", name.c_str(),
                   static_cast<unsigned long long>(t.id), e.what());
      return;
    }
    std::fprintf(stderr, "worker %s: completing task %llu failed: %s\n", name.c_str(),
                 static_cast<unsigned long long>(t.id), e.what());
    return;
  }
  stats.add(r.status == TaskStatus::completed ? &WorkerStats::completed
            : r.status == TaskStatus::cancelled ? &WorkerStats::cancelled
                                                : &WorkerStats::failed);
  if (!payload || r.status == TaskStatus::cancelled) return;
  try {
    deliver_to_inbox(inboxes, name, *payload, r);
  } catch (const Error& e) {
    std::fprintf(stderr, "worker %s: result of %s not delivered to %s's inbox: %s\n", name.c_str(),
                 payload->task_id.c_str(), payload->notify.c_str(), e.what());
  }
}

// A claim of a task open_tasks() listed a moment ago; nothing when another worker has since
// completed it and its record was recycled (a race between workers, not a failure).
std::optional<Claim> claim_open(TaskBoard& board, EventId id, const std::string& name, const ClaimOptions& co) {
  try {
    return board.claim(id, name, co);
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) return std::nullopt;
    throw;
  }
}

void serve_loop(Bus& bus, const WorkerOptions& o, const std::string& name, const std::atomic<bool>& stop,
                SharedStats& stats) {
  std::vector<Queue> queues;
  for (const auto& type : o.types) {
    Room room = bus.room(std::string(kDelegationQueuePrefix) + type);
    TaskBoard board(room, delegation_board_options());
    SubscribeOptions so;
    so.wait = o.wait;
    Subscription sub = room.subscribe(so);
    Scratchpad pad(room);
    queues.push_back(Queue{type, std::move(room), std::move(board), std::move(sub), std::move(pad)});
  }
  Inboxes inboxes(bus);
  TaskKeeper keeper(o.lease);
  ClaimOptions co;
  co.ttl = o.lease;
  std::size_t round = 0;
  while (!stop.load()) {
    bool served = false;
    for (auto& q : queues) {
      for (const TaskState& t : q.board.open_tasks(16)) {
        if (stop.load()) return;
        std::optional<Claim> c = claim_open(q.board, t.id, name, co);
        if (!c || !c->ok()) continue;
        serve_task(inboxes, keeper, q, t, *c, o, name, stats);
        served = true;
        break;
      }
    }
    if (served) continue;
    // Nothing open: sleep on a queue's futex until a task (or any event) arrives, or the poll
    // interval passes (a task freed by a dead worker publishes nothing).
    Queue& q = queues[round++ % queues.size()];
    (void)q.sub.next(o.poll_interval);
  }
}

}  // namespace

void validate_worker_options(const WorkerOptions& options) {
  if (options.types.empty()) throw Error(Errc::invalid_argument, "a worker needs at least one --type");
  for (const auto& type : options.types) {
    bool ok = !type.empty() && type.size() <= 64 && type.find('/') == std::string::npos;
    if (ok) {
      try {
        validate_room_name(std::string(kDelegationQueuePrefix) + type);
      } catch (const Error&) {
        ok = false;
      }
    }
    if (!ok) throw Error(Errc::invalid_argument, "invalid task type '" + type + "': 1..64 bytes of [A-Za-z0-9._-]");
  }
  if (!options.provider) throw Error(Errc::invalid_argument, "a worker needs a provider");
  if (options.concurrency < 1 || options.concurrency > 64)
    throw Error(Errc::invalid_argument, "--concurrency must be from 1 to 64");
  if (options.lease < std::chrono::milliseconds(30))
    throw Error(Errc::invalid_argument, "the lease must be at least 30 ms");
}

WorkerStats serve_delegations(Bus& bus, const WorkerOptions& options, const std::atomic<bool>& stop) {
  validate_worker_options(options);
  const std::string name = options.name.empty() ? "worker-" + std::to_string(::getpid()) : options.name;
  SharedStats stats;
  std::vector<std::thread> threads;
  std::exception_ptr first_error;
  std::mutex error_mutex;
  for (unsigned i = 0; i < options.concurrency; ++i)
    threads.emplace_back([&] {
      try {
        serve_loop(bus, options, name, stop, stats);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);
  return stats.stats;
}

}  // namespace agentbus::orchestration
