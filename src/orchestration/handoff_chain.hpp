// The driver Pipeline and Swarm share: the active agent answers, and either hands off (through
// the HandoffHandler, journaled per step), advances to the next stage, or ends the run.
#pragma once

#include <agentbus/orchestration/handoff.hpp>
#include <agentbus/orchestration/router.hpp>
#include <agentbus/orchestration/run.hpp>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace agentbus::orchestration::detail {

struct ChainConfig {
  std::vector<Agent> agents;
  ConversationState initial;
  ConversationRouter router;
  HandoffOptions handoff;
  std::function<std::vector<std::pair<std::string, std::string>>(const std::string&)> targets;
  // Pipeline: the stage after this agent's (a reply without a handoff goes there); Swarm: none.
  std::function<std::optional<std::string>(const std::string&)> next_agent;
  // Pipeline's supervisor: called after every other agent's reply (a step of its own) with the
  // conversation so far; what it says joins the conversation. It decides nothing.
  std::optional<Agent> supervisor;
};

RunResult run_chain(Run& run, const ChainConfig& config);

}  // namespace agentbus::orchestration::detail
