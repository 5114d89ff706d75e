// What the strategies share: the finish and verdict tools, the conversation state written once
// per (step, key) so replays do not write it again, agent lookup, text helpers.
#pragma once

#include <agentbus/orchestration/conversation.hpp>
#include <agentbus/orchestration/provider.hpp>
#include <agentbus/orchestration/run.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::orchestration::detail {

[[nodiscard]] ToolSpec finish_tool();
[[nodiscard]] ToolSpec verdict_tool();

[[nodiscard]] std::string trim(std::string_view s);

// The state journaled for (step, key), or `state` committed now as the room's state (tagged
// with the run, step and key) and returned. `extra`: more payload members. `*id`: the event
// committed now (0 when it came from the journal).
ConversationState state_once(Run& run, std::uint64_t step, std::string_view key, const ConversationState& state,
                             std::string_view agent = "orchestration", std::string_view extra = {}, EventId* id = nullptr);

// The state in a journaled CONVERSATION_STATE payload.
[[nodiscard]] std::optional<ConversationState> state_in(const std::string& payload);

[[nodiscard]] const Agent& find_agent(const std::vector<Agent>& agents, const std::string& id);
void check_agents(const std::vector<Agent>& agents, std::string_view strategy);

// A completed run's result.
[[nodiscard]] RunResult completed(std::string output);
// The failed run's result, naming the step.
[[nodiscard]] RunResult failed(std::string error, std::string output = {});

}  // namespace agentbus::orchestration::detail
