// agentbus/event.hpp — what a room holds: immutable events, and the plain values of publishing.
//
// An event's id is its position in the room's log: unique and strictly increasing in log
// order, but not contiguous (ids advance by the record's size). Ids are what `reply_to`,
// `subscribe(from id)` and the CLI print, and seeking to one is O(1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace agentbus {

using EventId = std::uint64_t;

// Field limits enforced on publish (bytes).
inline constexpr std::size_t kMaxTypeBytes = 64;
inline constexpr std::size_t kMaxAgentBytes = 128;

struct Event;

// A zero-copy view of one event. Valid until the Subscription that produced it advances
// (the next call to next()) or is destroyed; call to_owned() to keep it longer.
struct EventView {
  EventId id = 0;
  std::int64_t ts_ns = 0;  // CLOCK_REALTIME at publish, nanoseconds since the Unix epoch
  std::string_view type;
  std::string_view agent;
  std::string_view to;     // empty: broadcast
  std::optional<EventId> reply_to;
  std::string_view payload;

  [[nodiscard]] Event to_owned() const;
};

struct Event {
  EventId id = 0;
  std::int64_t ts_ns = 0;
  std::string type;
  std::string agent;
  std::string to;
  std::optional<EventId> reply_to;
  std::string payload;

  [[nodiscard]] EventView view() const {
    return {id, ts_ns, type, agent, to, reply_to, payload};
  }
};

inline Event EventView::to_owned() const {
  return {id, ts_ns, std::string(type), std::string(agent), std::string(to), reply_to,
          std::string(payload)};
}

// What publishing takes besides the event's fields, and what it returns: plain values the
// ring below the room works with too.
struct PublishOptions {
  std::string_view to{};             // directed to this agent; empty: broadcast
  std::optional<EventId> reply_to{}; // the event this one answers
};

enum class PublishStatus { ok, bus_full };

struct PublishResult {
  PublishStatus status = PublishStatus::ok;
  EventId id = 0;
  [[nodiscard]] bool ok() const noexcept { return status == PublishStatus::ok; }
};

}  // namespace agentbus
