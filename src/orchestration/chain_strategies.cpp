// chain_strategies.cpp — Pipeline and Swarm: configurations of the handoff chain.
#include <agentbus/error.hpp>
#include <agentbus/orchestration/pipeline.hpp>
#include <agentbus/orchestration/strategies.hpp>

#include "orchestration/handoff_chain.hpp"
#include "orchestration/strategy_support.hpp"

namespace agentbus::orchestration {

Pipeline::Pipeline(std::vector<Agent> agents, std::optional<Agent> supervisor)
    : agents_(std::move(agents)), supervisor_(std::move(supervisor)) {
  if (agents_.empty()) throw Error(Errc::invalid_argument, "Pipeline needs at least one agent");
  detail::check_agents(agents_, "Pipeline");
  if (supervisor_) detail::check_agents({*supervisor_}, "Pipeline supervisor");
}

std::vector<Agent> Pipeline::agents() const {
  std::vector<Agent> all = agents_;
  if (supervisor_) {
    bool staged = false;
    for (const auto& a : agents_) staged = staged || a.id == supervisor_->id;
    if (!staged) all.push_back(*supervisor_);
  }
  return all;
}

RunResult Pipeline::execute(Run& run) {
  std::vector<PipelineStage> stages;
  for (std::size_t i = 0; i < agents_.size(); ++i) {
    PipelineStage s{agents_[i].id, agents_[i].id, std::nullopt, {}, agents_[i].description};
    if (i + 1 < agents_.size()) s.next = agents_[i + 1].id;
    stages.push_back(std::move(s));
  }
  const ConversationPipeline pipeline(stages, std::nullopt, supervisor_ ? std::optional<std::string>(supervisor_->id) : std::nullopt);
  detail::ChainConfig c;
  c.agents = agents_;
  c.initial = ConversationState::fresh(agents_.front().id, agents_.front().id);
  c.router = pipeline.to_router();
  c.handoff.phase_map = pipeline.get_phase_map();
  c.handoff.allowed_transitions = pipeline.get_allowed_transitions();
  c.targets = [pipeline](const std::string& id) { return pipeline.handoff_targets(id); };
  c.next_agent = [this](const std::string& id) -> std::optional<std::string> {
    for (std::size_t i = 0; i + 1 < agents_.size(); ++i)
      if (agents_[i].id == id) return agents_[i + 1].id;
    return std::nullopt;
  };
  c.supervisor = supervisor_;
  return detail::run_chain(run, c);
}

Swarm::Swarm(std::vector<Agent> agents, std::optional<std::string> entry) : agents_(std::move(agents)) {
  if (agents_.empty()) throw Error(Errc::invalid_argument, "Swarm needs at least one agent");
  detail::check_agents(agents_, "Swarm");
  entry_ = entry.value_or(agents_.front().id);
  bool found = false;
  for (const auto& a : agents_) found = found || a.id == entry_;
  if (!found) throw Error(Errc::invalid_argument, "Swarm entry '" + entry_ + "' is not one of its agents");
}

RunResult Swarm::execute(Run& run) {
  detail::ChainConfig c;
  c.agents = agents_;
  c.initial = ConversationState::fresh("swarm", entry_);
  c.router = ConversationRouter({}, entry_);
  c.targets = [this](const std::string& id) {
    std::vector<std::pair<std::string, std::string>> t;
    for (const auto& a : agents_)
      if (a.id != id) t.emplace_back(a.id, a.description);
    return t;
  };
  return detail::run_chain(run, c);
}

RunResult drive(Run& run, Strategy& strategy) {
  RunResult result;
  try {
    result = strategy.execute(run);
  } catch (const BudgetExceeded& e) {
    result = RunResult{};
    result.state = RunState::budget_exceeded;
    result.error = e.what();
  }
  run.finish(result);
  return result;
}

RunResult drive(Bus& bus, Strategy& strategy, std::string_view input, const RunOptions& options, std::string_view spec_json,
                std::string* run_id) {
  Run run = Run::start(bus, strategy.name(), input, spec_json, options);
  if (run_id) *run_id = run.id();
  return drive(run, strategy);
}

RunResult drive_resume(Bus& bus, Strategy& strategy, std::string_view run_id, const RunOptions& options) {
  Run run = Run::resume(bus, run_id, options);
  if (run.strategy() != strategy.name())
    throw Error(Errc::invalid_argument, "run '" + run.id() + "' was started as a " + run.strategy() + ", not a " +
                                            std::string(strategy.name()));
  return drive(run, strategy);
}

}  // namespace agentbus::orchestration
