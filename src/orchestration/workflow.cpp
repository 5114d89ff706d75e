// Workflows: ordered workgroup stages, each condensed by a leader.
#include "orchestration/json_object.hpp"
#include "orchestration/workflow_stage.hpp"
#include "orchestration/workgroup_finish.hpp"

#include <agentbus/error.hpp>
#include <agentbus/orchestration/workflow.hpp>
#include <agentbus/room.hpp>

#include <set>

namespace agentbus::orchestration {

std::string_view to_string(WorkflowState s) noexcept {
  switch (s) {
    case WorkflowState::running: return "running";
    case WorkflowState::finished: return "finished";
    case WorkflowState::failed: return "failed";
    case WorkflowState::closed: return "closed";
  }
  return "failed";
}

namespace {

std::string earlier_outputs(const std::vector<StageResult>& done) {
  std::string out;
  for (const auto& s : done) out += "\n[" + s.name + "] " + s.output;
  return out.empty() ? out : "\nEarlier stage outputs:" + out;
}

// The leader: finish only, once; asked once more if it does not.
MemberResult run_leader(const Agent& leader, const WorkflowSpec& spec, const WorkflowStage& stage,
                        const std::vector<StageResult>& done, const WorkgroupResult& workers) {
  ProviderRequest req;
  req.run_id = spec.name;
  req.agent = leader.info();
  req.tools = {finish_tool()};
  std::string prompt = "You lead stage " + stage.name + " of workflow " + spec.name +
                       ". Condense the workers' results into the stage result and call finish exactly once.\nGoal: " +
                       spec.goal + "\nStage goal: " + stage.goal + earlier_outputs(done) + "\nWorker results:";
  for (const auto& m : workers.members)
    prompt += "\n- " + m.name + " (" + std::string(to_string(m.status)) + "): " + m.summary;
  req.messages.push_back({"user", "", prompt});
  MemberResult r{leader.id, MemberStatus::failed, {}, {}};
  for (int attempt = 0; attempt < 2; ++attempt) {
    req.step = static_cast<std::uint64_t>(attempt);
    const CallResult call = leader.provider->call(req, spec.settle_timeout);
    if (!call.ok()) {
      r.summary = call.error;
      return r;
    }
    r.data = call.reply.text;
    if (read_finish(call.reply, r)) return r;
    req.messages.push_back({"assistant", leader.id, call.reply.text});
    req.messages.push_back({"user", "", "You stopped without calling finish. Call finish now."});
  }
  r.status = MemberStatus::failed;
  r.summary = "Leader stopped without calling finish.";
  return r;
}

}  // namespace

void validate_workflow_stages(const WorkflowSpec& spec) {
  if (spec.room.empty()) throw Error(Errc::invalid_argument, "workflow requires room.");
  if (spec.goal.find_first_not_of(" \t\r\n") == std::string::npos) throw Error(Errc::invalid_argument, "workflow requires goal.");
  if (spec.stages.empty()) throw Error(Errc::invalid_argument, "workflow requires at least one stage.");
  std::set<std::string> names;
  for (const auto& s : spec.stages) {
    if (s.name.empty()) throw Error(Errc::invalid_argument, "Stage name must not be empty.");
    if (!names.insert(s.name).second) throw Error(Errc::invalid_argument, "Duplicate stage name: " + s.name + ".");
    if (s.members.empty()) throw Error(Errc::invalid_argument, "Stage " + s.name + " requires at least one member.");
  }
}

StageResult run_stage(Bus& bus, const WorkflowSpec& spec, std::size_t index, const WorkflowStage& stage,
                      const std::vector<StageResult>& done, const std::atomic<bool>* cancel) {
  StageResult sr;
  sr.name = stage.name;
  sr.room = spec.room + "/stage-" + std::to_string(index + 1);
  (void)bus.room(sr.room);
  WorkgroupSpec wg;
  wg.name = spec.name + "/" + stage.name;
  wg.room = sr.room;
  wg.goal = stage.goal + "\nWorkflow goal: " + spec.goal + earlier_outputs(done);
  wg.mode = stage.mode;
  wg.members = stage.members;
  wg.settle_timeout = spec.settle_timeout;
  wg.cancel = cancel;
  sr.workgroup = run_workgroup(bus, wg);
  if (sr.workgroup.cancelled || (cancel != nullptr && cancel->load())) {
    sr.status = MemberStatus::cancelled;
  } else if (stage.mode == WorkgroupMode::compete && sr.workgroup.winner.empty()) {
    sr.leader_skipped = true;
    sr.status = sr.workgroup.status == MemberStatus::blocked ? MemberStatus::blocked : MemberStatus::failed;
  } else if (stage.leader && stage.leader->provider) {
    const MemberResult lead = run_leader(*stage.leader, spec, stage, done, sr.workgroup);
    sr.status = lead.status;
    sr.output = lead.summary;
  } else {
    sr.status = sr.workgroup.status;
    sr.output = summary_lines(sr.workgroup.members);
  }
  return sr;
}

WorkflowState state_after(const StageResult& stage, bool last) {
  switch (stage.status) {
    case MemberStatus::success: return last ? WorkflowState::finished : WorkflowState::running;
    case MemberStatus::blocked: return WorkflowState::finished;
    case MemberStatus::cancelled: return WorkflowState::closed;
    default: return WorkflowState::failed;
  }
}

std::string stages_json(const std::vector<StageResult>& stages) {
  return json::array(stages, [](const StageResult& s) {
    return json::ObjectWriter().str("name", s.name).str("status", to_string(s.status)).str("output", s.output).finish();
  });
}

std::optional<MemberStatus> member_status_from(std::string_view s) noexcept {
  for (MemberStatus m : {MemberStatus::running, MemberStatus::success, MemberStatus::blocked, MemberStatus::failed,
                         MemberStatus::cancelled})
    if (to_string(m) == s) return m;
  return std::nullopt;
}

Workflow::Workflow(Bus bus, WorkflowSpec spec) : bus_(std::move(bus)), spec_(std::move(spec)) {
  validate_workflow_stages(spec_);
  RoomOptions existing;
  existing.create = false;
  try {
    (void)bus_.room(spec_.room, existing);
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) throw Error(Errc::not_found, "Bus " + spec_.room + " not found.");
    throw;
  }
}

WorkflowResult Workflow::run() {
  WorkflowResult out;
  out.state = WorkflowState::running;
  for (std::size_t i = 0; i < spec_.stages.size() && out.state == WorkflowState::running; ++i) {
    if (cancel_) {
      out.state = WorkflowState::closed;
      break;
    }
    StageResult sr = run_stage(bus_, spec_, i, spec_.stages[i], out.stages, &cancel_);
    out.state = state_after(sr, i + 1 == spec_.stages.size());
    if (sr.status == MemberStatus::success || sr.status == MemberStatus::blocked) out.output = sr.output;
    out.stages.push_back(std::move(sr));
  }
  if (out.state == WorkflowState::running) out.state = cancel_ ? WorkflowState::closed : WorkflowState::finished;
  RoomOptions existing;
  existing.create = false;
  (void)bus_.room(spec_.room, existing)
      .publish("workflow.finished", spec_.name,
               json::ObjectWriter().str("workflow", spec_.name).str("state", to_string(out.state))
                   .str("output", out.output).raw("stages", stages_json(out.stages)).finish());
  return out;
}

}  // namespace agentbus::orchestration
