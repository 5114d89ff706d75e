// handoff.cpp — HandoffHandler: validate, transition the room's state, announce.
#include <agentbus/error.hpp>
#include <agentbus/orchestration/handoff.hpp>
#include <agentbus/status_bus.hpp>

#include "orchestration/json_object.hpp"

namespace agentbus::orchestration {

std::optional<HandoffArguments> HandoffArguments::from_json(std::string_view text, std::string& why) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (!json::parse_object(parser, text, obj, why)) return std::nullopt;
  HandoffArguments a;
  std::string next;
  if (!json::get_string(obj, "target", a.target, true, why) || !json::get_string(obj, "reason", a.reason, true, why) ||
      !json::get_string(obj, "summary", a.summary, true, why) || !json::get_string(obj, "next_phase", next, false, why) ||
      !json::get_string(obj, "channel_escalation", a.channel_escalation, false, why))
    return std::nullopt;
  if (!next.empty()) a.next_phase = next;
  return a;
}

std::string HandoffResult::to_json() const {
  auto opt = [](const std::optional<std::string>& s) { return s ? util::json_string(*s) : std::string("null"); };
  return json::ObjectWriter()
      .boolean("accepted", accepted)
      .raw("new_agent_id", opt(new_agent_id))
      .raw("new_phase", opt(new_phase))
      .str("message", message)
      .str("reason", reason)
      .finish();
}

std::optional<HandoffResult> HandoffResult::from_json(std::string_view text, std::string& why) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (!json::parse_object(parser, text, obj, why)) return std::nullopt;
  HandoffResult r;
  std::string agent, phase;
  if (!json::get_bool(obj, "accepted", r.accepted, true, why) || !json::get_string(obj, "message", r.message, false, why) ||
      !json::get_string(obj, "reason", r.reason, false, why))
    return std::nullopt;
  simdjson::dom::element v;
  std::string_view s;
  if (!obj["new_agent_id"].get(v) && !v.get_string().get(s)) r.new_agent_id = std::string(s);
  if (!obj["new_phase"].get(v) && !v.get_string().get(s)) r.new_phase = std::string(s);
  return r;
}

HandoffHandler::HandoffHandler(Room room, std::set<std::string> bound_agents, HandoffOptions options)
    : room_(std::move(room)), bound_(std::move(bound_agents)), options_(std::move(options)),
      mutex_(std::make_shared<std::mutex>()), status_(std::make_shared<StatusBus>(room_)) {}

void HandoffHandler::bind(const std::string& agent_id) {
  std::lock_guard lock(*mutex_);
  bound_.insert(agent_id);
}

void HandoffHandler::unbind(const std::string& agent_id) {
  std::lock_guard lock(*mutex_);
  bound_.erase(agent_id);
}

std::string HandoffHandler::resolve_alias(const std::string& target) const {
  auto it = options_.agent_aliases.find(target);
  return it == options_.agent_aliases.end() ? target : it->second;
}

HandoffResult HandoffHandler::evaluate(const ConversationState& current, std::string_view calling_agent,
                                       const HandoffArguments& arguments, ConversationState* next) const {
  const std::string target = resolve_alias(arguments.target);
  HandoffResult result;
  const bool known = options_.known_agents && options_.known_agents->count(target);
  if (!bound_.count(target) && target != kHumanTarget && !known) {
    result.reason = "Agent " + target + " not found in room";
    return result;
  }
  std::string new_phase = "handling";
  if (arguments.next_phase && !arguments.next_phase->empty()) new_phase = *arguments.next_phase;
  else if (auto it = options_.phase_map.find(target); it != options_.phase_map.end()) new_phase = it->second;
  if (options_.allowed_transitions) {
    auto it = options_.allowed_transitions->find(current.phase);
    if (it == options_.allowed_transitions->end() || !it->second.count(new_phase)) {
      result.reason = "Transition from '" + current.phase + "' to '" + new_phase + "' is not allowed";
      return result;
    }
  }
  std::optional<std::string> new_agent;
  if (target != kHumanTarget) new_agent = target;
  if (next) {
    JsonMap meta{{"summary", util::json_string(arguments.summary)},
                 {"channel_escalation", util::json_string(arguments.channel_escalation)}};
    *next = current.transition(new_phase, new_agent, arguments.reason, std::move(meta));
    next->context["handoff_summary"] = util::json_string(arguments.summary);
    next->context["handoff_from"] = util::json_string(calling_agent);
    next->context["handoff_reason"] = util::json_string(arguments.reason);
  }
  result.accepted = true;
  result.new_agent_id = new_agent;
  result.new_phase = new_phase;
  result.message = "Conversation transferred to " + target;
  return result;
}

HandoffResult HandoffHandler::handle(std::string_view calling_agent, const HandoffArguments& arguments, std::string_view tags) {
  HandoffResult result;
  {
    // In this process one handoff at a time; across processes the state chain decides.
    std::lock_guard lock(*mutex_);
    for (;;) {
      const StoredState current = load_conversation_state(room_);
      ConversationState next;
      result = evaluate(current.state, calling_agent, arguments, &next);
      if (!result.accepted) break;
      const std::string extra = json::members_of(json::ObjectWriter().members(tags).raw("handoff", result.to_json()).finish());
      if (commit_conversation_state(room_, next, current.id, calling_agent, extra)) break;
    }
  }
  announce(calling_agent, arguments, result, tags);
  return result;
}

void HandoffHandler::announce(std::string_view calling_agent, const HandoffArguments& arguments, const HandoffResult& result,
                              std::string_view tags) {
  const std::string target = resolve_alias(arguments.target);
  StatusBus& status = *status_;
  if (result.accepted) {
    const std::string text = "[Handoff: " + std::string(calling_agent) + " -> " + target + "] " + arguments.reason;
    room_.publish("SYSTEM", calling_agent,
                  json::ObjectWriter()
                      .members(tags)
                      .str("text", text)
                      .boolean("handoff", true)
                      .str("from_agent", calling_agent)
                      .str("to_agent", target)
                      .str("summary", arguments.summary)
                      .boolean("_orchestration_internal", true)
                      .finish());
    status.post(target, "handoff", StatusLevel::info, std::string(calling_agent) + " -> " + target + ": " + arguments.reason);
    if (options_.on_handoff) options_.on_handoff(std::string(calling_agent), arguments, result);
    if (options_.on_phase_transition) options_.on_phase_transition(std::string(calling_agent), arguments, result);
    if (options_.on_handoff_complete) options_.on_handoff_complete(std::string(calling_agent), arguments, result);
  } else {
    status.post(calling_agent, "handoff", StatusLevel::failed, result.reason);
    if (options_.on_handoff_rejected) options_.on_handoff_rejected(std::string(calling_agent), arguments, result);
  }
}

ToolSpec build_handoff_tool(const std::vector<std::pair<std::string, std::string>>& targets) {
  std::string target_schema = R"({"type":"string","description":"Target agent ID or alias")";
  if (!targets.empty()) {
    std::string ids, desc;
    for (const auto& [id, d] : targets) {
      if (!ids.empty()) ids.push_back(',');
      ids += util::json_string(id);
      if (!desc.empty()) desc += "; ";
      desc += id + (d.empty() ? "" : ": " + d);
    }
    target_schema = R"({"type":"string","enum":[)" + ids + R"(],"description":)" + util::json_string("Agent to hand off to (" + desc + ")");
  }
  target_schema += "}";
  const std::string params =
      R"({"type":"object","properties":{"target":)" + target_schema +
      R"(,"reason":{"type":"string","description":"Why the handoff is needed"},"summary":{"type":"string","description":"Context for the next agent"},"next_phase":{"type":"string","description":"Optional phase to transition to"},"channel_escalation":{"type":"string","enum":["same","voice","email","sms"]}},"required":["target","reason","summary"]})";
  return ToolSpec{std::string(kHandoffTool), "Transfer the conversation to another agent", params};
}

}  // namespace agentbus::orchestration
