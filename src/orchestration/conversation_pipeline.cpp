// conversation_pipeline.cpp — ConversationPipeline: graph validation, router, phase map.
#include <agentbus/error.hpp>
#include <agentbus/orchestration/pipeline.hpp>

namespace agentbus::orchestration {

ConversationPipeline::ConversationPipeline(std::vector<PipelineStage> stages, std::optional<std::string> default_phase,
                                           std::optional<std::string> supervisor_id)
    : stages_(std::move(stages)), default_phase_(std::move(default_phase)), supervisor_(std::move(supervisor_id)) {
  if (!default_phase_ && !stages_.empty()) default_phase_ = stages_.front().phase;
  std::set<std::string> phases;
  for (const auto& s : stages_) phases.insert(s.phase);
  for (const auto& s : stages_) {
    if (s.next && !s.next->empty() && !phases.count(*s.next))
      throw Error(Errc::invalid_argument, "Stage '" + s.phase + "' has next='" + *s.next + "' which is not a valid phase");
    for (const auto& r : s.can_return_to)
      if (!phases.count(r))
        throw Error(Errc::invalid_argument, "Stage '" + s.phase + "' has can_return_to='" + r + "' which is not a valid phase");
  }
}

const PipelineStage* ConversationPipeline::stage(const std::string& phase) const {
  for (const auto& s : stages_)
    if (s.phase == phase) return &s;
  return nullptr;
}

ConversationRouter ConversationPipeline::to_router() const {
  std::vector<RoutingRule> rules;
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    RoutingRule rule{stages_[i].agent_id, {}, static_cast<int>(i)};
    rule.conditions.phases = std::set<std::string>{stages_[i].phase};
    rules.push_back(std::move(rule));
  }
  std::optional<std::string> default_agent;
  if (default_phase_)
    if (const auto* s = stage(*default_phase_)) default_agent = s->agent_id;
  return ConversationRouter(std::move(rules), default_agent, supervisor_);
}

std::map<std::string, std::string> ConversationPipeline::get_phase_map() const {
  std::map<std::string, std::string> m;
  for (const auto& s : stages_) m[s.agent_id] = s.phase;  // a later stage of one agent wins, as in a dict
  return m;
}

std::map<std::string, std::set<std::string>> ConversationPipeline::get_allowed_transitions() const {
  std::map<std::string, std::set<std::string>> m;
  for (const auto& s : stages_) {
    std::set<std::string> allowed = s.can_return_to;
    if (s.next && !s.next->empty()) allowed.insert(*s.next);
    m[s.phase] = std::move(allowed);
  }
  return m;
}

std::vector<std::pair<std::string, std::string>> ConversationPipeline::handoff_targets(const std::string& agent_id) const {
  std::set<std::string> reachable;
  for (const auto& s : stages_)
    if (s.agent_id == agent_id) {
      if (s.next && !s.next->empty()) reachable.insert(*s.next);
      reachable.insert(s.can_return_to.begin(), s.can_return_to.end());
    }
  std::vector<std::pair<std::string, std::string>> targets;
  for (const auto& s : stages_)
    if (reachable.count(s.phase) && s.agent_id != agent_id) targets.emplace_back(s.agent_id, s.description);
  return targets;
}

HandoffHandler ConversationPipeline::make_handler(Room room, std::set<std::string> bound_agents,
                                                  std::map<std::string, std::string> agent_aliases) const {
  HandoffOptions options;
  options.agent_aliases = std::move(agent_aliases);
  options.phase_map = get_phase_map();
  options.allowed_transitions = get_allowed_transitions();
  return HandoffHandler(std::move(room), std::move(bound_agents), std::move(options));
}

}  // namespace agentbus::orchestration
