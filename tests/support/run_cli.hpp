// Runs the CLI under test as a separate process on a test bus, room "r".
#pragma once

#include "support/child_process.hpp"
#include "support/expect.hpp"
#include "support/test_bus.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace agentbus::test {

// Returns the exit code (-1 if it did not finish in time) and fills `out` with stdout up to
// its first blank line.
inline int run_cli(const TestBus& bus, std::vector<std::string> args, std::string* out = nullptr) {
  using namespace std::chrono_literals;
  std::vector<std::string> argv{cli(), "--bus", bus.name(), "--room", "r"};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(argv);
  std::string all;
  for (std::string line; !(line = p.read_line(10s)).empty();) all += line + "\n";
  if (out) *out = all;
  return p.wait(10s);
}

}  // namespace agentbus::test
