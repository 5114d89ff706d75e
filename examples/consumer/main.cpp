// The smallest agentbus program: publish one event into a room and read it back through a
// subscription. Built out-of-tree against the installed package (see CMakeLists.txt, or
// `c++ -std=c++20 main.cpp $(pkg-config --cflags --libs agentbus)`); scripts/check-install.sh
// builds and runs it both ways.
//
// Usage: agentbus-consumer [BUS]   (default: a bus of its own, destroyed at the end)
#include <agentbus/agentbus.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <unistd.h>

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  const std::string bus_name = argc > 1 ? argv[1] : "consumer-example-" + std::to_string(::getpid());
  try {
    agentbus::BusOptions options;
    options.name = bus_name;
    agentbus::Bus bus = agentbus::Bus::open(options);
    agentbus::Room room = bus.room("example/main");

    // Subscribed from the current end first, so the event published next is the one read.
    agentbus::Subscription sub = room.subscribe({.from = agentbus::StartFrom::latest});
    const agentbus::PublishResult sent = room.publish("greeting", "consumer", R"({"hello":"bus"})");
    if (!sent.ok()) {
      std::fprintf(stderr, "error: room is full\n");
      return 1;
    }
    const agentbus::ReadResult got = sub.next(5s);
    const bool ok = got.status == agentbus::ReadStatus::event && got.event.id == sent.id &&
                    got.event.payload == R"({"hello":"bus"})";
    if (ok)
      std::printf("read event %llu %.*s from %.*s: %.*s\n", static_cast<unsigned long long>(got.event.id),
                  static_cast<int>(got.event.type.size()), got.event.type.data(),
                  static_cast<int>(got.event.agent.size()), got.event.agent.data(),
                  static_cast<int>(got.event.payload.size()), got.event.payload.data());
    else
      std::fprintf(stderr, "error: did not read back event %llu\n", static_cast<unsigned long long>(sent.id));
    if (argc <= 1) agentbus::Bus::destroy(bus_name);
    return ok ? 0 : 1;
  } catch (const agentbus::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
