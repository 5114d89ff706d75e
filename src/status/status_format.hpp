// The bytes of a status entry: ISO-8601 timestamps, metadata
// canonicalisation, and the one function that lays out the payload (see status_bus.hpp).
#pragma once

#include <agentbus/status_bus.hpp>

#include <agentbus/json_text.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace agentbus::status {

using util::append_json_string;  // src/util/json_text.hpp

// Appends "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" for `ts_ns` (UTC; per-thread cache of the second).
void append_iso8601(std::string& out, std::int64_t ts_ns);
// ISO-8601 date-time with optional fraction and "Z" or a ±HH:MM offset, to UTC nanoseconds.
[[nodiscard]] std::optional<std::int64_t> parse_iso8601(std::string_view text) noexcept;

// `metadata` (empty means {}) as a minified JSON object; false (with `why`) if it is not one.
bool canonical_metadata(std::string_view metadata, std::string& out, std::string& why);

// Appends the canonical payload. `metadata` must already be canonical.
void append_entry_json(std::string& out, std::string_view ts, std::string_view agent_id,
                       std::string_view action, StatusLevel status, std::string_view detail,
                       std::string_view metadata);

// Cuts `text` to at most `max` bytes without splitting a UTF-8 sequence.
[[nodiscard]] std::string_view utf8_prefix(std::string_view text, std::size_t max) noexcept;

}  // namespace agentbus::status
