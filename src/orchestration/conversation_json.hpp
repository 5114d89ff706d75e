// A ConversationState's JSON in pieces. Its phase_history grows by one transition per handoff
// and is most of its text: a driver that keeps the encoded history of the state it committed
// last encodes only the new transition at the next handoff, not the whole history again.
#pragma once

#include <agentbus/orchestration/conversation.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace agentbus::orchestration {

// One phase_history entry, as in ConversationState::to_json().
[[nodiscard]] std::string transition_json(const PhaseTransition& t);

// The JSON array of `history`.
[[nodiscard]] std::string history_json(const std::vector<PhaseTransition>& history);

// `s`'s JSON, byte for byte s.to_json(), given `history` = history_json(s.phase_history).
[[nodiscard]] std::string state_json(const ConversationState& s, std::string_view history);

// commit_conversation_state() with the state already encoded (`state` = its to_json()).
[[nodiscard]] std::optional<EventId> commit_conversation_state_json(Room& room, std::string_view state, EventId expected,
                                                                    std::string_view agent, std::string_view extra);

}  // namespace agentbus::orchestration
