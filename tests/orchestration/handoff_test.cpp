// HandoffHandler: RoomKit's documented cases, with the state, events and status entries in a
// real room.
#include <agentbus/orchestration/handoff.hpp>
#include <agentbus/orchestration/pipeline.hpp>
#include <agentbus/status_bus.hpp>

#include "support/test_bus.hpp"

#include <gtest/gtest.h>

using namespace agentbus;
using namespace agentbus::orchestration;

namespace {

HandoffArguments to(std::string target, std::string reason = "because", std::optional<std::string> phase = std::nullopt) {
  return HandoffArguments{std::move(target), std::move(reason), "the summary", std::move(phase), "same"};
}

std::vector<Event> of_type(Room& room, std::string_view type) {
  std::vector<Event> out;
  for (auto& e : room.recent(1000))
    if (e.type == type) out.push_back(e);
  return out;
}

}  // namespace

class orch_handoff : public ::testing::Test {
 protected:
  test::TestBus bus{"orch-handoff"};
  Room room = bus->room("conv");
};

TEST_F(orch_handoff, unknown_target_is_rejected_with_roomkits_reason) {
  HandoffHandler h(room, {"a", "b"});
  const auto r = h.handle("a", to("ghost"));
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.reason, "Agent ghost not found in room");
  EXPECT_EQ(load_conversation_state(room).id, 0u);  // no state written
  const auto status = StatusBus(room).recent(10);
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].agent_id, "a");
  EXPECT_EQ(status[0].action, "handoff");
  EXPECT_EQ(status[0].status, StatusLevel::failed);
  EXPECT_EQ(status[0].detail, "Agent ghost not found in room");
}

TEST_F(orch_handoff, accepted_handoff_moves_state_posts_event_and_status) {
  HandoffHandler h(room, {"a", "b"});
  const auto r = h.handle("a", to("b", "needs billing"));
  ASSERT_TRUE(r.accepted) << r.reason;
  EXPECT_EQ(r.new_agent_id, "b");
  EXPECT_EQ(r.new_phase, "handling");  // no next_phase, no phase map
  EXPECT_EQ(r.message, "Conversation transferred to b");
  const auto st = load_conversation_state(room).state;
  EXPECT_EQ(st.active_agent_id, "b");
  EXPECT_EQ(st.handoff_count, 1u);
  EXPECT_EQ(st.context.at("handoff_summary"), "\"the summary\"");
  EXPECT_EQ(st.context.at("handoff_from"), "\"a\"");
  EXPECT_EQ(st.context.at("handoff_reason"), "\"needs billing\"");
  const auto sys = of_type(room, "SYSTEM");
  ASSERT_EQ(sys.size(), 1u);
  EXPECT_NE(sys[0].payload.find("\"text\":\"[Handoff: a -> b] needs billing\""), std::string::npos) << sys[0].payload;
  const auto status = StatusBus(room).recent(10);
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].agent_id, "b");
  EXPECT_EQ(status[0].status, StatusLevel::info);
}

TEST_F(orch_handoff, human_target_clears_the_active_agent) {
  HandoffHandler h(room, {"a"});
  const auto r = h.handle("a", to("human"));
  ASSERT_TRUE(r.accepted);
  EXPECT_FALSE(r.new_agent_id);
  EXPECT_FALSE(load_conversation_state(room).state.active_agent_id);
}

TEST_F(orch_handoff, aliases_resolve) {
  HandoffOptions o;
  o.agent_aliases = {{"billing", "agent-billing"}};
  HandoffHandler h(room, {"agent-billing"}, o);
  const auto r = h.handle("triage", to("billing"));
  ASSERT_TRUE(r.accepted);
  EXPECT_EQ(r.new_agent_id, "agent-billing");
}

TEST_F(orch_handoff, phase_map_and_explicit_phase_overrides_it) {
  HandoffOptions o;
  o.phase_map = {{"b", "resolution"}};
  HandoffHandler h(room, {"a", "b"}, o);
  EXPECT_EQ(h.handle("a", to("b")).new_phase, "resolution");
  EXPECT_EQ(h.handle("b", to("b", "again", "followup")).new_phase, "followup");
}

TEST_F(orch_handoff, allowed_and_denied_transitions) {
  ConversationPipeline p({{"coding", "coder", "review", {}, ""}, {"review", "reviewer", "report", {"coding"}, ""},
                          {"report", "writer", std::nullopt, {}, ""}});
  HandoffHandler h = p.make_handler(room, {"coder", "reviewer", "writer"});
  set_conversation_state(room, ConversationState::fresh("coding", "coder"));
  const auto denied = h.handle("coder", to("writer"));
  EXPECT_FALSE(denied.accepted);
  EXPECT_EQ(denied.reason, "Transition from 'coding' to 'report' is not allowed");
  ASSERT_TRUE(h.handle("coder", to("reviewer")).accepted);
  ASSERT_TRUE(h.handle("reviewer", to("coder", "fix it")).accepted);  // can_return_to
  EXPECT_EQ(load_conversation_state(room).state.phase, "coding");
  EXPECT_EQ(load_conversation_state(room).state.handoff_count, 2u);  // a fresh state starts at 0
}

TEST_F(orch_handoff, count_increments_per_handoff) {
  HandoffHandler h(room, {"a", "b"});
  h.handle("x", to("a"));
  h.handle("a", to("b"));
  h.handle("b", to("a"));
  EXPECT_EQ(load_conversation_state(room).state.handoff_count, 3u);
}

TEST_F(orch_handoff, hooks_fire_on_success_and_on_rejection_and_callback_not_on_rejection) {
  std::vector<std::string> fired;
  HandoffOptions o;
  o.on_handoff = [&](auto&, auto&, auto&) { fired.push_back("handoff"); };
  o.on_phase_transition = [&](auto&, auto&, auto&) { fired.push_back("phase"); };
  o.on_handoff_rejected = [&](auto&, auto&, const HandoffResult& r) { fired.push_back("rejected:" + r.reason); };
  o.on_handoff_complete = [&](auto&, auto&, auto&) { fired.push_back("complete"); };
  HandoffHandler h(room, {"a", "b"}, o);
  h.handle("a", to("b"));
  EXPECT_EQ(fired, (std::vector<std::string>{"handoff", "phase", "complete"}));
  fired.clear();
  h.handle("a", to("nobody"));
  EXPECT_EQ(fired, (std::vector<std::string>{"rejected:Agent nobody not found in room"}));
}

TEST_F(orch_handoff, known_agents_skip_the_binding_check) {
  HandoffOptions o;
  o.known_agents = std::set<std::string>{"remote"};
  HandoffHandler h(room, {}, o);
  EXPECT_TRUE(h.handle("a", to("remote")).accepted);
  EXPECT_FALSE(h.handle("a", to("stranger")).accepted);
}

TEST_F(orch_handoff, arguments_need_target_reason_and_summary) {
  std::string why;
  EXPECT_FALSE(HandoffArguments::from_json(R"({"target":"b","reason":"r"})", why));
  EXPECT_EQ(why, "missing \"summary\"");
  auto a = HandoffArguments::from_json(R"({"target":"b","reason":"r","summary":"s","next_phase":"x"})", why);
  ASSERT_TRUE(a) << why;
  EXPECT_EQ(a->next_phase, "x");
}

TEST(orch_handoff_tool, limited_to_targets_or_generic) {
  const auto generic = build_handoff_tool();
  EXPECT_EQ(generic.name, "handoff");
  EXPECT_EQ(generic.parameters.find("\"enum\":[\"b\""), std::string::npos);
  const auto limited = build_handoff_tool({{"b", "billing"}, {"c", ""}});
  EXPECT_NE(limited.parameters.find("\"enum\":[\"b\",\"c\"]"), std::string::npos) << limited.parameters;
  EXPECT_NE(limited.parameters.find("\"required\":[\"target\",\"reason\",\"summary\"]"), std::string::npos);
}
