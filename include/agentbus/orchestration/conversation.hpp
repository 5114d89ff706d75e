// agentbus/orchestration/conversation.hpp — RoomKit's ConversationState, kept in a room.
//
// A state is an immutable value: transition() returns a new state and never changes the old
// one. It lives in the room as events of type CONVERSATION_STATE (payload: the state's JSON),
// so any process that can open the room reads the current state; no process holds it.
//
// Concurrency, across processes, without a lock: each state event names the state it replaces
// (reply_to = that event's id; none for the first). The current state is the end of the chain
// that starts at the first state event and follows, at each step, the first event naming the
// current one. A writer that raced and lost (its event names a state that already has a
// successor) is simply not on the chain, and commit_conversation_state() tells it so, so it can
// reload and retry: a compare-and-swap on an append-only log. If the room's ring has
// overwritten the start of the chain, the oldest state event still in it starts the chain.
#pragma once

#include <agentbus/event.hpp>
#include <agentbus/room.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::orchestration {

// RoomKit's built-in phases; any string is a phase.
namespace phase {
inline constexpr std::string_view intake = "intake", qualification = "qualification", handling = "handling",
                                  escalation = "escalation", resolution = "resolution", followup = "followup";
}

// Context and metadata values are JSON values, minified: "2", "true", "\"text\"".
using JsonMap = std::map<std::string, std::string>;

struct PhaseTransition {
  std::string from_phase;
  std::string to_phase;
  std::optional<std::string> from_agent;
  std::optional<std::string> to_agent;
  std::string reason;
  std::string timestamp;  // ISO-8601 UTC with microseconds, "Z"
  JsonMap metadata;
  friend bool operator==(const PhaseTransition&, const PhaseTransition&) = default;
};

struct ConversationState {
  std::string phase{orchestration::phase::intake};
  std::optional<std::string> active_agent_id;
  std::optional<std::string> previous_agent_id;
  std::uint32_t handoff_count = 0;
  std::string phase_started_at;  // ISO-8601 UTC; set by transition() and by fresh()
  std::vector<PhaseTransition> phase_history;
  JsonMap context;

  // A state starting now: phase_started_at set to the current time.
  [[nodiscard]] static ConversationState fresh(std::string phase = std::string(orchestration::phase::intake),
                                               std::optional<std::string> active_agent = std::nullopt);

  // A new state in `to_phase` with `to_agent` active: appends a history record, previous = the
  // old active agent, bumps handoff_count only if the agent changed (none -> X and X -> none
  // count), resets phase_started_at, keeps context.
  [[nodiscard]] ConversationState transition(std::string to_phase, std::optional<std::string> to_agent = std::nullopt,
                                             std::string reason = {}, JsonMap metadata = {}) const;
  // A copy with context[key] = json_value.
  [[nodiscard]] ConversationState with_context(std::string key, std::string json_value) const;

  [[nodiscard]] std::string to_json() const;
  // Throws nothing: nullopt with `why` for anything that is not a state.
  [[nodiscard]] static std::optional<ConversationState> from_json(std::string_view json, std::string& why);
  friend bool operator==(const ConversationState&, const ConversationState&) = default;
};

inline constexpr std::string_view kConversationStateEvent = "CONVERSATION_STATE";

struct StoredState {
  ConversationState state;  // the default state (intake, no agent) when the room has none
  EventId id = 0;           // the event holding it; 0: none stored yet
};

// The room's current state (see the chain rule above). Reads the room from its oldest event.
[[nodiscard]] StoredState load_conversation_state(Room& room);

// Publishes `next` as the successor of the state in event `expected` (0: the room has none),
// which must be on the chain: the id load_conversation_state() gave, or an earlier commit's.
// Returns the new event's id, or nullopt when another writer got there first (reload, retry).
// `agent` is the event's agent field; `extra` (a JSON object's members, without braces, e.g.
// "\"run\":\"r1\",\"step\":3") is added to the payload beside "state".
[[nodiscard]] std::optional<EventId> commit_conversation_state(Room& room, const ConversationState& next, EventId expected,
                                                               std::string_view agent, std::string_view extra = {});

// Replaces the state whatever it is now (retries the commit until it wins). Returns its id.
EventId set_conversation_state(Room& room, const ConversationState& state, std::string_view agent = "orchestration");

}  // namespace agentbus::orchestration
