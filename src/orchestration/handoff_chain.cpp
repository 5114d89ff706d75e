// handoff_chain.cpp — Pipeline's and Swarm's driver, replay-aware.
#include <agentbus/error.hpp>

#include "orchestration/conversation_json.hpp"
#include "orchestration/handoff_chain.hpp"
#include "orchestration/json_object.hpp"
#include "orchestration/run_failpoint.hpp"
#include "orchestration/strategy_support.hpp"

#include <map>
#include <set>

namespace agentbus::orchestration::detail {

namespace {

// The encoded phase_history of the state in event `head`. A handoff's new state is a
// transition() of the head's, so its history is this one plus one entry: only that entry is
// encoded at each step, instead of the whole history, which grows by one per step.
struct HistoryCache {
  EventId head = 0;  // 0: nothing cached
  std::size_t entries = 0;
  std::string json;

  // history_json(next.phase_history), for `next` a transition of the state in event `base`.
  std::string extended(const ConversationState& next, EventId base) const {
    if (base == 0 || base != head || next.phase_history.size() != entries + 1) return history_json(next.phase_history);
    std::string out = json;
    out.pop_back();  // the ']'
    if (entries > 0) out.push_back(',');
    out.append(transition_json(next.phase_history.back())).push_back(']');
    return out;
  }
};

struct Handoff {
  HandoffResult result;
  std::optional<ConversationState> state;  // accepted: the new state
};

std::optional<HandoffResult> result_in(const std::string& payload, std::string_view field) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  simdjson::dom::element r;
  std::string why;
  if (!json::parse_object(parser, payload, obj, why) || obj[field].get(r)) return std::nullopt;
  return HandoffResult::from_json(simdjson::minify(r), why);
}

// One handoff as step `step`: from the journal when it was decided before, else decided now.
// Order on the log: state committed (carrying the result), announced, HANDOFF recorded; a
// driver killed between any two resumes at the first missing one.
// `state`/`head`: the current state and its event (head 0: unknown, read it from the room).
Handoff hand_off(Run& run, HandoffHandler& handler, std::uint64_t step, const std::string& caller,
                 const HandoffArguments& args, const ConversationState& state, EventId& head, HistoryCache& history) {
  if (auto p = run.recorded("HANDOFF", step)) {
    Handoff h{result_in(*p, "result").value_or(HandoffResult{}), std::nullopt};
    if (h.result.accepted)
      if (auto s = run.recorded(std::string(kConversationStateEvent), step)) h.state = state_in(*s);
    head = 0;  // a replayed state: the next commit reads the head (and its history) from the room
    return h;
  }
  const std::string tags = run.tags(step);
  Handoff h;
  std::string result_json;  // h.result.to_json(), once known
  if (auto s = run.recorded(std::string(kConversationStateEvent), step)) {
    h.result = result_in(*s, "handoff").value_or(HandoffResult{});
    h.state = state_in(*s);
    head = 0;  // the committed state's id is not known here; reload on the next commit
  } else {
    // `state` itself while it is the head we committed (no copy of it per step); the room's,
    // once it is not known or a rival committed first.
    std::optional<StoredState> loaded;
    if (head == 0) loaded = load_conversation_state(run.room());
    for (;;) {
      const ConversationState& current = loaded ? loaded->state : state;
      const EventId current_id = loaded ? loaded->id : head;
      ConversationState next;
      h.result = handler.evaluate(current, caller, args, &next);
      result_json = h.result.to_json();
      if (!h.result.accepted) break;
      const std::string extra = tags + ",\"handoff\":" + result_json;
      // Only our own in-memory state is known to encode as the cache says (a state read back
      // from the room may re-encode differently), so a loaded one is encoded in full.
      std::string next_history = history.extended(next, loaded ? 0 : current_id);
      if (auto id = commit_conversation_state_json(run.room(), state_json(next, next_history), current_id, caller, extra)) {
        history = HistoryCache{*id, next.phase_history.size(), std::move(next_history)};
        h.state = std::move(next);
        head = *id;
        break;
      }
      loaded = load_conversation_state(run.room());
    }
    run_failpoint("after_state", step);
  }
  if (!h.result.accepted || !run.recorded("SYSTEM", step)) handler.announce(caller, args, h.result, tags);
  if (result_json.empty()) result_json = h.result.to_json();  // a result read back from the journal
  run.record("HANDOFF", step, caller, "\"result\":" + result_json);
  return h;
}

}  // namespace

RunResult run_chain(Run& run, const ChainConfig& config) {
  std::set<std::string> bound;
  RouteContext context;
  for (const auto& a : config.agents) {
    bound.insert(a.id);
    context.bind_agent(a.id);
  }
  HandoffHandler handler(run.room(), bound, config.handoff);
  EventId head = 0;
  HistoryCache history;
  ConversationState state = state_once(run, 0, "init", config.initial, "orchestration", {}, &head);
  std::vector<Message> transcript{{"user", "", run.input()}};
  const RouteEvent input_event{"user", "cli", {}, std::nullopt};
  std::string output;
  // config.targets depends on the agent alone (the strategy's fixed stages or members), so an
  // agent's tools are built once per run, not at every step.
  std::map<std::string, std::vector<ToolSpec>> tools;
  auto tools_of = [&](const std::string& id) -> const std::vector<ToolSpec>& {
    auto it = tools.find(id);
    if (it == tools.end()) it = tools.emplace(id, std::vector<ToolSpec>{build_handoff_tool(config.targets(id)), finish_tool()}).first;
    return it->second;
  };
  for (;;) {
    const auto agent_id = config.router.select_agent(input_event, context, state);
    if (!agent_id) {
      RunResult r;
      r.output = output;
      r.detail = R"({"handed_to":"human"})";
      return r;
    }
    const Agent& agent = find_agent(config.agents, *agent_id);
    const std::uint64_t step = run.next_step();
    ProviderRequest request;
    request.messages = transcript;
    auto from = state.context.find("handoff_from");
    auto summary = state.context.find("handoff_summary");
    if (from != state.context.end() && summary != state.context.end() && state.handoff_count > 0) {
      // RoomKit's HandoffMemoryProvider: the previous agent's summary comes first.
      thread_local simdjson::dom::parser parser;
      std::string_view view;
      std::string f, s;  // copies: the parser's next parse overwrites what a view points at
      if (!parser.parse(from->second).get_string().get(view)) f = view;
      if (!parser.parse(summary->second).get_string().get(view)) s = view;
      if (!f.empty() && !s.empty())
        request.messages.insert(request.messages.begin(), Message{"user", "", "[Context from previous agent (" + f + ")]: " + s});
    }
    request.tools = tools_of(agent.id);
    const CallResult result = run.call(step, agent, std::move(request));
    if (!result.ok()) return failed("step " + std::to_string(step) + ": " + result.error, output);
    const Reply& reply = result.reply;
    output = reply.text;
    transcript.push_back({"assistant", agent.id, reply.text});
    if (config.supervisor && config.supervisor->id != agent.id) {
      // RoomKit's supervisor "always processes": it sees every step of the conversation.
      const std::uint64_t seen = run.next_step();
      ProviderRequest watch;
      watch.messages = transcript;
      const CallResult r = run.call(seen, *config.supervisor, std::move(watch));
      if (!r.ok()) return failed("step " + std::to_string(seen) + ": " + r.error, output);
      if (!r.reply.text.empty()) transcript.push_back({"assistant", config.supervisor->id, r.reply.text});
    }
    if (const ToolCall* finish = reply.find_tool("finish")) {
      thread_local simdjson::dom::parser parser;
      simdjson::dom::object obj;
      std::string why, out;
      if (json::parse_object(parser, finish->arguments, obj, why) && json::get_string(obj, "output", out, false, why) && !out.empty())
        output = out;
      return completed(output);
    }
    const ToolCall* call = reply.find_tool(kHandoffTool);
    if (!call) call = reply.find_tool(kHandoffToolRoomKit);
    HandoffArguments args;
    if (call) {
      std::string why;
      auto parsed = HandoffArguments::from_json(call->arguments, why);
      if (!parsed) {
        transcript.push_back({"system", "", "Handoff rejected: invalid arguments: " + why});
        continue;
      }
      args = std::move(*parsed);
    } else {
      const auto next = config.next_agent ? config.next_agent(agent.id) : std::nullopt;
      if (!next) return completed(output);
      args = HandoffArguments{*next, "stage complete", reply.text.substr(0, 500), std::nullopt, "same"};
    }
    Handoff h = hand_off(run, handler, step, agent.id, args, state, head, history);
    if (!h.result.accepted) {
      transcript.push_back({"system", "", "Handoff rejected: " + h.result.reason});
      continue;
    }
    if (!h.state) throw Error(Errc::corrupt, "run '" + run.id() + "': the state of step " + std::to_string(step) + " is unreadable");
    state = std::move(*h.state);
  }
}

}  // namespace agentbus::orchestration::detail
