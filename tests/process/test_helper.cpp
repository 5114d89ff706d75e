// agentbus-test-helper: the other process in multi-process tests.
//   publish BUS ROOM PRODUCER COUNT   publish "<producer>:<seq>" COUNT times; exit 3 on BusFull
//   tail BUS ROOM EXPECTED            print "ready", read from the start until EXPECTED events,
//                                     then print "events N checksum C order ok|<error>"
// Failpoints come from AGENTBUS_FAILPOINTS, set by the test.
#include <agentbus/agentbus.hpp>

#include <cstdio>
#include <map>
#include <string>

using namespace agentbus;
using namespace std::chrono_literals;

namespace {

int publish(Room& room, int producer, int count) {
  for (int seq = 0; seq < count; ++seq) {
    const std::string payload = std::to_string(producer) + ":" + std::to_string(seq);
    if (!room.publish("t", "p" + std::to_string(producer), payload).ok()) {
      std::printf("busfull after %d\n", seq);
      return 3;
    }
  }
  std::printf("published %d\n", count);
  return 0;
}

int tail(Room& room, long expected) {
  Subscription sub = room.subscribe({.from = StartFrom::earliest});
  std::printf("ready\n");
  std::fflush(stdout);
  std::map<long, long> next_seq;
  std::uint64_t checksum = 0;
  long events = 0;
  std::string error = "ok";
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (events < expected && std::chrono::steady_clock::now() < deadline) {
    ReadResult r = sub.next(100ms);
    if (r.status == ReadStatus::overrun) error = "overrun";
    if (!r.has_event()) continue;
    const std::string p(r.event.payload);
    const long producer = std::stol(p.substr(0, p.find(':')));
    const long seq = std::stol(p.substr(p.find(':') + 1));
    if (seq != next_seq[producer] && error == "ok")
      error = "producer " + std::to_string(producer) + " out of order at " + std::to_string(seq);
    next_seq[producer] = seq + 1;
    checksum += std::uint64_t(producer) * 1000003u + std::uint64_t(seq);
    ++events;
  }
  std::printf("events %ld checksum %llu order %s\n", events, static_cast<unsigned long long>(checksum),
              error.c_str());
  return events == expected && error == "ok" ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: agentbus-test-helper publish|tail BUS ROOM N [COUNT]\n");
    return 2;
  }
  try {
    const std::string mode = argv[1];
    Bus bus = Bus::open({.name = argv[2], .segment_bytes = 64ull << 20});
    Room room = bus.room(argv[3], {.ring_bytes = 4 << 20, .publish_timeout = 200ms});
    if (mode == "publish" && argc >= 6) return publish(room, std::stoi(argv[4]), std::stoi(argv[5]));
    if (mode == "tail") return tail(room, std::stol(argv[4]));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 2;
}
