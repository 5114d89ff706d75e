// status-test-writer BUS ROOM PATH COUNT: a process persisting a room's status entries to PATH
// (StatusBus persist_path) while posting COUNT entries "e<i>" itself. Prints "ready" once the
// durable reader is attached, "posted" when done, then closes (writing everything) and exits.
// The JSONL tests kill -9 it at arbitrary points.
#include <agentbus/agentbus.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: status-test-writer BUS ROOM PATH COUNT\n");
    return 2;
  }
  agentbus::BusOptions bo;
  bo.name = argv[1];
  bo.segment_bytes = 64ull << 20;
  agentbus::Bus bus = agentbus::Bus::open(bo);
  agentbus::StatusBusOptions so;
  so.persist_path = argv[3];
  agentbus::StatusBus status(bus.room(argv[2]), so);
  std::printf("ready\n");
  std::fflush(stdout);
  const long count = std::atol(argv[4]);
  for (long i = 0; i < count; ++i) {
    const std::string detail = "entry number " + std::to_string(i);
    if (!status.post("writer", "e" + std::to_string(i), "ok", detail, R"({"i":)" + std::to_string(i) + "}").ok())
      return 1;
  }
  std::printf("posted\n");
  std::fflush(stdout);
  status.close();
  return 0;
}
