// Review findings, end to end: real redis-server, real agentbus-bridge processes.
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
#include <thread>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace agentbus;
using namespace agentbus::bridge;
using namespace std::chrono_literals;
using agentbus::testing::RedisServer;
using cli_test::CliCall;
using cli_test::CliProcess;

using bridge_test::bridge_path;

using bridge_test::eventually;

class BridgeReview : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = std::make_unique<RedisServer>();
    ASSERT_TRUE(redis_->start()) << redis_->why();
    port_ = redis_->port();
    spool_ = std::filesystem::temp_directory_path() / ("agentbus-bridge-review-" + std::to_string(::getpid()) + "-" +
                                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(spool_);
    bus_name_ = agentbus::test::fresh_bus_name("brr");
  }
  void TearDown() override {
    bridges_.clear();
    bus_.reset();
    Bus::destroy(bus_name_);
    std::filesystem::remove_all(spool_);
  }
  BusOptions bus_options() const { return {.name = bus_name_, .segment_bytes = 64ull << 20, .host_id = "host-r"}; }
  void open_bus() { bus_ = std::make_unique<Bus>(Bus::open(bus_options())); }
  // Creates the bus in another process (as a real restart of the bus's owner does): the bus's
  // incarnation is its creator's pid and start time.
  void create_bus_elsewhere() {
    const BusOptions o = bus_options();
    const pid_t child = ::fork();
    if (child == 0) {
      try {
        (void)Bus::open(o);
      } catch (...) {
        ::_exit(1);
      }
      ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  CliProcess& start_bridge(std::map<std::string, std::string> env = {}) {
    bridges_.push_back(std::make_unique<CliProcess>(
        CliCall{{"run", "--bus", bus_name_, "--redis", "redis://127.0.0.1:" + std::to_string(port_), "--spool-dir",
                 spool_.string()},
                std::move(env), "", "", bridge_path()}));
    return *bridges_.back();
  }
  RedisConnection redis() {
    RedisTarget t;
    t.host = "127.0.0.1";
    t.port = port_;
    return RedisConnection::connect(t, 2000ms);
  }
  long long connections_received() {
    RedisConnection c = redis();
    const std::string info(c.command({"INFO", "stats"}).string().value_or(""));
    const std::string key = "total_connections_received:";
    const std::size_t at = info.find(key);
    return at == std::string::npos ? -1 : std::stoll(info.substr(at + key.size()));
  }
  long long xlen(const std::string& key) { return redis().command({"XLEN", key}).integer().value_or(-1); }

  std::unique_ptr<RedisServer> redis_;
  int port_ = 0;
  std::filesystem::path spool_;
  std::string bus_name_;
  std::unique_ptr<Bus> bus_;
  std::vector<std::unique_ptr<CliProcess>> bridges_;
};

// A spool written for one incarnation of a bus must not hide the next incarnation's events:
// the old bus's spooled events are shipped, and so are all of the new bus's.
TEST_F(BridgeReview, SpoolOfADestroyedBusDoesNotHideTheRecreatedBussEvents) {
  open_bus();
  {
    Room r = bus_->room("r");
    CliProcess& first = start_bridge();
    ASSERT_TRUE(eventually([&] { return bridge_status(*bus_).rooms.size() == 1; }));
    redis_->kill();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(r.publish("chat", "alice", "old" + std::to_string(i)).ok());
    ASSERT_TRUE(eventually([&] {
      const BridgeStatus s = bridge_status(*bus_);
      return !s.rooms.empty() && s.rooms[0].spooled_events == 10;
    })) << first.err();
    first.send_signal(SIGKILL);
    ASSERT_TRUE(first.wait_exit(10s).has_value());
  }
  bus_.reset();
  ASSERT_TRUE(Bus::destroy(bus_name_));
  create_bus_elsewhere();  // a new incarnation: its ids start again at the beginning
  open_bus();
  Room r = bus_->room("r");
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(r.publish("chat", "alice", "new" + std::to_string(i)).ok());
  ASSERT_TRUE(redis_->start()) << redis_->why();
  CliProcess& second = start_bridge();
  const bool all = eventually([&] { return xlen("agentbus:room:r:events") >= 30; }, 10s);
  EXPECT_TRUE(all) << "Redis holds " << xlen("agentbus:room:r:events") << " of 10 old + 20 new entries\n"
                   << second.err();
}

// The incarnation is the creator's pid and start time: a process that destroys the bus and
// creates it again (a daemon that owns its bus, a test harness) makes the same incarnation, and
// the old checkpoint in Redis then hides the new bus's first events. NOT FIXED (needs a
// per-creation nonce in the segment header or the bridge's region).
TEST_F(BridgeReview, ABusRecreatedByTheSameProcessHasItsEventsShipped) {
  const std::string key = "agentbus:room:r:events";
  open_bus();
  {
    Room r = bus_->room("r");
    CliProcess& first = start_bridge();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(r.publish("chat", "alice", "old" + std::to_string(i)).ok());
    ASSERT_TRUE(eventually([&] { return xlen(key) == 10; })) << first.err();
    first.send_signal(SIGTERM);
    ASSERT_TRUE(first.wait_exit(10s).has_value());
  }
  bus_.reset();
  ASSERT_TRUE(Bus::destroy(bus_name_));
  open_bus();
  Room r = bus_->room("r");
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(r.publish("chat", "alice", "new" + std::to_string(i)).ok());
  CliProcess& second = start_bridge();
  EXPECT_TRUE(eventually([&] { return xlen(key) >= 30; }, 10s))
      << "Redis holds " << xlen(key) << " of 10 old + 20 new entries\n" << second.err();
}

// Redis answering every ship and every XREAD with an error (here WRONGTYPE: something else
// owns the key; OOM, READONLY and NOPERM look the same) must not make the bridge reconnect
// in a tight loop.
TEST_F(BridgeReview, ARefusingRedisIsRetriedWithBackoffNotInATightLoop) {
  open_bus();
  Room r = bus_->room("r");
  CliProcess& bridge = start_bridge();
  ASSERT_TRUE(r.publish("chat", "alice", "one").ok());
  const std::string key = "agentbus:room:r:events";
  ASSERT_TRUE(eventually([&] { return xlen(key) == 1; }));
  {
    RedisConnection c = redis();
    ASSERT_FALSE(c.command({"DEL", key}).is_error());
    ASSERT_FALSE(c.command({"SET", key, "not a stream"}).is_error());
  }
  ASSERT_TRUE(r.publish("chat", "alice", "two").ok());
  std::this_thread::sleep_for(300ms);
  const long long before = connections_received();
  (void)bridge.wait_until([] { return false; }, 2s);  // drains its stderr meanwhile
  const long long after = connections_received();
  EXPECT_LT(after - before, 100) << "connections in 2 s; stderr has " << bridge.err().size() << " bytes";
  // Once the key is free again, "two" arrives.
  ASSERT_FALSE(redis().command({"DEL", key}).is_error());
  EXPECT_TRUE(eventually([&] { return xlen(key) == 1; }, 10s)) << bridge.err().substr(0, 2000);
}

// A bridge killed between an import's publish and its in-checkpoint: the restart finds the
// import by its scan, but must also record it, or the out reader (which never commits past an
// import the checkpoint does not cover) holds the ring until some other remote entry arrives,
// and local publishers get bus_full.
TEST_F(BridgeReview, AfterAKillBetweenImportAndCheckpointTheRingIsNotHeld) {
  open_bus();
  Room r = bus_->room("r", {.ring_bytes = 64 << 10});
  const std::string key = "agentbus:room:r:events";
  CliProcess& doomed = start_bridge({{"AGENTBUS_FAILPOINTS", "bridge_after_import_publish@1=kill"}});
  ASSERT_TRUE(eventually([&] { return bridge_status(*bus_).pid == doomed.pid(); }));
  ASSERT_FALSE(redis()
                   .command({"XADD", key, "*", "type", "chat", "agent_id", "carol", "payload", "hi", "timestamp", "1",
                             "origin_host", "host-x", "origin_id", "1"})
                   .is_error());
  const std::optional<int> code = doomed.wait_exit(20s);
  ASSERT_TRUE(code.has_value()) << "the failpoint never fired";
  ASSERT_EQ(*code, 128 + SIGKILL) << doomed.err();
  CliProcess& bridge = start_bridge();
  ASSERT_TRUE(eventually([&] { return bridge_status(*bus_).pid == bridge.pid(); }));
  // Several times the ring: only a bridge that ships and commits lets these through.
  const std::string payload(200, 'p');
  int ok = 0;
  for (int i = 0; i < 1500; ++i) {
    if (!r.publish("chat", "alice", payload + std::to_string(i)).ok()) break;
    ++ok;
  }
  EXPECT_EQ(ok, 1500) << "publishers got bus_full: the bridge's reader holds the ring\n" << bridge.err();
  EXPECT_TRUE(eventually([&] { return xlen(key) == 1 + ok; }, 10s)) << xlen(key);
  int imported = 0;
  Subscription s = r.subscribe({.from = StartFrom::earliest});
  for (ReadResult e = s.next(0ns); e.status != ReadStatus::timeout; e = s.next(0ns))
    if (e.has_event() && e.event.imported) ++imported;
  EXPECT_LE(imported, 1) << "imported twice";
}

// An event imported by someone else (`agentbus import` of an archive) carries an origin but
// is no import of this bridge: the out reader must not wait for the in-checkpoint to cover it.
TEST_F(BridgeReview, AnEventImportedByAnotherToolDoesNotHoldTheRing) {
  open_bus();
  Room r = bus_->room("r", {.ring_bytes = 64 << 10});
  CliProcess& bridge = start_bridge();
  ASSERT_TRUE(eventually([&] { return bridge_status(*bus_).pid == bridge.pid(); }));
  ASSERT_TRUE(r.publish("chat", "carol", "from an archive",
                        {.origin = OriginRef{"host-x", 7, StreamId{1700000000000, 0}}})
                  .ok());
  const std::string payload(200, 'p');
  int ok = 0;
  for (int i = 0; i < 1500; ++i) {
    if (!r.publish("chat", "alice", payload + std::to_string(i)).ok()) break;
    ++ok;
  }
  EXPECT_EQ(ok, 1500) << "publishers got bus_full: the bridge's reader waits for a foreign import\n" << bridge.err();
}

}  // namespace

namespace {

// Redis is trusted with the data only: streams that look like rooms, more than the bus can
// hold, must not end the bridge (it creates a local room for each one it finds).
TEST_F(BridgeReview, MoreRemoteRoomsThanTheBusHoldsDoNotEndTheBridge) {
  open_bus();
  Room r = bus_->room("r");
  CliProcess& bridge = start_bridge();
  ASSERT_TRUE(eventually([&] { return bridge_status(*bus_).pid == bridge.pid(); }));
  {
    RedisConnection c = redis();
    for (int i = 0; i < 100; ++i)
      ASSERT_FALSE(c.command({"XADD", "agentbus:room:x" + std::to_string(i) + ":events", "*", "type", "chat", "agent_id",
                              "carol", "payload", "hi", "timestamp", "1", "origin_host", "host-x", "origin_id", "1"})
                       .is_error());
  }
  const std::optional<int> code = bridge.wait_exit(6s);
  EXPECT_FALSE(code.has_value()) << "the bridge exited with " << code.value_or(0) << ": "
                                 << bridge.err().substr(bridge.err().size() > 600 ? bridge.err().size() - 600 : 0);
  ASSERT_TRUE(r.publish("chat", "alice", "still here").ok());
  EXPECT_TRUE(eventually([&] { return xlen("agentbus:room:r:events") == 1; }, 10s));
}

}  // namespace
