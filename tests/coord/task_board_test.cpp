// The task board: catalog, claims with leases and fencing tokens, recovery from dead
// claimants and from calls left half done, with real processes racing through the CLI.
#include "coord/task_board_layout.hpp"
#include "shm/slot_table.hpp"
#include "bus/room_access.hpp"
#include "support/child_process.hpp"
#include "support/expect.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <set>
#include <thread>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::ChildProcess;
using agentbus::test::TestBus;
using agentbus::test::cli;
using agentbus::test::eventually;
using agentbus::test::expect_error;

namespace {

TaskBoard board_with_review(Room room, TaskBoardOptions o = {}) {
  TaskBoard board(std::move(room), o);
  board.register_task({"review", "Review a diff", "verdict", ""});
  return board;
}

}  // namespace

TEST(TaskBoard, CatalogRegistersUpdatesAndRefusesBadTypes) {
  TestBus bus("tasks-catalog");
  TaskBoard board(bus->room("r"), {.catalog_capacity = 2});
  board.register_task({"review", "Review a diff", "verdict", ""});
  board.register_task({"review", "Review a diff", "verdict", ""});  // identical: no new entry
  board.register_task({"fix", "Fix a bug", "", "a failing test"});
  ASSERT_EQ(board.catalog().size(), 2u);
  board.register_task({"review", "Review a diff carefully", "verdict", ""});  // update in place
  const auto types = board.catalog();
  ASSERT_EQ(types.size(), 2u);
  EXPECT_EQ(types[1].type, "review");
  EXPECT_EQ(types[1].description, "Review a diff carefully");
  EXPECT_EQ(board.find_type("fix")->requires_, "a failing test");
  EXPECT_FALSE(board.find_type("deploy"));
  expect_error([&] { board.register_task({"deploy", "", "", ""}); }, Errc::no_space, "catalog");
  expect_error([&] { board.register_task({"", "x", "", ""}); }, Errc::invalid_argument, "empty");
  expect_error([&] { board.register_task({std::string(65, 't'), "x", "", ""}); }, Errc::too_large, "64");

  // Another handle (as another process would open it) sees the same catalog.
  TaskBoard again(bus->room("r"), {.create = false});
  EXPECT_EQ(again.catalog().size(), 2u);
}

TEST(TaskBoard, PostClaimCompleteAndDoneEvent) {
  TestBus bus("tasks-flow");
  Room room = bus->room("r");
  TaskBoard board = board_with_review(room);
  expect_error([&] { (void)board.post_task("deploy", "alice", "{}"); }, Errc::not_found, "not registered");

  const EventId id = board.post_task("review", "alice", R"({"pr":42})");
  auto open = board.open_tasks();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].id, id);
  EXPECT_EQ(open[0].payload, R"({"pr":42})");
  EXPECT_EQ(open[0].creator, "alice");

  const Claim c = board.claim(id, "bob", {.ttl = 1min});
  EXPECT_TRUE(board.open_tasks().empty());
  TaskState s = board.state(id);
  EXPECT_EQ(s.phase, TaskPhase::claimed);
  EXPECT_EQ(s.claimant, "bob");
  EXPECT_EQ(s.token, c.token);
  EXPECT_EQ(s.owner_pid, ::getpid());
  EXPECT_TRUE(s.owner_alive);
  EXPECT_GT(s.lease_left, 50s);
  EXPECT_EQ(board.claims_held_by("bob"), 1u);
  const Claim lost = board.claim(id, "carol");
  EXPECT_EQ(lost.status, ClaimStatus::held);
  EXPECT_EQ(lost.holder, "bob");
  EXPECT_EQ(lost.holder_token, c.token);
  EXPECT_GT(lost.lease_left, 50s);

  const EventId done_event = board.complete(id, c.token, R"({"verdict":"ship"})");
  s = board.state(id);
  EXPECT_EQ(s.phase, TaskPhase::done);
  EXPECT_EQ(s.result, R"({"verdict":"ship"})");
  EXPECT_EQ(board.claim(id, "carol").status, ClaimStatus::done);
  expect_error([&] { (void)board.complete(id, c.token, "again"); }, Errc::conflict, "is done");

  const auto events = room.recent(10);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, id);
  EXPECT_EQ(events[0].type, "review");
  EXPECT_EQ(events[1].id, done_event);
  EXPECT_EQ(events[1].type, "TASK_DONE");
  EXPECT_EQ(events[1].agent, "bob");
  EXPECT_EQ(events[1].reply_to, id);
  EXPECT_EQ(events[1].payload, R"({"verdict":"ship"})");
}

TEST(TaskBoard, LapsedLeaseIsReclaimedAndItsTokenRefused) {
  TestBus bus("tasks-lease");
  TaskBoard board = board_with_review(bus->room("r"));
  const EventId id = board.post_task("review", "alice", "");
  const Claim first = board.claim(id, "bob", {.ttl = 30ms});
  board.renew(id, first.token, 40ms);  // the current token may renew

  // Alive but silent: claimable again once the lease has run out, not before.
  ASSERT_TRUE(eventually([&] { return board.open_tasks().size() == 1; }));
  // state() agrees with open_tasks(): open, still naming the lapsed claim.
  const TaskState lapsed = board.state(id);
  EXPECT_EQ(lapsed.phase, TaskPhase::open);
  EXPECT_EQ(lapsed.claimant, "bob");
  EXPECT_EQ(lapsed.token, first.token);
  EXPECT_TRUE(lapsed.owner_alive);
  EXPECT_TRUE(board.live_claims().empty());
  const Claim second = board.claim(id, "carol", {.ttl = 1min});
  ASSERT_TRUE(second.ok());
  EXPECT_GT(second.token, first.token);
  EXPECT_EQ(board.counters().expired_reclaimed, 1u);

  expect_error([&] { (void)board.complete(id, first.token, "late"); }, Errc::conflict, "claimed by carol");
  expect_error([&] { board.renew(id, first.token, 1min); }, Errc::conflict, "stale");
  expect_error([&] { board.release(id, first.token); }, Errc::conflict, "stale");
  EXPECT_EQ(board.counters().stale_tokens_refused, 3u);

  board.release(id, second.token);
  EXPECT_EQ(board.open_tasks().size(), 1u);
  EXPECT_GT(board.claim(id, "dave").token, second.token);
}

TEST(TaskBoard, ClaimOfAKilledSessionIsSupersededAtOnce) {
  TestBus bus("tasks-dead");
  TaskBoard board = board_with_review(bus->room("r"));
  const EventId id = board.post_task("review", "alice", "");

  ChildProcess session({"/bin/sleep", "1000"});
  const Claim held = board.claim(id, "bob", {.ttl = 10min, .session_pid = session.pid()});
  EXPECT_EQ(board.claim(id, "carol").holder, "bob");

  ::kill(session.pid(), SIGKILL);
  ASSERT_EQ(session.wait(5s), 128 + SIGKILL);
  // The lease has ten minutes left, but its session is gone: no waiting for the TTL (liveness
  // verdicts are trusted for 10 ms, so allow a moment).
  EXPECT_TRUE(eventually([&] { return board.open_tasks().size() == 1; }, 2s));
  const TaskState orphaned = board.state(id);
  EXPECT_EQ(orphaned.phase, TaskPhase::open) << "open_tasks offers it, so state must not say claimed";
  EXPECT_EQ(orphaned.claimant, "bob");
  EXPECT_FALSE(orphaned.owner_alive);
  EXPECT_EQ(board.open_tasks().at(0).phase, TaskPhase::open);
  const Claim taken = board.claim(id, "carol");
  ASSERT_TRUE(taken.ok());
  EXPECT_GT(taken.token, held.token);
  EXPECT_EQ(board.counters().dead_sessions_reclaimed, 1u);
  expect_error([&] { (void)board.complete(id, held.token, "x"); }, Errc::conflict, "stale");
  expect_error([&] { (void)board.claim(id, "eve", {.session_pid = session.pid()}); }, Errc::invalid_argument,
               "does not exist");
}

TEST(TaskBoard, ThreadsRacingForEachTaskHaveExactlyOneWinner) {
  TestBus bus("tasks-threads");
  TaskBoard board = board_with_review(bus->room("r", {.ring_bytes = 4 << 20}), {.task_capacity = 1024});
  constexpr int kTasks = 500, kThreads = 4;
  std::vector<EventId> ids;
  for (int i = 0; i < kTasks; ++i) ids.push_back(board.post_task("review", "alice", std::to_string(i)));

  std::vector<std::vector<EventId>> won(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (const EventId id : ids) {
        const Claim c = board.claim(id, "worker-" + std::to_string(t));
        if (c.ok()) won[t].push_back(id);
        else EXPECT_EQ(c.status, ClaimStatus::held);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::multiset<EventId> all;
  for (const auto& w : won) all.insert(w.begin(), w.end());
  EXPECT_EQ(all.size(), std::size_t(kTasks));
  EXPECT_EQ(std::set<EventId>(all.begin(), all.end()).size(), std::size_t(kTasks));  // no double claim
  EXPECT_EQ(board.counters().claims, std::uint64_t(kTasks));
}

TEST(TaskBoard, ProcessesRacingThroughTheCliHaveExactlyOneWinner) {
  TestBus bus("tasks-procs");
  TaskBoard board = board_with_review(bus->room("r"));
  constexpr int kProcs = 6, kRounds = 5;
  ChildProcess session({"/bin/sleep", "1000"});
  for (int round = 0; round < kRounds; ++round) {
    const EventId id = board.post_task("review", "alice", "");
    std::vector<std::unique_ptr<ChildProcess>> racers;
    for (int p = 0; p < kProcs; ++p)
      racers.push_back(std::make_unique<ChildProcess>(std::vector<std::string>{
          cli(), "--bus", bus.name(), "--room", "r", "--session-pid", std::to_string(session.pid()), "claim",
          std::to_string(id), "--agent", "w" + std::to_string(p)}));
    int winners = 0, lost = 0;
    std::string token;
    for (auto& r : racers) {
      const std::string out = r->read_line(10s);
      const int rc = r->wait(10s);
      if (rc == 0) {
        ++winners;
        token = out;
      } else if (rc == 3) {
        ++lost;
      } else {
        ADD_FAILURE() << "claim exited " << rc;
      }
    }
    EXPECT_EQ(winners, 1) << "round " << round;
    EXPECT_EQ(lost, kProcs - 1);
    const TaskState s = board.state(id);
    EXPECT_EQ(std::to_string(s.token), token);
    EXPECT_EQ(s.owner_pid, session.pid());  // the session's claim, not the short-lived CLI's
    EXPECT_TRUE(s.owner_alive);
  }
}

TEST(TaskBoard, FullTableIsAClearErrorAndDoneTasksAreRecycled) {
  TestBus bus("tasks-full");
  TaskBoard board = board_with_review(bus->room("r"), {.task_capacity = 16});
  std::vector<EventId> posted;
  try {
    for (int i = 0; i < 64; ++i) posted.push_back(board.post_task("review", "alice", std::to_string(i)));
    ADD_FAILURE() << "a 16-entry table took 64 tasks";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::no_space);
    EXPECT_NE(std::string(e.what()).find("task_capacity"), std::string::npos) << e.what();
  }
  ASSERT_GE(posted.size(), 8u);  // two buckets of 16 can always take the first 16... at least half
  for (const EventId id : posted) board.complete(id, board.claim(id, "bob").token, "ok");
  // Everything done: new tasks take the space of the oldest done ones.
  for (int i = 0; i < 16; ++i) (void)board.post_task("review", "alice", "again");
  EXPECT_GE(board.counters().done_recycled, 1u);
  EXPECT_EQ(board.open_tasks(100).size(), 16u);
  expect_error([&] { (void)board.post_task("review", "alice", std::string(5000, 'x')); }, Errc::too_large,
               "payload");
}

TEST(TaskBoard, ACallLeftHalfDoneByADeadProcessIsRolledBack) {
  TestBus bus("tasks-rollback");
  Room room = bus->room("r");
  TaskBoard board = board_with_review(room);
  const EventId id = board.post_task("review", "alice", "");

  // Forge what a process killed inside claim() leaves: the entry in "claiming" with its pid.
  ChildProcess victim({"/bin/sleep", "1000"});
  ::kill(victim.pid(), SIGKILL);
  ASSERT_EQ(victim.wait(5s), 128 + SIGKILL);
  auto region = shm::open_region(*RoomAccess::segment(room), "r#tasks", 0, false, [](std::span<std::byte>) {});
  auto* h = reinterpret_cast<coord::TaskBoardHeader*>(region.data());
  auto* keys = reinterpret_cast<std::atomic<std::uint64_t>*>(region.data() + h->keys_offset);
  std::uint32_t index = 0;
  while (keys[index].load() != id + 1) ++index;
  auto* entry = reinterpret_cast<coord::TaskEntry*>(region.data() + h->entries_offset + index * h->entry_stride);
  const std::uint64_t open = entry->state.load();
  ASSERT_EQ(coord::phase_of(open), coord::Phase::open);
  entry->state.store(coord::make_state(coord::Phase::claiming, coord::token_of(open) + 1,
                                       {static_cast<std::uint32_t>(victim.pid())}));

  const Claim c = board.claim(id, "bob");
  EXPECT_GT(c.token, coord::token_of(open) + 1);
  EXPECT_EQ(board.counters().transitions_rolled_back, 1u);
}

TEST(TaskBoard, CorruptHeaderIsRefused) {
  TestBus bus("tasks-corrupt");
  Room room = bus->room("r");
  { TaskBoard board(room); }
  auto region = shm::open_region(*RoomAccess::segment(room), "r#tasks", 0, false, [](std::span<std::byte>) {});
  reinterpret_cast<coord::TaskBoardHeader*>(region.data())->task_capacity = 1u << 30;
  expect_error([&] { TaskBoard again(room); }, Errc::corrupt, "destroy");
}

TEST(TaskBoard, CliPostOfARegisteredTypeIsATask) {
  TestBus bus("tasks-cli");
  TaskBoard board = board_with_review(bus->room("r"));
  auto run = [&](std::vector<std::string> args, std::string* out = nullptr) {
    std::vector<std::string> argv{cli(), "--bus", bus.name(), "--room", "r"};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess p(argv);
    const std::string line = p.read_line(10s);
    if (out) *out = line;
    return p.wait(10s);
  };
  std::string id;
  ASSERT_EQ(run({"post", "review", R"({"pr":7})", "--agent", "alice"}, &id), 0);
  EXPECT_EQ(board.open_tasks().at(0).id, std::stoull(id));
  std::string open_json;
  ASSERT_EQ(run({"open", "--json"}, &open_json), 0);
  EXPECT_NE(open_json.find(R"("payload":{"pr":7})"), std::string::npos) << open_json;
  EXPECT_EQ(run({"post", "chat", "hello"}), 0);  // an unregistered type is a plain event
  EXPECT_EQ(board.open_tasks().size(), 1u);
  EXPECT_EQ(run({"state", "999999"}), 4);
  EXPECT_EQ(run({"claim", "999999"}), 4);
  EXPECT_EQ(run({"claim", id, "--agent", "bob", "--ttl", "zz"}), 2);
}

// agentroom's walkthrough, through the CLI: two agents join, one sees the other, one claims an
// open task, the other's `open` no longer lists it, and `done` clears it.
TEST(TaskBoard, AgentroomWalkthroughThroughTheCli) {
  TestBus bus("tasks-walk");
  ChildProcess alice_session({"/bin/sleep", "1000"}), bob_session({"/bin/sleep", "1000"});
  auto run = [&](const ChildProcess& session, std::vector<std::string> args, std::string* out = nullptr) {
    std::vector<std::string> argv{cli(), "--bus", bus.name(), "--room", "repo/main", "--session-pid",
                                  std::to_string(session.pid())};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess p(argv);
    std::string all, line;
    while (!(line = p.read_line(10s)).empty()) all += line + "\n";
    if (out) *out = all;
    return p.wait(10s);
  };
  std::string alice, bob, text;
  ASSERT_EQ(run(alice_session, {"join", "alice", "--role", "planner"}, &alice), 0);
  ASSERT_EQ(run(bob_session, {"join", "bob", "--role", "fixer"}, &bob), 0);
  alice.pop_back();  // trailing newline
  bob.pop_back();
  ASSERT_EQ(run(bob_session, {"who"}, &text), 0);
  EXPECT_NE(text.find(alice), std::string::npos) << text;  // bob sees alice

  ASSERT_EQ(run(alice_session, {"register", "fix", "Fix a failing test"}), 0);
  std::string id;
  ASSERT_EQ(run(alice_session, {"post", "fix", R"({"test":"parser_test"})", "--agent", alice}, &id), 0);
  id.pop_back();
  ASSERT_EQ(run(alice_session, {"open"}, &text), 0);
  EXPECT_NE(text.find(id + "  fix"), std::string::npos) << text;

  std::string token;
  ASSERT_EQ(run(bob_session, {"claim", id, "--agent", bob}, &token), 0);
  ASSERT_EQ(run(alice_session, {"open"}, &text), 0);
  EXPECT_EQ(text, "");  // claimed: no longer open for alice
  EXPECT_EQ(run(alice_session, {"claim", id, "--agent", alice}), 3);
  ASSERT_EQ(run(alice_session, {"who", "--json"}, &text), 0);
  EXPECT_NE(text.find(R"("claims":1)"), std::string::npos) << text;  // bob's claim load

  ASSERT_EQ(run(bob_session, {"done", id, R"({"fixed":true})", "--agent", bob}), 0);
  ASSERT_EQ(run(alice_session, {"state", id, "--json"}, &text), 0);
  EXPECT_NE(text.find(R"("state":"done")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("result":{"fixed":true})"), std::string::npos) << text;
  ASSERT_EQ(run(alice_session, {"open"}, &text), 0);
  EXPECT_EQ(text, "");
}

// agentroom refreshes presence on any activity: a CLI command acting as an agent does too.
TEST(TaskBoard, CliActivityRefreshesTheAgentsPresence) {
  TestBus bus("tasks-touch");
  Room room = bus->room("r");
  Presence presence(room);
  ChildProcess session({"/bin/sleep", "1000"});
  const std::string me = presence.join("fixer", "", "", {.session_pid = session.pid()});
  const auto before = presence.find(me)->last_seen;
  ASSERT_TRUE(eventually([&] { return std::chrono::system_clock::now() > before + 5ms; }));
  ChildProcess post({cli(), "--bus", bus.name(), "--room", "r", "post", "note", "hi", "--agent", me});
  ASSERT_EQ(post.wait(10s), 0);
  EXPECT_GT(presence.find(me)->last_seen, before);
  ChildProcess anonymous({cli(), "--bus", bus.name(), "--room", "r", "post", "note", "hi"});  // agent "cli"
  EXPECT_EQ(anonymous.wait(10s), 0);
}

// Every recovery is counted where `agentbus info` shows it, coordination included.
TEST(TaskBoard, InfoShowsTheBoardsCounters) {
  TestBus bus("tasks-info");
  TaskBoard board = board_with_review(bus->room("r"));
  const EventId id = board.post_task("review", "alice", "");
  ChildProcess session({"/bin/sleep", "1000"});
  ASSERT_TRUE(board.claim(id, "bob", {.session_pid = session.pid()}).ok());
  ::kill(session.pid(), SIGKILL);
  ASSERT_EQ(session.wait(5s), 128 + SIGKILL);
  ASSERT_TRUE(eventually([&] { return board.claim(id, "carol").ok(); }, 2s));

  ChildProcess info({cli(), "--bus", bus.name(), "info", "--json"});
  const std::string line = info.read_line(10s);
  ASSERT_EQ(info.wait(10s), 0);
  EXPECT_NE(line.find(R"("coordination":{"r":{"tasks":{"claims":2,)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("dead_sessions_reclaimed":1)"), std::string::npos) << line;
}
