// agentbus/orchestration/handoff.hpp — RoomKit's HandoffHandler: one agent hands the
// conversation to another.
//
// handle() resolves an alias, then validates and transitions under the room's state chain
// (conversation.hpp), which serialises handoffs across every process, not only this one:
//  * a target not bound in the room, not "human" and not in known_agents is rejected:
//    "Agent <id> not found in room";
//  * the new phase is the next_phase argument, else phase_map[target], else "handling";
//  * with allowed_transitions, a phase not allowed from the current one is rejected:
//    "Transition from '<a>' to '<b>' is not allowed";
//  * "human" makes the active agent none;
//  * the new state keeps the summary, sender and reason in its context (handoff_summary,
//    handoff_from, handoff_reason).
// An accepted handoff then publishes a SYSTEM event "[Handoff: A -> B] reason" and a status
// entry (action "handoff", info, agent = target); a rejection a status entry (failed, agent =
// caller). Callbacks run after that, on the calling thread: on_handoff and on_phase_transition
// when accepted, on_handoff_rejected otherwise, then on_handoff_complete (accepted only).
// Thread safety: handle() may be called from any thread and any process.
#pragma once

#include <agentbus/orchestration/conversation.hpp>
#include <agentbus/orchestration/provider.hpp>
#include <agentbus/room.hpp>
#include <agentbus/status_bus.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agentbus::orchestration {

inline constexpr std::string_view kHandoffTool = "handoff";
inline constexpr std::string_view kHandoffToolRoomKit = "handoff_conversation";  // accepted too
inline constexpr std::string_view kHumanTarget = "human";

struct HandoffArguments {
  std::string target;
  std::string reason;
  std::string summary;
  std::optional<std::string> next_phase;
  std::string channel_escalation = "same";  // same | voice | email | sms

  // From a tool call's arguments. target, reason and summary are required strings.
  [[nodiscard]] static std::optional<HandoffArguments> from_json(std::string_view json, std::string& why);
};

struct HandoffResult {
  bool accepted = false;
  std::optional<std::string> new_agent_id;
  std::optional<std::string> new_phase;
  std::string message;  // accepted: "Conversation transferred to <id>"
  std::string reason;   // rejected: why
  [[nodiscard]] std::string to_json() const;
  [[nodiscard]] static std::optional<HandoffResult> from_json(std::string_view json, std::string& why);
};

using HandoffCallback = std::function<void(const std::string& calling_agent, const HandoffArguments&, const HandoffResult&)>;

struct HandoffOptions {
  std::map<std::string, std::string> agent_aliases;
  std::map<std::string, std::string> phase_map;  // agent -> default phase
  std::optional<std::map<std::string, std::set<std::string>>> allowed_transitions;
  std::optional<std::set<std::string>> known_agents;  // skip the bound-in-room check
  HandoffCallback on_handoff, on_phase_transition, on_handoff_rejected, on_handoff_complete;
};

class HandoffHandler {
 public:
  // `bound_agents`: the agents bound in the room (targets that need no known_agents entry).
  HandoffHandler(Room room, std::set<std::string> bound_agents, HandoffOptions options = {});

  // Validates against the room's current state and commits the transition. `tags` (JSON object
  // members, e.g. "\"run\":\"r1\",\"step\":3") go into every event this publishes.
  HandoffResult handle(std::string_view calling_agent, const HandoffArguments& arguments, std::string_view tags = {});

  // The decision alone, against `current`: the result, and when accepted the new state in
  // `*next`. Publishes nothing.
  [[nodiscard]] HandoffResult evaluate(const ConversationState& current, std::string_view calling_agent,
                                       const HandoffArguments& arguments, ConversationState* next) const;
  // Publishes what an accepted or rejected handoff announces (event, status entry) and runs
  // the callbacks: what handle() does after committing.
  void announce(std::string_view calling_agent, const HandoffArguments& arguments, const HandoffResult& result,
                std::string_view tags = {});

  void bind(const std::string& agent_id);
  void unbind(const std::string& agent_id);
  [[nodiscard]] std::string resolve_alias(const std::string& target) const;
  [[nodiscard]] Room& room() noexcept { return room_; }

 private:
  Room room_;
  std::set<std::string> bound_;
  HandoffOptions options_;
  std::shared_ptr<std::mutex> mutex_;
  std::shared_ptr<StatusBus> status_;  // made once: a handoff posts an entry each time
};

// The handoff tool an agent may call; `targets` (id, description) limits "target" to those
// ids. An empty list gives the generic tool (any target).
[[nodiscard]] ToolSpec build_handoff_tool(const std::vector<std::pair<std::string, std::string>>& targets = {});

}  // namespace agentbus::orchestration
