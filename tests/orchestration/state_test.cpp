// ConversationState (RoomKit's documented cases) and its chain of events in a room, read and
// raced by other processes.
#include <agentbus/bus.hpp>
#include <agentbus/orchestration/conversation.hpp>

#include "support/test_bus.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace agentbus;
using namespace agentbus::orchestration;

TEST(orch_state, defaults_are_intake_with_no_agent) {
  ConversationState s;
  EXPECT_EQ(s.phase, "intake");
  EXPECT_FALSE(s.active_agent_id);
  EXPECT_EQ(s.handoff_count, 0u);
  EXPECT_TRUE(s.phase_history.empty());
}

TEST(orch_state, transition_returns_a_new_state_and_leaves_the_old_one) {
  const ConversationState s = ConversationState::fresh();
  const ConversationState t = s.transition("handling", "agent-a", "billing question");
  EXPECT_EQ(s.phase, "intake");
  EXPECT_FALSE(s.active_agent_id);
  EXPECT_TRUE(s.phase_history.empty());
  EXPECT_EQ(t.phase, "handling");
  EXPECT_EQ(t.active_agent_id, "agent-a");
  ASSERT_EQ(t.phase_history.size(), 1u);
  EXPECT_EQ(t.phase_history[0].from_phase, "intake");
  EXPECT_EQ(t.phase_history[0].to_phase, "handling");
  EXPECT_FALSE(t.phase_history[0].from_agent);
  EXPECT_EQ(t.phase_history[0].to_agent, "agent-a");
  EXPECT_EQ(t.phase_history[0].reason, "billing question");
}

TEST(orch_state, handoff_count_bumps_only_when_the_agent_changes) {
  ConversationState s;
  s = s.transition("handling", "a");  // none -> a
  EXPECT_EQ(s.handoff_count, 1u);
  s = s.transition("resolution", "a");  // same agent, new phase
  EXPECT_EQ(s.handoff_count, 1u);
  s = s.transition("resolution", "b");
  EXPECT_EQ(s.handoff_count, 2u);
  EXPECT_EQ(s.previous_agent_id, "a");
  s = s.transition("escalation", std::nullopt);  // b -> none counts too
  EXPECT_EQ(s.handoff_count, 3u);
  EXPECT_EQ(s.previous_agent_id, "b");
  EXPECT_EQ(s.phase_history.size(), 4u);
}

TEST(orch_state, transition_resets_phase_start_and_keeps_context) {
  ConversationState s = ConversationState::fresh().with_context("customer", "\"acme\"");
  s.phase_started_at = "2000-01-01T00:00:00.000000Z";
  const auto t = s.transition("handling", "a");
  EXPECT_NE(t.phase_started_at, s.phase_started_at);
  EXPECT_EQ(t.context.at("customer"), "\"acme\"");
}

TEST(orch_state, json_round_trip_keeps_everything_including_timestamps) {
  ConversationState s = ConversationState::fresh().with_context("n", "2").with_context("ok", "true");
  s = s.transition("handling", "a", "why \"quoted\"", {{"summary", "\"s\""}}).transition("review", "b");
  std::string why;
  auto back = ConversationState::from_json(s.to_json(), why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(*back, s);
  EXPECT_EQ(back->phase_history[0].timestamp.size(), std::string("2026-05-01T19:05:15.123456Z").size());
}

TEST(orch_state, from_json_refuses_what_is_not_a_state) {
  std::string why;
  EXPECT_FALSE(ConversationState::from_json("{}", why));
  EXPECT_EQ(why, "missing \"phase\"");
  EXPECT_FALSE(ConversationState::from_json(R"({"phase":"x","active_agent_id":3})", why));
  EXPECT_EQ(why, "\"active_agent_id\" must be a string or null");
}

TEST(orch_state, a_room_without_state_gives_the_default) {
  test::TestBus bus("orch-state");
  Room room = bus->room("conv");
  room.publish("chat", "user", "{}");  // other events do not matter
  const StoredState st = load_conversation_state(room);
  EXPECT_EQ(st.id, 0u);
  EXPECT_EQ(st.state.phase, "intake");
}

TEST(orch_state, commits_chain_and_a_stale_commit_loses) {
  test::TestBus bus("orch-chain");
  Room room = bus->room("conv");
  const auto s1 = ConversationState::fresh().transition("handling", "a");
  auto id1 = commit_conversation_state(room, s1, 0, "a");
  ASSERT_TRUE(id1);
  const auto s2 = s1.transition("review", "b");
  auto id2 = commit_conversation_state(room, s2, *id1, "a");
  ASSERT_TRUE(id2);
  // A writer that still believed s1 was current loses, and the state is unchanged.
  EXPECT_FALSE(commit_conversation_state(room, s1.transition("other", "c"), *id1, "x"));
  EXPECT_FALSE(commit_conversation_state(room, s1, 0, "x"));  // a second "first" state loses too
  const StoredState st = load_conversation_state(room);
  EXPECT_EQ(st.id, *id2);
  EXPECT_EQ(st.state, s2);
}

TEST(orch_state, another_process_reads_the_state_a_process_wrote) {
  test::TestBus bus("orch-xproc");
  Room room = bus->room("conv");
  const pid_t child = ::fork();
  if (child == 0) {
    Bus b = Bus::open({.name = bus.name()});
    Room r = b.room("conv");
    set_conversation_state(r, ConversationState::fresh().transition("handling", "child-agent", "from the child"));
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const StoredState st = load_conversation_state(room);
  EXPECT_EQ(st.state.active_agent_id, "child-agent");
  EXPECT_EQ(st.state.phase_history.at(0).reason, "from the child");
}

TEST(orch_state, racing_processes_each_commit_exactly_once_on_one_chain) {
  // Eight processes each move the state forward 10 times with reload-and-retry; no update is
  // lost: the final handoff_count is the number of commits.
  test::TestBus bus("orch-race");
  Room room = bus->room("conv", {.ring_bytes = 8 << 20});
  set_conversation_state(room, ConversationState::fresh());
  constexpr int kProcs = 8, kEach = 10;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      Bus b = Bus::open({.name = bus.name()});
      Room r = b.room("conv");
      for (int i = 0; i < kEach; ++i) {
        for (;;) {
          const StoredState cur = load_conversation_state(r);
          const auto next = cur.state.transition("p" + std::to_string(p), "agent-" + std::to_string(p) + "-" + std::to_string(i));
          if (commit_conversation_state(r, next, cur.id, "p")) break;
        }
      }
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(k, &status, 0), k);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const StoredState st = load_conversation_state(room);
  EXPECT_EQ(st.state.handoff_count, static_cast<std::uint32_t>(kProcs * kEach));
  EXPECT_EQ(st.state.phase_history.size(), static_cast<std::size_t>(kProcs * kEach));
}
