// Delivery strategies: Immediate, WaitForIdle and Queued over the recipient's inbox, with
// idleness read from the room's presence table.
#include <agentbus/error.hpp>
#include <agentbus/inbox.hpp>
#include <agentbus/orchestration/delivery.hpp>
#include <agentbus/presence.hpp>

#include <thread>

namespace agentbus::orchestration {

namespace {

constexpr auto kIdlePoll = std::chrono::milliseconds(5);

DeliveryReport send_now(const DeliveryContext& c, std::string_view content, std::size_t joined) {
  DeliveryReport r;
  r.id = Inbox(c.room).send(c.from, c.to, c.type, content);
  r.delivered = true;
  r.joined = joined;
  return r;
}

// Waits until `to` is idle, then `buffer` more; false when `timeout` passed first.
bool wait_idle(const DeliveryContext& c, std::chrono::milliseconds buffer, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!agent_idle(c.room, c.to)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kIdlePoll);  // working_on changes publish nothing to wait on
  }
  std::this_thread::sleep_for(buffer);
  return true;
}

std::string busy_note(const DeliveryContext& c, std::chrono::milliseconds timeout) {
  return "agent '" + c.to + "' still busy after " + std::to_string(timeout.count()) + " ms: delivered anyway";
}

}  // namespace

bool agent_idle(const Room& room, std::string_view agent) {
  const auto live = Presence(room).who();
  const AgentInfo* match = nullptr;
  std::size_t short_matches = 0;
  for (const auto& a : live) {
    if (a.handle == agent) return a.working_on.empty();
    // A short handle: the qualified one is "<handle>-<session token>".
    if (a.handle.size() > agent.size() + 1 && a.handle.compare(0, agent.size(), agent) == 0 &&
        a.handle[agent.size()] == '-' && a.handle.find('-', agent.size() + 1) == std::string::npos) {
      match = &a;
      ++short_matches;
    }
  }
  if (short_matches == 1) return match->working_on.empty();
  if (short_matches > 1) {
    for (const auto& a : live)
      if (a.handle.compare(0, agent.size(), agent) == 0 && !a.working_on.empty()) return false;
  }
  return true;
}

DeliveryReport Immediate::deliver(const DeliveryContext& c) { return send_now(c, c.content, 1); }

WaitForIdle::WaitForIdle(std::chrono::milliseconds buffer, std::chrono::milliseconds timeout)
    : buffer_(buffer), timeout_(timeout) {
  if (buffer < std::chrono::milliseconds(0) || timeout < std::chrono::milliseconds(0))
    throw Error(Errc::invalid_argument, "delivery buffer and timeout must not be negative");
}

DeliveryReport WaitForIdle::deliver(const DeliveryContext& c) {
  const bool idle = wait_idle(c, buffer_, timeout_);
  DeliveryReport r = send_now(c, c.content, 1);
  if (!idle) {
    r.timed_out = true;
    r.note = busy_note(c, timeout_);
  }
  return r;
}

Queued::Queued(std::chrono::milliseconds buffer, std::chrono::milliseconds timeout, std::string separator)
    : buffer_(buffer), timeout_(timeout), separator_(std::move(separator)) {
  if (buffer < std::chrono::milliseconds(0) || timeout < std::chrono::milliseconds(0))
    throw Error(Errc::invalid_argument, "delivery buffer and timeout must not be negative");
}

std::size_t Queued::queued(std::string_view room, std::string_view to) const {
  std::lock_guard lock(mutex_);
  const auto it = targets_.find({std::string(room), std::string(to)});
  return it == targets_.end() ? 0 : it->second.items.size();
}

DeliveryReport Queued::deliver(const DeliveryContext& c) {
  const std::pair<std::string, std::string> key{c.room.name(), c.to};
  {
    std::lock_guard lock(mutex_);
    Target& t = targets_[key];
    t.items.push_back(c.content);
    if (t.delivering) {
      DeliveryReport r;
      r.queued = true;
      return r;
    }
    t.delivering = true;
  }
  bool idle = false;
  try {
    idle = wait_idle(c, buffer_, timeout_);
  } catch (...) {
    std::lock_guard lock(mutex_);
    targets_[key].delivering = false;
    throw;
  }
  std::vector<std::string> items;
  {
    std::lock_guard lock(mutex_);
    Target& t = targets_[key];
    items.swap(t.items);
    t.delivering = false;
  }
  std::string joined;
  for (std::size_t i = 0; i < items.size(); ++i) joined += (i ? separator_ : "") + items[i];
  DeliveryReport r = send_now(c, joined, items.size());
  if (!idle) {
    r.timed_out = true;
    r.note = busy_note(c, timeout_);
  }
  return r;
}

std::shared_ptr<DeliveryStrategy> resolve_strategy(std::string_view name) {
  if (name == "immediate") return std::make_shared<Immediate>();
  if (name == "wait_for_idle") return std::make_shared<WaitForIdle>();
  if (name == "queued") return std::make_shared<Queued>();
  throw Error(Errc::invalid_argument,
              "unknown delivery strategy '" + std::string(name) + "' (expected immediate, wait_for_idle or queued)");
}

}  // namespace agentbus::orchestration
