// Room::exclusive_publisher in one process: the lease, arming and re-arming, laps of a small
// ring through the fast path, and threads racing an exclusive and a shared writer (the
// cross-process and kill -9 tests are tests/process/exclusive_test.cpp).
#include "support/ring_of.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <map>
#include <thread>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::TestBus;
using agentbus::test::ring_of;

TEST(ExclusiveWriter, OneLeasePerRoomReleasedOnClose) {
  TestBus bus("ex-lease");
  Room room = bus->room("r");
  ExclusivePublisher first = room.exclusive_publisher();
  EXPECT_TRUE(first.armed());
  try {
    (void)room.exclusive_publisher();
    FAIL() << "a second exclusive publisher was allowed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::conflict);
    EXPECT_NE(std::string(e.what()).find("already has an exclusive writer (pid " + std::to_string(::getpid())),
              std::string::npos) << e.what();
  }
  ASSERT_TRUE(first.publish("t", "a", "one").ok());
  first.close();
  EXPECT_FALSE(first.armed());
  EXPECT_THROW((void)first.publish("t", "a", "closed"), Error);
  ExclusivePublisher second = room.exclusive_publisher();
  ASSERT_TRUE(second.publish("t", "a", "two").ok());
  std::vector<std::string> seen;
  for (const Event& e : room.recent(10)) seen.push_back(e.payload);
  EXPECT_EQ(seen, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(ring_of(room).check_control(), "");
}

TEST(ExclusiveWriter, ASharedWriterDisarmsItAndItRearmsWhenAloneAgain) {
  TestBus bus("ex-rearm");
  Room room = bus->room("r");
  Subscription sub = room.subscribe({.from = StartFrom::earliest, .durable_name = "d"});
  ExclusivePublisher ex = room.exclusive_publisher();
  ASSERT_TRUE(ex.publish("t", "ex", "0").ok());
  ASSERT_TRUE(room.publish("t", "shared", "1").ok());
  EXPECT_EQ(room.info().counters.exclusive_revokes, 1u);
  ASSERT_TRUE(ex.publish("t", "ex", "2").ok());
  EXPECT_FALSE(ex.armed()) << "the shared writer took the fast path away";
  int n = 3;
  for (; n < 200 && !ex.armed(); ++n) ASSERT_TRUE(ex.publish("t", "ex", std::to_string(n)).ok());
  EXPECT_TRUE(ex.armed()) << "alone again, it re-arms";
  EXPECT_LT(n, 100);
  ASSERT_TRUE(ex.publish("t", "ex", std::to_string(n++)).ok());
  for (int i = 0; i < n; ++i) {
    ReadResult r = sub.next(1s);
    ASSERT_TRUE(r.has_event()) << i;
    EXPECT_EQ(r.event.payload, std::to_string(i));
  }
  EXPECT_EQ(sub.next(0ns).status, ReadStatus::timeout);
  EXPECT_EQ(ring_of(room).check_control(), "");
}

TEST(ExclusiveWriter, LapsOfASmallRingThroughTheFastPath) {
  TestBus bus("ex-laps");
  Room room = bus->room("r", {.ring_bytes = 64 << 10});
  Subscription sub = room.subscribe({.from = StartFrom::earliest, .durable_name = "d"});
  Subscription tailer = room.subscribe({.from = StartFrom::earliest});
  ExclusivePublisher ex = room.exclusive_publisher();
  int next_read = 0;
  for (int i = 0; i < 20000; ++i) {
    ASSERT_TRUE(ex.publish("t", "ex", std::to_string(i) + std::string(static_cast<std::size_t>(i % 300), '.')).ok()) << i;
    if (i % 50 == 49) {
      sub.poll([&](const EventView& e) { EXPECT_EQ(std::stoi(std::string(e.payload)), next_read++); }, 1000);
    }
  }
  sub.poll([&](const EventView& e) { EXPECT_EQ(std::stoi(std::string(e.payload)), next_read++); }, 1000);
  EXPECT_EQ(next_read, 20000);
  EXPECT_TRUE(ex.armed());
  const RoomInfo info = room.info();
  EXPECT_GT(info.counters.wrap_paddings, 10u);
  EXPECT_GT(info.oldest, 0u) << "the head moved as the ring wrapped";
  EXPECT_EQ(ring_of(room).check_control(), "");
  // A lapped tailer is told so and resumes on a record boundary.
  ReadResult r = tailer.next(0ns);
  EXPECT_EQ(r.status, ReadStatus::overrun);
  r = tailer.next(1s);
  ASSERT_TRUE(r.has_event());
  EXPECT_EQ(room.recent(1).at(0).payload.substr(0, 5), "19999");
}

TEST(ExclusiveWriter, ThreadsRacingAnExclusiveAndASharedWriterKeepEachOrder) {
  TestBus bus("ex-threads");
  Room room = bus->room("r", {.ring_bytes = 256 << 10});
  Subscription sub = room.subscribe({.from = StartFrom::earliest, .durable_name = "d"});
  constexpr int kCount = 20000;
  std::thread exclusive([&] {
    ExclusivePublisher ex = room.exclusive_publisher();
    for (int i = 0; i < kCount; ++i)
      if (!ex.publish("t", "0", std::to_string(i)).ok()) ADD_FAILURE() << "exclusive BusFull at " << i;
  });
  std::thread shared([&] {
    for (int i = 0; i < kCount; ++i)
      if (!room.publish("t", "1", std::to_string(i)).ok()) ADD_FAILURE() << "shared BusFull at " << i;
  });
  std::map<std::string, int> next;
  int events = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (events < 2 * kCount && std::chrono::steady_clock::now() < deadline) {
    sub.poll(
        [&](const EventView& e) {
          EXPECT_EQ(std::stoi(std::string(e.payload)), next[std::string(e.agent)]++) << e.agent;
          ++events;
        },
        256, 10ms);
  }
  exclusive.join();
  shared.join();
  EXPECT_EQ(events, 2 * kCount);
  EXPECT_EQ(ring_of(room).check_control(), "");
}

TEST(ExclusiveWriter, TheHeadNeverPassesALaggingDurableReader) {
  TestBus bus("ex-gated");
  Room room = bus->room("r", {.ring_bytes = 64 << 10, .publish_timeout = 50ms});
  Subscription slow = room.subscribe({.from = StartFrom::earliest, .durable_name = "slow"});
  ExclusivePublisher ex = room.exclusive_publisher();
  int published = 0, read = 0;
  auto check_order = [&](const EventView& e) { EXPECT_EQ(std::stoi(std::string(e.payload)), read++); };
  // Fill the ring until the durable reader holds it full, reading a little now and then.
  for (int round = 0; round < 40; ++round) {
    while (ex.publish("t", "ex", std::to_string(published) + std::string(200, '.')).ok()) {
      ++published;
      const RoomInfo info = room.info();
      const EventId cursor = info.readers.at(0).cursor;
      ASSERT_LE(info.oldest, cursor) << "history passed an unread record after " << published;
    }
    slow.poll(check_order, 37);
  }
  EXPECT_GT(published, 1000);
  while (slow.poll(check_order, 100000).events > 0) {
  }
  EXPECT_EQ(read, published) << "the durable reader lost nothing";
  EXPECT_EQ(ring_of(room).check_control(), "");
}
