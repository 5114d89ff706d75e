// Points where a run's driver can be made to die, for the crash tests: AGENTBUS_RUN_FAILPOINT
// = "<point>@<step>" (e.g. "after_outcome@3") SIGKILLs the driver there. Points: before_call
// (STEP_CALLED published, agent not called), before_outcome (agent answered, outcome not
// recorded), after_outcome (outcome recorded), after_state (a handoff's state committed, its
// HANDOFF record not written), after_stage (a workflow stage's or workgroup's result journaled;
// the step is the stage's first). Unset: one comparison per point.
#pragma once

#include <cstdint>
#include <string_view>

namespace agentbus::orchestration {

void run_failpoint(std::string_view point, std::uint64_t step) noexcept;

}  // namespace agentbus::orchestration
