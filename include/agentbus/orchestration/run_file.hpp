// agentbus/orchestration/run_file.hpp — a run declared in a JSON file (`agentbus run FILE`):
// its agents with their provider commands, the strategy and its options, budgets. The format
// is in docs/orchestration.md.
//
// Parsing is strict (simdjson): every error names the file, the line and the field, e.g.
// "team.json:7: agents[1].command: must be a string", and unknown fields are errors (a typo
// must not silently drop an option). Agent commands run in the run file's directory.
// Thread safety: parsing is a pure function; the RunSpec it returns is used by one driver.
#pragma once

#include <agentbus/orchestration/run.hpp>
#include <agentbus/orchestration/strategies.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::orchestration {

struct RunSpec {
  std::string input;
  std::string run_id;             // empty: generated
  RunBudget budget{};
  std::size_t ring_bytes = 1 << 20;  // the run room's ring ("ring_bytes": a power of two)
  std::vector<Agent> agents;      // command providers, or agents served on the bus
  std::unique_ptr<Strategy> strategy;
  std::string json;               // the spec as stored in RUN_STARTED (with "base_dir")
};

// Parses run-file text. `source` names it in errors; `base_dir` is where commands run (empty:
// inherit). Throws Error{invalid_argument} with "<source>:<line>: <field>: <what>".
// An agent with "on_bus": true is served by `agentbus agent` processes on `bus`
// (bus_agent.hpp) instead of running a command; such a spec needs `bus`.
[[nodiscard]] RunSpec parse_run_spec(std::string_view text, std::string_view source, std::string_view base_dir = {},
                                     const Bus* bus = nullptr);

// Reads and parses FILE (base_dir = its directory). Throws Error{not_found} if it cannot be read.
[[nodiscard]] RunSpec load_run_file(const std::string& path, const Bus* bus = nullptr);

// The spec a run was started with (RUN_STARTED's "spec"), for --resume.
[[nodiscard]] RunSpec spec_of_run(const Run& run, const Bus* bus = nullptr);

}  // namespace agentbus::orchestration
