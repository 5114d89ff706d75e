#include "bridge/link.hpp"

namespace agentbus::bridge {

void Retry::failed() {
  std::uniform_int_distribution<long> jitter(delay_.count() / 2, delay_.count() * 3 / 2);
  next_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(jitter(rng_));
  delay_ = std::min(delay_ * 2, kMax);
}

Link::Link(RedisTarget target, std::chrono::milliseconds timeout, BusState& state, LogLine log)
    : target_(std::move(target)), timeout_(timeout), state_(state), log_(std::move(log)) {}

std::optional<RedisConnection> Link::connect(Retry& retry) {
  if (!retry.due()) return std::nullopt;
  try {
    RedisConnection c = RedisConnection::connect(target_, timeout_);
    retry.succeeded();
    std::lock_guard lock(mutex_);
    if (!up_) {
      up_ = true;
      state_.connected.store(1, std::memory_order_relaxed);
      log_("connected to Redis at " + target_.where() + " again; shipping the spool");
    }
    return c;
  } catch (const Error& e) {
    retry.failed();
    lost(e.what());
    return std::nullopt;
  }
}

void Link::lost(std::string_view why) {
  std::lock_guard lock(mutex_);
  set_last_error(state_, why);
  if (!up_) return;
  up_ = false;
  state_.connected.store(0, std::memory_order_relaxed);
  state_.reconnects.fetch_add(1, std::memory_order_relaxed);
  log_("lost Redis at " + target_.where() + " (" + std::string(why) +
       "); local publishing goes on, outgoing events go to the spool, retrying with backoff");
}

void Link::log(std::string_view line) {
  std::lock_guard lock(mutex_);
  log_(line);
}

}  // namespace agentbus::bridge
