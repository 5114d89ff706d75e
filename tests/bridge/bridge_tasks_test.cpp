// Tasks across hosts, end to end: two buses with different host ids, one real redis-server,
// two real agentbus-bridge processes. Claimants are forked processes released together, so
// that the hosts' claims really race; bridges are killed with SIGKILL and Redis is stopped.
#include "bridge_test_support.hpp"
#include "../cli/cli_process.hpp"
#include "../support/test_bus.hpp"

#include <agentbus/agentbus.hpp>
#include <agentbus/bridge_status.hpp>
#include <agentbus_testing/redis_server.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::TestBus;
using agentbus::testing::RedisServer;
using bridge_test::bridge_path;
using bridge_test::eventually;
using cli_test::CliProcess;

constexpr const char* kRoom = "work";

class BridgeTasks : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = std::make_unique<RedisServer>(agentbus::testing::RedisServerOptions{});
    ASSERT_TRUE(redis_->start()) << redis_->why();
    spool_ = std::filesystem::temp_directory_path() / ("agentbus-tasks-test-" + std::to_string(::getpid()) + "-" +
                                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(spool_);
  }
  void TearDown() override {
    bridges_.clear();
    std::filesystem::remove_all(spool_);
  }

  CliProcess& start_bridge(const TestBus& bus) {
    bridges_.push_back(std::make_unique<CliProcess>(cli_test::CliCall{
        {"run", "--bus", bus.name(), "--redis", "redis://127.0.0.1:" + std::to_string(redis_->port()), "--spool-dir",
         (spool_ / bus.name()).string()},
        {}, "", "", bridge_path()}));
    return *bridges_.back();
  }

  std::string bridge_logs() {
    std::string out;
    for (auto& b : bridges_) {
      (void)b->wait_until([] { return false; }, 200ms);
      out += "\n--- bridge pid " + std::to_string(b->pid()) + ":\n" + b->err();
    }
    return out;
  }

  static bool through_redis(TestBus& bus) {
    for (const bridge::BridgeRoomStatus& r : bridge::bridge_status(*bus).rooms)
      if (r.room == kRoom) return r.tasks_through_redis;
    return false;
  }

  // A task posted on A, bridged both ways, and on B's board: returns (id on A, id on B).
  std::pair<EventId, EventId> task_on_both(TaskBoard& board_a, const std::string& payload) {
    const EventId on_a = board_a.post_task("review", "alice", payload);
    std::optional<EventId> on_b;
    EXPECT_TRUE(eventually([&] {
      if (!b_->room_names().size() || !through_redis(b_)) return false;
      TaskBoard board_b(b_->room(kRoom));
      for (const TaskState& t : board_b.open_tasks(1000))
        if (t.payload == payload) on_b = t.id;
      return on_b.has_value();
    })) << "task '" << payload << "' never reached B's board" << bridge_logs();
    return {on_a, on_b.value_or(~EventId{0})};
  }

  void bridge_both_with_a_board(TaskBoard& board_a) {
    board_a.register_task({"review", "review a change", "a verdict", ""});
    start_bridge(a_);
    start_bridge(b_);
    ASSERT_TRUE(eventually([&] { return through_redis(a_); }));
  }

  std::unique_ptr<RedisServer> redis_;
  std::filesystem::path spool_;
  std::vector<std::unique_ptr<CliProcess>> bridges_;
  TestBus a_{"bta", BusOptions{.host_id = "host-a"}};
  TestBus b_{"btb", BusOptions{.host_id = "host-b"}};
};

// A child that waits on `go`, then claims `id` on `bus` with the test process as its session
// (so that its claim outlives it). Exit code: 0 won, 1 lost (held or done), 2 an error.
pid_t forked_claimant(const std::string& bus, EventId id, const std::string& agent, const int (&go)[2]) {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::close(go[1]);
  char byte;
  (void)!::read(go[0], &byte, 1);  // returns at EOF, once the test closes its end: all start at once
  try {
    Bus b = Bus::open({.name = bus, .create = false});
    TaskBoard board(b.room(kRoom, {.create = false}), {.create = false});
    const Claim c = board.claim(id, agent, {.ttl = 60s, .session_pid = parent});
    ::_exit(c.ok() ? 0 : 1);
  } catch (...) {
    ::_exit(2);
  }
}

// The child's exit code; -1 (and the child killed) if it has not exited within 30 s.
int exit_code_of(pid_t pid) {
  int status = 0;
  const bool exited = eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, 30s);
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(BridgeTasks, ATaskPostedOnAIsOpenOnBWithTheCatalog) {
  TaskBoard board_a(a_->room(kRoom));
  bridge_both_with_a_board(board_a);
  const auto [on_a, on_b] = task_on_both(board_a, "change 1");
  TaskBoard board_b(b_->room(kRoom));
  const TaskState t = board_b.state(on_b);
  EXPECT_EQ(t.phase, TaskPhase::open);
  EXPECT_EQ(t.type, "review");
  EXPECT_EQ(t.creator, "alice");
  EXPECT_TRUE(eventually([&] {
    const std::optional<TaskType> type = board_b.find_type("review");
    return type && type->description == "review a change";
  })) << "the catalog did not cross" << bridge_logs();
  EXPECT_EQ(board_a.state(on_a).phase, TaskPhase::open);
}

TEST_F(BridgeTasks, AClaimRaceFromBothHostsHasExactlyOneWinner) {
  TaskBoard board_a(a_->room(kRoom));
  bridge_both_with_a_board(board_a);
  TaskBoard board_b(b_->room(kRoom));
  constexpr int kTasks = 6, kPerHost = 3;
  int wins_a = 0, wins_b = 0;
  for (int task = 0; task < kTasks; ++task) {
    const auto [on_a, on_b] = task_on_both(board_a, "change " + std::to_string(task));
    int go[2];
    ASSERT_EQ(::pipe(go), 0);
    std::vector<std::pair<pid_t, char>> children;
    for (int i = 0; i < kPerHost; ++i) {
      children.emplace_back(forked_claimant(a_.name(), on_a, "a" + std::to_string(i), go), 'a');
      children.emplace_back(forked_claimant(b_.name(), on_b, "b" + std::to_string(i), go), 'b');
    }
    ::close(go[0]);
    ::close(go[1]);  // go
    int winners = 0;
    char winner = '?';
    for (const auto& [pid, host] : children) {
      const int code = exit_code_of(pid);
      EXPECT_TRUE(code == 0 || code == 1) << "claimant on host " << host << " exited " << code;
      if (code == 0) {
        ++winners;
        winner = host;
        (host == 'a' ? wins_a : wins_b) += 1;
      }
    }
    EXPECT_EQ(winners, 1) << "task " << task;
    // A late claimant on the other host is told who holds it, with the holder's host.
    const Claim late = winner == 'a' ? board_b.claim(on_b, "late") : board_a.claim(on_a, "late");
    EXPECT_EQ(late.status, ClaimStatus::held);
    EXPECT_TRUE(late.holder.ends_with(winner == 'a' ? "@host-a" : "@host-b")) << late.holder;
  }
  EXPECT_EQ(wins_a + wins_b, kTasks);
}

TEST_F(BridgeTasks, AStaleClaimantIsRefusedAfterTheOtherHostClaimsAndTheCompletionCrosses) {
  TaskBoard board_a(a_->room(kRoom));
  bridge_both_with_a_board(board_a);
  TaskBoard board_b(b_->room(kRoom));
  const auto [on_a, on_b] = task_on_both(board_a, "change x");
  const Claim first = board_a.claim(on_a, "alice", {.ttl = 300ms});
  ASSERT_TRUE(first.ok());
  // While A's claim runs, B cannot have it, and is told it is A's.
  const Claim refused = board_b.claim(on_b, "bob");
  EXPECT_EQ(refused.status, ClaimStatus::held);
  EXPECT_EQ(refused.holder, "alice@host-a");
  // Once it lapses (in Redis too), B claims it; A's token is stale from then on.
  Claim second;
  ASSERT_TRUE(eventually([&] {
    second = board_b.claim(on_b, "bob", {.ttl = 60s});
    return second.ok();
  }));
  try {
    (void)board_a.complete(on_a, first.token, "late");
    ADD_FAILURE() << "the stale claimant's completion was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::conflict);
    EXPECT_NE(std::string(e.what()).find("bob@host-b"), std::string::npos) << e.what();
  }
  (void)board_b.complete(on_b, second.token, "approved by bob");
  // The completion crosses back: A's board has it done, with B's result.
  ASSERT_TRUE(eventually([&] { return board_a.state(on_a).phase == TaskPhase::done; }));
  EXPECT_EQ(board_a.state(on_a).result, "approved by bob");
  EXPECT_EQ(board_a.claim(on_a, "carol").status, ClaimStatus::done);
}

TEST_F(BridgeTasks, ADeadSessionsClaimIsTakenOverAtOnceOnItsHost) {
  TaskBoard board_a(a_->room(kRoom));
  bridge_both_with_a_board(board_a);
  const auto [on_a, on_b] = task_on_both(board_a, "change d");
  const pid_t session = ::fork();
  if (session == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_TRUE(board_a.claim(on_a, "alice", {.ttl = 60s, .session_pid = session}).ok());
  ::kill(session, SIGKILL);
  ASSERT_EQ(::waitpid(session, nullptr, 0), session);
  // The lease has a minute left in Redis, but A knows its holder is dead: A's next claimant wins.
  // (Within the liveness cache's few milliseconds it may still count as alive.)
  Claim taken;
  EXPECT_TRUE(eventually([&] { return (taken = board_a.claim(on_a, "alice2")).ok(); }, 5s)) << "holder " << taken.holder;
  // And B still cannot.
  EXPECT_EQ(TaskBoard(b_->room(kRoom)).claim(on_b, "bob").status, ClaimStatus::held);
}

TEST_F(BridgeTasks, WithoutTheBridgeOrRedisClaimsFailClearlyInsteadOfWinningAlone) {
  TaskBoard board_a(a_->room(kRoom));
  bridge_both_with_a_board(board_a);
  const auto [on_a, on_b] = task_on_both(board_a, "change k");
  // Redis away: told at once, nothing claimed.
  redis_->kill();
  try {
    (void)board_a.claim(on_a, "alice");
    ADD_FAILURE() << "claimed with Redis away";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::unavailable);
    EXPECT_NE(std::string(e.what()).find("Redis"), std::string::npos) << e.what();
  }
  EXPECT_EQ(board_a.state(on_a).phase, TaskPhase::open);
  // The bridge killed: claims wait for a bridge rather than decide alone.
  bridges_.front()->send_signal(SIGKILL);
  ASSERT_TRUE(bridges_.front()->wait_exit(10s).has_value());
  try {
    (void)board_a.claim(on_a, "alice");
    ADD_FAILURE() << "claimed with the bridge dead";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::unavailable);
    EXPECT_NE(std::string(e.what()).find("is not running"), std::string::npos) << e.what();
  }
  // The CLI says so too, with a failure exit.
  const cli_test::CliResult cli =
      cli_test::run_cli({{"--bus", a_.name(), "--room", kRoom, "claim", std::to_string(on_a), "--agent", "alice"}, {}, "", "", ""});
  EXPECT_EQ(cli.exit_code, 1) << cli.out << cli.err;
  EXPECT_NE(cli.err.find("is not running"), std::string::npos) << cli.err;
}

}  // namespace
