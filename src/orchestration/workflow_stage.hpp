// The parts of a workflow that a library call (Workflow::run) and a durable run (the run
// file's "workflow" strategy, workflow_strategies.cpp) share: validation, one stage, the
// stage-result mapping and the JSON of the results.
#pragma once

#include <agentbus/bus.hpp>
#include <agentbus/orchestration/workflow.hpp>

#include <atomic>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::orchestration {

// Workflow's Error{invalid_argument} checks of the spec, all but the room's existence.
void validate_workflow_stages(const WorkflowSpec& spec);

// Runs stage `index` (its room "<spec.room>/stage-<index+1>" is created) with `stage`'s
// members and leader: the workgroup, then the leader, then the stage status.
[[nodiscard]] StageResult run_stage(Bus& bus, const WorkflowSpec& spec, std::size_t index, const WorkflowStage& stage,
                                    const std::vector<StageResult>& done, const std::atomic<bool>* cancel);

// What the workflow does after a stage: running (go on to the next), finished or failed.
[[nodiscard]] WorkflowState state_after(const StageResult& stage, bool last);

[[nodiscard]] std::string stages_json(const std::vector<StageResult>& stages);
[[nodiscard]] std::optional<MemberStatus> member_status_from(std::string_view s) noexcept;

}  // namespace agentbus::orchestration
