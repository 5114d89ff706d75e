// agentbus/orchestration/worker.hpp — serving delegated tasks (`agentbus worker`).
//
// A worker claims tasks on the queue boards of its types ("delegations/<type>",
// delegation.hpp), runs its provider on each, renews the claim's lease while the provider
// works, and completes the task with its fencing token. Its claims' session is the worker's
// process, so a worker killed with kill -9 frees its task at once: the next worker that looks
// (at most poll_interval later, or at once on new tasks) takes it over. A worker whose claim
// was taken over meanwhile is refused at complete() (stale fencing token) and drops its
// output: the delegator sees exactly one result.
// A completed result is also sent to the notified agent's inbox in the parent room (type
// TASK_RESULT, the output capped at kResultCapChars characters); a run driver adds it to that
// agent's next prompt (run.hpp). While the provider works, the worker looks for the
// delegator's cancel mark every 20 ms and, when it is set, ends the call through
// ProviderRequest::cancel (a CommandProvider kills the child's process group).
// Thread safety: serve_delegations runs `concurrency` threads; each claims one task at a time.
#pragma once

#include <agentbus/bus.hpp>
#include <agentbus/orchestration/provider.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace agentbus::orchestration {

struct WorkerOptions {
  std::vector<std::string> types;       // at least one
  std::shared_ptr<Provider> provider;   // required
  std::string name;                     // the claimant; empty: "worker-<pid>"
  unsigned concurrency = 1;             // tasks run at once (1..64)
  std::chrono::milliseconds lease{std::chrono::seconds(30)};  // renewed every lease/3
  std::chrono::milliseconds task_timeout{std::chrono::minutes(10)};  // one provider call
  std::chrono::milliseconds poll_interval{50};  // re-scan for tasks freed by dead workers
  WaitStrategy wait = WaitStrategy::block;
};

struct WorkerStats {
  std::uint64_t completed = 0;      // completed with a non-empty output
  std::uint64_t failed = 0;         // completed as failed (provider error, empty output, ...)
  std::uint64_t cancelled = 0;      // completed as cancelled (the delegator asked)
  std::uint64_t stale_refused = 0;  // our completion refused: the claim had been taken over
  std::uint64_t taken_over = 0;     // tasks we claimed from a worker that died or lapsed
};

// Serves until `stop` becomes true (checked at least every poll_interval). Throws
// Error{invalid_argument} for no types, a bad type, no provider, or concurrency out of range.
WorkerStats serve_delegations(Bus& bus, const WorkerOptions& options, const std::atomic<bool>& stop);
// The checks serve_delegations makes first (throws the same errors).
void validate_worker_options(const WorkerOptions& options);

}  // namespace agentbus::orchestration
