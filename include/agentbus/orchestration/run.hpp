// agentbus/orchestration/run.hpp — a durable run: every step is an event in the run's room
// before it takes effect, so a driver killed at any point is resumed by another process.
//
// A run lives in the room "runs/<run id>". Its journal is the events there that carry the
// run id and a step index: STEP_CALLED (the agent is being called), STEP_REPLY / STEP_FAILED
// (the call finished), CONVERSATION_STATE, SYSTEM ("[Handoff: A -> B] reason"), HANDOFF,
// VERDICT, plus RUN_STARTED and RUN_FINISHED. Strategies are deterministic functions of their
// input and of the replies they get, so resuming is replaying: the strategy runs again from the
// start, and every step that has a STEP_REPLY or STEP_FAILED in the journal gets that outcome
// back instead of calling the agent. An agent is therefore never called twice for a step that
// finished; a step whose call was under way when the driver died (STEP_CALLED, no outcome) is
// called again, and the request carries run id and step so a provider can tell.
//
// Delegation results: before an agent is called, the TASK_RESULT messages at the head of its
// inbox in the run's room (what workers send for tasks it delegated from the run's room,
// delegation.hpp) are added to the prompt as user messages, journaled (DELEGATION_RESULTS)
// and then acknowledged, so a retried step gets the same ones and a later step none again.
//
// Budgets: a step limit (each agent call is one step), a wall-clock limit for this driver's
// part of the run, a per-call timeout, and a token limit; exceeding one ends the run as
// budget_exceeded. Tokens reported by providers are summed per agent and per run (replayed
// steps included), and checked before each step.
// Thread safety: call(), record() and recorded() may be used from several threads (fan-out).
#pragma once

#include <agentbus/bus.hpp>
#include <agentbus/orchestration/provider.hpp>
#include <agentbus/room.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::orchestration {

inline constexpr std::string_view kRunRoomPrefix = "runs/";

struct RunBudget {
  std::uint64_t max_steps = 200;                    // agent calls in the whole run
  std::chrono::milliseconds call_timeout{std::chrono::seconds(120)};  // each call
  std::chrono::milliseconds wall_clock{0};          // this driver's time on the run; 0: none
  std::uint64_t max_tokens = 0;                     // input + output tokens providers reported; 0: none
};

struct RunOptions {
  std::string run_id;  // empty: generated, "r-<hex realtime ms>-<pid>"
  RunBudget budget{};
  // The run room's ring, when this call creates it. Its start (RUN_STARTED) must stay in the
  // ring for the run to be resumable: about 2,000 steps of short replies fit in 1 MiB. Each
  // run is one room of the bus's room table (BusOptions::max_rooms).
  std::size_t ring_bytes = 1 << 20;
};

enum class RunState { running, completed, failed, budget_exceeded };
[[nodiscard]] std::string_view to_string(RunState state) noexcept;

struct RunResult {
  RunState state = RunState::completed;
  std::string output;
  std::string error;           // failed / budget_exceeded: why, with the figures
  bool approved = false;       // Loop (and supervised Supervisor steps)
  std::uint32_t iterations = 0;
  std::string stopped;         // Loop: approved | max_iterations | producer_failed | empty_output
  std::string detail = "{}";   // strategy-specific JSON (Supervisor: its results object)
};

// Thrown inside a strategy when a budget runs out; drive() turns it into budget_exceeded.
class BudgetExceeded : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What `agentbus runs` shows of a run.
struct RunSummary {
  std::string run_id;
  std::string strategy;
  RunState state = RunState::running;
  std::uint64_t steps = 0;         // steps with an outcome
  std::int64_t started_ns = 0;
  std::int64_t finished_ns = 0;    // 0: not finished
  int driver_pid = 0;              // the process that last started or resumed it
  bool driver_alive = false;
  std::string output;              // finished: the output (cut to 200 bytes)
  bool start_lost = false;         // its RUN_STARTED was overwritten: it cannot be resumed
};

class Run {
 public:
  // A new run: creates its room and publishes RUN_STARTED {strategy, input, spec}. Throws
  // Error{conflict} if a run of that id exists.
  static Run start(Bus& bus, std::string_view strategy, std::string_view input, std::string_view spec_json,
                   const RunOptions& options = {});
  // An existing run, to resume: reads its journal. Throws Error{not_found} when there is no such
  // run (or its start was overwritten), Error{conflict} when it has finished or its driver is
  // still alive.
  static Run resume(Bus& bus, std::string_view run_id, const RunOptions& options = {});

  [[nodiscard]] const std::string& id() const noexcept;
  [[nodiscard]] const std::string& strategy() const noexcept;
  [[nodiscard]] const std::string& input() const noexcept;
  [[nodiscard]] const std::string& spec() const noexcept;  // the JSON given to start()
  [[nodiscard]] Room& room() noexcept;
  // The bus the run lives on (strategies that open rooms of their own, e.g. workflow stages).
  [[nodiscard]] Bus& bus() noexcept;
  [[nodiscard]] bool resumed() const noexcept;

  // Replaces the budget (a resumed run takes the one its spec declares).
  void set_budget(const RunBudget& budget);

  // The next step index (0, 1, ...); throws BudgetExceeded past max_steps, wall_clock or
  // max_tokens.
  std::uint64_t next_step();
  // `n` consecutive step indices for a fan-out, the first returned.
  std::uint64_t reserve_steps(std::uint64_t n);

  // Calls `agent` as step `step` (request.run_id and request.step are set here), or returns
  // the journaled outcome of that step. The call's limit is the agent's call_timeout if it has
  // one, else the budget's; a non-zero `timeout` can only shorten it.
  CallResult call(std::uint64_t step, const Agent& agent, ProviderRequest request,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // Effects: publishes an event of `type` tagged with the run and `step` (payload members
  // `members`, JSON without braces), unless the journal already has one for (type, step, key).
  // Returns true if it published.
  bool record(std::string_view type, std::uint64_t step, std::string_view agent, std::string_view members,
              std::string_view key = {});
  // The journaled payload for (type, step, key), if any.
  [[nodiscard]] std::optional<std::string> recorded(std::string_view type, std::uint64_t step, std::string_view key = {}) const;
  // `"run":"<id>","step":N` (and `"key":...`), for events other components publish.
  [[nodiscard]] std::string tags(std::uint64_t step, std::string_view key = {}) const;

  // Token counts summed over the calls (replayed ones included).
  [[nodiscard]] std::map<std::string, Usage> usage_by_agent() const;
  [[nodiscard]] Usage usage_total() const;
  [[nodiscard]] std::uint64_t calls_made() const noexcept;  // by this driver, not replayed

  // Publishes RUN_FINISHED with the result, usage and step count.
  void finish(const RunResult& result);

  struct Impl;
  explicit Run(std::shared_ptr<Impl> impl);

 private:
  std::shared_ptr<Impl> impl_;
};

// Every run on the bus (rooms "runs/..."), newest first; a run room with nothing in it yet
// (a driver between creating it and publishing RUN_STARTED) is left out.
[[nodiscard]] std::vector<RunSummary> list_runs(Bus& bus);

// A run id: 1..64 bytes of [A-Za-z0-9._-]. Throws Error{bad_name}.
void validate_run_id(std::string_view run_id);

}  // namespace agentbus::orchestration
