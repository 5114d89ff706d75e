// agentbus-micro — Google Benchmark microbenchmarks of agentbus's hot paths, in one process.
//
// What each measures (all on one bus, `micro-<pid>`, destroyed at exit):
//  * Publish/<bytes>        publish() into a room nobody reads: the claim + copy + commit path.
//  * PublishThenTail/<b>    one thread publishes a batch of 32, then drains it with a tailer:
//                           the reader's batch copy-out and validation, without cross-core cost.
//  * SpinPair/<b>           a publisher thread and a spinning durable reader thread: the
//                           cross-core hand-off (on this 2-vCPU VM, sensitive to placement).
//  * PublishCoarseClock     Publish/64 with RoomOptions::coarse_timestamps (CLOCK_REALTIME_COARSE).
//  * PublishExclusive       Publish/64 through an armed ExclusivePublisher (no locked instruction).
//  * PublishBatch32         publish_batch of 32 x 64 B (items: events).
//  * Recent10               Room::recent(10) on a room holding ~1000 events.
//  * Recent10FullRing       Room::recent(10) on a 1 MiB ring filled past a lap of 64 B events
//                           (the case hooks and `top` hit on every prompt).
//  * ClaimComplete          TaskBoard claim + complete of a posted task (the complete publishes
//                           TASK_DONE); tasks are posted outside the timed region.
//  * StatusPost             StatusBus::post with a short detail and no subscriber.
//  * GroupReadAck           ConsumerGroup read + ack of an already published event.
// The cross-process comparison with other systems is tools/agentbus-bench, not this.
#include <agentbus/agentbus.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>
#include <unistd.h>

namespace {

constexpr std::size_t kRingBytes = 1 << 22;
constexpr int kBatch = 32;

// One bus for the whole process; removed from /dev/shm when the program exits.
class MicroBus {
 public:
  MicroBus() : name_("micro-" + std::to_string(getpid())), bus_(open(name_)) {}
  ~MicroBus() { agentbus::Bus::destroy(name_); }

  agentbus::Room room(const std::string& name) {
    agentbus::RoomOptions o;
    o.ring_bytes = kRingBytes;
    return bus_.room(name, o);
  }
  agentbus::Room room(const std::string& name, const agentbus::RoomOptions& o) { return bus_.room(name, o); }

 private:
  static agentbus::Bus open(const std::string& name) {
    agentbus::BusOptions o;
    o.name = name;
    return agentbus::Bus::open(o);
  }
  std::string name_;
  agentbus::Bus bus_;
};

MicroBus& micro_bus() {
  static MicroBus bus;
  return bus;
}

agentbus::SubscribeOptions options(agentbus::WaitStrategy wait, std::string durable = {}) {
  agentbus::SubscribeOptions o;
  o.from = agentbus::StartFrom::latest;
  o.wait = wait;
  o.durable_name = std::move(durable);
  return o;
}

void BM_Publish(benchmark::State& state) {
  auto room = micro_bus().room("publish-" + std::to_string(state.range(0)));
  const std::string payload(std::size_t(state.range(0)), 'x');
  for (auto _ : state) {
    auto r = room.publish("b", "p1", payload);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Publish)->Arg(64)->Arg(1024);

// The same publish with RoomOptions::coarse_timestamps, and through an ExclusivePublisher:
// each change measured on its own against BM_Publish/64.
void BM_PublishCoarseClock(benchmark::State& state) {
  agentbus::RoomOptions o;
  o.ring_bytes = kRingBytes;
  o.coarse_timestamps = true;
  auto room = micro_bus().room("publish-coarse", o);
  const std::string payload(64, 'x');
  for (auto _ : state) {
    auto r = room.publish("b", "p1", payload);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PublishCoarseClock);

void BM_PublishExclusive(benchmark::State& state) {
  auto room = micro_bus().room("publish-exclusive");
  auto ex = room.exclusive_publisher();
  const std::string payload(64, 'x');
  for (auto _ : state) {
    auto r = ex.publish("b", "p1", payload);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  if (!ex.armed()) state.SkipWithError("the exclusive publisher was not armed");
}
BENCHMARK(BM_PublishExclusive);

void BM_PublishBatch32(benchmark::State& state) {
  auto room = micro_bus().room("publish-batch");
  const std::string payload(64, 'x');
  std::vector<agentbus::EventIn> events(kBatch, agentbus::EventIn{"b", "p1", payload});
  for (auto _ : state) {
    auto r = room.publish_batch(events);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_PublishBatch32);

void BM_PublishThenTail(benchmark::State& state) {
  auto room = micro_bus().room("tail-" + std::to_string(state.range(0)));
  auto sub = room.subscribe(options(agentbus::WaitStrategy::spin));
  const std::string payload(std::size_t(state.range(0)), 'x');
  std::uint64_t lost = 0;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) room.publish("b", "p1", payload);
    for (int i = 0; i < kBatch; ++i) {
      auto r = sub.next(std::chrono::nanoseconds(0));
      if (!r.has_event()) ++lost;
      benchmark::DoNotOptimize(r.event.payload.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["lost"] = double(lost);
}
BENCHMARK(BM_PublishThenTail)->Arg(64)->Arg(1024);

// The reader is a durable one, so the publisher is gated and nothing is lost: the figure is
// the sustained hand-off rate between two cores, not the rate of a lapped tailer.
void BM_SpinPair(benchmark::State& state) {
  static std::atomic<int> generation{0};
  auto room = micro_bus().room("pair-" + std::to_string(state.range(0)));
  const std::string reader = "pair-reader-" + std::to_string(generation++);
  const std::uint64_t expected = state.max_iterations;
  std::atomic<bool> subscribed{false};
  std::uint64_t received = 0;
  std::thread consumer([&] {
    auto sub = room.subscribe(options(agentbus::WaitStrategy::spin, reader));
    subscribed.store(true, std::memory_order_release);
    while (received < expected) {
      auto r = sub.next(std::chrono::seconds(2));
      if (!r.has_event()) break;  // a timeout here means events went missing
      ++received;
    }
  });
  while (!subscribed.load(std::memory_order_acquire)) std::this_thread::yield();
  const std::string payload(std::size_t(state.range(0)), 'x');
  for (auto _ : state) {
    auto r = room.publish("b", "p1", payload);
    benchmark::DoNotOptimize(r);
  }
  consumer.join();
  room.drop_reader(reader);
  state.SetItemsProcessed(state.iterations());
  if (received != expected) state.SkipWithError("the reader did not receive every event");
}
BENCHMARK(BM_SpinPair)->Arg(64)->Arg(1024)->UseRealTime();

void BM_Recent10(benchmark::State& state) {
  auto room = micro_bus().room("recent");
  const std::string payload(64, 'x');
  for (int i = 0; i < 1000; ++i) room.publish("b", "p1", payload);
  for (auto _ : state) {
    auto events = room.recent(10);
    benchmark::DoNotOptimize(events.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Recent10);

void BM_Recent10FullRing(benchmark::State& state) {
  agentbus::RoomOptions o;
  o.ring_bytes = 1 << 20;
  auto room = micro_bus().room("recent-full", o);
  const std::string payload(64, 'x');
  while (room.info().oldest == 0 || room.info().tail < 3 * o.ring_bytes) room.publish("b", "p1", payload);
  for (auto _ : state) {
    auto events = room.recent(10);
    benchmark::DoNotOptimize(events.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Recent10FullRing);

}  // namespace

void BM_ClaimComplete(benchmark::State& state) {
  agentbus::TaskBoardOptions o;
  o.task_capacity = 8192;
  o.max_payload_bytes = 64;
  static int run = 0;  // the framework calls this again per iteration count: a fresh board each time
  agentbus::TaskBoard board(micro_bus().room("tasks-" + std::to_string(run++)), o);
  board.register_task({"job", "micro", "", ""});
  std::vector<agentbus::EventId> ids;
  std::size_t next = 0;
  for (auto _ : state) {
    if (next == ids.size()) {
      state.PauseTiming();
      ids.clear();
      for (int i = 0; i < 4096; ++i) ids.push_back(board.post_task("job", "poster", "{}"));
      next = 0;
      state.ResumeTiming();
    }
    const agentbus::Claim c = board.claim(ids[next], "worker");
    board.complete(ids[next++], c.token, "ok");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClaimComplete);

void BM_StatusPost(benchmark::State& state) {
  agentbus::StatusBus status(micro_bus().room("status"));
  for (auto _ : state) {
    auto r = status.post("exec", "search_google", agentbus::StatusLevel::ok, "Found 7 results", "{}");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StatusPost);

void BM_GroupReadAck(benchmark::State& state) {
  auto room = micro_bus().room("group");
  agentbus::ConsumerGroup group(room, "g", "m");
  const std::string payload(64, 'x');
  for (auto _ : state) {
    state.PauseTiming();
    for (int i = 0; i < 256; ++i) room.publish("job", "p", payload);
    state.ResumeTiming();
    for (int i = 0; i < 256; ++i) {
      auto d = group.read(std::chrono::nanoseconds::zero());
      group.ack(*d);
    }
  }
  state.SetItemsProcessed(state.iterations() * 256);
}
BENCHMARK(BM_GroupReadAck);

BENCHMARK_MAIN();
