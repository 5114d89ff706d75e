// agentbus/event.hpp — what a room holds: immutable events, and the plain values of publishing.
//
// An event's id is its position in the room's log: unique and strictly increasing in log
// order, but not contiguous (ids advance by the record's size). Ids are what `reply_to`,
// `subscribe(from id)` and the CLI print, and seeking to one is O(1).
//
// An id is only meaningful on the bus that assigned it, so every event also names its origin:
// the host id of the bus it was first published on and its id there. A local event's origin is
// this bus and its own id; an imported one (published by a bridge or `agentbus import`) keeps
// the origin it was published with, and the Redis stream id it arrived under.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace agentbus {

using EventId = std::uint64_t;

// Field limits enforced on publish (bytes).
inline constexpr std::size_t kMaxTypeBytes = 64;
inline constexpr std::size_t kMaxAgentBytes = 128;
// A host id: 1..64 bytes of [A-Za-z0-9._:-] (validate_host_id in names.hpp).
inline constexpr std::size_t kMaxHostIdBytes = 64;

// A Redis stream entry id, "<ms>-<seq>". 0-0 (empty) means "none".
struct StreamId {
  std::uint64_t ms = 0;
  std::uint64_t seq = 0;

  [[nodiscard]] bool empty() const noexcept { return ms == 0 && seq == 0; }
  [[nodiscard]] std::string to_string() const;
  // Exactly "<digits>-<digits>", each fitting 64 bits; anything else is nullopt.
  [[nodiscard]] static std::optional<StreamId> parse(std::string_view text);
  friend auto operator<=>(const StreamId&, const StreamId&) = default;
};

// An event named by where it was first published. OriginRef views, Origin owns.
struct OriginRef {
  std::string_view host;
  EventId id = 0;
  StreamId stream{};
};
struct Origin {
  std::string host;
  EventId id = 0;
  StreamId stream{};

  [[nodiscard]] OriginRef view() const noexcept { return {host, id, stream}; }
  [[nodiscard]] static Origin from(const OriginRef& r) { return {std::string(r.host), r.id, r.stream}; }
};

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
  OriginRef origin{};   // always set: for a local event, this bus's host id and `id`
  bool imported = false;  // first published on another bus (the record carries its origin)
  // The event this one answers, by origin, when the importer could not map it to a local id.
  std::optional<OriginRef> reply_to_origin{};

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
  Origin origin{};
  bool imported = false;
  std::optional<Origin> reply_to_origin{};

  [[nodiscard]] EventView view() const {
    return {id, ts_ns, type, agent, to, reply_to, payload, origin.view(), imported,
            reply_to_origin ? std::optional<OriginRef>(reply_to_origin->view()) : std::nullopt};
  }
};

inline Event EventView::to_owned() const {
  return {id, ts_ns, std::string(type), std::string(agent), std::string(to), reply_to,
          std::string(payload), Origin::from(origin), imported,
          reply_to_origin ? std::optional<Origin>(Origin::from(*reply_to_origin)) : std::nullopt};
}

// What publishing takes besides the event's fields, and what it returns: plain values the
// ring below the room works with too.
struct PublishOptions {
  std::string_view to{};             // directed to this agent; empty: broadcast
  std::optional<EventId> reply_to{}; // the event this one answers
  // For importers only (a bridge, `agentbus import`): the event's origin elsewhere, stored in
  // the record, and the event it answers when that has no local id. Hosts are validated.
  std::optional<OriginRef> origin{};
  std::optional<OriginRef> reply_to_origin{};
};

// One event of Room::publish_batch: the arguments of Room::publish in one value.
struct EventIn {
  std::string_view type;
  std::string_view agent;
  std::string_view payload;
  PublishOptions options{};
};

enum class PublishStatus { ok, bus_full };

struct PublishResult {
  PublishStatus status = PublishStatus::ok;
  EventId id = 0;
  [[nodiscard]] bool ok() const noexcept { return status == PublishStatus::ok; }
};

}  // namespace agentbus
