// agentbus-test-helper: the other process in multi-process tests.
//   publish BUS ROOM PRODUCER COUNT   publish "<producer>:<seq>" COUNT times; exit 3 on BusFull
//   publish-exclusive BUS ROOM PRODUCER COUNT   the same through Room::exclusive_publisher()
//                                     (both: with AGENTBUS_HELPER_GO=<file>, print "ready" and
//                                     start once that file exists)
//   tail BUS ROOM EXPECTED            print "ready", read from the start until EXPECTED events,
//                                     then print "events N checksum C order ok|<error>"
//   group-worker BUS ROOM GROUP MEMBER OUTFILE [CRASH_ON]
//                                     join GROUP as MEMBER, print "ready", then process events
//                                     until SIGTERM: the work appends "<id> <payload>\n" to
//                                     OUTFILE; an event whose payload is CRASH_ON kills the
//                                     worker (SIGKILL) before any work
// Failpoints come from AGENTBUS_FAILPOINTS, set by the test.
#include <agentbus/agentbus.hpp>

#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <fcntl.h>
#include <map>
#include <optional>
#include <string>
#include <unistd.h>

using namespace agentbus;
using namespace std::chrono_literals;

namespace {

// With AGENTBUS_HELPER_GO=<path>: print "ready", then wait (at most 10 s) until the file exists,
// so that a test can start several publishers at the same instant.
void wait_for_go() {
  const char* go = std::getenv("AGENTBUS_HELPER_GO");
  if (go == nullptr) return;
  std::printf("ready\n");
  std::fflush(stdout);
  for (int i = 0; i < 10000 && ::access(go, F_OK) != 0; ++i) ::usleep(1000);
}

int publish(Room& room, int producer, int count, bool exclusive = false) {
  std::optional<ExclusivePublisher> ex;
  if (exclusive) ex.emplace(room.exclusive_publisher());
  wait_for_go();
  for (int seq = 0; seq < count; ++seq) {
    const std::string payload = std::to_string(producer) + ":" + std::to_string(seq);
    const std::string agent = "p" + std::to_string(producer);
    if (!(ex ? ex->publish("t", agent, payload) : room.publish("t", agent, payload)).ok()) {
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

volatile std::sig_atomic_t g_stop = 0;

int group_worker(Room& room, const std::string& group, const std::string& member, const std::string& outfile,
                 const std::string& crash_on) {
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  const int fd = ::open(outfile.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0) return 1;
  ConsumerGroup g(room, group, member);
  std::printf("ready\n");
  std::fflush(stdout);
  const pid_t parent = ::getppid();
  while (g_stop == 0 && ::getppid() == parent) {  // a test killed mid-way leaves no worker behind
    g.process(50ms, [&](const Event& e) {
      if (!crash_on.empty() && e.payload == crash_on) std::raise(SIGKILL);
      const std::string line = std::to_string(e.id) + " " + e.payload + "\n";
      if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) throw std::runtime_error("write");
    });
  }
  ::close(fd);
  return 0;
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
    if (mode == "publish-exclusive" && argc >= 6) return publish(room, std::stoi(argv[4]), std::stoi(argv[5]), true);
    if (mode == "tail") return tail(room, std::stol(argv[4]));
    if (mode == "group-worker" && argc >= 7)
      return group_worker(room, argv[4], argv[5], argv[6], argc >= 8 ? argv[7] : "");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 2;
}
