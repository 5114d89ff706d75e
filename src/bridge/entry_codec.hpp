// bridge/entry_codec.hpp — an event as a Redis stream entry, and back.
//
// Fields, with agentroom's names where the two overlap (so agentroom's readers see our events):
//   type, agent_id, to (left out for a broadcast), reply_to (the replied entry's stream id;
//   left out when there is none), payload, timestamp (unix ns, decimal)
// and ours: origin_host, origin_id (where the event was first published and its id there) and,
// for a reply, reply_to_host + reply_to_id (the origin of the event it answers, which resolves
// on every host while a stream id may have been trimmed); task = 1 on a task (left out otherwise).
//
// Decoding treats Redis as untrusted: anything another client wrote is input. An entry with a
// missing, wrongly typed, malformed, duplicated or oversized field is rejected with a reason,
// never a crash; fields we do not know (agentroom's agent_handle, session_id) are ignored.
#pragma once

#include "bridge/redis_reply.hpp"

#include <agentbus/event.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::bridge {

// Where an event was first published: its host and its id in that host's room.
struct EntryOrigin {
  std::string host;
  EventId id = 0;
  bool operator==(const EntryOrigin&) const = default;
};

struct StreamEvent {
  std::string type;
  std::string agent;
  std::string to;
  std::string payload;
  std::int64_t ts_ns = 0;
  EntryOrigin origin;
  std::optional<EntryOrigin> reply_to_origin;
  std::optional<std::string> reply_to;  // the replied entry's stream id ("<ms>-<seq>")
  bool task = false;  // a task on its host's board (its type is in the room's catalog there)
  bool operator==(const StreamEvent&) const = default;
};

// More fields than any entry of ours or agentroom's has: the rest is rejected unread.
inline constexpr std::size_t kMaxEntryFields = 64;

// XADD's field/value arguments, flat: name, value, name, value, ...
// By value: a caller that passes a temporary has its strings moved, not copied (hot path).
[[nodiscard]] std::vector<std::string> encode_entry(StreamEvent event);

struct DecodedEntry {
  std::optional<StreamEvent> event;  // set when accepted
  std::string rejection;             // why not, otherwise
  [[nodiscard]] bool ok() const noexcept { return event.has_value(); }
};

// The entry's origin_host, without decoding the rest (echoes are skipped before they cost more).
[[nodiscard]] std::optional<std::string_view> entry_origin_host(ReplyView fields);

// The field/value array of one entry (XRANGE's entry[1]). payload_limit: the local room's.
[[nodiscard]] DecodedEntry decode_entry_fields(ReplyView fields, std::size_t payload_limit);

}  // namespace agentbus::bridge
