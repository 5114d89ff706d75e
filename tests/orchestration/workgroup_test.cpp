// pi-orchestra workgroups: validation, compete with real member processes (the losers'
// processes are gone afterwards), synthesize, status resolution, finish rules, the settle
// timeout, cleanup when a member cannot start.
#include <agentbus/orchestration/command_provider.hpp>
#include <agentbus/orchestration/bus_agent.hpp>
#include <agentbus/orchestration/workgroup.hpp>

#include "support/expect.hpp"
#include "support/test_bus.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include "../support/temp_dir.hpp"

#include <filesystem>
#include <fstream>

using namespace agentbus;
using namespace agentbus::orchestration;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string temp_dir() { return test::make_temp_dir("agentbus-orch-wg"); }

Reply finish(std::string status, std::string summary, std::string text = "") {
  Reply r = Reply::say(std::move(text));
  r.tool_calls.push_back({"finish", R"({"status":")" + status + R"(","summary":")" + summary + R"("})"});
  return r;
}

WorkgroupMember scripted(std::string name, std::vector<Reply> replies) {
  return {name, scripted_agent(name, std::move(replies)), ""};
}

WorkgroupMember command(std::string name, std::string cmd) {
  return {name, Agent{name, "", "", std::make_shared<CommandProvider>(std::move(cmd))}, ""};
}

// A command that notes its pid in `file` and then sleeps until killed.
std::string hang_cmd(const std::string& file) { return "echo $$ > " + file + "; exec sleep 30"; }

pid_t read_pid(const std::string& path) {
  std::ifstream in(path);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

bool process_gone(pid_t pid) { return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH; }

std::size_t count_events(Room& room, std::string_view type) {
  std::size_t n = 0;
  for (const auto& e : room.recent(1000)) n += e.type == type ? 1 : 0;
  return n;
}

}  // namespace

class orch_workgroup : public ::testing::Test {
 protected:
  test::TestBus bus{"orch-wg"};
  Room room = bus->room("wg");
  std::string dir = temp_dir();
  void TearDown() override { fs::remove_all(dir); }
  WorkgroupSpec spec(WorkgroupMode mode, std::vector<WorkgroupMember> members) {
    WorkgroupSpec s;
    s.name = "group-1";
    s.room = "wg";
    s.goal = "Fix the flaky test";
    s.mode = mode;
    s.members = std::move(members);
    return s;
  }
};

TEST_F(orch_workgroup, a_bad_spec_is_refused_with_pi_orchestras_messages) {
  auto ok = [&] { return spec(WorkgroupMode::compete, {scripted("a", {finish("success", "x")})}); };
  WorkgroupSpec s = ok();
  s.room.clear();
  test::expect_error([&] { (void)run_workgroup(*bus, s); }, Errc::invalid_argument, "workgroup requires room.");
  s = ok();
  s.goal = " ";
  test::expect_error([&] { (void)run_workgroup(*bus, s); }, Errc::invalid_argument, "workgroup requires goal.");
  s = ok();
  s.members.clear();
  test::expect_error([&] { (void)run_workgroup(*bus, s); }, Errc::invalid_argument, "workgroup requires at least one member.");
  s = ok();
  s.members.push_back(scripted("a", {finish("success", "y")}));
  test::expect_error([&] { (void)run_workgroup(*bus, s); }, Errc::invalid_argument, "Duplicate member name: a.");
  s = ok();
  s.members.push_back(scripted("", {finish("success", "y")}));
  test::expect_error([&] { (void)run_workgroup(*bus, s); }, Errc::invalid_argument, "Member name must not be empty.");
  s = ok();
  s.room = "nowhere";
  test::expect_error([&] { (void)run_workgroup(*bus, s); }, Errc::not_found, "Bus nowhere not found.");
  s = ok();
  s.settle_timeout = 0ms;
  test::expect_error([&] { (void)run_workgroup(*bus, s); }, Errc::invalid_argument, "settle timeout must be positive");
}

TEST_F(orch_workgroup, compete_the_first_success_wins_and_the_losers_processes_are_gone) {
  const std::string p1 = dir + "/slow1.pid", p2 = dir + "/slow2.pid";
  // The winner waits (bounded) until both losers are running, so they are cancelled mid-call.
  const std::string winner = "i=0; while { [ ! -s " + p1 + " ] || [ ! -s " + p2 + " ]; } && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done; "
                             "printf '{\"version\":1,\"text\":\"patched\",\"tool_calls\":[{\"name\":\"finish\",\"arguments\":{\"status\":\"success\",\"summary\":\"retry loop fixed\"}}]}'";
  const WorkgroupResult r = run_workgroup(
      *bus, spec(WorkgroupMode::compete, {command("slow1", hang_cmd(p1)), command("fast", winner), command("slow2", hang_cmd(p2))}));
  EXPECT_EQ(r.status, MemberStatus::success);
  EXPECT_EQ(r.winner, "fast");
  ASSERT_EQ(r.members.size(), 3u);
  EXPECT_EQ(r.members[1].summary, "retry loop fixed");
  EXPECT_EQ(r.members[0].status, MemberStatus::cancelled);
  EXPECT_EQ(r.members[2].status, MemberStatus::cancelled);
  EXPECT_TRUE(process_gone(read_pid(p1))) << read_pid(p1);
  EXPECT_TRUE(process_gone(read_pid(p2))) << read_pid(p2);
  EXPECT_EQ(count_events(room, "workgroup.finished"), 1u);
  EXPECT_GE(count_events(room, "workgroup.member_finished"), 1u);
}

TEST_F(orch_workgroup, a_loser_served_on_the_bus_stops_waiting_when_the_group_is_won) {
  // "ghost" has no server: uncancelled, its call would wait out the settle timeout (+10 s).
  WorkgroupSpec s = spec(WorkgroupMode::compete,
                         {{"ghost", Agent{"ghost", "", "", std::make_shared<BusAgentProvider>(*bus, "ghost")}, ""},
                          scripted("fast", {finish("success", "won")})});
  s.settle_timeout = 60s;
  const WorkgroupResult r = run_workgroup(*bus, s);
  EXPECT_EQ(r.winner, "fast");
  ASSERT_EQ(r.members.size(), 2u);
  EXPECT_EQ(r.members[0].status, MemberStatus::cancelled);
  EXPECT_NE(r.members[0].summary.find("was cancelled"), std::string::npos) << r.members[0].summary;
}

TEST_F(orch_workgroup, synthesize_settles_when_all_finish_and_publishes_the_debate) {
  const WorkgroupResult r = run_workgroup(
      *bus, spec(WorkgroupMode::synthesize, {scripted("tests", {finish("success", "added a test", "I looked at the tests")}),
                                             scripted("docs", {finish("blocked", "need a decision", "docs are unclear")})}));
  EXPECT_EQ(r.status, MemberStatus::success);
  EXPECT_TRUE(r.winner.empty());
  EXPECT_EQ(r.members[0].status, MemberStatus::success);
  EXPECT_EQ(r.members[1].status, MemberStatus::blocked);
  EXPECT_EQ(count_events(room, "workgroup.message"), 2u);
  EXPECT_EQ(count_events(room, "workgroup.member_finished"), 2u);
  ASSERT_EQ(count_events(room, "workgroup.finished"), 1u);
  const auto events = room.recent(1);
  EXPECT_NE(events.back().payload.find(R"("status":"success")"), std::string::npos) << events.back().payload;
}

TEST_F(orch_workgroup, status_resolution_is_success_over_blocked_over_failed) {
  auto run = [&](std::string a, std::string b) {
    return run_workgroup(*bus, spec(WorkgroupMode::synthesize, {scripted("a", {finish(a, "a")}), scripted("b", {finish(b, "b")})})).status;
  };
  EXPECT_EQ(run("failed", "blocked"), MemberStatus::blocked);
  EXPECT_EQ(run("failed", "failed"), MemberStatus::failed);
  EXPECT_EQ(run("blocked", "success"), MemberStatus::success);
  // compete with no winner resolves from the results too
  EXPECT_EQ(run_workgroup(*bus, spec(WorkgroupMode::compete, {scripted("a", {finish("blocked", "a")}), scripted("b", {finish("failed", "b")})})).status,
            MemberStatus::blocked);
}

TEST_F(orch_workgroup, a_member_that_does_not_call_finish_is_asked_once_more_then_failed) {
  auto late = scripted("late", {Reply::say("thinking"), finish("success", "done now")});
  auto never = scripted("never", {Reply::say("my last words")});
  auto* never_provider = static_cast<ScriptedProvider*>(never.agent.provider.get());
  const WorkgroupResult r = run_workgroup(*bus, spec(WorkgroupMode::synthesize, {late, never}));
  EXPECT_EQ(r.members[0].status, MemberStatus::success);
  EXPECT_EQ(r.members[1].status, MemberStatus::failed);
  EXPECT_EQ(r.members[1].summary, "Agent stopped without calling finish.");
  EXPECT_EQ(r.members[1].data, "my last words");
  EXPECT_EQ(never_provider->calls(), 2u);
}

TEST_F(orch_workgroup, the_settle_timeout_cancels_and_reports_the_pending_members) {
  const std::string pid_file = dir + "/hung.pid";
  WorkgroupSpec s = spec(WorkgroupMode::synthesize, {scripted("quick", {finish("success", "ok")}), command("hung", hang_cmd(pid_file))});
  s.settle_timeout = 300ms;
  EXPECT_EQ(WorkgroupSpec{}.settle_timeout, std::chrono::minutes(10));  // the default
  const WorkgroupResult r = run_workgroup(*bus, s);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.pending, (std::vector<std::string>{"hung"}));
  EXPECT_EQ(r.members[1].status, MemberStatus::cancelled);
  EXPECT_EQ(r.status, MemberStatus::success);  // from the results so far
  ASSERT_TRUE(test::eventually([&] { return read_pid(pid_file) > 0; }));
  EXPECT_TRUE(process_gone(read_pid(pid_file)));
  const auto last = room.recent(1).back();
  EXPECT_EQ(last.type, "workgroup.finished");
  EXPECT_NE(last.payload.find(R"("pending":["hung"])"), std::string::npos) << last.payload;
}

TEST_F(orch_workgroup, when_a_member_cannot_start_the_started_ones_are_cancelled) {
  const std::string pid_file = dir + "/first.pid";
  WorkgroupMember broken{"broken", Agent{"broken", "", "", nullptr}, ""};
  const WorkgroupResult r = run_workgroup(*bus, spec(WorkgroupMode::compete, {command("first", hang_cmd(pid_file)), broken}));
  EXPECT_EQ(r.status, MemberStatus::failed);
  EXPECT_EQ(r.start_failures, (std::vector<std::string>{"broken: no provider"}));
  EXPECT_EQ(r.members[0].status, MemberStatus::cancelled);
  if (read_pid(pid_file) > 0) {
    EXPECT_TRUE(process_gone(read_pid(pid_file)));
  }
}
