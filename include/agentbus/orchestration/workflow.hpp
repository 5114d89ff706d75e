// agentbus/orchestration/workflow.hpp — pi-orchestra's workflows: ordered stages, each a
// workgroup in a room of its own, each condensed by a restricted leader.
//
//  * Stages run strictly in order. Stage i runs in room "<room>/stage-<i>" and its workers'
//    goal includes the outputs of the earlier stages.
//  * After the stage's workgroup settles, its leader (offered only the `finish` tool) gets the
//    goal, the earlier outputs and the worker results, and must finish exactly once; asked once
//    more if it does not, then the stage FAILs ("Leader stopped without calling finish."). Its
//    summary is the stage output. A compete stage with no winner skips the leader: blocked if
//    any worker blocked, else failed. A stage without a leader takes the workers' summaries,
//    joined, as its output (pi-orchestra would use a default leader profile; a provider is
//    needed here).
//  * Stage result: success -> the next stage (or, after the last, the workflow is finished);
//    blocked -> the workflow is finished; failed -> the workflow failed.
//  * cancel() (from another thread) closes the running stage and its members; the workflow
//    and its unfinished stages are closed.
//  * The end is one `workflow.finished` event in the workflow's room ({"workflow","state",
//    "output","stages":[{"name","status","output"}]}).
// In a run file (strategy "workflow"), a workflow is a durable run that `agentbus run --resume`
// continues: workflow_strategies.hpp.
#pragma once

#include <agentbus/bus.hpp>
#include <agentbus/orchestration/workgroup.hpp>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

namespace agentbus::orchestration {

struct WorkflowStage {
  std::string name;
  std::string goal;
  WorkgroupMode mode = WorkgroupMode::synthesize;
  std::vector<WorkgroupMember> members;
  std::optional<Agent> leader;
};

struct WorkflowSpec {
  std::string name = "workflow";
  std::string room;  // must exist; the stages' rooms are created under it
  std::string goal;
  std::vector<WorkflowStage> stages;
  std::chrono::milliseconds settle_timeout{std::chrono::minutes(10)};  // per stage
};

enum class WorkflowState { running, finished, failed, closed };
[[nodiscard]] std::string_view to_string(WorkflowState s) noexcept;

struct StageResult {
  std::string name;
  std::string room;
  MemberStatus status = MemberStatus::failed;  // success, blocked, failed; cancelled: closed
  std::string output;
  bool leader_skipped = false;
  WorkgroupResult workgroup;
};

struct WorkflowResult {
  WorkflowState state = WorkflowState::failed;
  std::string output;               // the last stage's output
  std::vector<StageResult> stages;  // the stages that ran (or were running when cancelled)
};

class Workflow {
 public:
  // Throws Error{invalid_argument}: "workflow requires room.", "workflow requires goal.",
  // "workflow requires at least one stage.", "Stage name must not be empty.", "Duplicate stage
  // name: x.", "Stage x requires at least one member."; Error{not_found} "Bus <room> not found.".
  Workflow(Bus bus, WorkflowSpec spec);
  WorkflowResult run();
  void cancel() noexcept { cancel_ = true; }

 private:
  Bus bus_;
  WorkflowSpec spec_;
  std::atomic<bool> cancel_{false};
};

}  // namespace agentbus::orchestration
