// agentbus/orchestration/strategies.hpp — RoomKit's strategies over durable runs: Pipeline,
// Swarm, Supervisor, Loop.
//
// A strategy is a deterministic driver: given the run's input and the replies its agents give,
// it always takes the same steps, which is what lets Run (run.hpp) resume a killed run by
// replaying its journal. Every agent call is a step; handoffs, verdicts and the conversation
// state are events in the run's room.
//  * Pipeline(agents, supervisor): a chain, phase = agent id, next = the following agent. An
//    agent's reply without a handoff advances to the next stage (the framework decides the
//    flow); a handoff call may only name the next agent; `finish` or the last stage's reply ends
//    the run. The supervisor, if any, is called after every step and only observes.
//  * Swarm(agents, entry): any agent may hand off to any other; a reply without a handoff is the
//    answer. Initial phase "swarm".
//  * Supervisor(supervisor, workers, options): auto-delegate (refine the task, run the workers
//    sequentially with labelled earlier outputs or in parallel, then let the supervisor present
//    the results), a `delegate_workers{task}` tool, or per-worker `delegate_to_<id>{task}` tools.
//    Each worker has its own time budget (task_timeout): a timed-out worker is FAILED and the
//    chain goes on; any other failure fails the run. With `supervised`, the supervisor reviews
//    each sequential step (a verdict) and may send it back up to max_revisions times; after that
//    the output is delivered marked "validated": false.
//  * Loop(agent, reviewers): produce, review (sequentially, each reviewer seeing the earlier
//    feedback, or in parallel), repeat until every reviewer approves or max_iterations.
//    Approval is a structured verdict, never a substring: a `verdict` tool call
//    {"approved": true} or a reply whose last non-empty line is exactly "VERDICT: APPROVED".
//    "NOT APPROVED" never passes. An empty producer output stops the loop without approval.
// Constructor errors are Error{invalid_argument} with RoomKit's messages.
#pragma once

#include <agentbus/bus.hpp>
#include <agentbus/orchestration/provider.hpp>
#include <agentbus/orchestration/run.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::orchestration {

// A reviewer's decision. From a `verdict` tool call, else from the reply's last line.
struct Verdict {
  bool approved = false;
  std::string feedback;
};
[[nodiscard]] Verdict parse_verdict(const Reply& reply);

class Strategy {
 public:
  virtual ~Strategy() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;
  [[nodiscard]] virtual std::vector<Agent> agents() const = 0;
  // Runs (or, on a resumed Run, replays and continues) the strategy. Throws BudgetExceeded.
  virtual RunResult execute(Run& run) = 0;
};

// Starts a run of `strategy` on `input` and drives it to the end: RUN_FINISHED is published
// with the result (budget_exceeded when a budget ran out). `spec_json` is kept in RUN_STARTED
// (the run file, so `--resume` needs nothing else).
RunResult drive(Bus& bus, Strategy& strategy, std::string_view input, const RunOptions& options = {},
                std::string_view spec_json = "{}", std::string* run_id = nullptr);
// Resumes run `run_id` with `strategy` (the same strategy it was started with).
RunResult drive_resume(Bus& bus, Strategy& strategy, std::string_view run_id, const RunOptions& options = {});
// Drives an already started or resumed run.
RunResult drive(Run& run, Strategy& strategy);

class Pipeline : public Strategy {
 public:
  // Throws for an empty agent list (RoomKit fails later, on index 0) or duplicate ids.
  // `supervisor` (RoomKit's supervisor_id) always sees: after every other agent's reply it is
  // called, as a step of its own, with the conversation so far, and what it says joins the
  // conversation; it is stamped into the router's _always_process. It changes no stage.
  explicit Pipeline(std::vector<Agent> agents, std::optional<Agent> supervisor = std::nullopt);
  [[nodiscard]] std::string_view name() const override { return "pipeline"; }
  [[nodiscard]] std::vector<Agent> agents() const override;  // the stages, then the supervisor
  RunResult execute(Run& run) override;

 private:
  std::vector<Agent> agents_;
  std::optional<Agent> supervisor_;
};

class Swarm : public Strategy {
 public:
  // `entry` defaults to the first agent; throws if it is not one of them.
  explicit Swarm(std::vector<Agent> agents, std::optional<std::string> entry = std::nullopt);
  [[nodiscard]] std::string_view name() const override { return "swarm"; }
  [[nodiscard]] std::vector<Agent> agents() const override { return agents_; }
  RunResult execute(Run& run) override;

 private:
  std::vector<Agent> agents_;
  std::string entry_;
};

struct SupervisorOptions {
  std::optional<std::string> strategy{};  // "sequential" | "parallel" | none (per-worker tools)
  bool auto_delegate = false;           // the framework runs the workers; needs a strategy
  bool refine_task = true;              // auto-delegate: the supervisor first extracts the task
  std::string refine_instruction{};     // empty: the default instruction
  std::chrono::milliseconds task_timeout{std::chrono::seconds(120)};  // per worker
  std::uint32_t max_revisions = 3;
  bool supervised = false;              // sequential: the supervisor reviews each step
};

class Supervisor : public Strategy {
 public:
  Supervisor(Agent supervisor, std::vector<Agent> workers, SupervisorOptions options = {});
  [[nodiscard]] std::string_view name() const override { return "supervisor"; }
  [[nodiscard]] std::vector<Agent> agents() const override;
  RunResult execute(Run& run) override;

  struct WorkerResult {
    std::string worker;
    std::string output;
    bool failed = false;
    std::string error;
    bool validated = true;
    std::uint32_t revisions = 0;
  };

 private:
  std::vector<WorkerResult> run_workers(Run& run, const std::string& task, const std::vector<const Agent*>& workers);
  WorkerResult run_one(Run& run, std::uint64_t step, const Agent& worker, const std::string& task);
  Agent supervisor_;
  std::vector<Agent> workers_;
  SupervisorOptions options_;
};

class Loop : public Strategy {
 public:
  // Give `reviewers` or `reviewer`, not both, and at least one.
  Loop(Agent agent, std::vector<Agent> reviewers, std::optional<Agent> reviewer = std::nullopt, std::uint32_t max_iterations = 3,
       std::optional<std::string> strategy = std::nullopt);
  [[nodiscard]] std::string_view name() const override { return "loop"; }
  [[nodiscard]] std::vector<Agent> agents() const override;
  RunResult execute(Run& run) override;

 private:
  Agent producer_;
  std::vector<Agent> reviewers_;
  std::uint32_t max_iterations_;
  bool parallel_ = false;
};

// "sequential" / "parallel"; anything else throws "'<s>' is not a valid WorkerStrategy".
[[nodiscard]] std::string checked_worker_strategy(const std::string& s);

}  // namespace agentbus::orchestration
