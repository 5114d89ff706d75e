// Pipeline, Swarm, Supervisor and Loop with scripted agents (and command agents where a real
// timeout matters): RoomKit's documented cases, and every step an event in the run's room.
#include <agentbus/error.hpp>
#include <agentbus/orchestration/command_provider.hpp>
#include <agentbus/orchestration/conversation.hpp>
#include <agentbus/orchestration/strategies.hpp>

#include "support/test_bus.hpp"

#include <gtest/gtest.h>

#include <thread>

using namespace agentbus;
using namespace agentbus::orchestration;
using namespace std::chrono_literals;

namespace {

Reply handoff_to(std::string target, std::string text = "passing on") {
  return Reply{std::move(text), {{"handoff", R"({"target":")" + target + R"(","reason":"over to you","summary":"s"})"}}, {}};
}
Reply tool(std::string text, std::string name, std::string args) { return Reply{std::move(text), {{std::move(name), std::move(args)}}, {}}; }

ScriptedProvider& provider_of(const Agent& a) { return static_cast<ScriptedProvider&>(*a.provider); }

std::vector<Event> events_of(Room& room, std::string_view type) {
  std::vector<Event> out;
  for (auto& e : room.recent(10000))
    if (e.type == type) out.push_back(e);
  return out;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

class orch_strategy : public ::testing::Test {
 protected:
  test::TestBus bus{"orch-strat"};
  RunOptions opts(std::string id) {
    RunOptions o;
    o.run_id = std::move(id);
    o.budget.max_steps = 50;
    return o;
  }
  Room run_room(const std::string& id) { return bus->room("runs/" + id); }
};

// ---- Pipeline ----

TEST_F(orch_strategy, pipeline_runs_each_stage_in_order_and_logs_every_step) {
  auto a = scripted_agent("triage", {Reply::say("classified")});
  auto b = scripted_agent("handler", {Reply::say("resolved")});
  auto c = scripted_agent("closer", {Reply::say("closed")});
  Pipeline p({a, b, c});
  const RunResult r = drive(*bus, p, "my printer is on fire", opts("p1"));
  ASSERT_EQ(r.state, RunState::completed) << r.error;
  EXPECT_EQ(r.output, "closed");
  EXPECT_EQ(provider_of(a).calls() + provider_of(b).calls() + provider_of(c).calls(), 3u);
  // Each later stage sees the earlier outputs, labelled, and the handoff summary first.
  const auto req = provider_of(c).requests().at(0);
  EXPECT_EQ(req.messages.front().content, "[Context from previous agent (handler)]: resolved");
  EXPECT_EQ(req.messages.at(1).content, "my printer is on fire");
  EXPECT_EQ(req.messages.back().agent, "handler");
  EXPECT_EQ(req.step, 2u);
  Room room = run_room("p1");
  EXPECT_EQ(events_of(room, "STEP_CALLED").size(), 3u);
  EXPECT_EQ(events_of(room, "STEP_REPLY").size(), 3u);
  const auto sys = events_of(room, "SYSTEM");
  ASSERT_EQ(sys.size(), 2u);
  EXPECT_TRUE(contains(sys[0].payload, "[Handoff: triage -> handler] stage complete")) << sys[0].payload;
  EXPECT_EQ(events_of(room, "RUN_FINISHED").size(), 1u);
  const auto st = load_conversation_state(room).state;
  EXPECT_EQ(st.phase, "closer");
  EXPECT_EQ(st.active_agent_id, "closer");
  EXPECT_EQ(st.handoff_count, 2u);
}

// The driver encodes only the newest phase_history entry of each state it commits (the rest
// it kept from its previous commit): every committed state must still read back as exactly
// what ConversationState::to_json() writes for it, escapes included (U+2028 too: a map value
// read back is written again the way this library writes strings).
TEST_F(orch_strategy, a_pipelines_committed_states_are_their_full_encoding) {
  std::vector<Agent> agents;
  for (int i = 0; i < 5; ++i) {
    const std::string next = "s" + std::to_string(i + 1);
    agents.push_back(scripted_agent("s" + std::to_string(i),
                                    {i < 4 ? Reply{"said \"" + std::to_string(i) + "\"\n\u00e9", {{"handoff", R"({"target":")" + next +
                                                   R"(","reason":"step \"q\"\nline","summary":"sum\\mary \u00e9 \u2028"})"}}, {}}
                                           : Reply::say("done")}));
  }
  Pipeline p(agents);
  const RunResult r = drive(*bus, p, "input", opts("penc"));
  ASSERT_EQ(r.state, RunState::completed) << r.error;
  Room room = run_room("penc");
  const auto states = events_of(room, std::string(kConversationStateEvent));
  ASSERT_EQ(states.size(), 5u);  // the initial state and four handoffs
  for (const auto& e : states) {
    const auto at = e.payload.rfind(R"("state":{"phase")");
    ASSERT_NE(at, std::string::npos) << e.payload;
    const std::string text = e.payload.substr(at + 8, e.payload.size() - at - 9);
    std::string why;
    const auto st = ConversationState::from_json(text, why);
    ASSERT_TRUE(st) << why;
    EXPECT_EQ(st->to_json(), text);
  }
  EXPECT_EQ(load_conversation_state(room).state.phase_history.size(), 4u);
}

TEST_F(orch_strategy, pipeline_refuses_a_handoff_past_the_next_stage_and_tells_the_agent) {
  auto a = scripted_agent("a", {handoff_to("c"), handoff_to("b")});
  auto b = scripted_agent("b", {Reply::say("b done")});
  auto c = scripted_agent("c", {Reply::say("c done")});
  Pipeline p({a, b, c});
  const RunResult r = drive(*bus, p, "go", opts("p2"));
  ASSERT_EQ(r.state, RunState::completed) << r.error;
  EXPECT_EQ(provider_of(a).calls(), 2u);
  const auto second = provider_of(a).requests().at(1);
  EXPECT_EQ(second.messages.back().content, "Handoff rejected: Transition from 'a' to 'c' is not allowed");
  EXPECT_EQ(r.output, "c done");
}

TEST_F(orch_strategy, pipeline_agent_gets_a_handoff_tool_limited_to_the_next_agent) {
  auto a = scripted_agent("a", {Reply::say("x")});
  auto b = scripted_agent("b", {Reply::say("y")});
  Pipeline p({a, b});
  drive(*bus, p, "go", opts("p3"));
  const auto tools = provider_of(a).requests().at(0).tools;
  ASSERT_EQ(tools.size(), 2u);
  EXPECT_EQ(tools[0].name, "handoff");
  EXPECT_TRUE(contains(tools[0].parameters, R"("enum":["b"])")) << tools[0].parameters;
  EXPECT_EQ(tools[1].name, "finish");
}

TEST_F(orch_strategy, finish_ends_a_pipeline_early) {
  auto a = scripted_agent("a", {tool("done already", "finish", R"({"output":"the answer"})")});
  auto b = scripted_agent("b", {Reply::say("never")});
  Pipeline p({a, b});
  const RunResult r = drive(*bus, p, "go", opts("p4"));
  EXPECT_EQ(r.output, "the answer");
  EXPECT_EQ(provider_of(b).calls(), 0u);
}

TEST_F(orch_strategy, a_failed_step_fails_the_pipeline_naming_the_step) {
  auto a = scripted_agent("a", {Reply::say("ok")});
  auto b = scripted_agent("b", [](const ProviderRequest&) { return CallResult::failure("agent 'b': out of coffee"); });
  Pipeline p({a, b});
  const RunResult r = drive(*bus, p, "go", opts("p5"));
  EXPECT_EQ(r.state, RunState::failed);
  EXPECT_EQ(r.error, "step 1: agent 'b': out of coffee");
  Room room = run_room("p5");
  EXPECT_EQ(events_of(room, "STEP_FAILED").size(), 1u);
}

TEST_F(orch_strategy, a_pipelines_supervisor_sees_every_step_and_the_stages_see_what_it_said) {
  auto a = scripted_agent("a", {Reply::say("a says")});
  auto b = scripted_agent("b", {Reply::say("b says")});
  auto sup = scripted_agent("sup", [](const ProviderRequest& r) { return CallResult::success(Reply::say("noted " + r.messages.back().content)); });
  Pipeline p({a, b}, sup);
  const RunResult r = drive(*bus, p, "go", opts("p6"));
  ASSERT_EQ(r.state, RunState::completed) << r.error;
  EXPECT_EQ(r.output, "b says");  // the supervisor observes; it does not take a stage's place
  const auto seen = provider_of(sup).requests();
  ASSERT_EQ(seen.size(), 2u);  // once after each stage
  EXPECT_EQ(seen[0].messages.back().content, "a says");
  EXPECT_EQ(seen[0].step, 1u);
  EXPECT_EQ(seen[1].messages.back().content, "b says");
  EXPECT_EQ(seen[1].step, 3u);
  EXPECT_TRUE(seen[0].tools.empty());
  const auto b_saw = provider_of(b).requests().at(0);
  EXPECT_EQ(b_saw.messages.back().agent, "sup");
  EXPECT_EQ(b_saw.messages.back().content, "noted a says");
  EXPECT_EQ(b_saw.step, 2u);
  EXPECT_EQ(p.agents().size(), 3u);
  // The supervisor's calls are steps of the run, journaled like the stages'.
  Room room = run_room("p6");
  EXPECT_EQ(events_of(room, "STEP_REPLY").size(), 4u);
}

TEST_F(orch_strategy, a_failing_pipeline_supervisor_fails_the_run) {
  auto a = scripted_agent("a", {Reply::say("a says")});
  auto sup = scripted_agent("sup", [](const ProviderRequest&) { return CallResult::failure("agent 'sup': asleep"); });
  Pipeline p({a}, sup);
  const RunResult r = drive(*bus, p, "go", opts("p7"));
  EXPECT_EQ(r.state, RunState::failed);
  EXPECT_EQ(r.error, "step 1: agent 'sup': asleep");
}

TEST_F(orch_strategy, pipeline_constructor_errors) {
  EXPECT_EQ(error_of([] { Pipeline p({}); }), "Pipeline needs at least one agent");
  EXPECT_EQ(error_of([] { Pipeline p({scripted_agent("a", {Reply::say("")}), scripted_agent("a", {Reply::say("")})}); }),
            "Pipeline: agent id 'a' appears twice");
}

// ---- Swarm ----

TEST_F(orch_strategy, swarm_starts_at_entry_and_any_agent_hands_to_any_other) {
  auto sales = scripted_agent("sales", {Reply::say("sales here")});
  auto support = scripted_agent("support", {handoff_to("billing")});
  auto billing = scripted_agent("billing", {Reply::say("refund issued")});
  Swarm s({sales, support, billing}, "support");
  const RunResult r = drive(*bus, s, "refund please", opts("s1"));
  ASSERT_EQ(r.state, RunState::completed) << r.error;
  EXPECT_EQ(r.output, "refund issued");
  EXPECT_EQ(provider_of(sales).calls(), 0u);
  Room room = run_room("s1");
  const auto st = load_conversation_state(room).state;
  EXPECT_EQ(st.active_agent_id, "billing");
  EXPECT_EQ(st.phase_history.at(0).from_phase, "swarm");
  const auto tools = provider_of(support).requests().at(0).tools;
  EXPECT_TRUE(contains(tools[0].parameters, R"("enum":["sales","billing"])")) << tools[0].parameters;
}

TEST_F(orch_strategy, swarm_entry_defaults_to_the_first_agent_and_must_be_an_agent) {
  auto a = scripted_agent("a", {Reply::say("from a")});
  Swarm s({a, scripted_agent("b", {Reply::say("b")})});
  EXPECT_EQ(drive(*bus, s, "hi", opts("s2")).output, "from a");
  EXPECT_EQ(error_of([&] { Swarm x({a}, "zed"); }), "Swarm entry 'zed' is not one of its agents");
}

TEST_F(orch_strategy, swarm_handoff_to_an_unknown_agent_is_rejected_and_the_agent_retries) {
  auto a = scripted_agent("a", {handoff_to("ghost"), Reply::say("fine, me then")});
  Swarm s({a, scripted_agent("b", {Reply::say("b")})});
  const RunResult r = drive(*bus, s, "hi", opts("s3"));
  EXPECT_EQ(r.output, "fine, me then");
  EXPECT_EQ(provider_of(a).requests().at(1).messages.back().content, "Handoff rejected: Agent ghost not found in room");
}

TEST_F(orch_strategy, agents_that_hand_off_forever_end_as_budget_exceeded) {
  auto a = scripted_agent("a", {handoff_to("b")});
  auto b = scripted_agent("b", {handoff_to("a")});
  Swarm s({a, b});
  RunOptions o = opts("s4");
  o.budget.max_steps = 5;
  const RunResult r = drive(*bus, s, "ping", o);
  EXPECT_EQ(r.state, RunState::budget_exceeded);
  EXPECT_EQ(r.error, "step limit reached: 5 steps (max_steps), 5 taken");
  EXPECT_EQ(provider_of(a).calls() + provider_of(b).calls(), 5u);
  Room room = run_room("s4");
  const auto fin = events_of(room, "RUN_FINISHED");
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_TRUE(contains(fin[0].payload, R"("state":"budget_exceeded")")) << fin[0].payload;
}

// ---- Supervisor ----

TEST_F(orch_strategy, supervisor_constructor_errors_as_roomkit) {
  auto s = scripted_agent("sup", {Reply::say("")});
  auto w = scripted_agent("w", {Reply::say("")});
  EXPECT_EQ(error_of([&] { Supervisor x(s, {w}, {.auto_delegate = true}); }), "auto_delegate=True requires strategy to be set");
  EXPECT_EQ(error_of([&] { Supervisor x(s, {w}, {.strategy = "random"}); }), "'random' is not a valid WorkerStrategy");
}

TEST_F(orch_strategy, supervisor_auto_sequential_refines_labels_earlier_outputs_and_presents) {
  auto sup = scripted_agent("coordinator", {Reply::say("topic: rings"), Reply::say("Here is the article.")});
  auto researcher = scripted_agent("researcher", {Reply::say("facts about rings")});
  auto writer = scripted_agent("writer", {Reply::say("an article on rings")});
  Supervisor s(sup, {researcher, writer}, {.strategy = "sequential", .auto_delegate = true});
  const RunResult r = drive(*bus, s, "tell me about lock-free rings", opts("v1"));
  ASSERT_EQ(r.state, RunState::completed) << r.error;
  EXPECT_EQ(r.output, "Here is the article.");
  EXPECT_EQ(provider_of(researcher).requests().at(0).messages.at(0).content, "topic: rings");
  EXPECT_EQ(provider_of(writer).requests().at(0).messages.at(0).content,
            "topic: rings\n\n[Output from researcher]:\nfacts about rings");
  EXPECT_EQ(r.detail,
            R"({"status":"completed","results":[{"worker":"researcher","output":"facts about rings"},{"worker":"writer","output":"an article on rings"}]})");
  EXPECT_TRUE(contains(provider_of(sup).requests().at(1).messages.at(1).content, r.detail));
}

TEST_F(orch_strategy, supervisor_parallel_fans_out_to_every_worker_with_the_same_task) {
  auto sup = scripted_agent("sup", {Reply::say("summary")});
  auto t = scripted_agent("technical", {Reply::say("tech view")});
  auto b = scripted_agent("business", {Reply::say("biz view")});
  Supervisor s(sup, {t, b}, {.strategy = "parallel", .auto_delegate = true, .refine_task = false});
  const RunResult r = drive(*bus, s, "assess", opts("v2"));
  ASSERT_EQ(r.state, RunState::completed) << r.error;
  EXPECT_EQ(provider_of(t).requests().at(0).messages.at(0).content, "assess");
  EXPECT_EQ(provider_of(b).requests().at(0).messages.at(0).content, "assess");
  EXPECT_TRUE(contains(r.detail, R"({"worker":"technical","output":"tech view"},{"worker":"business","output":"biz view"})")) << r.detail;
}

TEST_F(orch_strategy, supervisor_worker_over_its_time_budget_is_failed_and_the_chain_goes_on) {
  auto sup = scripted_agent("sup", {Reply::say("done")});
  Agent slow{"slow", "", "", std::make_shared<CommandProvider>("sleep 30")};
  auto fast = scripted_agent("fast", {Reply::say("quick result")});
  Supervisor s(sup, {slow, fast}, {.strategy = "sequential", .auto_delegate = true, .refine_task = false, .task_timeout = 200ms});
  const RunResult r = drive(*bus, s, "go", opts("v3"));
  ASSERT_EQ(r.state, RunState::completed) << r.error;
  EXPECT_TRUE(contains(r.detail, R"("worker":"slow","output":"","status":"failed","error":"agent 'slow': command 'sleep 30' timed out after 200 ms)")) << r.detail;
  EXPECT_TRUE(contains(r.detail, R"({"worker":"fast","output":"quick result"})"));
  EXPECT_EQ(provider_of(fast).requests().at(0).messages.at(0).content, "go");  // no output from slow to label
}

TEST_F(orch_strategy, supervisor_worker_failing_otherwise_fails_the_run) {
  auto sup = scripted_agent("sup", {Reply::say("done")});
  Agent broken{"broken", "", "", std::make_shared<CommandProvider>("exit 4")};
  Supervisor s(sup, {broken}, {.strategy = "sequential", .auto_delegate = true, .refine_task = false});
  const RunResult r = drive(*bus, s, "go", opts("v4"));
  EXPECT_EQ(r.state, RunState::failed);
  EXPECT_EQ(r.error, "worker 'broken' failed: agent 'broken': command 'exit 4' exited with status 4");
}

TEST_F(orch_strategy, supervisor_strategy_tool_and_per_worker_tools) {
  {
    auto sup = scripted_agent("sup", {tool("delegating", "delegate_workers", R"({"task":"research X"})"), Reply::say("final")});
    auto w = scripted_agent("w", {Reply::say("X is big")});
    Supervisor s(sup, {w}, {.strategy = "sequential"});
    const RunResult r = drive(*bus, s, "what is X", opts("v5"));
    EXPECT_EQ(r.output, "final");
    EXPECT_EQ(provider_of(sup).requests().at(0).tools.at(0).name, "delegate_workers");
    EXPECT_TRUE(contains(provider_of(sup).requests().at(1).messages.back().content, R"("output":"X is big")"));
  }
  {
    auto sup = scripted_agent("sup", {tool("", "delegate_to_coder", R"({"task":"fix bug"})"), Reply::say("shipped")});
    auto researcher = scripted_agent("researcher", {Reply::say("never")});
    auto coder = scripted_agent("coder", {Reply::say("patched")});
    Supervisor s(sup, {researcher, coder});
    const RunResult r = drive(*bus, s, "bug!", opts("v6"));
    EXPECT_EQ(r.output, "shipped");
    const auto tools = provider_of(sup).requests().at(0).tools;
    ASSERT_EQ(tools.size(), 2u);
    EXPECT_EQ(tools[0].name, "delegate_to_researcher");
    EXPECT_EQ(tools[1].name, "delegate_to_coder");
    EXPECT_EQ(provider_of(researcher).calls(), 0u);
    EXPECT_EQ(provider_of(coder).requests().at(0).messages.at(0).content, "fix bug");
  }
}

TEST_F(orch_strategy, supervised_steps_are_sent_back_up_to_max_revisions_then_marked_unvalidated) {
  auto sup = scripted_agent("sup", {Reply::say("try again\nVERDICT: REVISE")});
  auto w = scripted_agent("w", {Reply::say("attempt")});
  Supervisor s(sup, {w}, {.strategy = "sequential", .auto_delegate = true, .refine_task = false, .max_revisions = 2, .supervised = true});
  const RunResult r = drive(*bus, s, "do it", opts("v7"));
  ASSERT_EQ(r.state, RunState::completed) << r.error;
  EXPECT_EQ(provider_of(w).calls(), 3u);  // the first attempt and two revisions
  EXPECT_TRUE(contains(r.detail, R"("validated":false,"revisions":2)")) << r.detail;
  EXPECT_EQ(provider_of(w).requests().at(1).messages.at(0).content, "do it\n\n[Supervisor feedback]: try again\nVERDICT: REVISE");
}

// ---- Loop ----

TEST_F(orch_strategy, loop_constructor_errors_as_roomkit) {
  auto p = scripted_agent("p", {Reply::say("")});
  auto r = scripted_agent("r", {Reply::say("")});
  EXPECT_EQ(error_of([&] { Loop l(p, {r}, r); }), "Provide either 'reviewers' or 'reviewer', not both");
  EXPECT_EQ(error_of([&] { Loop l(p, {}); }), "At least one reviewer is required");
  EXPECT_EQ(error_of([&] { Loop l(p, {r}, std::nullopt, 3, "chaotic"); }), "'chaotic' is not a valid WorkerStrategy");
  EXPECT_NO_THROW(Loop(p, {}, r));
}

TEST_F(orch_strategy, loop_revises_until_the_reviewer_approves) {
  auto writer = scripted_agent("writer", {Reply::say("draft 1"), Reply::say("draft 2")});
  auto editor = scripted_agent("editor", {Reply::say("too short\nVERDICT: REVISE"), Reply::say("good\nVERDICT: APPROVED")});
  Loop l(writer, {editor});
  const RunResult r = drive(*bus, l, "write a poem", opts("l1"));
  ASSERT_EQ(r.state, RunState::completed) << r.error;
  EXPECT_TRUE(r.approved);
  EXPECT_EQ(r.iterations, 2u);
  EXPECT_EQ(r.output, "draft 2");
  EXPECT_EQ(r.stopped, "approved");
  EXPECT_EQ(provider_of(writer).requests().at(1).messages.back().content,
            "Reviewer feedback (iteration 1):\n[editor]: too short\nVERDICT: REVISE");
  Room room = run_room("l1");
  EXPECT_EQ(events_of(room, "VERDICT").size(), 2u);
  const auto st = load_conversation_state(room).state;
  EXPECT_EQ(st.context.at("_loop_iteration"), "2");
  EXPECT_EQ(st.context.at("_loop_approved"), "true");
}

TEST_F(orch_strategy, not_approved_never_passes) {
  // RoomKit's substring test would take every one of these as approval.
  for (const char* text : {"NOT APPROVED", "VERDICT: NOT APPROVED", "I have not approved this", "approved? no.",
                           "VERDICT: APPROVED\nActually, NOT APPROVED", "verdict: approved"}) {
    Verdict v = parse_verdict(Reply::say(text));
    EXPECT_FALSE(v.approved) << text;
  }
  EXPECT_TRUE(parse_verdict(Reply::say("Looks great.\nVERDICT: APPROVED\n\n")).approved);
  EXPECT_TRUE(parse_verdict(tool("ok", "verdict", R"({"approved":true})")).approved);
  EXPECT_FALSE(parse_verdict(tool("VERDICT: APPROVED", "verdict", R"({"approved":false,"feedback":"no"})")).approved);
  EXPECT_FALSE(parse_verdict(tool("VERDICT: APPROVED", "verdict", R"({"approved":"yes"})")).approved);
  EXPECT_FALSE(parse_verdict(Reply::say("")).approved);

  auto writer = scripted_agent("writer", {Reply::say("draft")});
  auto editor = scripted_agent("editor", {Reply::say("NOT APPROVED")});
  Loop l(writer, {editor}, std::nullopt, 2);
  const RunResult r = drive(*bus, l, "write", opts("l2"));
  EXPECT_FALSE(r.approved);
  EXPECT_EQ(r.stopped, "max_iterations");
  EXPECT_EQ(r.iterations, 2u);
  EXPECT_EQ(r.output, "draft");  // the last output, not approved
  EXPECT_EQ(provider_of(writer).calls(), 2u);
}

TEST_F(orch_strategy, empty_producer_output_stops_without_approval) {
  auto writer = scripted_agent("writer", {Reply::say("first"), Reply::say("   ")});
  auto editor = scripted_agent("editor", {Reply::say("VERDICT: REVISE")});
  Loop l(writer, {editor}, std::nullopt, 5);
  const RunResult r = drive(*bus, l, "write", opts("l3"));
  EXPECT_FALSE(r.approved);
  EXPECT_EQ(r.stopped, "empty_output");
  EXPECT_EQ(r.output, "first");
  EXPECT_EQ(provider_of(writer).calls(), 2u);
  EXPECT_EQ(provider_of(editor).calls(), 1u);
}

TEST_F(orch_strategy, loop_parallel_reviewers_all_must_approve_and_feedback_is_combined) {
  auto coder = scripted_agent("coder", {Reply::say("v1"), Reply::say("v2")});
  auto sec = scripted_agent("security", {Reply::say("VERDICT: APPROVED")});
  auto perf = scripted_agent("perf", {Reply::say("slow loop\nVERDICT: REVISE"), tool("fine", "verdict", R"({"approved":true})")});
  Loop l(coder, {sec, perf}, std::nullopt, 3, "parallel");
  const RunResult r = drive(*bus, l, "code it", opts("l4"));
  ASSERT_TRUE(r.approved) << r.error;
  EXPECT_EQ(r.iterations, 2u);
  EXPECT_EQ(provider_of(sec).calls(), 2u);
  const auto feedback = provider_of(coder).requests().at(1).messages.back().content;
  EXPECT_TRUE(contains(feedback, "[security]: VERDICT: APPROVED")) << feedback;
  EXPECT_TRUE(contains(feedback, "[perf]: slow loop")) << feedback;
  // Parallel reviewers do not see each other.
  EXPECT_EQ(provider_of(perf).requests().at(0).messages.size(), 2u);
}

TEST_F(orch_strategy, loop_sequential_reviewers_see_earlier_feedback) {
  auto coder = scripted_agent("coder", {Reply::say("v1")});
  auto first = scripted_agent("first", {Reply::say("needs tests\nVERDICT: REVISE")});
  auto second = scripted_agent("second", {Reply::say("VERDICT: APPROVED")});
  Loop l(coder, {first, second}, std::nullopt, 1, "sequential");
  const RunResult r = drive(*bus, l, "code it", opts("l5"));
  EXPECT_FALSE(r.approved);
  EXPECT_EQ(provider_of(second).requests().at(0).messages.back().content, "[Feedback from first]: needs tests\nVERDICT: REVISE");
}

TEST_F(orch_strategy, loop_producer_failure_with_no_output_fails_the_run) {
  auto writer = scripted_agent("writer", [](const ProviderRequest&) { return CallResult::failure("agent 'writer': boom"); });
  auto editor = scripted_agent("editor", {Reply::say("VERDICT: APPROVED")});
  Loop l(writer, {editor});
  const RunResult r = drive(*bus, l, "write", opts("l6"));
  EXPECT_EQ(r.state, RunState::failed);
  EXPECT_EQ(r.error, "The producer's task failed: agent 'writer': boom");
  EXPECT_EQ(r.stopped, "producer_failed");
}

TEST_F(orch_strategy, token_usage_is_summed_per_agent_and_per_run) {
  auto a = scripted_agent("a", {Reply{"x", {}, {10, 2}}});
  auto b = scripted_agent("b", {Reply{"y", {}, {5, 1}}});
  Pipeline p({a, b});
  drive(*bus, p, "go", opts("u1"));
  Room room = run_room("u1");
  const auto fin = events_of(room, "RUN_FINISHED").at(0).payload;
  EXPECT_TRUE(contains(fin, R"("usage":{"total":{"input_tokens":15,"output_tokens":3},"agents":{"a":{"input_tokens":10,"output_tokens":2},"b":{"input_tokens":5,"output_tokens":1}}})")) << fin;
}

TEST_F(orch_strategy, a_run_id_is_used_once_and_a_finished_run_cannot_be_resumed) {
  auto a = scripted_agent("a", {Reply::say("x")});
  Pipeline p({a});
  drive(*bus, p, "go", opts("once"));
  EXPECT_EQ(error_of([&] { drive(*bus, p, "go", opts("once")); }),
            "run 'once' exists already; resume it with `agentbus run --resume once`");
  EXPECT_EQ(error_of([&] { drive_resume(*bus, p, "once"); }), "run 'once' has already finished (completed)");
  EXPECT_TRUE(contains(error_of([&] { drive_resume(*bus, p, "never-ran"); }), "no run 'never-ran' on bus"));
  EXPECT_EQ(error_of([&] { drive(*bus, p, "go", opts("bad id")); }), "run id 'bad id' may contain only [A-Za-z0-9._-]");
}

TEST_F(orch_strategy, the_wall_clock_budget_ends_a_run_that_never_finishes) {
  // Two agents hand the conversation back and forth, each call taking ~50 ms.
  auto slow_handoff = [](std::string target) {
    return [target](const ProviderRequest&) {
      std::this_thread::sleep_for(50ms);
      return CallResult::success(handoff_to(target));
    };
  };
  auto a = scripted_agent("a", slow_handoff("b"));
  auto b = scripted_agent("b", slow_handoff("a"));
  Swarm s({a, b});
  RunOptions o = opts("wall");
  o.budget.max_steps = 1000;
  o.budget.wall_clock = 300ms;
  const RunResult r = drive(*bus, s, "ping", o);
  EXPECT_EQ(r.state, RunState::budget_exceeded);
  EXPECT_TRUE(contains(r.error, "wall-clock limit reached: ")) << r.error;
  EXPECT_TRUE(contains(r.error, "ms spent, limit 300 ms")) << r.error;
  EXPECT_LT(provider_of(a).calls() + provider_of(b).calls(), 1000u);
}

TEST_F(orch_strategy, parallel_branches_are_recorded_as_they_finish_not_at_the_slowest) {
  auto sup = scripted_agent("sup", {Reply::say("done")});
  // The slow worker answers only once the fast one's reply is in the log (bounded): with a
  // barrier that recorded branches after the slowest, it would wait out the bound and the
  // order below would be the other way round.
  Room watched = run_room("fanout");
  auto slow = scripted_agent("slow", [watched](const ProviderRequest&) mutable {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      bool fast_done = false;
      for (const auto& e : watched.recent(1000)) fast_done = fast_done || (e.type == "STEP_REPLY" && e.agent == "fast");
      if (fast_done) break;
      std::this_thread::sleep_for(5ms);
    }
    return CallResult::success(Reply::say("late"));
  });
  auto fast = scripted_agent("fast", {Reply::say("early")});
  Supervisor s(sup, {slow, fast}, {.strategy = "parallel", .auto_delegate = true, .refine_task = false});
  const RunResult r = drive(*bus, s, "go", opts("fanout"));
  ASSERT_EQ(r.state, RunState::completed) << r.error;
  Room room = run_room("fanout");
  EventId fast_reply = 0, slow_reply = 0;
  for (const auto& e : events_of(room, "STEP_REPLY")) {
    if (e.agent == "fast") fast_reply = e.id;
    if (e.agent == "slow") slow_reply = e.id;
  }
  ASSERT_NE(fast_reply, 0u);
  ASSERT_NE(slow_reply, 0u);
  EXPECT_LT(fast_reply, slow_reply);  // the fast branch's result is in the log first
  // ...though the slow worker has the lower step index: steps are taken before the fan-out.
  EXPECT_EQ(provider_of(slow).requests().at(0).step, 0u);
  EXPECT_EQ(provider_of(fast).requests().at(0).step, 1u);
}

TEST_F(orch_strategy, the_token_budget_ends_the_run_with_the_figures) {
  auto a = scripted_agent("a", {Reply{"x", {{"handoff", R"({"target":"b","reason":"r","summary":"s"})"}}, {300, 100}}});
  auto b = scripted_agent("b", {Reply{"y", {{"handoff", R"({"target":"a","reason":"r","summary":"s"})"}}, {500, 200}}});
  Swarm s({a, b});
  RunOptions o = opts("tokens");
  o.budget.max_tokens = 1000;
  const RunResult r = drive(*bus, s, "go", o);
  EXPECT_EQ(r.state, RunState::budget_exceeded);
  // a (400) + b (700) = 1100 >= 1000 after two steps: the third is not taken.
  EXPECT_EQ(r.error, "token limit reached: 1100 tokens used (800 in, 300 out), limit 1000");
  EXPECT_EQ(provider_of(a).calls() + provider_of(b).calls(), 2u);
}

TEST_F(orch_strategy, a_resume_with_another_strategy_or_other_agents_is_refused) {
  auto a = scripted_agent("a", [](const ProviderRequest&) { return CallResult::failure("down"); });
  RunOptions o = opts("mismatch");
  // Start a run and leave it unfinished: a Run whose strategy is never driven.
  { orchestration::Run started = orchestration::Run::start(*bus, "pipeline", "go", "{}", o); }
  auto b = scripted_agent("b", {Reply::say("x")});
  Swarm s({b});
  EXPECT_EQ(error_of([&] { drive_resume(*bus, s, "mismatch"); }), "run 'mismatch' was started as a pipeline, not a swarm");
  // A journaled step of agent 'a' replayed by a pipeline of 'b'.
  {
    orchestration::Run r = orchestration::Run::resume(*bus, "mismatch");
    r.call(r.next_step(), a, {});
  }
  Pipeline other({b});
  EXPECT_EQ(error_of([&] { drive_resume(*bus, other, "mismatch"); }),
            "run 'mismatch' does not replay: its step 0 called agent 'a', this driver calls 'b'");
}

TEST_F(orch_strategy, a_handoff_with_bad_arguments_is_refused_and_explained_to_the_agent) {
  auto a = scripted_agent("a", {tool("moving on", "handoff", R"({"target":"b","reason":"r"})"), Reply::say("ok, staying")});
  Swarm s({a, scripted_agent("b", {Reply::say("b")})});
  const RunResult r = drive(*bus, s, "go", opts("badargs"));
  EXPECT_EQ(r.output, "ok, staying");
  EXPECT_EQ(provider_of(a).requests().at(1).messages.back().content, "Handoff rejected: invalid arguments: missing \"summary\"");
}
