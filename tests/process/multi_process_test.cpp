// Real processes publishing and tailing one room.
#include "support/child_process.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>
#include <memory>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::ChildProcess;
using agentbus::test::helper_path;
using agentbus::test::TestBus;

namespace {

std::uint64_t checksum(int producers, int per_producer) {
  std::uint64_t sum = 0;
  for (int p = 0; p < producers; ++p)
    for (int s = 0; s < per_producer; ++s) sum += std::uint64_t(p) * 1000003u + std::uint64_t(s);
  return sum;
}

}  // namespace

TEST(MultiProcess, EveryTailerSeesEveryEventOnceInProducerOrder) {
  constexpr int kProducers = 3, kTailers = 3, kPerProducer = 5000;
  TestBus bus("mp");
  const std::string total = std::to_string(kProducers * kPerProducer);
  std::vector<std::unique_ptr<ChildProcess>> tailers;
  for (int i = 0; i < kTailers; ++i) {
    tailers.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{helper_path(), "tail", bus.name(), "room", total}));
    ASSERT_EQ(tailers.back()->read_line(10s), "ready");
  }
  std::vector<std::unique_ptr<ChildProcess>> producers;
  for (int p = 0; p < kProducers; ++p)
    producers.push_back(std::make_unique<ChildProcess>(std::vector<std::string>{
        helper_path(), "publish", bus.name(), "room", std::to_string(p), std::to_string(kPerProducer)}));
  for (auto& p : producers) EXPECT_EQ(p->wait(60s), 0);
  const std::string expected = "events " + total + " checksum " +
                               std::to_string(checksum(kProducers, kPerProducer)) + " order ok";
  for (auto& t : tailers) {
    EXPECT_EQ(t->read_line(60s), expected);
    EXPECT_EQ(t->wait(10s), 0);
  }
}

TEST(MultiProcess, DurableReaderInAnotherProcessGatesUntilBusFull) {
  TestBus bus("mpfull");
  Room room = bus->room("room", {.ring_bytes = 4 << 20});
  Subscription durable = room.subscribe({.from = StartFrom::latest, .durable_name = "slow"});
  ChildProcess producer({helper_path(), "publish", bus.name(), "room", "0", "1000000"});
  const std::string line = producer.read_line(60s);
  EXPECT_EQ(producer.wait(10s), 3);
  ASSERT_TRUE(line.starts_with("busfull after ")) << line;
  const long accepted = std::stol(line.substr(14));
  EXPECT_GT(accepted, 1000);
  for (long i = 0; i < accepted; ++i) {
    ReadResult r = durable.next(1s);
    ASSERT_TRUE(r.has_event()) << i;
    ASSERT_EQ(r.event.payload, "0:" + std::to_string(i));
  }
  EXPECT_GE(room.info().counters.bus_full, 1u);
}

TEST(MultiProcess, DeadTailerSlotIsReclaimed) {
  TestBus bus("mpslot");
  Room room = bus->room("room", {.ring_bytes = 4 << 20});
  {
    ChildProcess tailer({helper_path(), "tail", bus.name(), "room", "1"});
    ASSERT_EQ(tailer.read_line(10s), "ready");
    ::kill(tailer.pid(), SIGKILL);
    EXPECT_EQ(tailer.wait(10s), 128 + SIGKILL);
  }
  auto info = room.info();
  ASSERT_EQ(info.readers.size(), 1u);
  EXPECT_FALSE(info.readers[0].alive);
  std::vector<Subscription> subs;
  for (std::size_t i = 0; i < 64; ++i) subs.push_back(room.subscribe());  // needs the dead slot
  EXPECT_EQ(room.info().counters.dead_sessions_reclaimed, 1u);
  EXPECT_THROW((void)room.subscribe(), Error);
}
