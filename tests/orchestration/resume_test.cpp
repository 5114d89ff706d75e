// Durable runs through the real CLI: `agentbus run FILE` killed with SIGKILL at each step
// boundary (AGENTBUS_RUN_FAILPOINT), then `agentbus run --resume RUN_ID` in a new process. The
// agents are real commands that count their calls in files, so the counts survive the driver.
#include "support/child_process.hpp"
#include "support/expect.hpp"
#include "support/test_bus.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <csignal>
#include <string>

using namespace agentbus;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/agentbus-orch-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// An agent whose every call appends a line to <dir>/<id>.calls and answers "<id>-out".
std::string counting_agent(const std::string& id, const std::string& role = "", const std::string& text = "") {
  const std::string reply = text.empty() ? id + "-out" : text;
  return R"({"id":")" + id + R"(","role":")" + role + R"(","command":"echo call >> )" + id +
         R"(.calls; printf '{\"version\":1,\"text\":\")" + reply + R"(\"}'"})";
}

int calls(const TempDir& dir, const std::string& id) {
  std::ifstream in(dir.path() + "/" + id + ".calls");
  int n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

struct Outcome {
  int code;
  std::string out;
};

Outcome agentbus_cli(const std::string& bus, std::vector<std::string> args, std::vector<std::string> env = {}) {
  std::vector<std::string> argv{test::cli(), "--bus", bus};
  argv.insert(argv.end(), args.begin(), args.end());
  test::ChildProcess p(argv, env);
  std::string out = p.read_all(30s);
  return {p.wait(30s), out};
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

class orch_resume : public ::testing::Test {
 protected:
  TempDir dir;
  std::string bus = test::fresh_bus_name("orch-resume");
  void TearDown() override { Bus::destroy(bus); }

  std::string pipeline_file() {
    const std::string file = dir.path() + "/pipeline.json";
    write_file(file, R"({"input":"go","run_id":"r1","agents":[)" + counting_agent("a") + "," + counting_agent("b") + "," +
                         counting_agent("c") + R"(],"strategy":{"type":"pipeline"}})");
    return file;
  }
};

TEST_F(orch_resume, a_pipeline_killed_at_every_step_boundary_resumes_without_calling_a_finished_step_again) {
  const std::vector<std::string> agents{"a", "b", "c"};
  for (const std::string point : {"before_call", "before_outcome", "after_outcome", "after_state"}) {
    for (std::uint64_t step = 0; step < 3; ++step) {
      if (point == "after_state" && step == 2) continue;  // the last stage hands off to nobody
      SCOPED_TRACE(point + "@" + std::to_string(step));
      Bus::destroy(bus);
      for (const auto& a : agents) fs::remove(dir.path() + "/" + a + ".calls");
      const std::string file = pipeline_file();
      const Outcome killed = agentbus_cli(bus, {"run", file}, {"AGENTBUS_RUN_FAILPOINT=" + point + "@" + std::to_string(step)});
      ASSERT_EQ(killed.code, 128 + SIGKILL) << killed.out;
      const Outcome listed = agentbus_cli(bus, {"runs"});
      EXPECT_NE(listed.out.find("interrupted"), std::string::npos) << listed.out;
      const Outcome resumed = agentbus_cli(bus, {"run", "--resume", "r1"});
      ASSERT_EQ(resumed.code, 0) << resumed.out;
      EXPECT_EQ(resumed.out, "c-out\n");
      for (std::size_t i = 0; i < agents.size(); ++i) {
        // Only a call that was under way when the driver died (no outcome recorded) is made again.
        const int expected = (point == "before_outcome" && i == step) ? 2 : 1;
        EXPECT_EQ(calls(dir, agents[i]), expected) << "agent " << agents[i];
      }
      const Outcome again = agentbus_cli(bus, {"run", "--resume", "r1"});
      EXPECT_EQ(again.code, 3);  // finished: a conflict, nothing is called
      EXPECT_EQ(calls(dir, "c"), point == "before_outcome" && step == 2 ? 2 : 1);
    }
  }
}

TEST_F(orch_resume, a_loop_killed_after_a_verdict_resumes_with_each_agent_called_once_per_step) {
  const std::string file = dir.path() + "/loop.json";
  // The editor approves nothing, so the loop runs all three iterations: 6 steps.
  write_file(file, R"({"input":"write","run_id":"L1","agents":[)" + counting_agent("w") + "," +
                       counting_agent("e", "Reviewer", "needs work\\nVERDICT: REVISE") +
                       R"(],"strategy":{"type":"loop","agent":"w","reviewers":["e"],"max_iterations":3}})");
  const Outcome killed = agentbus_cli(bus, {"run", file}, {"AGENTBUS_RUN_FAILPOINT=after_outcome@3"});
  ASSERT_EQ(killed.code, 128 + SIGKILL);
  EXPECT_EQ(calls(dir, "w"), 2);
  EXPECT_EQ(calls(dir, "e"), 2);
  const Outcome resumed = agentbus_cli(bus, {"run", "--resume", "L1", "--json"});
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_NE(resumed.out.find(R"("approved":false,"iterations":3)"), std::string::npos) << resumed.out;
  EXPECT_EQ(calls(dir, "w"), 3);
  EXPECT_EQ(calls(dir, "e"), 3);
}

TEST_F(orch_resume, a_resume_while_the_driver_lives_is_refused) {
  const std::string file = dir.path() + "/slow.json";
  // The agent records its pid and hangs, so the run is still running whatever the machine's load.
  const std::string pidfile = dir.path() + "/slow.pid";
  write_file(file, R"({"input":"go","run_id":"S1","agents":[{"id":"slow","command":"echo $$ > )" + pidfile +
                       R"(; exec sleep 60"}],"strategy":{"type":"pipeline"}})");
  std::vector<std::string> argv{test::cli(), "--bus", bus, "run", file};
  test::ChildProcess driver(argv);
  // The driver records itself in RUN_STARTED before the first call; wait for the run to show.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  Outcome listed;
  while (std::chrono::steady_clock::now() < deadline) {
    listed = agentbus_cli(bus, {"runs", "--json"});
    if (listed.out.find(R"("run":"S1")") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(listed.out.find(R"("state":"running")"), std::string::npos) << listed.out;
  const Outcome refused = agentbus_cli(bus, {"run", "--resume", "S1"});
  EXPECT_EQ(refused.code, 3);
  // `top` shows the active run with its driver; once the driver is killed, how to resume it.
  const Outcome top = agentbus_cli(bus, {"top", "--once"});
  EXPECT_NE(top.out.find("run S1 pipeline: running, 0 steps done, driver pid " + std::to_string(driver.pid())), std::string::npos)
      << top.out;
  ::kill(driver.pid(), SIGKILL);
  ASSERT_EQ(driver.wait(10s), 128 + SIGKILL);
  const Outcome after = agentbus_cli(bus, {"top", "--once"});
  EXPECT_NE(after.out.find("run S1 pipeline: interrupted (driver gone), 0 steps done: agentbus run --resume S1"), std::string::npos)
      << after.out;
  std::ifstream in(pidfile);
  pid_t agent = 0;
  in >> agent;
  if (agent > 0) ::kill(agent, SIGKILL);  // the agent's process group outlives its driver
}

TEST_F(orch_resume, run_file_errors_name_the_line_and_field) {
  const std::string file = dir.path() + "/bad.json";
  write_file(file, "{\n  \"input\": \"x\",\n  \"agents\": [\n    {\"id\": \"a\", \"command\": 7}\n  ],\n  \"strategy\": {\"type\": \"pipeline\"}\n}\n");
  // stderr is not captured by ChildProcess; run_file_test checks the messages themselves.
  EXPECT_EQ(agentbus_cli(bus, {"run", file}).code, 1);
  EXPECT_EQ(agentbus_cli(bus, {"run", dir.path() + "/missing.json"}).code, 4);
  EXPECT_EQ(agentbus_cli(bus, {"run"}).code, 2);
}

TEST_F(orch_resume, follow_prints_each_step_and_a_budget_overrun_exits_1) {
  const std::string file = dir.path() + "/swarm.json";
  // Two agents that always hand off: the step limit ends the run.
  const auto handing = [](const std::string& id, const std::string& to) {
    return R"({"id":")" + id + R"(","command":"printf '{\"version\":1,\"text\":\"over\",\"tool_calls\":[{\"name\":\"handoff\",\"arguments\":{\"target\":\")" +
           to + R"(\",\"reason\":\"yours\",\"summary\":\"s\"}}]}'"})";
  };
  write_file(file, R"({"input":"go","run_id":"F1","agents":[)" + handing("a", "b") + "," + handing("b", "a") +
                       R"(],"strategy":{"type":"swarm"},"budget":{"max_steps":4}})");
  test::ChildProcess p({"/bin/sh", "-c", test::cli() + " --bus " + bus + " run " + file + " --follow 2>&1"});
  const std::string out = p.read_all(30s);
  EXPECT_EQ(p.wait(30s), 1);
  EXPECT_NE(out.find("run F1: started swarm"), std::string::npos) << out;
  EXPECT_NE(out.find("[step 0] a: called"), std::string::npos) << out;
  EXPECT_NE(out.find("[step 0] [Handoff: a -> b] yours"), std::string::npos) << out;
  EXPECT_NE(out.find("[step 3] b: over"), std::string::npos) << out;
  EXPECT_NE(out.find("error: run F1 budget_exceeded: step limit reached: 4 steps (max_steps), 4 taken"), std::string::npos) << out;
}

TEST_F(orch_resume, racing_resumes_call_each_agent_once) {
  const std::string file = pipeline_file();
  const Outcome killed = agentbus_cli(bus, {"run", file}, {"AGENTBUS_RUN_FAILPOINT=after_outcome@0"});
  ASSERT_EQ(killed.code, 128 + SIGKILL);
  // Four processes resume the run at once: one drives it, the others step back (exit 3).
  std::vector<std::unique_ptr<test::ChildProcess>> resumers;
  for (int i = 0; i < 4; ++i)
    resumers.push_back(std::make_unique<test::ChildProcess>(std::vector<std::string>{test::cli(), "--bus", bus, "run", "--resume", "r1"}));
  int ok = 0;
  for (auto& r : resumers) {
    const int code = r->wait(30s);
    if (code == 0) ++ok;
    else EXPECT_EQ(code, 3);
  }
  EXPECT_EQ(ok, 1);
  for (const std::string a : {"a", "b", "c"}) EXPECT_EQ(calls(dir, a), 1) << a;
}

namespace {

// member.sh ID STATUS SUMMARY: appends a line to ID.calls and finishes with STATUS and SUMMARY.
void write_member_script(const TempDir& dir) {
  write_file(dir.path() + "/member.sh",
             "echo call >> \"$1.calls\"\n"
             "printf '{\"version\":1,\"text\":\"%s\",\"tool_calls\":[{\"name\":\"finish\",\"arguments\":"
             "{\"status\":\"%s\",\"summary\":\"%s\"}}]}' \"$3\" \"$2\" \"$3\"\n");
}

// How many calls of `agent` the resumed driver announced (STEP_CALLED after RUN_RESUMED in the
// run's room). A call is announced before its process starts, so this counts the resumed
// driver's calls even where a killed driver's child may still write to a calls file late.
int calls_after_resume(const std::string& bus, const std::string& run, const std::string& agent) {
  const Outcome journal = agentbus_cli(bus, {"--room", "runs/" + run, "tail", "-n", "1000", "--json"});
  bool resumed = false;
  int n = 0;
  std::istringstream lines(journal.out);
  for (std::string line; std::getline(lines, line);) {
    resumed = resumed || line.find(R"("type":"RUN_RESUMED")") != std::string::npos;
    if (resumed && line.find(R"("type":"STEP_CALLED")") != std::string::npos &&
        line.find(R"("agent":")" + agent + "\"") != std::string::npos)
      ++n;
  }
  return resumed ? n : -1;
}

std::string member_agent(const std::string& id, const std::string& status, const std::string& summary) {
  return R"({"id":")" + id + R"(","command":"sh member.sh )" + id + " " + status + " " + summary + R"("})";
}

}  // namespace

// Stage "research" (compete: c1 succeeds, c2 is blocked or cancelled, lead1 condenses) takes
// steps 0-5 (two per member, two for the leader); stage "write" (synthesize: w1 and w2, lead2)
// steps 6-11. The driver is killed with the leaders' calls under way or recorded, and after a
// settled stage was journaled; the resumed run never calls a member of a finished stage, nor
// one whose call finished, again.
TEST_F(orch_resume, a_workflow_resumed_after_kill_9_of_its_driver_calls_no_finished_member_again) {
  write_member_script(dir);
  const std::string file = dir.path() + "/workflow.json";
  write_file(file, R"({"input":"find the cause and write it up","run_id":"W1","agents":[)" + member_agent("c1", "success", "c1-found") +
                       "," + member_agent("c2", "blocked", "c2-stuck") + "," + member_agent("lead1", "success", "research-done") +
                       "," + member_agent("w1", "success", "w1-draft") + "," + member_agent("w2", "success", "w2-draft") + "," +
                       member_agent("lead2", "success", "final-text") +
                       R"(],"strategy":{"type":"workflow","stages":[)"
                       R"({"name":"research","mode":"compete","members":["c1","c2"],"leader":"lead1"},)"
                       R"({"name":"write","members":["w1",{"agent":"w2","name":"editor","assignment":"tighten it"}],"leader":"lead2"}]}})");
  const std::vector<std::string> deterministic{"c1", "lead1", "w1", "lead2"};
  struct Kill {
    std::string point;
    std::uint64_t step;
    std::string called_twice;  // the agent whose call was under way (answered, nothing recorded)
  };
  for (const Kill& k : std::vector<Kill>{{"before_outcome", 4, "lead1"}, {"after_outcome", 4, ""}, {"after_stage", 0, ""},
                                         {"before_outcome", 6, "w1"}, {"after_stage", 6, ""}, {"before_outcome", 10, "lead2"},
                                         {"after_outcome", 10, ""}}) {
    SCOPED_TRACE(k.point + "@" + std::to_string(k.step));
    Bus::destroy(bus);
    for (const std::string a : {"c1", "c2", "lead1", "w1", "w2", "lead2"}) fs::remove(dir.path() + "/" + a + ".calls");
    const Outcome killed = agentbus_cli(bus, {"run", file}, {"AGENTBUS_RUN_FAILPOINT=" + k.point + "@" + std::to_string(k.step)});
    ASSERT_EQ(killed.code, 128 + SIGKILL) << killed.out;
    // c2 loses the race to c1 or not, and may be cancelled before it even started: whatever
    // it did before the kill, the resumed run does not call it again.
    const int c2_before = calls(dir, "c2");
    EXPECT_LE(c2_before, 1);
    // w2 runs beside w1: killed with w1's reply unrecorded, its own call may or may not have
    // been recorded. Recorded, it is not called again; otherwise it is called once more. (Its
    // calls file may be written late by the killed driver's child: count announced calls.)
    const Outcome journal = agentbus_cli(bus, {"--room", "runs/W1", "tail", "-n", "500", "--json"});
    bool w2_recorded = false;
    for (std::size_t at = journal.out.find(R"("type":"STEP_REPLY")"); at != std::string::npos;
         at = journal.out.find(R"("type":"STEP_REPLY")", at + 1)) {
      const std::string line = journal.out.substr(at, journal.out.find('\n', at) - at);
      w2_recorded = w2_recorded || line.find(R"("agent":"w2")") != std::string::npos;
    }
    const Outcome resumed = agentbus_cli(bus, {"run", "--resume", "W1", "--json"});
    ASSERT_EQ(resumed.code, 0) << resumed.out;
    EXPECT_NE(resumed.out.find(R"("state":"completed","output":"final-text")"), std::string::npos) << resumed.out;
    EXPECT_NE(resumed.out.find(R"({"name":"research","status":"success","output":"research-done"})"), std::string::npos) << resumed.out;
    for (const auto& a : deterministic) EXPECT_EQ(calls(dir, a), a == k.called_twice ? 2 : 1) << "agent " << a;
    EXPECT_EQ(calls(dir, "c2"), c2_before);
    EXPECT_EQ(calls_after_resume(bus, "W1", "w2"), w2_recorded ? 0 : 1);
    EXPECT_EQ(agentbus_cli(bus, {"run", "--resume", "W1"}).code, 3);  // finished: nothing more is called
    for (const auto& a : deterministic) EXPECT_EQ(calls(dir, a), a == k.called_twice ? 2 : 1) << "agent " << a;
    // The stages' rooms (runs/W1/stage-1, -2) are the run's, not runs of their own.
    const Outcome listed = agentbus_cli(bus, {"runs", "--json"});
    EXPECT_NE(listed.out.find(R"("run":"W1")"), std::string::npos) << listed.out;
    EXPECT_EQ(listed.out.find("stage-"), std::string::npos) << listed.out;
  }
}

TEST_F(orch_resume, a_workgroup_in_a_run_file_settles_and_a_failed_one_exits_1) {
  write_member_script(dir);
  const std::string file = dir.path() + "/group.json";
  write_file(file, R"({"input":"pick a name","run_id":"G1","agents":[)" + member_agent("a", "blocked", "a-stuck") + "," +
                       member_agent("b", "success", "b-wins") +
                       R"(],"strategy":{"type":"workgroup","mode":"compete","members":["a","b"]}})");
  const Outcome won = agentbus_cli(bus, {"run", file});
  EXPECT_EQ(won.code, 0);
  EXPECT_EQ(won.out, "b-wins\n");
  write_file(file, R"({"input":"pick a name","run_id":"G2","agents":[)" + member_agent("c", "blocked", "c-stuck") +
                       R"(],"strategy":{"type":"workgroup","name":"naming","mode":"synthesize","members":["c"]}})");
  const Outcome blocked = agentbus_cli(bus, {"run", file, "--json"});
  EXPECT_EQ(blocked.code, 1);
  EXPECT_NE(blocked.out.find(R"("state":"failed","output":"c: c-stuck","error":"workgroup naming blocked: c (blocked): c-stuck")"),
            std::string::npos)
      << blocked.out;
  EXPECT_EQ(calls(dir, "b"), 1);
  EXPECT_EQ(calls(dir, "c"), 1);
}

TEST_F(orch_resume, a_per_agent_timeout_replaces_the_runs_call_timeout) {
  const std::string file = dir.path() + "/timeouts.json";
  // The run's calls may take 100 ms; "patient" may take 20 s (and sleeps 300 ms), "hasty" only
  // 200 ms (and sleeps 20 s, so it is killed).
  write_file(file, R"({"input":"go","run_id":"T1","budget":{"call_timeout_ms":100},"agents":[)"
                   R"({"id":"patient","timeout_ms":20000,"command":"sleep 0.3; printf '{\"version\":1,\"text\":\"slow but fine\"}'"},)"
                   R"({"id":"hasty","timeout_ms":200,"command":"exec sleep 20"}],"strategy":{"type":"pipeline"}})");
  const Outcome out = agentbus_cli(bus, {"run", file, "--json"});
  EXPECT_EQ(out.code, 1);
  EXPECT_NE(out.out.find("agent 'hasty': command 'exec sleep 20' timed out after 200 ms and was killed"), std::string::npos) << out.out;
  const Outcome steps = agentbus_cli(bus, {"--room", "runs/T1", "tail", "-n", "50", "--json"});
  EXPECT_NE(steps.out.find(R"("text":"slow but fine")"), std::string::npos) << steps.out;
}

TEST_F(orch_resume, the_example_workflow_runs_as_the_readme_shows) {
  const Outcome out = agentbus_cli(bus, {"run", std::string(AGENTBUS_EXAMPLES_DIR) + "/providers/workflow.json", "--json"});
  ASSERT_EQ(out.code, 0) << out.out;
  EXPECT_NE(out.out.find(R"("output":"[lead] write it up for the team")"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find(R"({"name":"research","status":"success","output":"[lead] find the cause"})"), std::string::npos) << out.out;
}

// A compete workgroup whose winner's reply was recorded before the driver died: the resumed
// run settles on that winner without starting the member that was still running.
TEST_F(orch_resume, a_compete_group_won_before_the_kill_starts_no_loser_again) {
  write_member_script(dir);
  const std::string file = dir.path() + "/compete.json";
  const std::string pidfile = dir.path() + "/slow.pid";
  write_file(file, R"({"input":"race","run_id":"C1","agents":[)" + member_agent("c1", "success", "c1-found") +
                       R"(,{"id":"slow","command":"echo call >> slow.calls; echo $$ > slow.pid; exec sleep 30"}],)"
                       R"("strategy":{"type":"workgroup","mode":"compete","members":["slow","c1"]}})");
  // c1 is member 1: steps 2 and 3. Killed with its success recorded, slow still sleeping.
  const Outcome killed = agentbus_cli(bus, {"run", file}, {"AGENTBUS_RUN_FAILPOINT=after_outcome@2"});
  ASSERT_EQ(killed.code, 128 + SIGKILL);
  const Outcome resumed = agentbus_cli(bus, {"run", "--resume", "C1"});
  EXPECT_EQ(resumed.code, 0);
  EXPECT_EQ(resumed.out, "c1-found\n");
  EXPECT_EQ(calls(dir, "c1"), 1);
  // Not started again: the resumed driver announced no call of "slow". Its calls file cannot
  // tell: the killed driver's child outlives it and may write there late.
  EXPECT_EQ(calls_after_resume(bus, "C1", "slow"), 0);
  // The killed driver's child, in its own process group (if it was started at all).
  (void)test::eventually([&] { return fs::exists(pidfile) && fs::file_size(pidfile) > 0; }, 2s);
  std::ifstream in(pidfile);
  pid_t orphan = 0;
  in >> orphan;
  if (orphan > 0) ::kill(orphan, SIGKILL);  // the killed driver's child, in its own process group
}
