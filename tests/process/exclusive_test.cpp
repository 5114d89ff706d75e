// Exclusive publication across real processes: an exclusive writer and a shared one at once
// (per-producer sequence checks), and an exclusive writer killed with SIGKILL at each
// failpoint of its fast path (readers go on, the next writer takes the lease, nothing
// committed is lost, no id is handed out twice).
#include "support/child_process.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <unistd.h>
#include <map>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::ChildProcess;
using agentbus::test::helper_path;
using agentbus::test::TestBus;

namespace {

// The helper's room options, so the parent attaches to the same room.
const RoomOptions kHelperRoom{.ring_bytes = 4 << 20, .publish_timeout = 200ms};

struct Read {
  EventId id;
  std::string payload;
};

std::vector<Read> read_events(Subscription& sub, std::size_t count, std::chrono::milliseconds within) {
  std::vector<Read> got;
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (got.size() < count && std::chrono::steady_clock::now() < deadline) {
    ReadResult r = sub.next(50ms);
    if (r.has_event()) got.push_back({r.event.id, std::string(r.event.payload)});
  }
  return got;
}

}  // namespace

TEST(Exclusive, ExclusiveAndSharedWritersAtOnceKeepEveryProducersOrder) {
  TestBus bus("excl-mixed");
  Room room = bus->room("room", kHelperRoom);
  // A durable reader gates both producers: nothing may be overwritten before it has read it.
  Subscription sub = room.subscribe({.from = StartFrom::earliest, .durable_name = "check"});
  constexpr int kCount = 200000;
  // Both start at once (a go file), so the shared writer meets the armed exclusive one.
  const std::string go = "/tmp/agentbus-excl-go-" + bus.name();
  ::unlink(go.c_str());
  ChildProcess exclusive({helper_path(), "publish-exclusive", bus.name(), "room", "0", std::to_string(kCount)},
                         {"AGENTBUS_HELPER_GO=" + go});
  ChildProcess shared({helper_path(), "publish", bus.name(), "room", "1", std::to_string(kCount)},
                      {"AGENTBUS_HELPER_GO=" + go});
  ASSERT_EQ(exclusive.read_line(10s), "ready");
  ASSERT_EQ(shared.read_line(10s), "ready");
  std::FILE* f = std::fopen(go.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  std::map<int, int> next_seq;
  EventId last_id = 0;
  int events = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (events < 2 * kCount && std::chrono::steady_clock::now() < deadline) {
    ReadResult r = sub.next(100ms);
    ASSERT_NE(r.status, ReadStatus::overrun);
    ASSERT_NE(r.status, ReadStatus::skipped);
    if (!r.has_event()) continue;
    const std::string p(r.event.payload);
    const int producer = std::stoi(p.substr(0, p.find(':')));
    const int seq = std::stoi(p.substr(p.find(':') + 1));
    ASSERT_EQ(seq, next_seq[producer]) << "producer " << producer;
    next_seq[producer] = seq + 1;
    if (events > 0) {
      ASSERT_GT(r.event.id, last_id);
    }
    last_id = r.event.id;
    ++events;
  }
  EXPECT_EQ(events, 2 * kCount);
  EXPECT_EQ(exclusive.wait(10s), 0);
  EXPECT_EQ(shared.wait(10s), 0);
  ::unlink(go.c_str());
  const RoomCounters c = room.info().counters;
  EXPECT_GE(c.exclusive_revokes, 1u) << "the shared writer had to take the fast path away";
  EXPECT_EQ(c.dead_writer_leases, 0u);
  EXPECT_EQ(c.bus_full, 0u);
}

TEST(Exclusive, WriterKilledAtEachFailpointIsTakenOverAndLosesNothingCommitted) {
  struct Case {
    const char* point;
    std::size_t committed;  // of the 11 it was publishing when killed
  };
  for (const Case k : {Case{"exclusive_before_write", 10}, Case{"exclusive_before_commit", 10},
                       Case{"exclusive_before_tail", 11}}) {
    for (const bool take_over_exclusively : {false, true}) {
      SCOPED_TRACE(std::string(k.point) + (take_over_exclusively ? ", new exclusive writer" : ", shared writer"));
      TestBus bus("excl-kill");
      Room room = bus->room("room", kHelperRoom);
      Subscription sub = room.subscribe({.from = StartFrom::earliest, .durable_name = "d"});
      ChildProcess victim({helper_path(), "publish-exclusive", bus.name(), "room", "0", "100"},
                          {std::string("AGENTBUS_FAILPOINTS=") + k.point + "@11=kill"});
      EXPECT_EQ(victim.wait(10s), 128 + SIGKILL);
      const std::vector<Read> before = read_events(sub, k.committed, 5s);
      ASSERT_EQ(before.size(), k.committed);
      for (std::size_t i = 0; i < before.size(); ++i) EXPECT_EQ(before[i].payload, "0:" + std::to_string(i));
      // The reader's cursor may be past `tail` now (a record committed, tail not moved yet):
      // attaching the room, which checks every control word, must not call that corrupt.
      ASSERT_TRUE(sub.next(0ns).status == ReadStatus::timeout);
      EXPECT_NO_THROW((void)bus->room("room", kHelperRoom));

      // The next writer takes over: after the stall timeout, once the holder is confirmed dead.
      std::vector<EventId> ids;
      if (take_over_exclusively) {
        ExclusivePublisher next = room.exclusive_publisher();  // would throw while the holder lived
        for (int i = 0; i < 3; ++i) ids.push_back(next.publish("t", "p1", "1:" + std::to_string(i)).id);
      } else {
        for (int i = 0; i < 3; ++i) {
          const PublishResult r = room.publish("t", "p1", "1:" + std::to_string(i));
          ASSERT_TRUE(r.ok());
          ids.push_back(r.id);
        }
      }
      EXPECT_GT(ids.front(), before.back().id) << "an id handed out twice";
      const std::vector<Read> after = read_events(sub, 3, 5s);
      ASSERT_EQ(after.size(), 3u);
      for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(after[i].payload, "1:" + std::to_string(i));
        EXPECT_EQ(after[i].id, ids[i]);
      }
      EXPECT_EQ(sub.next(0ns).status, ReadStatus::timeout);
      EXPECT_EQ(room.info().counters.dead_writer_leases, 1u);
      EXPECT_NO_THROW((void)room.exclusive_publisher());  // the lease is free again
    }
  }
}

TEST(Exclusive, ALiveHolderIsNeverTakenOver) {
  TestBus bus("excl-live");
  Room room = bus->room("room", kHelperRoom);
  // Stopped inside its fast path: alive, so its lease stands and a shared writer gives up
  // with BusFull after publish_timeout instead of writing over it.
  ChildProcess stuck({helper_path(), "publish-exclusive", bus.name(), "room", "0", "100"},
                     {"AGENTBUS_FAILPOINTS=exclusive_before_commit@5=stop"});
  ASSERT_TRUE(stuck.wait_stopped(10s));
  EXPECT_THROW((void)room.exclusive_publisher(), Error);
  EXPECT_FALSE(room.publish("t", "p1", "x").ok());
  EXPECT_EQ(room.info().counters.dead_writer_leases, 0u);
  std::vector<std::string> seen;
  for (const Event& e : room.recent(100)) seen.push_back(e.payload);
  EXPECT_EQ(seen, (std::vector<std::string>{"0:0", "0:1", "0:2", "0:3"}));
  ::kill(stuck.pid(), SIGKILL);
  EXPECT_EQ(stuck.wait(10s), 128 + SIGKILL);
  EXPECT_TRUE(room.publish("t", "p1", "after").ok());  // dead now: taken over
  EXPECT_EQ(room.info().counters.dead_writer_leases, 1u);
}
