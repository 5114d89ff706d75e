// Agents as processes: a Pipeline driven here whose three agents are three `agentbus agent`
// processes; a server killed with SIGKILL mid-step, its request served by another; no server.
#include <agentbus/consumer_group.hpp>
#include <agentbus/orchestration/bus_agent.hpp>
#include <agentbus/orchestration/protocol.hpp>
#include <agentbus/orchestration/strategies.hpp>

#include "support/child_process.hpp"
#include "support/expect.hpp"
#include "support/test_bus.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include "../support/temp_dir.hpp"

#include <filesystem>
#include <fstream>
#include <thread>

using namespace agentbus;
using namespace agentbus::orchestration;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string temp_dir() { return test::make_temp_dir("agentbus-orch-bus"); }

int lines_in(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

// Waits (bounded) until `path` exists and is not empty.
bool wait_for_file(const std::string& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(path) && fs::file_size(path) > 0) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// Waits until the consumer group of agent `id` has `n` live members (servers ready to read).
bool wait_for_servers(Bus& bus, const std::string& id, std::size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      GroupOptions o;
      o.create = false;
      ConsumerGroup observer(bus.room("agents/" + id), "servers", "", o);
      std::size_t alive = 0;
      for (const auto& m : observer.info().members) alive += m.alive ? 1 : 0;
      if (alive >= n) return true;
    } catch (const Error&) {
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

}  // namespace

class orch_bus_agent : public ::testing::Test {
 protected:
  test::TestBus bus{"orch-busagent"};
  std::string dir = temp_dir();
  void TearDown() override { fs::remove_all(dir); }

  std::unique_ptr<test::ChildProcess> server(const std::string& id, const std::string& cmd, std::vector<std::string> env = {}) {
    return std::make_unique<test::ChildProcess>(
        std::vector<std::string>{test::cli(), "--bus", bus.name(), "agent", "--id", id, "--provider-cmd", cmd}, env);
  }
};

TEST_F(orch_bus_agent, a_pipeline_whose_agents_are_three_separate_processes) {
  std::vector<std::unique_ptr<test::ChildProcess>> servers;
  std::vector<Agent> agents;
  for (const std::string id : {"researcher", "writer", "editor"}) {
    // Each provider records the pid of the server process that ran it (its parent).
    servers.push_back(server(id, "echo $PPID >> " + dir + "/" + id + ".calls; printf '{\"version\":1,\"text\":\"" + id + " done\"}'"));
    ASSERT_TRUE(wait_for_servers(*bus, id, 1)) << id;
    agents.push_back(Agent{id, "", "", std::make_shared<BusAgentProvider>(*bus, id)});
  }
  Pipeline p(agents);
  RunOptions o;
  o.run_id = "three";
  o.budget.call_timeout = 20s;
  const RunResult r = drive(*bus, p, "go", o);
  ASSERT_EQ(r.state, RunState::completed) << r.error;
  EXPECT_EQ(r.output, "editor done");
  for (std::size_t i = 0; i < servers.size(); ++i) {
    const std::string file = dir + "/" + agents[i].id + ".calls";
    ASSERT_EQ(lines_in(file), 1) << agents[i].id;
    std::ifstream in(file);
    pid_t pid = 0;
    in >> pid;
    EXPECT_EQ(pid, servers[i]->pid()) << agents[i].id << " was not served by its own process";
  }
}

TEST_F(orch_bus_agent, a_request_whose_server_dies_mid_step_is_served_by_another_instance) {
  // The first server's provider hangs (and says so); it is killed with SIGKILL while it holds
  // the request, and the second server of the same agent answers it.
  const std::string marker = dir + "/hung";
  const std::string cmd = "if [ -n \"$HANG\" ]; then echo $$ > " + marker +
                          "; exec sleep 30; fi; printf '{\"version\":1,\"text\":\"served by the survivor\"}'";
  auto first = server("worker", cmd, {"HANG=1"});
  ASSERT_TRUE(wait_for_servers(*bus, "worker", 1));
  Agent worker{"worker", "", "", std::make_shared<BusAgentProvider>(*bus, "worker")};
  Pipeline p({worker});
  RunOptions o;
  o.run_id = "failover";
  o.budget.call_timeout = 20s;
  RunResult result;
  std::thread driver([&] { result = drive(*bus, p, "work", o); });
  ASSERT_TRUE(wait_for_file(marker, 10s));
  auto second = server("worker", cmd);
  ASSERT_TRUE(wait_for_servers(*bus, "worker", 2));
  ::kill(first->pid(), SIGKILL);
  EXPECT_EQ(first->wait(5s), 128 + SIGKILL);
  driver.join();
  std::ifstream in(marker);
  pid_t hung = 0;
  in >> hung;
  if (hung > 0) ::kill(hung, SIGKILL);
  ASSERT_EQ(result.state, RunState::completed) << result.error;
  EXPECT_EQ(result.output, "served by the survivor");
}

TEST_F(orch_bus_agent, with_no_server_the_step_fails_after_its_timeout) {
  BusAgentProvider ghost(*bus, "ghost");
  ProviderRequest req;
  req.agent.id = "ghost";
  const CallResult r = ghost.call(req, 300ms);
  EXPECT_EQ(r.status, CallStatus::timeout);
  EXPECT_EQ(r.error, "agent 'ghost' (served on bus '" + bus.name() +
                         "'): no reply within 300 ms (is `agentbus agent --id ghost` running?)");
}

TEST_F(orch_bus_agent, a_cancelled_call_returns_cancelled_instead_of_waiting_out_its_timeout) {
  BusAgentProvider ghost(*bus, "ghost");
  std::atomic<bool> cancel{false};
  ProviderRequest req;
  req.agent.id = "ghost";
  req.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(50ms);  // the call is waiting by then; if not, it sees the flag at once
    cancel.store(true);
  });
  const CallResult r = ghost.call(req, 60s);  // without the cancel: a timeout, a minute later
  canceller.join();
  EXPECT_EQ(r.status, CallStatus::failed);
  EXPECT_NE(r.error.find("was cancelled"), std::string::npos) << r.error;
}

TEST(orch_bus_agent_protocol, request_round_trips) {
  ProviderRequest req{"r9", 4, {"a", "Role", "desc"}, {{"user", "", "hi"}, {"assistant", "b", "yo"}}, {{"finish", "d", R"({"type":"object"})"}}};
  std::string why;
  auto back = request_from_json(request_to_json(req), why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->run_id, "r9");
  EXPECT_EQ(back->step, 4u);
  EXPECT_EQ(back->agent.role, "Role");
  ASSERT_EQ(back->messages.size(), 2u);
  EXPECT_EQ(back->messages[1].agent, "b");
  EXPECT_EQ(back->tools.at(0).parameters, R"({"type":"object"})");
}
