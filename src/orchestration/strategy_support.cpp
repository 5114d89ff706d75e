// strategy_support.cpp — helpers the strategies share.
#include <agentbus/error.hpp>
#include <agentbus/orchestration/strategies.hpp>

#include "orchestration/json_object.hpp"
#include "orchestration/strategy_support.hpp"

#include <set>

namespace agentbus::orchestration {

Verdict parse_verdict(const Reply& reply) {
  if (const ToolCall* call = reply.find_tool("verdict")) {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::object obj;
    std::string why;
    Verdict v;
    if (!json::parse_object(parser, call->arguments, obj, why) || !json::get_bool(obj, "approved", v.approved, true, why) ||
        !json::get_string(obj, "feedback", v.feedback, false, why)) {
      return Verdict{false, "malformed verdict (" + why + "): " + reply.text};
    }
    if (v.feedback.empty()) v.feedback = reply.text;
    return v;
  }
  // The last non-empty line, exactly: "NOT APPROVED", "APPROVED?" or "approved" do not pass.
  std::string_view text = reply.text;
  while (!text.empty()) {
    const auto nl = text.find_last_of('\n');
    std::string line = detail::trim(nl == std::string_view::npos ? text : text.substr(nl + 1));
    if (!line.empty()) return Verdict{line == "VERDICT: APPROVED", reply.text};
    if (nl == std::string_view::npos) break;
    text = text.substr(0, nl);
  }
  return Verdict{false, reply.text};
}

std::string checked_worker_strategy(const std::string& s) {
  if (s == "sequential" || s == "parallel") return s;
  throw Error(Errc::invalid_argument, "'" + s + "' is not a valid WorkerStrategy");
}

namespace detail {

ToolSpec finish_tool() {
  return {"finish", "End the run with this output",
          R"({"type":"object","properties":{"output":{"type":"string","description":"The run's final output; default: your reply's text"}}})"};
}

ToolSpec verdict_tool() {
  return {"verdict", "Approve the work, or ask for a revision with feedback",
          R"({"type":"object","properties":{"approved":{"type":"boolean"},"feedback":{"type":"string"}},"required":["approved"]})"};
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}


std::optional<ConversationState> state_in(const std::string& payload) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  std::string why;
  simdjson::dom::element st;
  if (!json::parse_object(parser, payload, obj, why) || obj["state"].get(st)) return std::nullopt;
  return ConversationState::from_json(simdjson::minify(st), why);
}

ConversationState state_once(Run& run, std::uint64_t step, std::string_view key, const ConversationState& state,
                             std::string_view agent, std::string_view extra, EventId* id) {
  if (id) *id = 0;
  if (auto p = run.recorded(std::string(kConversationStateEvent), step, key))
    if (auto s = state_in(*p)) return *s;
  std::string tags = run.tags(step, key);
  if (!extra.empty()) tags.append(",").append(extra);
  for (;;) {
    const StoredState current = load_conversation_state(run.room());
    if (auto committed = commit_conversation_state(run.room(), state, current.id, agent, tags)) {
      if (id) *id = *committed;
      return state;
    }
  }
}

const Agent& find_agent(const std::vector<Agent>& agents, const std::string& id) {
  for (const auto& a : agents)
    if (a.id == id) return a;
  throw Error(Errc::invalid_argument, "no agent '" + id + "'");
}

void check_agents(const std::vector<Agent>& agents, std::string_view strategy) {
  std::set<std::string> ids;
  for (const auto& a : agents) {
    if (a.id.empty()) throw Error(Errc::invalid_argument, std::string(strategy) + ": an agent has an empty id");
    if (!a.provider) throw Error(Errc::invalid_argument, std::string(strategy) + ": agent '" + a.id + "' has no provider");
    if (!ids.insert(a.id).second) throw Error(Errc::invalid_argument, std::string(strategy) + ": agent id '" + a.id + "' appears twice");
  }
}

RunResult completed(std::string output) {
  RunResult r;
  r.output = std::move(output);
  return r;
}

RunResult failed(std::string error, std::string output) {
  RunResult r;
  r.state = RunState::failed;
  r.error = std::move(error);
  r.output = std::move(output);
  return r;
}

}  // namespace detail
}  // namespace agentbus::orchestration
