// Runs the CLI under test as a separate process on a test bus, room "r".
#pragma once

#include "support/child_process.hpp"
#include "support/expect.hpp"
#include "support/test_bus.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace agentbus::test {

// Returns the exit code (-1 if it did not finish in time) and fills `out` with all of stdout.
inline int run_cli(const TestBus& bus, std::vector<std::string> args, std::string* out = nullptr) {
  using namespace std::chrono_literals;
  std::vector<std::string> argv{cli(), "--bus", bus.name(), "--room", "r"};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(argv);
  std::string all = p.read_all(10s);
  if (out) *out = std::move(all);
  return p.wait(10s);
}

}  // namespace agentbus::test
