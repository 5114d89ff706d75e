// agentbus/orchestration/workflow_strategies.hpp — workgroups and workflows (workgroup.hpp,
// workflow.hpp) as strategies of a durable run, so that a run file can declare them and
// `agentbus run --resume` continues one whose driver was killed.
//
// Every member's and leader's call is a step of the run (Run::call): each member of a stage
// takes two step indices (its call and the one reminder to call finish), the leader two more,
// reserved in stage order before the stage starts, so a replay reaches the same indices
// whichever member finishes first. A settled stage is journaled (STAGE_FINISHED, or
// WORKGROUP_FINISHED for a lone workgroup) with its members' results and output; on resume a
// journaled stage is taken from the journal and none of its members or its leader is called.
// Inside the stage that was under way, members with a journaled outcome get it back without a
// call, and in a compete stage that a journaled success had already won, the members without
// an outcome are not started again. A stage under way when the driver died publishes its
// workgroup events (workgroup.message, workgroup.member_finished) again in its room.
//  * WorkflowStrategy: the stages run in rooms "runs/<id>/stage-<n>"; the goal is the run's
//    input unless given. State finished -> the run completed (its output is the last stage's);
//    failed -> the run failed. RunResult::detail is {"workflow","state","stages":[...]}.
//  * WorkgroupStrategy: one workgroup in the run's room. success -> completed (output: the
//    winner's summary in compete mode, "member: summary" lines in synthesize mode); blocked or
//    failed -> the run failed. detail is {"workgroup","status","winner","timed_out","members"}.
// Thread safety: as every strategy, one execute() at a time per instance.
#pragma once

#include <agentbus/orchestration/strategies.hpp>
#include <agentbus/orchestration/workflow.hpp>
#include <agentbus/orchestration/workgroup.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace agentbus::orchestration {

struct GroupRunOptions {
  std::string name;  // in events and prompts; empty: "workflow" / "workgroup"
  std::string goal;  // empty: the run's input
  std::chrono::milliseconds settle_timeout{std::chrono::minutes(10)};  // per stage
};

class WorkflowStrategy : public Strategy {
 public:
  // Throws Error{invalid_argument} with Workflow's messages ("Stage name must not be empty.",
  // "Duplicate stage name: x.", "Stage x requires at least one member.", "Duplicate member
  // name: x.") and for a member or leader without a provider.
  WorkflowStrategy(std::vector<WorkflowStage> stages, GroupRunOptions options = {});
  [[nodiscard]] std::string_view name() const override { return "workflow"; }
  [[nodiscard]] std::vector<Agent> agents() const override;
  RunResult execute(Run& run) override;

 private:
  std::vector<WorkflowStage> stages_;
  GroupRunOptions options_;
};

class WorkgroupStrategy : public Strategy {
 public:
  // Throws Error{invalid_argument} with run_workgroup's messages for the members.
  WorkgroupStrategy(std::vector<WorkgroupMember> members, WorkgroupMode mode, GroupRunOptions options = {});
  [[nodiscard]] std::string_view name() const override { return "workgroup"; }
  [[nodiscard]] std::vector<Agent> agents() const override;
  RunResult execute(Run& run) override;

 private:
  std::vector<WorkgroupMember> members_;
  WorkgroupMode mode_;
  GroupRunOptions options_;
};

}  // namespace agentbus::orchestration
