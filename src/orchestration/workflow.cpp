// Workflows: ordered workgroup stages, each condensed by a leader.
#include "orchestration/json_object.hpp"
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

Workflow::Workflow(Bus bus, WorkflowSpec spec) : bus_(std::move(bus)), spec_(std::move(spec)) {
  if (spec_.room.empty()) throw Error(Errc::invalid_argument, "workflow requires room.");
  if (spec_.goal.find_first_not_of(" \t\r\n") == std::string::npos) throw Error(Errc::invalid_argument, "workflow requires goal.");
  if (spec_.stages.empty()) throw Error(Errc::invalid_argument, "workflow requires at least one stage.");
  std::set<std::string> names;
  for (const auto& s : spec_.stages) {
    if (s.name.empty()) throw Error(Errc::invalid_argument, "Stage name must not be empty.");
    if (!names.insert(s.name).second) throw Error(Errc::invalid_argument, "Duplicate stage name: " + s.name + ".");
    if (s.members.empty()) throw Error(Errc::invalid_argument, "Stage " + s.name + " requires at least one member.");
  }
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
    const WorkflowStage& stage = spec_.stages[i];
    if (cancel_) {
      out.state = WorkflowState::closed;
      break;
    }
    StageResult sr;
    sr.name = stage.name;
    sr.room = spec_.room + "/stage-" + std::to_string(i + 1);
    (void)bus_.room(sr.room);
    WorkgroupSpec wg;
    wg.name = spec_.name + "/" + stage.name;
    wg.room = sr.room;
    wg.goal = stage.goal + "\nWorkflow goal: " + spec_.goal + earlier_outputs(out.stages);
    wg.mode = stage.mode;
    wg.members = stage.members;
    wg.settle_timeout = spec_.settle_timeout;
    wg.cancel = &cancel_;
    sr.workgroup = run_workgroup(bus_, wg);
    if (sr.workgroup.cancelled || cancel_) {
      sr.status = MemberStatus::cancelled;
      out.stages.push_back(std::move(sr));
      out.state = WorkflowState::closed;
      break;
    }
    if (stage.mode == WorkgroupMode::compete && sr.workgroup.winner.empty()) {
      sr.leader_skipped = true;
      sr.status = sr.workgroup.status == MemberStatus::blocked ? MemberStatus::blocked : MemberStatus::failed;
    } else if (stage.leader && stage.leader->provider) {
      const MemberResult lead = run_leader(*stage.leader, spec_, stage, out.stages, sr.workgroup);
      sr.status = lead.status;
      sr.output = lead.summary;
    } else {
      sr.status = sr.workgroup.status;
      for (const auto& m : sr.workgroup.members)
        if (!m.summary.empty()) sr.output += (sr.output.empty() ? "" : "\n") + m.name + ": " + m.summary;
    }
    if (sr.status == MemberStatus::success) {
      out.output = sr.output;
      if (i + 1 == spec_.stages.size()) out.state = WorkflowState::finished;
    } else if (sr.status == MemberStatus::blocked) {
      out.output = sr.output;
      out.state = WorkflowState::finished;
    } else {
      out.state = WorkflowState::failed;
    }
    out.stages.push_back(std::move(sr));
  }
  if (out.state == WorkflowState::running) out.state = cancel_ ? WorkflowState::closed : WorkflowState::finished;
  std::string stages = "[";
  for (const auto& s : out.stages) {
    if (stages.size() > 1) stages += ",";
    stages += json::ObjectWriter().str("name", s.name).str("status", to_string(s.status)).str("output", s.output).finish();
  }
  stages += "]";
  RoomOptions existing;
  existing.create = false;
  (void)bus_.room(spec_.room, existing)
      .publish("workflow.finished", spec_.name,
               json::ObjectWriter().str("workflow", spec_.name).str("state", to_string(out.state))
                   .str("output", out.output).raw("stages", stages).finish());
  return out;
}

}  // namespace agentbus::orchestration
