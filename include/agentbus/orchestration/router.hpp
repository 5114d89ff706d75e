// agentbus/orchestration/router.hpp — RoomKit's ConversationRouter: which agent handles an event.
//
// select_agent(): (1) an event from an intelligence (agent) channel is not routed, which stops
// AI -> AI loops; (2) sticky affinity: the active agent keeps it while still bound in the room;
// (3) rules by ascending priority, first match wins, every set condition must hold (AND);
// (4) the default agent. route() is RoomKit's BEFORE_BROADCAST hook: what to stamp on the event.
// Pure functions of their arguments; safe from any thread.
#pragma once

#include <agentbus/orchestration/conversation.hpp>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace agentbus::orchestration {

enum class ChannelCategory { transport, intelligence };

// An inbound event, as routing sees it.
struct RouteEvent {
  std::string source_channel_id;
  std::string channel_type;  // e.g. "sms", "websocket", "ai"
  JsonMap metadata;          // "intent" (a JSON string) is read by RoutingConditions::intents
  std::optional<std::vector<std::string>> addressed_to;  // set: routing is skipped
};

// Who is bound in the room, and as what.
struct RouteContext {
  std::map<std::string, ChannelCategory> bindings;
  RouteContext& bind_agent(const std::string& id) { bindings[id] = ChannelCategory::intelligence; return *this; }
  RouteContext& bind_transport(const std::string& id) { bindings[id] = ChannelCategory::transport; return *this; }
  [[nodiscard]] bool bound(const std::string& id) const { return bindings.count(id) != 0; }
  [[nodiscard]] bool is_intelligence(const std::string& id) const;
};

using RoutingPredicate = std::function<bool(const RouteEvent&, const RouteContext&, const ConversationState&)>;

struct RoutingConditions {
  std::optional<std::set<std::string>> phases;
  std::optional<std::set<std::string>> channel_types;
  std::optional<std::set<std::string>> intents;
  std::optional<std::set<std::string>> source_channel_ids;
  RoutingPredicate custom{};
  [[nodiscard]] bool matches(const RouteEvent& event, const RouteContext& context, const ConversationState& state) const;
};

struct RoutingRule {
  std::string agent_id;
  RoutingConditions conditions;
  int priority = 0;  // lower first
};

// What the hook does to an event: leave it (allow) or stamp routing metadata on it.
struct RoutingStamp {
  bool modified = false;                    // false: allow unchanged (every agent processes it)
  std::optional<std::string> routed_to;     // "_none_": blocked for every agent (AI re-entry)
  std::vector<std::string> always_process;  // the supervisor, when there is one
  JsonMap metadata;                         // the event's metadata with the stamps, when modified
};

inline constexpr std::string_view kRoutedToNone = "_none_";

class ConversationRouter {
 public:
  explicit ConversationRouter(std::vector<RoutingRule> rules = {}, std::optional<std::string> default_agent_id = std::nullopt,
                              std::optional<std::string> supervisor_id = std::nullopt);

  [[nodiscard]] std::optional<std::string> select_agent(const RouteEvent& event, const RouteContext& context,
                                                        const ConversationState& state) const;
  [[nodiscard]] RoutingStamp route(const RouteEvent& event, const RouteContext& context, const ConversationState& state) const;

  [[nodiscard]] const std::vector<RoutingRule>& rules() const noexcept { return rules_; }
  [[nodiscard]] const std::optional<std::string>& default_agent_id() const noexcept { return default_; }
  [[nodiscard]] const std::optional<std::string>& supervisor_id() const noexcept { return supervisor_; }

 private:
  std::vector<RoutingRule> rules_;
  std::optional<std::string> default_;
  std::optional<std::string> supervisor_;
};

}  // namespace agentbus::orchestration
