// ConversationRouter and ConversationPipeline: RoomKit's documented cases.
#include <agentbus/error.hpp>
#include <agentbus/orchestration/pipeline.hpp>
#include <agentbus/orchestration/router.hpp>

#include <gtest/gtest.h>

using namespace agentbus;
using namespace agentbus::orchestration;

namespace {

RouteEvent from_user(std::string type = "sms") { return RouteEvent{"user-sms", std::move(type), {}, std::nullopt}; }

RoutingRule rule(std::string agent, int priority, std::set<std::string> phases = {}) {
  RoutingRule r{std::move(agent), {}, priority};
  if (!phases.empty()) r.conditions.phases = std::move(phases);
  return r;
}

}  // namespace

TEST(orch_router, no_rules_no_default_gives_none) {
  ConversationRouter router;
  EXPECT_FALSE(router.select_agent(from_user(), {}, ConversationState{}));
}

TEST(orch_router, events_from_intelligence_channels_are_not_routed) {
  ConversationRouter router({}, "default-agent");
  RouteContext ctx;
  ctx.bind_agent("agent-a");
  RouteEvent e{"agent-a", "ai", {}, std::nullopt};
  EXPECT_FALSE(router.select_agent(e, ctx, ConversationState{}));
}

TEST(orch_router, sticky_affinity_beats_rules) {
  ConversationRouter router({rule("rule-agent", 0)}, "default-agent");
  RouteContext ctx;
  ctx.bind_agent("active");
  ConversationState s;
  s.active_agent_id = "active";
  EXPECT_EQ(router.select_agent(from_user(), ctx, s), "active");
}

TEST(orch_router, falls_through_when_the_active_agent_has_left) {
  ConversationRouter router({rule("rule-agent", 0)}, "default-agent");
  ConversationState s;
  s.active_agent_id = "gone";
  EXPECT_EQ(router.select_agent(from_user(), RouteContext{}, s), "rule-agent");
}

TEST(orch_router, lower_priority_value_wins) {
  ConversationRouter router({rule("later", 10), rule("first", 0), rule("middle", 5)});
  EXPECT_EQ(router.select_agent(from_user(), {}, ConversationState{}), "first");
}

TEST(orch_router, conditions_are_anded) {
  RoutingRule billing{"billing", {}, 0};
  billing.conditions.phases = std::set<std::string>{"handling"};
  billing.conditions.intents = std::set<std::string>{"billing"};
  ConversationRouter router({billing}, "triage");
  ConversationState handling;
  handling.phase = "handling";
  RouteEvent with_intent = from_user();
  with_intent.metadata["intent"] = "\"billing\"";
  EXPECT_EQ(router.select_agent(with_intent, {}, handling), "billing");
  EXPECT_EQ(router.select_agent(from_user(), {}, handling), "triage");       // intent missing
  EXPECT_EQ(router.select_agent(with_intent, {}, ConversationState{}), "triage");  // wrong phase
}

TEST(orch_router, channel_types_and_source_ids) {
  RoutingRule sms{"sms-agent", {}, 0};
  sms.conditions.channel_types = std::set<std::string>{"sms"};
  sms.conditions.source_channel_ids = std::set<std::string>{"user-sms"};
  ConversationRouter router({sms}, "other");
  EXPECT_EQ(router.select_agent(from_user("sms"), {}, ConversationState{}), "sms-agent");
  EXPECT_EQ(router.select_agent(from_user("email"), {}, ConversationState{}), "other");
}

TEST(orch_router, custom_predicate_sees_event_context_and_state) {
  RoutingRule vip{"vip", {}, 0};
  vip.conditions.custom = [](const RouteEvent& e, const RouteContext&, const ConversationState& s) {
    return e.metadata.count("vip") && s.context.count("account");
  };
  ConversationRouter router({vip}, "normal");
  RouteEvent e = from_user();
  e.metadata["vip"] = "true";
  EXPECT_EQ(router.select_agent(e, {}, ConversationState{}), "normal");
  EXPECT_EQ(router.select_agent(e, {}, ConversationState{}.with_context("account", "1")), "vip");
}

TEST(orch_router, hook_stamps_routed_to_and_supervisor_keeping_metadata) {
  ConversationRouter router({}, "triage", "sup");
  RouteEvent e = from_user();
  e.metadata["keep"] = "1";
  const RoutingStamp st = router.route(e, {}, ConversationState{});
  EXPECT_TRUE(st.modified);
  EXPECT_EQ(st.routed_to, "triage");
  EXPECT_EQ(st.always_process, std::vector<std::string>{"sup"});
  EXPECT_EQ(st.metadata.at("_routed_to"), "\"triage\"");
  EXPECT_EQ(st.metadata.at("_always_process"), "[\"sup\"]");  // a list, as in RoomKit
  EXPECT_EQ(st.metadata.at("keep"), "1");
}

TEST(orch_router, an_address_beats_affinity_and_skips_routing) {
  ConversationRouter router({}, "triage", "sup");
  RouteContext ctx;
  ctx.bind_agent("active");
  ConversationState s;
  s.active_agent_id = "active";
  RouteEvent e = from_user();
  e.addressed_to = std::vector<std::string>{"billing"};
  const RoutingStamp st = router.route(e, ctx, s);
  EXPECT_FALSE(st.routed_to);  // no _routed_to: the address decides
  EXPECT_EQ(st.always_process, std::vector<std::string>{"sup"});
  EXPECT_FALSE(st.metadata.count("_routed_to"));
}

TEST(orch_router, the_supervisor_is_not_stamped_twice) {
  ConversationRouter router({}, "triage", "sup");
  RouteEvent e = from_user();
  e.addressed_to = std::vector<std::string>{"sup", "billing"};
  const RoutingStamp st = router.route(e, {}, ConversationState{});
  EXPECT_FALSE(st.modified);
  EXPECT_TRUE(st.always_process.empty());
}

TEST(orch_router, unrouted_ai_event_is_blocked_and_unrouted_transport_event_allowed) {
  ConversationRouter router({}, std::nullopt, "sup");
  RouteContext ctx;
  ctx.bind_agent("agent-a").bind_transport("user-sms");
  const RoutingStamp ai = router.route(RouteEvent{"agent-a", "ai", {}, std::nullopt}, ctx, ConversationState{});
  EXPECT_TRUE(ai.modified);
  EXPECT_EQ(ai.routed_to, "_none_");
  EXPECT_EQ(ai.always_process, std::vector<std::string>{"sup"});
  const RoutingStamp user = router.route(from_user(), ctx, ConversationState{});
  EXPECT_FALSE(user.modified);  // every agent processes it
}

// ---- ConversationPipeline ----

TEST(orch_conv_pipeline, validates_next_and_can_return_to_with_roomkit_messages) {
  try {
    ConversationPipeline({{"a", "agent-a", "nope", {}, ""}});
    FAIL() << "accepted a bad next";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_STREQ(e.what(), "Stage 'a' has next='nope' which is not a valid phase");
  }
  try {
    ConversationPipeline({{"a", "agent-a", std::nullopt, {"ghost"}, ""}});
    FAIL() << "accepted a bad can_return_to";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "Stage 'a' has can_return_to='ghost' which is not a valid phase");
  }
}

TEST(orch_conv_pipeline, empty_and_self_loops_are_allowed) {
  EXPECT_NO_THROW(ConversationPipeline({}));
  EXPECT_NO_THROW(ConversationPipeline({{"loop", "agent", "loop", {}, ""}}));
  EXPECT_FALSE(ConversationPipeline({}).to_router().default_agent_id());
}

TEST(orch_conv_pipeline, router_phase_map_and_transitions) {
  ConversationPipeline p({{"analysis", "agent-discuss", "coding", {}, ""},
                          {"coding", "agent-coder", "review", {}, ""},
                          {"review", "agent-reviewer", "report", {"coding"}, ""},
                          {"report", "agent-writer", std::nullopt, {}, ""}},
                         std::nullopt, "agent-supervisor");
  const auto router = p.to_router();
  ASSERT_EQ(router.rules().size(), 4u);
  EXPECT_EQ(router.rules()[2].agent_id, "agent-reviewer");
  EXPECT_EQ(router.rules()[2].priority, 2);
  EXPECT_EQ(router.default_agent_id(), "agent-discuss");
  EXPECT_EQ(router.supervisor_id(), "agent-supervisor");
  ConversationState review;
  review.phase = "review";
  EXPECT_EQ(router.select_agent(from_user(), {}, review), "agent-reviewer");
  EXPECT_EQ(p.get_phase_map().at("agent-coder"), "coding");
  const auto allowed = p.get_allowed_transitions();
  EXPECT_EQ(allowed.at("review"), (std::set<std::string>{"report", "coding"}));
  EXPECT_TRUE(allowed.at("report").empty());
  EXPECT_EQ(p.handoff_targets("agent-reviewer").size(), 2u);
}

TEST(orch_conv_pipeline, default_phase_picks_the_default_agent) {
  ConversationPipeline p({{"a", "agent-a", "b", {}, ""}, {"b", "agent-b", std::nullopt, {}, ""}}, "b");
  EXPECT_EQ(p.to_router().default_agent_id(), "agent-b");
}
