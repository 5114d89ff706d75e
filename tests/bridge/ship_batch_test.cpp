// The ship transaction against a real redis-server: a batch and the room's checkpoint in one
// MULTI/EXEC, what the checkpoint covers never added twice, and a stream key that is not a
// stream refused without moving the checkpoint past entries Redis does not hold, also when
// it changes type after the bridge looked.
#include "bridge/ship_batch.hpp"

#include <agentbus_testing/redis_server.hpp>

#include <gtest/gtest.h>

namespace agentbus::bridge {
namespace {

using agentbus::testing::RedisServer;
using namespace std::chrono_literals;

class ShipBatch : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.start()) << server_.why();
    RedisTarget t;
    t.host = "127.0.0.1";
    t.port = server_.port();
    conn_.emplace(RedisConnection::connect(t, 2000ms));
    target_.stream_key = "agentbus:room:r:events";
    target_.checkpoint_key = "agentbus:room:r:bridge:h:out";
    target_.incarnation = "inc1";
  }

  static std::vector<ShipEntry> entries(EventId first, EventId last) {
    std::vector<ShipEntry> out;
    for (EventId id = first; id <= last; ++id) out.push_back({id, {"type", "chat", "payload", "e" + std::to_string(id)}});
    return out;
  }
  long long xlen() { return *conn_->command({"XLEN", target_.stream_key}).integer(); }
  std::string checkpoint() { return std::string(conn_->command({"GET", target_.checkpoint_key}).string().value_or("")); }

  RedisServer server_;
  std::optional<RedisConnection> conn_;
  ShipTarget target_;
};

TEST_F(ShipBatch, ABatchShippedAgainAfterALostReplyAddsNothingTwice) {
  ShipCursor cursor = read_cursor(*conn_, target_);
  EXPECT_TRUE(cursor.incarnation.empty());
  EXPECT_EQ(ship(*conn_, cursor, target_, entries(1, 10)).added, 10u);
  EXPECT_EQ(checkpoint(), "inc1:00000000000000000010");
  // A new connection knows nothing but what Redis holds: an overlapping batch adds only its tail.
  ShipCursor again = read_cursor(*conn_, target_);
  EXPECT_EQ(again.last, 10u);
  const ShipResult r = ship(*conn_, again, target_, entries(5, 14));
  EXPECT_EQ(r.added, 4u);
  EXPECT_EQ(r.checkpoint, 14u);
  EXPECT_EQ(ship(*conn_, again, target_, entries(1, 14)).added, 0u);
  EXPECT_EQ(xlen(), 14);
}

TEST_F(ShipBatch, ASentBatchIsConfirmedByItsReplies) {
  ShipCursor cursor = read_cursor(*conn_, target_);
  const std::vector<ShipEntry> one = entries(1, 3);
  const PendingShip p = queue_ship(*conn_, cursor, target_, one);
  EXPECT_EQ(cursor.last, 3u);  // moved as it was queued
  exec_ship(*conn_, p);
  EXPECT_EQ(receive_ship(*conn_, p, target_).added, 3u);
  EXPECT_EQ(conn_->pending(), 0u);
  EXPECT_EQ(xlen(), 3);
  // Nothing new: nothing sent, nothing to read.
  const PendingShip none = queue_ship(*conn_, cursor, target_, one);
  EXPECT_EQ(none.replies, 0u);
  exec_ship(*conn_, none);
  EXPECT_EQ(receive_ship(*conn_, none, target_).added, 0u);
}

TEST_F(ShipBatch, AQueuedTransactionDiesWithItsConnection) {
  ShipCursor cursor = read_cursor(*conn_, target_);
  {
    RedisTarget t;
    t.host = "127.0.0.1";
    t.port = server_.port();
    RedisConnection doomed = RedisConnection::connect(t, 2000ms);
    ShipCursor c = read_cursor(doomed, target_);
    (void)queue_ship(doomed, c, target_, entries(1, 5));
    (void)doomed.read_reply();  // MULTI's +OK: the commands have reached Redis, queued
  }  // closed without EXEC
  EXPECT_EQ(ship(*conn_, cursor, target_, entries(6, 6)).added, 1u);
  EXPECT_EQ(xlen(), 1);
}

TEST_F(ShipBatch, ATransactionRedisWillNotQueueAddsNothing) {
  ShipCursor cursor = read_cursor(*conn_, target_);
  ship(*conn_, cursor, target_, entries(1, 2));
  // Over maxmemory with noeviction, Redis refuses each write as it is queued: EXEC aborts.
  conn_->command({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
  conn_->command({"CONFIG", "SET", "maxmemory", "1"});
  EXPECT_THROW(ship(*conn_, cursor, target_, entries(3, 4)), Error);
  conn_->command({"CONFIG", "SET", "maxmemory", "0"});
  EXPECT_EQ(xlen(), 2);
  EXPECT_EQ(checkpoint(), "inc1:00000000000000000002");
  ShipCursor again = read_cursor(*conn_, target_);
  EXPECT_EQ(ship(*conn_, again, target_, entries(1, 4)).added, 2u);
  EXPECT_EQ(xlen(), 4);
}

TEST_F(ShipBatch, TheTtlIsPushedOutWithAConnectionsFirstBatchThenAtMostOnceASecond) {
  target_.ttl_ms = 60'000;
  auto pttl = [&](const std::string& key) { return *conn_->command({"PTTL", key}).integer(); };
  ShipCursor cursor = read_cursor(*conn_, target_);
  ship(*conn_, cursor, target_, entries(1, 1));
  EXPECT_GT(pttl(target_.stream_key), 0);
  EXPECT_LE(pttl(target_.stream_key), 60'000);
  EXPECT_GT(pttl(target_.checkpoint_key), 0);
  conn_->command({"PEXPIRE", target_.stream_key, "5000000"});
  ship(*conn_, cursor, target_, entries(2, 2));  // within the second: no PEXPIRE
  EXPECT_GT(pttl(target_.stream_key), 60'000);
  ShipCursor fresh = read_cursor(*conn_, target_);  // a new connection's cursor
  ship(*conn_, fresh, target_, entries(3, 3));
  EXPECT_LE(pttl(target_.stream_key), 60'000);
}

TEST_F(ShipBatch, ARecreatedBussCheckpointDoesNotHideItsEvents) {
  ShipCursor cursor = read_cursor(*conn_, target_);
  ship(*conn_, cursor, target_, entries(1, 50));
  ShipTarget reborn = target_;
  reborn.incarnation = "inc2";  // ids start again at 1
  ShipCursor fresh = read_cursor(*conn_, reborn);
  EXPECT_EQ(fresh.incarnation, "inc1");
  EXPECT_EQ(ship(*conn_, fresh, reborn, entries(1, 5)).added, 5u);
  EXPECT_EQ(checkpoint(), "inc2:00000000000000000005");
  EXPECT_EQ(xlen(), 55);
}

TEST_F(ShipBatch, AStreamKeyOfAnotherTypeIsRefusedAndTheCheckpointStays) {
  conn_->command({"SET", target_.stream_key, "not a stream"});
  try {
    (void)read_cursor(*conn_, target_);
    ADD_FAILURE() << "a string key was taken for a stream";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds a string, not a stream"), std::string::npos) << e.what();
  }
  // The key turns into a string after the cursor was read: the transaction runs, its XADDs
  // fail, and the checkpoint stays where it was.
  conn_->command({"DEL", target_.stream_key});
  ShipCursor cursor = read_cursor(*conn_, target_);
  ship(*conn_, cursor, target_, entries(1, 2));
  conn_->command({"DEL", target_.stream_key});
  conn_->command({"SET", target_.stream_key, "not a stream"});
  EXPECT_THROW(ship(*conn_, cursor, target_, entries(3, 4)), Error);
  EXPECT_EQ(checkpoint(), "inc1:00000000000000000002");
  // With no checkpoint before, there is none after.
  conn_->command({"DEL", target_.checkpoint_key});
  ShipCursor none = read_cursor(*conn_, ShipTarget{"other:events", target_.checkpoint_key, "inc1"});
  conn_->command({"SET", "other:events", "x"});
  EXPECT_THROW(ship(*conn_, none, ShipTarget{"other:events", target_.checkpoint_key, "inc1"}, entries(1, 1)), Error);
  EXPECT_TRUE(conn_->command({"GET", target_.checkpoint_key}).is_nil());
}

}  // namespace
}  // namespace agentbus::bridge
