// conversation_store.cpp — a conversation's state as a chain of CONVERSATION_STATE events
// (the chain rule is in conversation.hpp).
#include <agentbus/error.hpp>
#include <agentbus/orchestration/conversation.hpp>

#include "orchestration/conversation_json.hpp"
#include "orchestration/json_object.hpp"
#include "orchestration/room_scan.hpp"

#include <algorithm>
#include <vector>

namespace agentbus::orchestration {

namespace {

struct Chain {
  std::vector<EventId> ids;  // on the chain, in order
  ConversationState head{};
  bool has_head = false;
};

std::optional<ConversationState> state_of(std::string_view payload) {
  thread_local simdjson::dom::parser parser;
  std::string why;
  simdjson::dom::object obj;
  if (!json::parse_object(parser, payload, obj, why)) return std::nullopt;
  simdjson::dom::element state;
  if (obj["state"].get(state) || !state.is_object()) return std::nullopt;
  return ConversationState::from_json(simdjson::minify(state), why);
}

Chain read_chain(Room& room, EventId end = 0) {
  Chain chain;
  EventId first_seen = 0;
  scan_room(
      room,
      [&](const EventView& e) {
        if (first_seen == 0) first_seen = e.id;
        if (e.type != kConversationStateEvent) return;
        const EventId head = chain.ids.empty() ? 0 : chain.ids.back();
        bool extends = false;
        if (head == 0) extends = !e.reply_to || *e.reply_to < first_seen;  // first, or its predecessor is gone
        else extends = e.reply_to && *e.reply_to == head;
        if (!extends) return;
        auto state = state_of(e.payload);
        if (!state) return;  // not a state we can read: it is not on the chain
        chain.ids.push_back(e.id);
        chain.head = std::move(*state);
        chain.has_head = true;
      },
      end);
  return chain;
}

}  // namespace

StoredState load_conversation_state(Room& room) {
  Chain chain = read_chain(room);
  if (!chain.has_head) return StoredState{};
  return StoredState{std::move(chain.head), chain.ids.back()};
}

std::optional<EventId> commit_conversation_state(Room& room, const ConversationState& next, EventId expected,
                                                 std::string_view agent, std::string_view extra) {
  return commit_conversation_state_json(room, next.to_json(), expected, agent, extra);
}

std::optional<EventId> commit_conversation_state_json(Room& room, std::string_view state, EventId expected,
                                                      std::string_view agent, std::string_view extra) {
  std::string payload = "{";
  if (!extra.empty()) {
    payload.append(extra);
    payload.push_back(',');
  }
  payload.append("\"state\":").append(state).push_back('}');
  PublishOptions options;
  if (expected != 0) options.reply_to = expected;
  const PublishResult r = room.publish(kConversationStateEvent, agent.empty() ? "orchestration" : agent, payload, options);
  if (!r.ok()) throw Error(Errc::no_space, "room '" + room.name() + "' is full: the conversation state could not be saved");
  if (expected == 0) {
    const Chain chain = read_chain(room, r.id + 1);
    if (std::find(chain.ids.begin(), chain.ids.end(), r.id) == chain.ids.end()) return std::nullopt;
    return r.id;
  }
  // `expected` is on the chain (the caller read it as the head, or committed it), so its
  // successor is the first state event after it that names it: ours, or a faster writer's.
  // Reading from `expected` keeps a commit's cost independent of the room's length. Our own
  // event is readable by construction; only a rival's has to be parsed to count.
  EventId successor = 0;
  scan_room(
      room,
      [&](const EventView& e) {
        if (successor == 0 && e.type == kConversationStateEvent && e.reply_to && *e.reply_to == expected &&
            (e.id == r.id || state_of(e.payload)))
          successor = e.id;
      },
      r.id + 1, expected);
  if (successor != r.id) return std::nullopt;
  return r.id;
}

EventId set_conversation_state(Room& room, const ConversationState& state, std::string_view agent) {
  for (;;) {
    const StoredState current = load_conversation_state(room);
    if (auto id = commit_conversation_state(room, state, current.id, agent)) return *id;
  }
}

}  // namespace agentbus::orchestration
