// output.hpp — how the agentbus CLI renders what it reads from a bus.
//
// Everything in a room was written by some other process and is untrusted. Text output is
// meant for a terminal, so it passes through sanitize_for_terminal(): a payload must not be
// able to recolour, retitle, clear or otherwise drive the reader's terminal. JSON output is
// meant for programs, so it is lossless where it can be and always valid JSON (one object per
// line), whatever bytes the payload holds.
//
// All functions here are pure (no I/O) so they can be unit-tested without a bus.
#pragma once

#include <agentbus/bus.hpp>
#include <agentbus/event.hpp>
#include <agentbus/event_json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::cli {

enum class Newlines { keep, to_space };

// Removes terminal escape sequences (ESC and 8-bit C1 introduced: CSI, OSC, DCS, SOS, PM, APC,
// and the short two- and three-byte forms) together with their parameters and string bodies,
// every other C0 control character, DEL and C1 controls (U+0080..U+009F), and the bidi
// override/isolate marks that can make text display in a different order than it reads.
// A tab becomes one space; '\n' is kept or turned into a space. Bytes that are not valid UTF-8
// (including overlong forms, which lenient terminals may decode as ESC) become U+FFFD, so the
// result is always valid UTF-8.
[[nodiscard]] std::string sanitize_for_terminal(std::string_view text,
                                                Newlines newlines = Newlines::to_space);

// `text` as a JSON string literal, quotes included. Control characters, DEL, C1 controls and
// U+2028/U+2029 are \u-escaped; invalid UTF-8 becomes U+FFFD.
[[nodiscard]] std::string json_string(std::string_view text);

// The payload as a JSON value, and ISO-8601 UTC with nanoseconds: the library's, which writes
// events as JSON lines for archives too (agentbus/event_json.hpp).
using agentbus::iso8601_utc;
using agentbus::payload_json;
// "10:15:30" in local time.
[[nodiscard]] std::string clock_local(std::int64_t ts_ns);

// Who sent an event, for text output: its agent, or "agent@host" when it was imported from
// another host (local senders stay as they were). Not sanitized.
[[nodiscard]] std::string sender(const EventView& event);
// One event, agentroom style: "<id> <HH:MM:SS> <type> <agent>\n" then indented "To:",
// "ReplyTo:" and payload lines. Ends with a newline.
[[nodiscard]] std::string event_text(const EventView& event);
// One event as a single-line JSON object, newline included (agentbus/event_json.hpp).
using agentbus::event_json;

// `agentbus info`: aligned human text, or one JSON object (newline included).
[[nodiscard]] std::string info_text(const BusInfo& info);
[[nodiscard]] std::string info_json(const BusInfo& info);

// ---- columns: widths in code points, which is good enough for sanitized text ----------------
[[nodiscard]] std::size_t display_width(std::string_view text);
// `text` followed by spaces up to `width` columns.
[[nodiscard]] std::string align_left(std::string text, std::size_t width);
// At most `max` code points; a cut ends with "…" (one of the `max`).
[[nodiscard]] std::string clip_to_width(std::string_view text, std::size_t max);
// Rows of cells, each line starting with `indent`, each column but the last padded to its
// widest cell plus two spaces.
[[nodiscard]] std::string aligned_table(const std::vector<std::vector<std::string>>& rows,
                                        std::string_view indent = "");

// A directory's name made to fit one segment of the room name grammar, for the repo part of
// agentroom's default room: bytes outside [A-Za-z0-9._-] become '-', one per character (not
// per UTF-8 byte); "default" when nothing usable is left.
[[nodiscard]] std::string repo_name_from_dir(std::string_view dir_name);

// 1536 -> "1.5 KiB".
[[nodiscard]] std::string human_bytes(std::uint64_t bytes);

}  // namespace agentbus::cli
