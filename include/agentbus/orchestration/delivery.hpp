// agentbus/orchestration/delivery.hpp — when a message reaches a busy agent (RoomKit's
// delivery strategies), e.g. a delegated task's result for an agent still in the middle of a
// step.
//
// Every strategy delivers through the recipient's inbox in the room (inbox.hpp), so nothing
// is dropped; they differ in *when*:
//  * Immediate: now.
//  * WaitForIdle(buffer, timeout): once the recipient's presence says it is idle, plus
//    `buffer`; past `timeout` it delivers anyway and says so in the report (timed_out, note).
//  * Queued(buffer, timeout, separator): appends to a queue per (room, recipient). The call
//    that finds no delivery under way waits for idle like WaitForIdle, then drains the queue
//    into ONE message joined with `separator`; a call that finds one under way returns at
//    once (queued) and its content rides along.
// Idle: the recipient is present in the room (presence.hpp: its qualified handle, or the one
// live agent with that short handle) with an empty working_on, or is not present at all (an
// absent agent is busy with nothing; it reads its inbox when it returns). Presence changes of
// working_on publish no event, so waiting polls it every 5 ms (bounded by the timeout).
// Thread safety: a strategy may be used from several threads at once.
#pragma once

#include <agentbus/event.hpp>
#include <agentbus/room.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agentbus::orchestration {

inline constexpr std::string_view kDeliveryEvent = "DELIVERY";

struct DeliveryContext {
  Room room;
  std::string from;
  std::string to;
  std::string content;
  std::string type{kDeliveryEvent};
};

struct DeliveryReport {
  bool delivered = false;       // a message was sent by this call
  bool queued = false;          // Queued: left for the delivery under way
  bool timed_out = false;       // WaitForIdle/Queued: the recipient stayed busy; sent anyway
  std::size_t joined = 0;       // contents in the message sent (Queued: > 1 when joined)
  std::optional<EventId> id;    // the message's event id
  std::string note;             // e.g. "agent 'x' still busy after 15000 ms: delivered anyway"
};

class DeliveryStrategy {
 public:
  virtual ~DeliveryStrategy() = default;
  virtual DeliveryReport deliver(const DeliveryContext& context) = 0;
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
};

class Immediate : public DeliveryStrategy {
 public:
  DeliveryReport deliver(const DeliveryContext& context) override;
  [[nodiscard]] std::string_view name() const noexcept override { return "immediate"; }
};

class WaitForIdle : public DeliveryStrategy {
 public:
  explicit WaitForIdle(std::chrono::milliseconds buffer = std::chrono::seconds(1),
                       std::chrono::milliseconds timeout = std::chrono::seconds(15));
  DeliveryReport deliver(const DeliveryContext& context) override;
  [[nodiscard]] std::string_view name() const noexcept override { return "wait_for_idle"; }

 private:
  std::chrono::milliseconds buffer_, timeout_;
};

class Queued : public DeliveryStrategy {
 public:
  explicit Queued(std::chrono::milliseconds buffer = std::chrono::seconds(1),
                  std::chrono::milliseconds timeout = std::chrono::seconds(15), std::string separator = "\n\n");
  DeliveryReport deliver(const DeliveryContext& context) override;
  [[nodiscard]] std::string_view name() const noexcept override { return "queued"; }
  // Contents waiting for (room, to).
  [[nodiscard]] std::size_t queued(std::string_view room, std::string_view to) const;

 private:
  struct Target {
    std::vector<std::string> items;
    bool delivering = false;
  };
  std::chrono::milliseconds buffer_, timeout_;
  std::string separator_;
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, Target> targets_;
};

// "immediate" | "wait_for_idle" | "queued" with the defaults above. Throws
// Error{invalid_argument} "unknown delivery strategy 'x' (expected immediate, wait_for_idle or
// queued)" for anything else.
[[nodiscard]] std::shared_ptr<DeliveryStrategy> resolve_strategy(std::string_view name);

// Whether `agent` is idle in `room` (see above).
[[nodiscard]] bool agent_idle(const Room& room, std::string_view agent);

}  // namespace agentbus::orchestration
