// hook_digest.hpp — the pure parts of `agentbus hook` (Claude Code hooks) and `agentbus
// welcome`: parsing the hook's stdin, the per-session cursor record, and the text the hooks
// put into the agent's context. No I/O here, so all of it is unit-tested without a bus
// (tests/cli/hook_test.cpp); hook_run.cpp and commands_welcome.cpp do the reading and writing.
//
// Everything a hook prints was written by other agents and is untrusted: each piece passes
// through sanitize_for_terminal(), is cut to one line, and is quoted with a leading "| " under
// a header that says it is data, not instructions. Only the hook's own framing lines are not
// quoted, so a payload can never produce a line that looks like agentbus speaking.
#pragma once

#include <agentbus/event.hpp>
#include <agentbus/inbox.hpp>
#include <agentbus/presence.hpp>
#include <agentbus/tasks.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::cli {

// At most this many events in a digest or a delta (the newest ones), agentroom's limit.
inline constexpr std::size_t kHookMaxEvents = 20;
// Payloads and other free text are cut to this many code points.
inline constexpr std::size_t kHookMaxText = 120;
// Scratchpad key of the pinned lobby welcome (no TTL).
inline constexpr std::string_view kWelcomeKey = "lobby:welcome";
// Longest welcome text accepted.
inline constexpr std::size_t kMaxWelcomeBytes = 4096;
// Cursor records expire after this long without a hook call (agentroom's CursorTTL).
inline constexpr std::chrono::hours kCursorTtl{24};

// What Claude Code writes on a hook's stdin (the fields agentbus uses).
struct HookInput {
  std::string session_id;
  std::string cwd;
  std::string hook_event_name;
  std::string prompt;
  std::string reason;  // SessionEnd: why it ended ("clear", "logout", "prompt_input_exit", ...)
  std::string source;  // SessionStart: "startup", "resume", "clear", "compact"
};

// nullopt unless `json` is a JSON object with a non-empty string "session_id" (at most 256
// bytes). Other fields are optional; wrongly typed ones are ignored.
[[nodiscard]] std::optional<HookInput> parse_hook_input(std::string_view json);

// Scratchpad key of a session's cursor record: "hook:cursor:<session id>" when the id is 1..64
// bytes of [A-Za-z0-9._-] (Claude's UUIDs are), else "hook:cursor:h<16 hex digits of FNV-1a>".
[[nodiscard]] std::string session_key(std::string_view session_id);

// The repo part of a room name from a working directory: its last path component, made to fit
// the name grammar as `default_repo()` does ("default" when nothing is left).
[[nodiscard]] std::string repo_from_path(std::string_view path);

// What a session has seen, kept in the room's scratchpad under session_key() with a 24 h TTL.
struct SessionRecord {
  EventId cursor = 0;            // the next event id the session has not seen
  std::uint64_t inbox_seq = 0;   // the last inbox message shown to it
  std::int64_t started_ns = 0;   // when session-start (or the first hook) ran
  std::uint64_t seen = 0;        // events and messages shown to it so far
  std::string agent;             // the agent id it acts as, when known
};
[[nodiscard]] std::string encode_record(const SessionRecord& record);
// nullopt for anything that is not a record encode_record() wrote.
[[nodiscard]] std::optional<SessionRecord> decode_record(std::string_view text);

// True when `event_agent` is `self` itself or `self` qualified with a session token
// ("fixer" matches "fixer" and "fixer-3f9a0c12"). An empty `self` matches nothing.
[[nodiscard]] bool is_own_agent(std::string_view event_agent, std::string_view self);

// Sanitized, single line, at most `max` code points (a cut ends with "…").
[[nodiscard]] std::string hook_clip(std::string_view text, std::size_t max = kHookMaxText);

// One quoted line for an event: "| <id> <HH:MM:SS> <type> <agent>[ -> <to>]: <payload>".
[[nodiscard]] std::string hook_event_line(const Event& event);

// Everything a hook may show, gathered by hook_run.cpp.
struct HookDigest {
  std::string room;
  std::string self;                   // the session's agent id; empty when unknown
  bool signed_in = false;             // self is present in the room
  std::optional<std::string> welcome; // the pinned lobby welcome
  std::vector<AgentInfo> agents;      // present agents
  std::vector<TaskState> open_tasks;
  std::size_t open_total = 0;
  std::vector<TaskState> claimed;     // live claims
  std::vector<InboxMessage> inbox;    // new inbox messages for self, oldest first
  std::vector<Event> events;          // the newest events to show (at most kHookMaxEvents)
  std::uint64_t events_total = 0;     // new events in all (events.size() plus those left out)
  std::uint64_t missed = 0;           // events lost because the ring lapped the cursor
  std::chrono::milliseconds join_window{0};
};

// SessionStart's digest: framing, sign-in nudge, welcome, who is here, tasks, inbox, and the
// events of the join window. Never empty.
[[nodiscard]] std::string session_start_text(const HookDigest& digest);
// UserPromptSubmit's delta: the new events and inbox messages; empty when there are none.
[[nodiscard]] std::string delta_text(const HookDigest& digest);

// {"hookSpecificOutput":{"hookEventName":<event>,"additionalContext":<context>}} and '\n'.
[[nodiscard]] std::string hook_output(std::string_view event_name, std::string_view context);

// The JSON payload of SESSION_ENDED.
[[nodiscard]] std::string session_ended_payload(const HookInput& input, const std::optional<SessionRecord>& record,
                                                std::int64_t now_ns);

// The lobby greeting `agentbus welcome` pins when given no text.
[[nodiscard]] std::string default_welcome(std::string_view room);

}  // namespace agentbus::cli
