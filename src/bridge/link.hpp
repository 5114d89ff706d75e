// Link: the bridge's threads' shared view of Redis: where it is, reconnecting with backoff
// and jitter, and one voice for its state, so that a change is logged once, not per thread or
// per retry, and the bus's bridge state (agentbus-bridge status) says whether Redis answers.
#pragma once

#include "coord/bridge_state.hpp"
#include "bridge/redis_connection.hpp"

#include <agentbus/bridge/redis_target.hpp>

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace agentbus::bridge {

using LogLine = std::function<void(std::string_view)>;

// One thread's reconnect schedule: 100 ms doubling to 5 s, each wait jittered by ±50 %, so
// that bridges that lost Redis together do not all come back in the same millisecond.
class Retry {
 public:
  [[nodiscard]] bool due() const { return std::chrono::steady_clock::now() >= next_; }
  void failed();
  void succeeded() { delay_ = kFirst; next_ = {}; }
  [[nodiscard]] std::chrono::steady_clock::time_point next() const { return next_; }

 private:
  static constexpr std::chrono::milliseconds kFirst{100}, kMax{5000};
  std::chrono::milliseconds delay_ = kFirst;
  std::chrono::steady_clock::time_point next_{};
  std::minstd_rand rng_{std::random_device{}()};
};

class Link {
 public:
  Link(RedisTarget target, std::chrono::milliseconds timeout, BusState& state, LogLine log);

  // A new connection, or nothing (Redis away; logged once). Only when `retry` is due.
  [[nodiscard]] std::optional<RedisConnection> connect(Retry& retry);
  // A thread's connection broke or Redis refused it: logged once per outage.
  void lost(std::string_view why);
  void log(std::string_view line);

  [[nodiscard]] const RedisTarget& target() const noexcept { return target_; }
  [[nodiscard]] std::chrono::milliseconds timeout() const noexcept { return timeout_; }
  [[nodiscard]] BusState& state() noexcept { return state_; }

 private:
  RedisTarget target_;
  std::chrono::milliseconds timeout_;
  BusState& state_;
  LogLine log_;
  std::mutex mutex_;
  bool up_ = true;  // as last said: the first failure is news, the first success after it too
};

}  // namespace agentbus::bridge
