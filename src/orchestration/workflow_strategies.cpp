// Workflows and workgroups over a durable run: every member call is a journaled step, every
// settled stage a journaled result, so a resumed run calls nobody whose work is on the log.
#include <agentbus/error.hpp>
#include <agentbus/orchestration/protocol.hpp>
#include <agentbus/orchestration/workflow_strategies.hpp>

#include "orchestration/json_object.hpp"
#include "orchestration/protocol_dom.hpp"
#include "orchestration/run_failpoint.hpp"
#include "orchestration/strategy_support.hpp"
#include "orchestration/workflow_stage.hpp"
#include "orchestration/workgroup_finish.hpp"

#include <exception>
#include <mutex>

namespace agentbus::orchestration {

namespace {

constexpr std::string_view kStageFinished = "STAGE_FINISHED";
constexpr std::string_view kWorkgroupFinished = "WORKGROUP_FINISHED";

// An error thrown by Run::call on a member's thread (a replay that does not match, a full
// run room) must end the run as it would in any strategy, not the process: the member's call
// fails, and the driver rethrows the first such error once the stage has settled.
class CallErrors {
 public:
  void keep(std::exception_ptr e) {
    std::lock_guard lock(mutex_);
    if (!first_) first_ = std::move(e);
  }
  void rethrow() {
    std::lock_guard lock(mutex_);
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::mutex mutex_;
  std::exception_ptr first_;
};

bool has_outcome(const Run& run, std::uint64_t step) {
  return run.recorded("STEP_REPLY", step) || run.recorded("STEP_FAILED", step);
}

// Whether the journaled reply of `step` finished with success.
bool journaled_success(const Run& run, std::uint64_t step) {
  const auto payload = run.recorded("STEP_REPLY", step);
  if (!payload) return false;
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  simdjson::dom::element reply;
  std::string why;
  if (!json::parse_object(parser, *payload, obj, why) || obj["reply"].get(reply)) return false;
  const auto r = reply_from_element(reply, why);
  MemberResult m;
  return r && read_finish(*r, m) && m.status == MemberStatus::success;
}

// A member's provider as seen by the workgroup: its call number (0: the first, 1: the
// reminder) becomes the run step first_step + n, called or replayed by Run::call.
class JournaledProvider : public Provider {
 public:
  JournaledProvider(Run& run, Agent agent, std::uint64_t first_step, bool only_replay, std::shared_ptr<CallErrors> errors)
      : run_(run), agent_(std::move(agent)), first_step_(first_step), only_replay_(only_replay), errors_(std::move(errors)) {}

  CallResult call(const ProviderRequest& request, std::chrono::milliseconds timeout) override {
    const std::uint64_t step = first_step_ + request.step;
    if (only_replay_ && !has_outcome(run_, step))
      return CallResult::failure("agent '" + agent_.id + "' was not called again: its stage had been won before the driver died");
    try {
      return run_.call(step, agent_, request, timeout);
    } catch (...) {
      errors_->keep(std::current_exception());
      return CallResult::failure("agent '" + agent_.id + "': step " + std::to_string(step) + " could not be journaled");
    }
  }
  [[nodiscard]] std::string describe() const override { return agent_.provider->describe(); }
  void cancel_calls() override { agent_.provider->cancel_calls(); }

 private:
  Run& run_;
  Agent agent_;
  std::uint64_t first_step_;
  bool only_replay_;
  std::shared_ptr<CallErrors> errors_;
};

constexpr std::uint64_t kCallsPerMember = 2;  // the call and the one reminder to call finish

Agent journaled(Run& run, const Agent& agent, std::uint64_t first_step, bool only_replay, const std::shared_ptr<CallErrors>& errors) {
  Agent a = agent;
  a.provider = std::make_shared<JournaledProvider>(run, agent, first_step, only_replay, errors);
  return a;
}

// The members with journaled providers, member j at steps first + 2j and first + 2j + 1. In a
// compete group that a journaled success has won already, nobody without an outcome is called.
std::vector<WorkgroupMember> journaled_members(Run& run, const std::vector<WorkgroupMember>& members, WorkgroupMode mode,
                                               std::uint64_t first, const std::shared_ptr<CallErrors>& errors) {
  bool won = false;
  for (std::uint64_t s = first; mode == WorkgroupMode::compete && s < first + kCallsPerMember * members.size(); ++s)
    won = won || journaled_success(run, s);
  std::vector<WorkgroupMember> out = members;
  for (std::size_t j = 0; j < out.size(); ++j)
    out[j].agent = journaled(run, members[j].agent, first + kCallsPerMember * j, won, errors);
  return out;
}

void check_members(const std::vector<WorkgroupMember>& members, const std::string& where) {
  check_member_names(members, where);
  for (const auto& m : members)
    if (!m.agent.provider) throw Error(Errc::invalid_argument, "member " + m.name + " (agent '" + m.agent.id + "') has no provider");
}

std::string workgroup_json(const std::string& name, const WorkgroupResult& w) {
  return json::ObjectWriter()
      .str("workgroup", name)
      .str("status", to_string(w.status))
      .str("winner", w.winner)
      .boolean("timed_out", w.timed_out)
      .raw("pending", json::string_array(w.pending))
      .raw("members", members_json(w.members))
      .finish();
}

[[noreturn]] void unreadable(const Run& run, std::string_view what, const std::string& why) {
  throw Error(Errc::corrupt, "run '" + run.id() + "': its journaled " + std::string(what) + " is unreadable: " + why);
}

WorkgroupResult workgroup_from(const Run& run, simdjson::dom::object obj) {
  WorkgroupResult w;
  std::string why, status;
  if (!json::get_string(obj, "status", status, true, why) || !json::get_string(obj, "winner", w.winner, false, why) ||
      !json::get_bool(obj, "timed_out", w.timed_out, false, why))
    unreadable(run, "workgroup result", why);
  w.status = member_status_from(status).value_or(MemberStatus::failed);
  simdjson::dom::array members;
  if (!obj["members"].get(members)) {
    for (simdjson::dom::element e : members) {
      simdjson::dom::object m;
      MemberResult r;
      std::string st;
      if (e.get_object().get(m) || !json::get_string(m, "name", r.name, true, why) || !json::get_string(m, "status", st, true, why) ||
          !json::get_string(m, "summary", r.summary, false, why))
        unreadable(run, "workgroup member", why);
      r.status = member_status_from(st).value_or(MemberStatus::failed);
      w.members.push_back(std::move(r));
    }
  }
  simdjson::dom::array pending;
  if (!obj["pending"].get(pending))
    for (simdjson::dom::element e : pending) {
      std::string_view s;
      if (!e.get_string().get(s)) w.pending.emplace_back(s);
    }
  return w;
}

std::string stage_json(const StageResult& s, const std::string& workgroup) {
  return json::ObjectWriter()
      .str("name", s.name)
      .str("room", s.room)
      .str("status", to_string(s.status))
      .str("output", s.output)
      .boolean("leader_skipped", s.leader_skipped)
      .raw("result", workgroup_json(workgroup, s.workgroup))
      .finish();
}

StageResult stage_from(const Run& run, const std::string& payload) {
  simdjson::dom::parser parser;
  simdjson::dom::object obj, result;
  std::string why, status;
  StageResult s;
  if (!json::parse_object(parser, payload, obj, why) || !json::get_string(obj, "name", s.name, true, why) ||
      !json::get_string(obj, "room", s.room, true, why) || !json::get_string(obj, "status", status, true, why) ||
      !json::get_string(obj, "output", s.output, false, why) || !json::get_bool(obj, "leader_skipped", s.leader_skipped, false, why))
    unreadable(run, "stage result", why);
  if (obj["result"].get(result)) unreadable(run, "stage result", "missing \"result\"");
  s.status = member_status_from(status).value_or(MemberStatus::failed);
  s.workgroup = workgroup_from(run, result);
  return s;
}

// "name (status): summary" per member, for a failure's message.
std::string member_lines(const std::vector<MemberResult>& members) {
  std::string out;
  for (const auto& m : members)
    out += (out.empty() ? "" : "; ") + m.name + " (" + std::string(to_string(m.status)) + ")" + (m.summary.empty() ? "" : ": " + m.summary);
  return out;
}

std::string goal_or_input(const GroupRunOptions& o, const Run& run) { return o.goal.empty() ? run.input() : o.goal; }

}  // namespace

WorkflowStrategy::WorkflowStrategy(std::vector<WorkflowStage> stages, GroupRunOptions options)
    : stages_(std::move(stages)), options_(std::move(options)) {
  if (options_.name.empty()) options_.name = "workflow";
  WorkflowSpec check;
  check.room = "-";
  check.goal = "-";  // the goal may come from the run's input
  check.stages = stages_;
  validate_workflow_stages(check);
  for (const auto& s : stages_) {
    check_members(s.members, "Stage " + s.name);
    if (s.leader && !s.leader->provider) throw Error(Errc::invalid_argument, "the leader of stage " + s.name + " has no provider");
  }
  if (options_.settle_timeout <= std::chrono::milliseconds(0))
    throw Error(Errc::invalid_argument, "workflow settle timeout must be positive.");
}

std::vector<Agent> WorkflowStrategy::agents() const {
  std::vector<Agent> out;
  for (const auto& s : stages_) {
    for (const auto& m : s.members) out.push_back(m.agent);
    if (s.leader) out.push_back(*s.leader);
  }
  return out;
}

RunResult WorkflowStrategy::execute(Run& run) {
  WorkflowSpec spec;
  spec.name = options_.name;
  spec.room = run.room().name();
  spec.goal = goal_or_input(options_, run);
  spec.stages = stages_;
  spec.settle_timeout = options_.settle_timeout;
  try {
    validate_workflow_stages(spec);
  } catch (const Error& e) {
    return detail::failed(e.what());
  }
  std::vector<StageResult> done;
  WorkflowState state = WorkflowState::running;
  std::string output;
  for (std::size_t i = 0; i < stages_.size() && state == WorkflowState::running; ++i) {
    const WorkflowStage& stage = stages_[i];
    const std::uint64_t n = stage.members.size();
    // Reserved whether or not the stage is journaled, so every later index stays the same.
    const std::uint64_t first = run.reserve_steps(kCallsPerMember * n + (stage.leader ? kCallsPerMember : 0));
    StageResult sr;
    if (const auto payload = run.recorded(kStageFinished, first, "stage")) {
      sr = stage_from(run, *payload);
    } else {
      auto errors = std::make_shared<CallErrors>();
      WorkflowStage journaled_stage = stage;
      journaled_stage.members = journaled_members(run, stage.members, stage.mode, first, errors);
      if (stage.leader) journaled_stage.leader = journaled(run, *stage.leader, first + kCallsPerMember * n, false, errors);
      sr = run_stage(run.bus(), spec, i, journaled_stage, done, nullptr);
      errors->rethrow();
      (void)run.record(kStageFinished, first, "orchestration", json::members_of(stage_json(sr, spec.name + "/" + stage.name)), "stage");
      run_failpoint("after_stage", first);
    }
    state = state_after(sr, i + 1 == stages_.size());
    if (sr.status == MemberStatus::success || sr.status == MemberStatus::blocked) output = sr.output;
    done.push_back(std::move(sr));
  }
  const std::string summary = json::ObjectWriter()
                                 .str("workflow", spec.name)
                                 .str("state", to_string(state))
                                 .str("output", output)
                                 .raw("stages", stages_json(done))
                                 .finish();
  (void)run.record("workflow.finished", 0, spec.name, json::members_of(summary), "workflow");
  RunResult r;
  if (state == WorkflowState::finished) {
    r = detail::completed(output);
  } else {
    const StageResult& last = done.back();
    r = detail::failed("workflow " + spec.name + " " + std::string(to_string(state)) + " at stage " + last.name + ": " +
                       (last.output.empty() ? member_lines(last.workgroup.members) : last.output));
  }
  r.detail = summary;
  return r;
}

WorkgroupStrategy::WorkgroupStrategy(std::vector<WorkgroupMember> members, WorkgroupMode mode, GroupRunOptions options)
    : members_(std::move(members)), mode_(mode), options_(std::move(options)) {
  if (options_.name.empty()) options_.name = "workgroup";
  check_members(members_, "workgroup");
  if (options_.settle_timeout <= std::chrono::milliseconds(0))
    throw Error(Errc::invalid_argument, "workgroup settle timeout must be positive.");
}

std::vector<Agent> WorkgroupStrategy::agents() const {
  std::vector<Agent> out;
  for (const auto& m : members_) out.push_back(m.agent);
  return out;
}

RunResult WorkgroupStrategy::execute(Run& run) {
  const std::uint64_t first = run.reserve_steps(kCallsPerMember * members_.size());
  WorkgroupResult w;
  if (const auto payload = run.recorded(kWorkgroupFinished, first, "workgroup")) {
    simdjson::dom::parser parser;
    simdjson::dom::object obj;
    std::string why;
    if (!json::parse_object(parser, *payload, obj, why)) unreadable(run, "workgroup result", why);
    w = workgroup_from(run, obj);
  } else {
    WorkgroupSpec spec;
    spec.name = options_.name;
    spec.room = run.room().name();
    spec.goal = goal_or_input(options_, run);
    spec.mode = mode_;
    spec.settle_timeout = options_.settle_timeout;
    auto errors = std::make_shared<CallErrors>();
    spec.members = journaled_members(run, members_, mode_, first, errors);
    try {
      w = run_workgroup(run.bus(), spec);
    } catch (const Error& e) {
      if (e.code() != Errc::invalid_argument) throw;
      return detail::failed(e.what());  // "workgroup requires goal." for an empty input
    }
    errors->rethrow();
    (void)run.record(kWorkgroupFinished, first, "orchestration", json::members_of(workgroup_json(options_.name, w)), "workgroup");
    run_failpoint("after_stage", first);
  }
  std::string output;
  if (mode_ == WorkgroupMode::compete && w.status == MemberStatus::success) {
    for (const auto& m : w.members)
      if (m.name == w.winner) output = m.summary;
  } else {
    output = summary_lines(w.members);
  }
  RunResult r = w.status == MemberStatus::success
                    ? detail::completed(output)
                    : detail::failed("workgroup " + options_.name + " " + std::string(to_string(w.status)) +
                                         (w.timed_out ? " (timed out)" : "") + ": " + member_lines(w.members),
                                     output);
  r.detail = workgroup_json(options_.name, w);
  return r;
}

}  // namespace agentbus::orchestration
