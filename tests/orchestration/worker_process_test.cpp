// `agentbus worker` processes: a worker killed with kill -9 mid-task is taken over by another
// at once (its claim's session was its own process), a stale worker's late completion is
// refused by fencing, and the delegator sees exactly one result.
#include <agentbus/inbox.hpp>
#include <agentbus/orchestration/delegation.hpp>
#include <agentbus/tasks.hpp>

#include "support/child_process.hpp"
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

std::string temp_dir() { return test::make_temp_dir("agentbus-orch-worker"); }

// A provider that, with $HANG set, notes its pid in MARK and sleeps until killed; otherwise
// waits (bounded) for GATE, then answers "<answer> by $WHO".
std::string provider_cmd(const std::string& dir) {
  return "if [ -n \"$HANG\" ]; then echo $$ > " + dir + "/mark; exec sleep 30; fi; "
         "i=0; while [ ! -e " + dir + "/gate-$WHO ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; "
         "printf '{\"version\":1,\"text\":\"done by %s\"}' \"$WHO\"";
}

pid_t read_pid(const std::string& path) {
  std::ifstream in(path);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

void touch(const std::string& path) { std::ofstream(path) << "go\n"; }

}  // namespace

class orch_worker_process : public ::testing::Test {
 protected:
  test::TestBus bus{"orch-worker"};
  Room team = bus->room("team");
  std::string dir = temp_dir();
  void TearDown() override { fs::remove_all(dir); }

  std::unique_ptr<test::ChildProcess> worker(const std::string& name, std::vector<std::string> env,
                                             std::vector<std::string> extra = {}) {
    env.push_back("WHO=" + name);
    std::vector<std::string> argv{test::cli(), "--bus", bus.name(), "worker", "--type", "research", "--name", name,
                                  "--provider-cmd", provider_cmd(dir)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<test::ChildProcess>(argv, env);
  }
};

TEST_F(orch_worker_process, a_worker_killed_mid_task_is_taken_over_and_its_stale_token_is_refused) {
  Delegator lead(*bus, "lead");
  DelegatedTask t = lead.delegate("team", "research", "find the cause");
  auto first = worker("first", {"HANG=1"});
  ASSERT_TRUE(test::eventually([&] { return fs::exists(dir + "/mark") && read_pid(dir + "/mark") > 0; }, 10s));
  TaskBoard board(bus->room("delegations/research"));
  const TaskState held = board.state(t.board_id());
  ASSERT_EQ(held.phase, TaskPhase::claimed);
  EXPECT_EQ(held.claimant, "first");
  EXPECT_EQ(held.owner_pid, first->pid());  // the claim's session is the worker process
  EXPECT_EQ(t.status(), TaskStatus::in_progress);

  auto second = worker("second", {});
  ::kill(first->pid(), SIGKILL);
  ASSERT_EQ(first->wait(5s), 128 + SIGKILL);
  ::kill(read_pid(dir + "/mark"), SIGKILL);  // its provider, in its own process group

  // Dead-session reclaim: the second worker holds it without waiting for the 30 s lease.
  ASSERT_TRUE(test::eventually([&] {
    const TaskState s = board.state(t.board_id());
    return s.phase == TaskPhase::claimed && s.claimant == "second";
  }, 10s));
  EXPECT_GE(board.counters().dead_sessions_reclaimed, 1u);
  // The first worker's token is stale now: a late completion with it is refused.
  const auto refused_before = board.counters().stale_tokens_refused;
  test::expect_error([&] { (void)board.complete(t.board_id(), held.token, R"({"status":"completed","output":"stale"})"); },
                     Errc::conflict, "");
  EXPECT_EQ(board.counters().stale_tokens_refused, refused_before + 1);

  touch(dir + "/gate-second");
  const DelegatedTaskResult r = t.wait(20s);
  EXPECT_EQ(r.status, TaskStatus::completed);
  EXPECT_EQ(r.output.value_or(""), "done by second");
  EXPECT_EQ(r.worker, "second");
  Inbox inbox(team);
  ASSERT_TRUE(test::eventually([&] { return !inbox.read("lead").empty(); }, 10s));
  ::kill(second->pid(), SIGTERM);
  EXPECT_EQ(second->wait(10s), 0);
  EXPECT_EQ(inbox.read("lead").size(), 1u);  // exactly one result
}

TEST_F(orch_worker_process, a_frozen_worker_whose_lease_lapsed_cannot_complete_over_its_successor) {
  // The first worker is stopped (SIGSTOP) while it runs the task, so it cannot renew; its
  // 300 ms lease lapses and the second worker takes the task. Resumed, the first finishes
  // its provider call and is refused at complete(): one result, the second's.
  Delegator lead(*bus, "lead");
  DelegatedTask t = lead.delegate("team", "research", "find the cause");
  auto first = worker("first", {}, {"--lease", "300ms"});
  TaskBoard board(bus->room("delegations/research"));
  ASSERT_TRUE(test::eventually([&] { return board.state(t.board_id()).claimant == "first"; }, 10s));
  ASSERT_EQ(::kill(first->pid(), SIGSTOP), 0);
  auto second = worker("second", {}, {"--lease", "300ms"});
  ASSERT_TRUE(test::eventually([&] { return board.state(t.board_id()).claimant == "second"; }, 10s));
  EXPECT_GE(board.counters().expired_reclaimed, 1u);

  const auto refused_before = board.counters().stale_tokens_refused;
  touch(dir + "/gate-first");
  ASSERT_EQ(::kill(first->pid(), SIGCONT), 0);
  // The first worker's renew or completion with its old token is refused.
  ASSERT_TRUE(test::eventually([&] { return board.counters().stale_tokens_refused > refused_before; }, 20s));
  EXPECT_EQ(board.state(t.board_id()).phase, TaskPhase::claimed);  // still the second's

  touch(dir + "/gate-second");
  const DelegatedTaskResult r = t.wait(20s);
  EXPECT_EQ(r.status, TaskStatus::completed);
  EXPECT_EQ(r.output.value_or(""), "done by second");
  Inbox inbox(team);
  ASSERT_TRUE(test::eventually([&] { return !inbox.read("lead").empty(); }, 10s));
  ::kill(first->pid(), SIGTERM);
  ::kill(second->pid(), SIGTERM);
  EXPECT_EQ(first->wait(10s), 0);
  EXPECT_EQ(second->wait(10s), 0);
  ASSERT_EQ(inbox.read("lead").size(), 1u);
  EXPECT_EQ(inbox.read("lead").front().from, "second");
}

TEST_F(orch_worker_process, cancel_ends_the_running_providers_process_and_the_worker_completes_the_task_as_cancelled) {
  Delegator lead(*bus, "lead");
  DelegatedTask t = lead.delegate("team", "research", "a job that would take 30 s");
  auto w = worker("first", {"HANG=1"});
  ASSERT_TRUE(test::eventually([&] { return fs::exists(dir + "/mark") && read_pid(dir + "/mark") > 0; }, 10s));
  const pid_t provider = read_pid(dir + "/mark");
  ASSERT_EQ(::kill(provider, 0), 0);  // running: `sleep 30`
  EXPECT_TRUE(t.cancel());
  // The worker notices the cancel mark and kills the provider's process group; it reaps the
  // child, so its pid is gone, long before the 30 s sleep would have ended.
  EXPECT_TRUE(test::eventually([&] { return ::kill(provider, 0) != 0 && errno == ESRCH; }, 10s));
  TaskBoard board(bus->room("delegations/research"));
  ASSERT_TRUE(test::eventually([&] { return board.state(t.board_id()).phase == TaskPhase::done; }, 10s));
  const TaskState done = board.state(t.board_id());
  EXPECT_NE(done.result.find(R"("status":"cancelled")"), std::string::npos) << done.result;
  EXPECT_NE(done.result.find(R"("worker":"first")"), std::string::npos) << done.result;
  EXPECT_EQ(::kill(w->pid(), 0), 0);  // the worker itself goes on serving
  ::kill(w->pid(), SIGTERM);
  EXPECT_EQ(w->wait(10s), 0);
  EXPECT_TRUE(Inbox(team).read("lead").empty());  // a cancelled task delivers nothing
}

TEST_F(orch_worker_process, bad_worker_arguments_are_refused_with_a_message) {
  test::ChildProcess none({test::cli(), "--bus", bus.name(), "worker", "--provider-cmd", "true"});
  EXPECT_NE(none.wait(10s), 0);
  test::ChildProcess bad({test::cli(), "--bus", bus.name(), "worker", "--type", "a b", "--provider-cmd", "true"});
  EXPECT_NE(bad.wait(10s), 0);
  test::ChildProcess conc({test::cli(), "--bus", bus.name(), "worker", "--type", "a", "--provider-cmd", "true", "--concurrency", "0"});
  EXPECT_NE(conc.wait(10s), 0);
}

// The whole path with real processes: a run's agent, a command, delegates from the run's room
// with `agentbus delegate`; an `agentbus worker` process answers; the result is in the
// agent's next prompt in the run.
TEST_F(orch_worker_process, a_run_agent_that_delegates_through_the_cli_sees_the_result_in_its_next_prompt) {
  const std::string cli = fs::absolute(test::cli()).string();  // lead.sh runs in dir
  // Step 0: delegate (waiting for the task), then wait, bounded, for the result to reach the
  // inbox. Later steps: say whether the prompt carries the result.
  std::ofstream(dir + "/lead.sh")
      << "req=$(cat)\n"
         "case \"$req\" in\n"
         "  *'\"step\":0,'*)\n"
         "    " << cli << " --room runs/DL delegate --type research --agent lead 'why is the build red' >/dev/null || exit 3\n"
         "    i=0; until " << cli << " --room runs/DL inbox --agent lead | grep -q 'delegated task'; do\n"
         "      i=$((i+1)); [ $i -gt 1000 ] && exit 4; sleep 0.01; done\n"
         "    printf '{\"version\":1,\"text\":\"draft\"}' ;;\n"
         "  *'to research: completed]'*'the linker ran out of disk'*) printf '{\"version\":1,\"text\":\"saw the result\"}' ;;\n"
         "  *) printf '{\"version\":1,\"text\":\"no result in the prompt\"}' ;;\n"
         "esac\n";
  std::ofstream(dir + "/run.json")
      << R"({"input":"fix the build","run_id":"DL","agents":[{"id":"lead","command":"sh lead.sh","env":{"AGENTBUS_BUS":")"
      << bus.name() << R"("}},{"id":"rev","command":"printf '{\"version\":1,\"text\":\"not yet\"}'"}],)"
      << R"("strategy":{"type":"loop","agent":"lead","reviewer":"rev","max_iterations":2}})";
  test::ChildProcess w({cli, "--bus", bus.name(), "worker", "--type", "research", "--provider-cmd",
                        "printf '{\"version\":1,\"text\":\"the linker ran out of disk\"}'"});
  test::ChildProcess run({"/bin/sh", "-c", cli + " --bus " + bus.name() + " run " + dir + "/run.json --follow 2>&1"});
  const std::string out = run.read_all(30s);
  EXPECT_EQ(run.wait(30s), 0) << out;  // the reviewer never approves: the last draft after 2 iterations
  EXPECT_NE(out.find("[step 2] lead: 1 delegation result added to its prompt\n"), std::string::npos) << out;
  EXPECT_TRUE(out.ends_with("\nsaw the result\n")) << out;  // the output, on stdout, last
  ::kill(w.pid(), SIGTERM);
  EXPECT_EQ(w.wait(10s), 0);
  RoomOptions existing;
  existing.create = false;
  EXPECT_TRUE(Inbox(bus->room("runs/DL", existing)).read("lead").empty());  // acknowledged by the driver
}
