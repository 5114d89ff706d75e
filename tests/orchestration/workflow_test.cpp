// pi-orchestra workflows: validation, ordered stages feeding each other, the leader rules, the
// stage result mapping, cancel closing the running stage and its member processes.
#include <agentbus/orchestration/command_provider.hpp>
#include <agentbus/orchestration/workflow.hpp>

#include "support/expect.hpp"
#include "support/test_bus.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace agentbus;
using namespace agentbus::orchestration;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

Reply finish(std::string status, std::string summary) {
  Reply r = Reply::say("");
  r.tool_calls.push_back({"finish", R"({"status":")" + status + R"(","summary":")" + summary + R"("})"});
  return r;
}

WorkgroupMember member(std::string name, std::vector<Reply> replies) { return {name, scripted_agent(name, std::move(replies)), ""}; }

std::string all_text(const ProviderRequest& r) {
  std::string t;
  for (const auto& m : r.messages) t += m.content + "\n";
  return t;
}

}  // namespace

class orch_workflow : public ::testing::Test {
 protected:
  test::TestBus bus{"orch-wf"};
  Room room = bus->room("flow");
  WorkflowSpec spec(std::vector<WorkflowStage> stages) {
    WorkflowSpec s;
    s.name = "flow-1";
    s.room = "flow";
    s.goal = "Ship the fix";
    s.stages = std::move(stages);
    return s;
  }
};

TEST_F(orch_workflow, a_bad_spec_is_refused) {
  auto stage = [](std::string name) { return WorkflowStage{name, "g", WorkgroupMode::synthesize, {member("w", {finish("success", "x")})}, {}}; };
  test::expect_error([&] { Workflow(*bus, spec({})); }, Errc::invalid_argument, "workflow requires at least one stage.");
  test::expect_error([&] { Workflow(*bus, spec({stage("a"), stage("a")})); }, Errc::invalid_argument, "Duplicate stage name: a.");
  test::expect_error([&] { Workflow(*bus, spec({stage("")})); }, Errc::invalid_argument, "Stage name must not be empty.");
  WorkflowStage empty = stage("e");
  empty.members.clear();
  test::expect_error([&] { Workflow(*bus, spec({empty})); }, Errc::invalid_argument, "Stage e requires at least one member.");
  WorkflowSpec s = spec({stage("a")});
  s.goal.clear();
  test::expect_error([&] { Workflow(*bus, s); }, Errc::invalid_argument, "workflow requires goal.");
  s = spec({stage("a")});
  s.room = "elsewhere";
  test::expect_error([&] { Workflow(*bus, s); }, Errc::not_found, "Bus elsewhere not found.");
}

TEST_F(orch_workflow, stages_run_in_order_and_each_sees_the_earlier_outputs) {
  std::string stage2_saw;
  auto reviewer = scripted_agent("reviewer", [&](const ProviderRequest& r) {
    stage2_saw = all_text(r);
    return CallResult::success(finish("success", "reviewed"));
  });
  WorkflowStage research{"research", "find the cause", WorkgroupMode::synthesize,
                         {member("a", {finish("success", "race in setup")}), member("b", {finish("blocked", "no logs")})},
                         scripted_agent("lead1", {finish("success", "cause: race in setup")})};
  WorkflowStage review{"review", "review the fix", WorkgroupMode::synthesize, {{"reviewer", reviewer, ""}},
                       scripted_agent("lead2", {finish("success", "approved")})};
  const WorkflowResult r = Workflow(*bus, spec({research, review})).run();
  EXPECT_EQ(r.state, WorkflowState::finished);
  EXPECT_EQ(r.output, "approved");
  ASSERT_EQ(r.stages.size(), 2u);
  EXPECT_EQ(r.stages[0].output, "cause: race in setup");
  EXPECT_EQ(r.stages[0].room, "flow/stage-1");
  EXPECT_EQ(r.stages[1].room, "flow/stage-2");
  EXPECT_NE(stage2_saw.find("cause: race in setup"), std::string::npos) << stage2_saw;
  const auto last = room.recent(1).back();
  EXPECT_EQ(last.type, "workflow.finished");
  EXPECT_NE(last.payload.find(R"("state":"finished")"), std::string::npos) << last.payload;
}

TEST_F(orch_workflow, a_blocked_stage_finishes_the_workflow_and_a_failed_one_fails_it) {
  for (const std::string status : {"blocked", "failed"}) {
    auto later = std::make_shared<ScriptedProvider>(std::vector<Reply>{finish("success", "x")});
    WorkflowStage first{"first", "g", WorkgroupMode::synthesize, {member("w", {finish("success", "done")})},
                        scripted_agent("lead", {finish(status, "stop here")})};
    WorkflowStage second{"second", "g", WorkgroupMode::synthesize, {{"w2", Agent{"w2", "", "", later}, ""}}, {}};
    const WorkflowResult r = Workflow(*bus, spec({first, second})).run();
    EXPECT_EQ(r.state, status == "blocked" ? WorkflowState::finished : WorkflowState::failed) << status;
    EXPECT_EQ(r.stages.size(), 1u);
    EXPECT_EQ(later->calls(), 0u) << "the next stage ran after " << status;
  }
}

TEST_F(orch_workflow, a_compete_stage_with_no_winner_skips_its_leader) {
  auto leader = std::make_shared<ScriptedProvider>(std::vector<Reply>{finish("success", "should not run")});
  WorkflowStage s{"try", "g", WorkgroupMode::compete,
                  {member("a", {finish("blocked", "need access")}), member("b", {finish("failed", "no idea")})},
                  Agent{"lead", "", "", leader}};
  const WorkflowResult r = Workflow(*bus, spec({s})).run();
  EXPECT_EQ(r.state, WorkflowState::finished);  // blocked stops the workflow as finished
  ASSERT_EQ(r.stages.size(), 1u);
  EXPECT_TRUE(r.stages[0].leader_skipped);
  EXPECT_EQ(r.stages[0].status, MemberStatus::blocked);
  EXPECT_EQ(leader->calls(), 0u);
}

TEST_F(orch_workflow, a_leader_that_never_finishes_fails_the_stage) {
  auto leader = std::make_shared<ScriptedProvider>(std::vector<Reply>{Reply::say("hmm")});
  WorkflowStage s{"only", "g", WorkgroupMode::synthesize, {member("w", {finish("success", "ok")})}, Agent{"lead", "", "", leader}};
  const WorkflowResult r = Workflow(*bus, spec({s})).run();
  EXPECT_EQ(r.state, WorkflowState::failed);
  EXPECT_EQ(leader->calls(), 2u);  // asked once more
}

TEST_F(orch_workflow, cancel_closes_the_running_stage_and_ends_its_member_processes) {
  char tmpl[] = "/tmp/agentbus-orch-wf-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string pid_file = dir + "/member.pid";
  WorkflowStage s{"long", "g", WorkgroupMode::synthesize,
                  {{"hung", Agent{"hung", "", "", std::make_shared<CommandProvider>("echo $$ > " + pid_file + "; exec sleep 30")}, ""}},
                  {}};
  WorkflowStage never{"never", "g", WorkgroupMode::synthesize, {member("w", {finish("success", "x")})}, {}};
  Workflow flow(*bus, spec({s, never}));
  std::thread canceller([&] {
    if (test::eventually([&] { return fs::exists(pid_file) && fs::file_size(pid_file) > 0; }, 10s)) flow.cancel();
  });
  const WorkflowResult r = flow.run();
  canceller.join();
  EXPECT_EQ(r.state, WorkflowState::closed);
  ASSERT_EQ(r.stages.size(), 1u);
  EXPECT_EQ(r.stages[0].status, MemberStatus::cancelled);
  std::ifstream in(pid_file);
  pid_t pid = 0;
  in >> pid;
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(::kill(pid, 0) != 0 && errno == ESRCH) << "member process " << pid << " still runs";
  fs::remove_all(dir);
}
