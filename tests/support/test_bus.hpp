// A bus with a unique name for one test, destroyed when the test ends.
#pragma once

#include <agentbus/bus.hpp>

#include <atomic>
#include <string>
#include <unistd.h>

namespace agentbus::test {

inline std::string unique_bus_name(const std::string& tag) {
  static std::atomic<int> counter{0};
  return "t-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

// A unique name for a bus the test itself does not open (CLI tests: the binary creates it, or
// must not), with any leftover of that name removed. The test destroys it in TearDown.
inline std::string fresh_bus_name(const std::string& tag) {
  std::string name = unique_bus_name(tag);
  Bus::destroy(name);
  return name;
}

class TestBus {
 public:
  explicit TestBus(const std::string& tag = "bus", BusOptions options = {})
      : name_(unique_bus_name(tag)) {
    options.name = name_;
    options.segment_bytes = options.segment_bytes == BusOptions{}.segment_bytes ? 64ull << 20
                                                                                 : options.segment_bytes;
    bus_ = std::make_unique<Bus>(Bus::open(options));
  }
  ~TestBus() { Bus::destroy(name_); }
  TestBus(const TestBus&) = delete;
  TestBus& operator=(const TestBus&) = delete;

  Bus& operator*() { return *bus_; }
  Bus* operator->() { return bus_.get(); }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::unique_ptr<Bus> bus_;
};

}  // namespace agentbus::test
