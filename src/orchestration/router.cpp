// router.cpp — ConversationRouter: affinity, rules, default; the hook's stamps.
#include <agentbus/orchestration/router.hpp>

#include "orchestration/json_object.hpp"

#include <algorithm>

namespace agentbus::orchestration {

namespace {

// The intent is a JSON string in the metadata; anything else is no intent.
std::optional<std::string> intent_of(const RouteEvent& event) {
  auto it = event.metadata.find("intent");
  if (it == event.metadata.end()) return std::nullopt;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element v;
  std::string_view s;
  if (parser.parse(it->second).get(v) || v.get_string().get(s)) return std::nullopt;
  return std::string(s);
}

std::string list_json(const std::vector<std::string>& ids) {
  return json::array(ids, [](const std::string& s) { return util::json_string(s); });
}

}  // namespace

bool RouteContext::is_intelligence(const std::string& id) const {
  auto it = bindings.find(id);
  return it != bindings.end() && it->second == ChannelCategory::intelligence;
}

bool RoutingConditions::matches(const RouteEvent& event, const RouteContext& context, const ConversationState& state) const {
  if (phases && !phases->count(state.phase)) return false;
  if (channel_types && !channel_types->count(event.channel_type)) return false;
  if (source_channel_ids && !source_channel_ids->count(event.source_channel_id)) return false;
  if (intents) {
    auto intent = intent_of(event);
    if (!intent || !intents->count(*intent)) return false;
  }
  return !custom || custom(event, context, state);
}

ConversationRouter::ConversationRouter(std::vector<RoutingRule> rules, std::optional<std::string> default_agent_id,
                                       std::optional<std::string> supervisor_id)
    : rules_(std::move(rules)), default_(std::move(default_agent_id)), supervisor_(std::move(supervisor_id)) {
  // Stable, as Python's sorted(): rules of equal priority keep their order.
  std::stable_sort(rules_.begin(), rules_.end(), [](const RoutingRule& a, const RoutingRule& b) { return a.priority < b.priority; });
}

std::optional<std::string> ConversationRouter::select_agent(const RouteEvent& event, const RouteContext& context,
                                                            const ConversationState& state) const {
  if (context.is_intelligence(event.source_channel_id)) return std::nullopt;
  if (state.active_agent_id && context.bound(*state.active_agent_id)) return state.active_agent_id;
  for (const auto& rule : rules_)
    if (rule.conditions.matches(event, context, state)) return rule.agent_id;
  return default_;
}

RoutingStamp ConversationRouter::route(const RouteEvent& event, const RouteContext& context, const ConversationState& state) const {
  RoutingStamp stamp;
  if (event.addressed_to) {
    // The sender chose its recipients; only the supervisor is added, and only once.
    const auto& to = *event.addressed_to;
    if (supervisor_ && std::find(to.begin(), to.end(), *supervisor_) == to.end()) {
      stamp.modified = true;
      stamp.always_process = {*supervisor_};
      stamp.metadata = event.metadata;
      stamp.metadata["_always_process"] = list_json(stamp.always_process);
    }
    return stamp;
  }
  const auto selected = select_agent(event, context, state);
  if (!selected) {
    if (!context.is_intelligence(event.source_channel_id)) return stamp;  // transport: every agent sees it
    stamp.routed_to = std::string(kRoutedToNone);
  } else {
    stamp.routed_to = selected;
  }
  stamp.modified = true;
  if (supervisor_) stamp.always_process.push_back(*supervisor_);
  stamp.metadata = event.metadata;
  stamp.metadata["_routed_to"] = util::json_string(*stamp.routed_to);
  stamp.metadata["_always_process"] = list_json(stamp.always_process);
  return stamp;
}

}  // namespace agentbus::orchestration
