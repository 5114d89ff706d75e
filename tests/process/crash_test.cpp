// Producers killed mid-publish (kill -9 at failpoints) must not stall readers once dead,
// and must not be mistaken for dead while merely stopped.
#include "support/child_process.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::ChildProcess;
using agentbus::test::helper_path;
using agentbus::test::TestBus;

namespace {

// Reads until `count` events arrived or `within` passed; returns their payloads.
std::vector<std::string> read_events(Subscription& sub, std::size_t count, std::chrono::milliseconds within) {
  std::vector<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (got.size() < count && std::chrono::steady_clock::now() < deadline) {
    ReadResult r = sub.next(50ms);
    if (r.has_event()) got.emplace_back(r.event.payload);
  }
  return got;
}

std::vector<std::string> expected_events(int producer, int count) {
  std::vector<std::string> v;
  for (int i = 0; i < count; ++i) v.push_back(std::to_string(producer) + ":" + std::to_string(i));
  return v;
}

}  // namespace

TEST(Crash, ProducerKilledAfterClaimIsPaddedOnlyOnceDead) {
  TestBus bus("crash");
  Room room = bus->room("room", {.ring_bytes = 4 << 20});
  Subscription sub = room.subscribe({.from = StartFrom::earliest});

  // Producer 0 publishes 10 events, then stops itself right after claiming the 11th.
  ChildProcess stuck({helper_path(), "publish", bus.name(), "room", "0", "100"},
                     {"AGENTBUS_FAILPOINTS=after_claim@11=stop"});
  ASSERT_TRUE(stuck.wait_stopped(10s));
  EXPECT_EQ(read_events(sub, 10, 5s), expected_events(0, 10));

  ChildProcess other({helper_path(), "publish", bus.name(), "room", "1", "50"});
  EXPECT_EQ(other.wait(10s), 0);
  // Stopped is alive: readers wait behind its claim well past the stall timeout.
  EXPECT_EQ(sub.next(400ms).status, ReadStatus::timeout);
  EXPECT_EQ(room.info().counters.dead_claims_padded, 0u);

  ::kill(stuck.pid(), SIGKILL);
  EXPECT_EQ(stuck.wait(10s), 128 + SIGKILL);
  EXPECT_EQ(read_events(sub, 50, 5s), expected_events(1, 50));
  EXPECT_EQ(room.info().counters.dead_claims_padded, 1u);
}

TEST(Crash, ProducerKilledBeforeStampingLeavesAGapThatIsPadded) {
  TestBus bus("gap");
  Room room = bus->room("room", {.ring_bytes = 4 << 20});
  Subscription sub = room.subscribe({.from = StartFrom::earliest});
  ChildProcess dying({helper_path(), "publish", bus.name(), "room", "0", "100"},
                     {"AGENTBUS_FAILPOINTS=before_stamp@11=kill"});
  EXPECT_EQ(dying.wait(10s), 128 + SIGKILL);
  ChildProcess other({helper_path(), "publish", bus.name(), "room", "1", "50"});
  EXPECT_EQ(other.wait(10s), 0);
  std::vector<std::string> expected = expected_events(0, 10);
  for (auto& e : expected_events(1, 50)) expected.push_back(e);
  EXPECT_EQ(read_events(sub, 60, 5s), expected);
  EXPECT_EQ(room.info().counters.gaps_padded, 1u);
  // The ring stays usable for everyone afterwards.
  EXPECT_TRUE(room.publish("t", "x", "after").ok());
  EXPECT_EQ(sub.next(1s).event.payload, "after");
}

TEST(Crash, DeadClaimAtTheCommitHeadDoesNotBlockProducersForever) {
  TestBus bus("headcrash");
  Room room = bus->room("room", {.ring_bytes = 64 << 10, .max_record_bytes = 16 << 10,
                                 .publish_timeout = 5000ms});
  ChildProcess dying({helper_path(), "publish", bus.name(), "room", "0", "100"},
                     {"AGENTBUS_FAILPOINTS=after_claim@3=exit"});
  EXPECT_EQ(dying.wait(10s), 137);
  // No reader at all: producers themselves must repair the dead claim to wrap past it.
  const std::string payload(500, 'x');
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(room.publish("t", "x", payload).ok()) << i;
  EXPECT_EQ(room.info().counters.dead_claims_padded, 1u);
}

TEST(Crash, RecentStepsOverALiveClaimAndPadsADeadOneAtOnce) {
  TestBus bus("crash-recent");
  Room room = bus->room("room", {.ring_bytes = 4 << 20});

  // Producer 0 stops itself right after claiming its first event; producer 1 publishes after it.
  ChildProcess stuck({helper_path(), "publish", bus.name(), "room", "0", "1"},
                     {"AGENTBUS_FAILPOINTS=after_claim=stop"});
  ASSERT_TRUE(stuck.wait_stopped(10s));
  ChildProcess other({helper_path(), "publish", bus.name(), "room", "1", "3"});
  EXPECT_EQ(other.wait(10s), 0);

  // Alive (stopped): its claim is not an event yet; the snapshot lists what follows it.
  auto payloads = [&] {
    std::vector<std::string> v;
    for (const Event& e : room.recent(10)) v.push_back(e.payload);
    return v;
  };
  EXPECT_EQ(payloads(), expected_events(1, 3));
  EXPECT_EQ(room.info().counters.dead_claims_padded, 0u);

  // Dead: recent() pads the claim without waiting for a stall timeout.
  ::kill(stuck.pid(), SIGKILL);
  EXPECT_EQ(stuck.wait(10s), 128 + SIGKILL);
  EXPECT_EQ(payloads(), expected_events(1, 3));
  EXPECT_EQ(room.info().counters.dead_claims_padded, 1u);
}
