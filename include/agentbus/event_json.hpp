// agentbus/event_json.hpp — an event as one line of JSON: what `agentbus tail --json` prints,
// what the bridge's archiver writes to cold storage, and what `agentbus import` reads back.
//
// A line: {"id","ts","room","type","agent","to","reply_to","origin":{"host","id"},
// "stream_id" (imported events), "reply_to_origin" (when known only by origin), "payload"}.
// The payload is the payload itself when it is JSON, else a JSON string, so `jq .payload.x`
// works on JSON payloads.
#pragma once

#include <agentbus/event.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace agentbus {

// The payload as a JSON value: the payload itself (minified) when it is valid JSON, else the
// payload as a JSON string.
[[nodiscard]] std::string payload_json(std::string_view payload);

// "2026-11-23T10:15:30.123456789Z"
[[nodiscard]] std::string iso8601_utc(std::int64_t ts_ns);

// readable: payload_json() (tail --json). exact: the payload as-is only when it is already
// minified JSON other than a string, else a JSON string, so that reading the line back gives
// the payload's bytes (for archives; invalid UTF-8 still becomes U+FFFD).
enum class PayloadForm { readable, exact };

// One event as a single-line JSON object, newline included; "origin" always, "stream_id" for
// imported events, "reply_to_origin" when the event names the one it answers by origin.
[[nodiscard]] std::string event_json(const EventView& event, std::string_view room,
                                     PayloadForm form = PayloadForm::readable);

// What an event line holds that can be published again elsewhere. Its "id", "ts" and
// "reply_to" are ids and times of the bus that wrote it, meaningless on another.
struct EventLine {
  std::string room;
  std::string type;
  std::string agent;
  std::string to;
  std::string payload;  // a JSON string payload's text; any other JSON, minified
  Origin origin;        // with the stream id
  std::optional<Origin> reply_to_origin;
};

struct ParsedEventLine {
  // not_event: no "stream_id" and "origin" (a status entry, say); malformed: `why` says how.
  enum class Kind { not_event, event, malformed } kind = Kind::not_event;
  EventLine event;
  std::string why;
};

// A line with "stream_id" and "origin" is an event line; checked as untrusted input.
[[nodiscard]] ParsedEventLine parse_event_line(std::string_view json);

}  // namespace agentbus
