// The bridge end to end: two buses with different host ids stand for two hosts, one real
// redis-server between them, and real agentbus-bridge processes (the build's), killed
// with SIGKILL at failpoints and at random instants; Redis stopped and restarted under them.
#include "bridge_test_support.hpp"
#include "bridge/redis_connection.hpp"
#include "../cli/cli_process.hpp"
#include "../support/expect.hpp"
#include "../support/test_bus.hpp"

#include <agentbus/agentbus.hpp>
#include <agentbus/bridge/bridge.hpp>
#include <agentbus_testing/redis_server.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

namespace {

using namespace agentbus;
using namespace agentbus::bridge;
using namespace std::chrono_literals;
using agentbus::test::TestBus;
using agentbus::testing::RedisServer;
using agentbus::testing::RedisServerOptions;
using cli_test::CliCall;
using cli_test::CliProcess;

using bridge_test::bridge_path;

using bridge_test::eventually;

std::vector<Event> all_events(Room& room) {
  std::vector<Event> out;
  Subscription s = room.subscribe({.from = StartFrom::earliest});
  for (ReadResult r = s.next(0ns); r.status != ReadStatus::timeout; r = s.next(0ns))
    if (r.has_event()) out.push_back(r.event.to_owned());
  return out;
}

std::vector<std::string> payloads_from(Room& room, std::string_view host) {
  std::vector<std::string> out;
  for (const Event& e : all_events(room))
    if (e.origin.host == host) out.push_back(e.payload);
  return out;
}

std::vector<std::string> numbered(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

class BridgeRun : public ::testing::Test {
 protected:
  void SetUp() override {
    start_redis({});
    spool_ = std::filesystem::temp_directory_path() / ("agentbus-bridge-test-" + std::to_string(::getpid()) + "-" +
                                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(spool_);
  }
  void TearDown() override {
    bridges_.clear();
    std::filesystem::remove_all(spool_);
  }

  void start_redis(RedisServerOptions o) {
    redis_ = std::make_unique<RedisServer>(std::move(o));
    ASSERT_TRUE(redis_->start()) << redis_->why();
    port_ = redis_->port();
  }

  // The last server's port: still the URL to use once it is gone.
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  CliCall bridge_call(const TestBus& bus, std::map<std::string, std::string> env = {}) {
    return {{"run", "--bus", bus.name(), "--redis", url(), "--spool-dir", (spool_ / bus.name()).string()},
            std::move(env), "", "", bridge_path()};
  }
  CliProcess& start_bridge(const TestBus& bus, std::map<std::string, std::string> env = {}) {
    bridges_.push_back(std::make_unique<CliProcess>(bridge_call(bus, std::move(env))));
    return *bridges_.back();
  }

  RedisConnection redis() {
    RedisTarget t;
    t.host = "127.0.0.1";
    t.port = redis_->port();
    return RedisConnection::connect(t, 2000ms);
  }

  std::unique_ptr<RedisServer> redis_;
  int port_ = 0;
  std::filesystem::path spool_;
  std::vector<std::unique_ptr<CliProcess>> bridges_;
  TestBus a_{"bra", BusOptions{.host_id = "host-a"}};
  TestBus b_{"brb", BusOptions{.host_id = "host-b"}};
};

TEST_F(BridgeRun, EventsFromAArriveOnBOnceInOrderAndNeverEchoBack) {
  Room ra = a_->room("r");
  const std::vector<std::string> sent = numbered("a", 600);
  for (const std::string& p : sent) ASSERT_TRUE(ra.publish("chat", "alice", p).ok());
  start_bridge(a_);
  start_bridge(b_);
  // B's bridge creates the room when it finds its stream in Redis.
  ASSERT_TRUE(eventually([&] { return a_->room_names().size() == 1 && b_->room_names().size() == 1; }));
  Room rb = b_->room("r");
  ASSERT_TRUE(eventually([&] { return payloads_from(rb, "host-a").size() >= sent.size(); }));
  EXPECT_EQ(payloads_from(rb, "host-a"), sent);
  for (const Event& e : all_events(rb)) {
    EXPECT_TRUE(e.imported);
    EXPECT_EQ(e.agent, "alice");
    EXPECT_FALSE(e.origin.stream.empty());
  }
  // A marker from B: once it is on A, anything B's bridge would have echoed is there too.
  ASSERT_TRUE(rb.publish("chat", "bob", "marker").ok());
  ASSERT_TRUE(eventually([&] { return payloads_from(ra, "host-b").size() == 1; }));
  const std::vector<Event> on_a = all_events(ra);
  ASSERT_EQ(on_a.size(), sent.size() + 1);  // nothing of A's came back
  EXPECT_EQ(on_a.back().payload, "marker");
  EXPECT_EQ(on_a.back().origin.host, "host-b");
  EXPECT_EQ(redis().command({"XLEN", "agentbus:room:r:events"}).integer(), 601);
}

TEST_F(BridgeRun, RepliesResolveThroughOriginsOnBothHosts) {
  Room ra = a_->room("r");
  const EventId question = ra.publish("ask", "alice", "who?").id;
  start_bridge(a_);
  start_bridge(b_);
  ASSERT_TRUE(eventually([&] { return b_->room_names().size() == 1; }));
  Room rb = b_->room("r");
  ASSERT_TRUE(eventually([&] { return all_events(rb).size() == 1; }));
  const EventId question_on_b = all_events(rb)[0].id;
  ASSERT_TRUE(rb.publish("answer", "bob", "me", {.reply_to = question_on_b}).ok());
  ASSERT_TRUE(eventually([&] { return all_events(ra).size() == 2; }));
  const Event answer = all_events(ra)[1];
  ASSERT_TRUE(answer.reply_to.has_value());
  EXPECT_EQ(*answer.reply_to, question);  // B's reply names A's own event on A
}

TEST_F(BridgeRun, DirectedMessagesReachTheRecipientsInboxOnTheOtherHost) {
  Room ra = a_->room("r");
  Inbox(ra).send("alice", "bob", "chat", "for bob only");
  start_bridge(a_);
  start_bridge(b_);
  ASSERT_TRUE(eventually([&] { return b_->room_names().size() == 1; }));
  Room rb = b_->room("r");
  ASSERT_TRUE(eventually([&] { return Inbox(rb).read("bob").size() == 1; }));
  const InboxMessage m = Inbox(rb).read("bob")[0];
  EXPECT_EQ(m.from, "alice");
  EXPECT_EQ(m.payload, "for bob only");
  EXPECT_TRUE(Inbox(rb).read("carol").empty());
}

TEST_F(BridgeRun, WhoShowsAgentsOfTheOtherHostWithTheirHost) {
  Room ra = a_->room("r");
  Presence(ra).join("fixer", "go-fixer", "parser tests", {});
  start_bridge(a_);
  start_bridge(b_);
  ASSERT_TRUE(eventually([&] { return b_->room_names().size() == 1; }));
  ASSERT_TRUE(eventually([&] { return remote_agents(*b_, "r").size() == 1; }));
  const RemoteAgent agent = remote_agents(*b_, "r")[0];
  EXPECT_EQ(agent.host, "host-a");
  EXPECT_EQ(agent.role, "go-fixer");
  EXPECT_EQ(agent.working_on, "parser tests");
  EXPECT_EQ(agent.handle.rfind("fixer-", 0), 0u) << agent.handle;
  EXPECT_TRUE(remote_agents(*a_, "r").empty()) << "a host never lists its own agents as remote";
  const cli_test::CliResult who = cli_test::run_cli({{"--bus", b_.name(), "--room", "r", "who"}, {}, "", "", ""});
  EXPECT_EQ(who.exit_code, 0) << who.err;
  EXPECT_NE(who.out.find(agent.handle + "@host-a"), std::string::npos) << who.out;
  EXPECT_NE(who.out.find("remote host"), std::string::npos) << who.out;
}

TEST_F(BridgeRun, BothDirectionsAtOnce) {
  start_bridge(a_);
  start_bridge(b_);
  Room ra = a_->room("r");
  Room rb = b_->room("r");
  const std::vector<std::string> from_a = numbered("a", 1500), from_b = numbered("b", 1500);
  std::thread ta([&] {
    for (const std::string& p : from_a) ASSERT_TRUE(ra.publish("chat", "alice", p).ok());
  });
  std::thread tb([&] {
    for (const std::string& p : from_b) ASSERT_TRUE(rb.publish("chat", "bob", p).ok());
  });
  ta.join();
  tb.join();
  ASSERT_TRUE(eventually([&] {
    return payloads_from(ra, "host-b").size() >= from_b.size() && payloads_from(rb, "host-a").size() >= from_a.size();
  }));
  EXPECT_EQ(payloads_from(ra, "host-b"), from_b);
  EXPECT_EQ(payloads_from(rb, "host-a"), from_a);
  EXPECT_EQ(payloads_from(ra, "host-a"), from_a);
  EXPECT_EQ(payloads_from(rb, "host-b"), from_b);
}

// Kills A's bridge at each failpoint of its out path, B's at the in path's, over several
// trials, then counts: every event exactly once in Redis and on B.
TEST_F(BridgeRun, KilledAtFailpointsNothingLostNothingTwice) {
  Room ra = a_->room("r");
  std::vector<std::string> sent;
  int next = 0;
  const auto publish_some = [&](int n) {
    for (int i = 0; i < n; ++i, ++next) {
      sent.push_back("e" + std::to_string(next));
      ASSERT_TRUE(ra.publish("chat", "alice", sent.back()).ok());
    }
  };
  start_bridge(b_);
  for (const char* point : {"bridge_after_ship@2=kill", "bridge_after_ship@1=kill", "bridge_after_ship@3=kill"}) {
    publish_some(700);  // three batches or more
    CliProcess& doomed = start_bridge(a_, {{"AGENTBUS_FAILPOINTS", point}});
    const std::optional<int> code = doomed.wait_exit(20s);
    ASSERT_TRUE(code.has_value()) << point << " never fired";
    EXPECT_EQ(*code, 128 + SIGKILL) << point << ": " << doomed.err();
  }
  CliProcess& doomed_in = start_bridge(b_, {{"AGENTBUS_FAILPOINTS", "bridge_after_import_publish@5=kill"}});
  (void)doomed_in;
  start_bridge(a_);
  ASSERT_TRUE(eventually([&] { return redis().command({"XLEN", "agentbus:room:r:events"}).integer() >= long(sent.size()); }));
  EXPECT_EQ(redis().command({"XLEN", "agentbus:room:r:events"}).integer(), long(sent.size()));
  // The first B bridge may have died at its own failpoint; a fresh one must finish the job.
  bridges_[0].reset();  // the B started first: SIGKILL
  start_bridge(b_);
  ASSERT_TRUE(eventually([&] { return b_->room_names().size() == 1; }));
  Room rb = b_->room("r");
  ASSERT_TRUE(eventually([&] { return payloads_from(rb, "host-a").size() >= sent.size(); }, 30s));
  EXPECT_EQ(payloads_from(rb, "host-a"), sent);
}

TEST_F(BridgeRun, KilledAtRandomInstantsNothingLostNothingTwice) {
  Room ra = a_->room("r");
  start_bridge(b_);
  std::mt19937 rng(12345);
  std::vector<std::string> sent;
  for (int trial = 0; trial < 8; ++trial) {
    CliProcess& bridge = start_bridge(a_);
    std::atomic<bool> done{false};
    std::thread publisher([&] {
      for (int i = 0; i < 400; ++i) {
        sent.push_back("t" + std::to_string(trial) + "-" + std::to_string(i));
        ASSERT_TRUE(ra.publish("chat", "alice", sent.back()).ok());
      }
      done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 60)(rng)));
    bridge.send_signal(SIGKILL);  // anywhere: mid-batch, mid-script, mid-commit
    publisher.join();
    ASSERT_TRUE(bridge.wait_exit(10s).has_value());
  }
  start_bridge(a_);
  Room rb = b_->room("r");
  ASSERT_TRUE(eventually([&] { return payloads_from(rb, "host-a").size() >= sent.size(); }, 30s));
  EXPECT_EQ(payloads_from(rb, "host-a"), sent);
  EXPECT_EQ(redis().command({"XLEN", "agentbus:room:r:events"}).integer(), long(sent.size()));
}

TEST_F(BridgeRun, RedisAwayLocalPublishingGoesOnAndEverythingArrivesAfter) {
  redis_.reset();
  std::filesystem::create_directories(spool_ / "aof");
  start_redis({.aof_dir = spool_ / "aof"});
  Room ra = a_->room("r");
  Room rb = b_->room("r");
  start_bridge(a_);
  start_bridge(b_);
  ASSERT_TRUE(ra.publish("chat", "alice", "before").ok());
  ASSERT_TRUE(eventually([&] { return payloads_from(rb, "host-a").size() == 1; }));
  redis_->kill();
  std::vector<std::string> sent{"before"};
  for (const std::string& p : numbered("down", 3000)) {
    sent.push_back(p);
    ASSERT_TRUE(ra.publish("chat", "alice", p).ok()) << "publishing must not depend on Redis";
  }
  ASSERT_TRUE(eventually([&] {
    const BridgeStatus s = bridge_status(*a_);
    return !s.rooms.empty() && s.rooms[0].spooled_events > 0 && !s.connected;
  })) << "A's bridge should spool while Redis is away";
  ASSERT_TRUE(redis_->start()) << redis_->why();
  ASSERT_TRUE(eventually([&] { return payloads_from(rb, "host-a").size() >= sent.size(); }, 30s));
  EXPECT_EQ(payloads_from(rb, "host-a"), sent);
  const BridgeStatus s = bridge_status(*a_);
  EXPECT_TRUE(eventually([&] { return bridge_status(*a_).rooms[0].spooled_events == 0; }));
  EXPECT_GE(s.reconnects, 1u);
}

// While Redis is away the bridge reads big batches for the spool; one too big for the room left
// under --spool-max goes in transaction-sized pieces instead of waiting whole in the ring.
TEST_F(BridgeRun, ABatchTooBigForTheSpoolIsSpooledInPieces) {
  Room ra = a_->room("r", RoomOptions{.ring_bytes = 4 << 20});
  CliCall call = bridge_call(a_);
  call.args.insert(call.args.end(), {"--spool-max", "1"});
  bridges_.push_back(std::make_unique<CliProcess>(call));
  ASSERT_TRUE(eventually([&] { return bridge_status(*a_).connected && !bridge_status(*a_).rooms.empty(); }));
  redis_->kill();
  ASSERT_TRUE(eventually([&] { return !bridge_status(*a_).connected; }));
  // Stopped while the events go in, the bridge then finds them all at once: one batch.
  bridges_.back()->send_signal(SIGSTOP);
  std::vector<std::string> sent;
  for (int i = 0; i < 2000; ++i) {  // about 1.3 MiB of spool records: more than --spool-max 1
    sent.push_back("e" + std::to_string(i) + "-" + std::string(600, 'x'));
    ASSERT_TRUE(ra.publish("chat", "alice", sent.back()).ok());
  }
  bridges_.back()->send_signal(SIGCONT);
  ASSERT_TRUE(eventually([&] { return bridge_status(*a_).rooms[0].spool_full >= 1; }));
  EXPECT_GE(bridge_status(*a_).rooms[0].spooled_events, 1000u);
  ASSERT_TRUE(redis_->start()) << redis_->why();
  ASSERT_TRUE(eventually([&] { return redis().command({"XLEN", "agentbus:room:r:events"}).integer() >= 2000; }, 30s));
  const RedisReply range = redis().command({"XRANGE", "agentbus:room:r:events", "-", "+"});
  std::vector<std::string> got;
  for (std::size_t i = 0; i < range.size(); ++i) {
    const ReplyView fields = range.at(i).at(1);
    for (std::size_t f = 0; f + 1 < fields.size(); f += 2)
      if (fields.at(f).string() == "payload") got.emplace_back(fields.at(f + 1).string().value_or(""));
  }
  EXPECT_EQ(got, sent);
}

TEST_F(BridgeRun, MalformedEntriesAreSkippedCountedAndDoNotStopTheRest) {
  Room rb = b_->room("r");
  start_bridge(b_);
  RedisConnection c = redis();
  const std::string key = "agentbus:room:r:events";
  const std::string big(200 << 10, 'x');
  std::vector<std::vector<std::string>> bad = {
      {"agent_id", "x", "payload", "no type", "origin_host", "h", "origin_id", "1"},
      {"type", "t", "agent_id", "x", "payload", "p", "origin_host", "h", "origin_id", "minus-one"},
      {"type", "t", "agent_id", "x", "payload", big, "origin_host", "h", "origin_id", "2"},
      {"type", "t", "agent_id", "x", "payload", "p", "origin_host", "bad host!", "origin_id", "3"},
      {"type", "t", "type", "t2", "agent_id", "x", "payload", "p", "origin_host", "h", "origin_id", "4"},
  };
  for (const auto& fields : bad) {
    std::vector<std::string_view> argv = {"XADD", key, "*"};
    argv.insert(argv.end(), fields.begin(), fields.end());
    ASSERT_FALSE(c.command(argv).is_error());
  }
  ASSERT_FALSE(c.command({"XADD", key, "*", "type", "chat", "agent_id", "carol", "payload", "good", "timestamp", "1",
                          "origin_host", "host-c", "origin_id", "7"})
                   .is_error());
  ASSERT_TRUE(eventually([&] { return payloads_from(rb, "host-c").size() == 1; }));
  EXPECT_EQ(payloads_from(rb, "host-c")[0], "good");
  EXPECT_EQ(all_events(rb).size(), 1u);
  EXPECT_EQ(bridge_status(*b_).rooms.at(0).rejected, bad.size());
}

TEST_F(BridgeRun, AMirroredKeyOfTheWrongTypeStopsOnlyItsOwnRoom) {
  Room rb = b_->room("r");
  Room bad = b_->room("bad");
  RedisConnection c = redis();
  ASSERT_FALSE(c.command({"SET", "agentbus:room:bad:events", "not a stream"}).is_error());
  CliProcess& bridge = start_bridge(b_);
  ASSERT_FALSE(c.command({"XADD", "agentbus:room:r:events", "*", "type", "chat", "agent_id", "carol", "payload", "good",
                          "timestamp", "1", "origin_host", "host-c", "origin_id", "7"})
                   .is_error());
  ASSERT_TRUE(eventually([&] { return payloads_from(rb, "host-c").size() == 1; }));
  EXPECT_TRUE(bridge.wait_until([&] { return bridge.err().find("is a string, not a stream") != std::string::npos; }, 10s))
      << bridge.err();
}

TEST_F(BridgeRun, AFullRoomHoldsUpOnlyItsOwnImportsAndGetsThemAllOnceItDrains) {
  Room full = b_->room("full", {.ring_bytes = 64 << 10});
  Subscription stuck = full.subscribe({.from = StartFrom::earliest, .durable_name = "stuck"});
  Room rb = b_->room("r");
  start_bridge(b_);
  RedisConnection c = redis();
  const std::string payload(1000, 'p');
  constexpr int kEntries = 200;  // about 200 KiB: more than the 64 KiB ring holds
  for (int i = 0; i < kEntries; ++i)
    ASSERT_FALSE(c.command({"XADD", "agentbus:room:full:events", "*", "type", "chat", "agent_id", "carol", "payload",
                            payload + std::to_string(i), "timestamp", "1", "origin_host", "host-c", "origin_id",
                            std::to_string(i)})
                     .is_error());
  ASSERT_FALSE(c.command({"XADD", "agentbus:room:r:events", "*", "type", "chat", "agent_id", "carol", "payload", "other",
                          "timestamp", "1", "origin_host", "host-c", "origin_id", "1"})
                   .is_error());
  const auto in_events = [&](const std::string& room) -> std::uint64_t {
    for (const BridgeRoomStatus& r : bridge_status(*b_).rooms)
      if (r.room == room) return r.in_events;
    return 0;
  };
  // The other room's entry arrives while the full one waits.
  ASSERT_TRUE(eventually([&] { return payloads_from(rb, "host-c").size() == 1; }));
  EXPECT_LT(in_events("full"), std::uint64_t{kEntries});
  // The stuck reader goes: every entry arrives, once, in order.
  stuck.close();
  ASSERT_TRUE(full.drop_reader("stuck"));
  Subscription tail = full.subscribe({.from = StartFrom::earliest, .durable_name = "check"});
  std::vector<int> seen;
  ASSERT_TRUE(eventually([&] {
    for (ReadResult r = tail.next(0ns); r.status != ReadStatus::timeout; r = tail.next(0ns))
      if (r.has_event()) seen.push_back(std::stoi(std::string(r.event.payload.substr(payload.size()))));
    return in_events("full") >= std::uint64_t{kEntries} && seen.size() + 0 >= 1 && seen.back() == kEntries - 1;
  })) << in_events("full");
  EXPECT_EQ(in_events("full"), std::uint64_t{kEntries});
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_EQ(seen[i], seen[i - 1] + 1) << "at " << i;
}

TEST_F(BridgeRun, OneBridgePerBusTheSecondNamesTheFirst) {
  Room ra = a_->room("r");
  CliProcess& first = start_bridge(a_);
  ASSERT_TRUE(eventually([&] { return bridge_status(*a_).pid == first.pid(); }));
  const cli_test::CliResult second = cli_test::run_cli(bridge_call(a_));
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("already running"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("pid " + std::to_string(first.pid())), std::string::npos) << second.err;
  // kill -9 the first: a new one takes over at once.
  first.send_signal(SIGKILL);
  ASSERT_TRUE(first.wait_exit(10s).has_value());
  CliProcess& third = start_bridge(a_);
  EXPECT_TRUE(eventually([&] { return bridge_status(*a_).pid == third.pid(); }));
}

TEST_F(BridgeRun, InfoTopAndStatusShowTheBridgeAndItsLag) {
  Room ra = a_->room("r");
  CliProcess& bridge = start_bridge(a_);
  ASSERT_TRUE(ra.publish("chat", "alice", "one").ok());
  ASSERT_TRUE(eventually([&] { return bridge_status(*a_).rooms.size() == 1 && bridge_status(*a_).rooms[0].out_events == 1; }));
  const auto cli = [&](std::vector<std::string> args) { return cli_test::run_cli({std::move(args), {}, "", "", ""}); };
  const cli_test::CliResult info = cli({"--bus", a_.name(), "info"});
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("bridge pid " + std::to_string(bridge.pid()) + ", Redis connected"), std::string::npos) << info.out;
  const cli_test::CliResult top = cli({"--bus", a_.name(), "top", "--once"});
  EXPECT_NE(top.out.find("bridge pid " + std::to_string(bridge.pid()) + ", Redis connected, lag 0 events"),
            std::string::npos) << top.out;
  // Redis away: what is published waits in the spool, and the lag says so.
  redis_->kill();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ra.publish("chat", "alice", "x").ok());
  ASSERT_TRUE(eventually([&] { return bridge_status(*a_).rooms[0].lag_events == 5; }));
  const cli_test::CliResult status =
      cli_test::run_cli({{"status", "--bus", a_.name(), "--json"}, {}, "", "", bridge_path()});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("\"lag_events\":5"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("\"connected\":false"), std::string::npos) << status.out;
}

TEST_F(BridgeRun, WrongPasswordAndUnreachableRedisFailAtStartup) {
  redis_.reset();
  start_redis({.requirepass = "s3cret"});
  const cli_test::CliResult wrong =
      cli_test::run_cli(bridge_call(a_, {{"AGENTBUS_REDIS_PASSWORD", "wrong"}}));
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("refused the credentials"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.err.find("wrong"), wrong.err.find("wrongpass")) << "the password is never echoed";
  redis_.reset();  // nothing listens on its port now
  const cli_test::CliResult away = cli_test::run_cli(bridge_call(a_));
  EXPECT_EQ(away.exit_code, 1);
  EXPECT_NE(away.err.find("cannot reach Redis"), std::string::npos) << away.err;
  CliCall in_argv = bridge_call(a_);
  in_argv.args[4] = "redis://u:pw@127.0.0.1:" + std::to_string(port_);
  const cli_test::CliResult refused = cli_test::run_cli(in_argv);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("AGENTBUS_REDIS_PASSWORD"), std::string::npos) << refused.err;
}

}  // namespace
