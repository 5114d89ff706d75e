// Small test helpers shared by the coordination tests: the CLI under test, an expected
// agentbus::Error, and a bounded wait for a condition (never a bare sleep as synchronisation).
#pragma once

#include <agentbus/error.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

namespace agentbus::test {

// The `agentbus` binary the tests run ($AGENTBUS_CLI, set by CTest).
inline std::string cli() {
  const char* p = std::getenv("AGENTBUS_CLI");
  return p != nullptr ? p : "agentbus";
}

// Runs `f` and expects it to throw agentbus::Error with `code` and a message containing `text`.
template <class F>
void expect_error(F&& f, Errc code, const std::string& text) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing '" << text << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

// Polls `done` until it holds or `within` passes; returns whether it held.
template <class F>
bool eventually(F&& done, std::chrono::milliseconds within = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return done();
}

}  // namespace agentbus::test
