// agentbus/orchestration/pipeline.hpp — RoomKit's ConversationPipeline: stages, each a phase
// handled by one agent, with a `next` phase and phases it may return to.
//
// The constructor validates the graph and throws Error{invalid_argument} with RoomKit's
// messages: "Stage 'review' has next='nope' which is not a valid phase", and the same for
// can_return_to. An empty pipeline is allowed; a stage whose next is itself is allowed.
// Immutable once built: every member function is const and safe from any thread.
#pragma once

#include <agentbus/orchestration/handoff.hpp>
#include <agentbus/orchestration/router.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace agentbus::orchestration {

struct PipelineStage {
  std::string phase;
  std::string agent_id;
  std::optional<std::string> next;
  std::set<std::string> can_return_to;
  std::string description;
};

class ConversationPipeline {
 public:
  explicit ConversationPipeline(std::vector<PipelineStage> stages, std::optional<std::string> default_phase = std::nullopt,
                                std::optional<std::string> supervisor_id = std::nullopt);

  // One rule per stage (its phase), priority = index; default = the default phase's agent.
  [[nodiscard]] ConversationRouter to_router() const;
  [[nodiscard]] std::map<std::string, std::string> get_phase_map() const;  // agent -> phase
  [[nodiscard]] std::map<std::string, std::set<std::string>> get_allowed_transitions() const;  // {next} ∪ can_return_to
  // The agents a stage's agent may hand off to (not itself), with descriptions.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> handoff_targets(const std::string& agent_id) const;
  // A HandoffHandler with this pipeline's phase map and allowed transitions.
  [[nodiscard]] HandoffHandler make_handler(Room room, std::set<std::string> bound_agents,
                                            std::map<std::string, std::string> agent_aliases = {}) const;

  [[nodiscard]] const std::vector<PipelineStage>& stages() const noexcept { return stages_; }
  [[nodiscard]] const std::optional<std::string>& default_phase() const noexcept { return default_phase_; }
  [[nodiscard]] const PipelineStage* stage(const std::string& phase) const;

 private:
  std::vector<PipelineStage> stages_;
  std::optional<std::string> default_phase_;
  std::optional<std::string> supervisor_;
};

}  // namespace agentbus::orchestration
