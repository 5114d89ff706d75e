// Many producer and reader threads on one room: run under ThreadSanitizer in CI.
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>
#include <map>
#include <thread>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::TestBus;

namespace {

constexpr int kProducers = 4;
constexpr int kPerProducer = 2000;

struct Tally {
  std::map<int, int> next_seq;  // producer -> next expected sequence
  std::uint64_t checksum = 0;
  int events = 0;
  std::string error;
};

// Payload "<producer>:<seq>"; checks per-producer order and sums a checksum.
void account(Tally& t, std::string_view payload) {
  const auto colon = payload.find(':');
  const int producer = std::stoi(std::string(payload.substr(0, colon)));
  const int seq = std::stoi(std::string(payload.substr(colon + 1)));
  if (t.next_seq[producer] != seq && t.error.empty())
    t.error = "producer " + std::to_string(producer) + ": got " + std::to_string(seq) +
              ", expected " + std::to_string(t.next_seq[producer]);
  t.next_seq[producer] = seq + 1;
  t.checksum += std::uint64_t(producer) * 1000003u + std::uint64_t(seq);
  ++t.events;
}

std::uint64_t expected_checksum() {
  std::uint64_t sum = 0;
  for (int p = 0; p < kProducers; ++p)
    for (int s = 0; s < kPerProducer; ++s) sum += std::uint64_t(p) * 1000003u + std::uint64_t(s);
  return sum;
}

void read_all(Room& room, const SubscribeOptions& options, Tally& tally) {
  Subscription sub = room.subscribe(options);
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (tally.events < kProducers * kPerProducer && std::chrono::steady_clock::now() < deadline) {
    ReadResult r = sub.next(100ms);
    if (r.status == ReadStatus::overrun) tally.error = "overrun";
    if (r.has_event()) account(tally, r.event.payload);
  }
}

}  // namespace

TEST(RingThreads, EveryReaderSeesEveryEventOnceInProducerOrder) {
  TestBus bus("threads");
  Room room = bus->room("r", {.ring_bytes = 1 << 20, .publish_timeout = 30000ms});
  // A small ring for the durable reader forces producers to wait on it and wrap many times.
  Room gated = bus->room("gated", {.ring_bytes = 64 << 10, .publish_timeout = 30000ms});
  std::vector<Tally> tallies(4);
  // Subscribe before anyone publishes: start from the (empty) beginning.
  std::vector<std::thread> readers;
  readers.emplace_back([&] { read_all(room, {.from = StartFrom::earliest, .wait = WaitStrategy::block}, tallies[0]); });
  readers.emplace_back([&] { read_all(room, {.from = StartFrom::earliest, .wait = WaitStrategy::yield}, tallies[1]); });
  readers.emplace_back([&] { read_all(room, {.from = StartFrom::earliest, .durable_name = "d"}, tallies[2]); });
  readers.emplace_back([&] { read_all(gated, {.from = StartFrom::earliest, .durable_name = "g"}, tallies[3]); });
  // Bounded wait for all four readers to attach.
  for (int i = 0; i < 5000 && room.info().readers.size() + gated.info().readers.size() < 4; ++i)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(room.info().readers.size() + gated.info().readers.size(), 4u);

  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p)
    producers.emplace_back([&, p] {
      for (int s = 0; s < kPerProducer; ++s) {
        const std::string payload = std::to_string(p) + ":" + std::to_string(s);
        ASSERT_TRUE(room.publish("t", "p", payload).ok());
        ASSERT_TRUE(gated.publish("t", "p", payload + std::string(s % 97, '.')).ok());
      }
    });
  for (auto& t : producers) t.join();
  for (auto& t : readers) t.join();
  for (const Tally& t : tallies) {
    EXPECT_EQ(t.error, "");
    EXPECT_EQ(t.events, kProducers * kPerProducer);
    EXPECT_EQ(t.checksum, expected_checksum());
  }
}
