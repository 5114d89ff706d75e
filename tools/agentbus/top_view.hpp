// top_view.hpp — the screen of `agentbus top`, as pure functions: a snapshot of the bus goes
// in, the lines to draw come out. commands_top.cpp takes the snapshots and draws the lines
// with ncurses (or prints them once with --once); tests/cli/top_test.cpp tests these.
//
// Everything shown that other processes wrote (room names, agent handles, roles, task types,
// status fields) passes through sanitize_for_terminal() and is cut to fit the screen.
#pragma once

#include <agentbus/event.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::cli {

// Status lines kept per room.
inline constexpr std::size_t kTopStatusLines = 5;

struct TopReader {
  std::string name;            // durable name ("group.NAME": a consumer group's gate), or "tailer"
  bool durable = false;
  bool alive = false;          // held by a live process (a group's gate never is)
  std::uint64_t lag_bytes = 0;
};

struct TopAgent {
  std::string handle;
  std::string role;
  std::string working_on;
};

struct TopTask {
  EventId id = 0;
  std::string type;
  std::string claimant;
};

struct TopRoom {
  std::string name;
  std::size_t ring_bytes = 0;
  EventId tail = 0;
  EventId oldest = 0;
  // Events per second counted by top's own tailer since the previous refresh; nullopt before
  // the first interval has been measured (and with --once).
  std::optional<double> rate;
  std::vector<TopReader> readers;  // other processes' readers (top's own tailer is left out)
  std::vector<TopAgent> agents;
  std::size_t open_tasks = 0;
  std::vector<TopTask> claimed;
  std::vector<std::string> status;  // latest status lines, oldest first, at most kTopStatusLines
};

struct TopSnapshot {
  std::string bus;
  bool live = false;  // drawn on a terminal that takes keys (not --once): the header says "q quits"
  std::int64_t now_ns = 0;
  std::vector<TopRoom> rooms;
  bool bus_found = true;  // false: no bus of that name (yet)
  std::string note;  // a problem to show on the last line (e.g. a room that could not be read)
  std::string bridge;  // the Redis bridge's state in one line (bridge_line()), empty when none ran
  std::vector<std::string> runs;  // active orchestration runs, one line each (run_line())
};

// An orchestration run still running (docs/orchestration.md), as top shows it.
struct TopRun {
  std::string id, strategy;
  std::uint64_t steps = 0;
  int driver_pid = 0;
  bool driver_alive = false;
};
// "run r1 pipeline: running, 3 steps done, driver pid 42", or "... interrupted (driver gone):
// agentbus run --resume r1".
[[nodiscard]] std::string run_line(const TopRun& run);

struct BridgeSummary {
  int pid = 0;  // 0: not running
  bool connected = false;
  std::uint64_t lag_events = 0, spooled_events = 0;
  std::int64_t oldest_lag_ns = 0;
};
// "bridge pid 42, Redis connected, lag 3 events (oldest 0.2 s), spooled 0".
[[nodiscard]] std::string bridge_line(const BridgeSummary& b);

// A STATUS event's payload ({"ts","agent_id","action","status","detail","metadata"}) as
// "[19:05:15] exec: search_google → ok | Found 7 results". The time is the payload's "ts"
// (ISO-8601) in local time, else the event's; the agent is "agent_id", else the event's.
// An event imported from another host passes its `origin_host`: the agent shows as agent@host.
// nullopt when the payload is not a JSON object with at least an "action" or a "status".
[[nodiscard]] std::optional<std::string> status_line(std::string_view payload, std::string_view event_agent,
                                                     std::int64_t event_ts_ns,
                                                     std::string_view origin_host = {});

// "2026-11-23T10:15:30.123Z", "...+02:00", "...-0500" (seconds precision or finer) to Unix
// nanoseconds; nullopt when it is not one.
[[nodiscard]] std::optional<std::int64_t> parse_iso8601(std::string_view text);

// The screen: at most `height` lines (0: no limit), each at most `width` code points. When
// the rooms do not fit, the last line says how many lines were left out.
[[nodiscard]] std::vector<std::string> render_top(const TopSnapshot& snapshot, std::size_t width,
                                                  std::size_t height);

// For terminals that cannot show UTF-8 (and narrow ncurses): "→" becomes "->", "…" "...",
// every other non-ASCII code point '?'.
[[nodiscard]] std::string to_ascii(std::string_view text);

}  // namespace agentbus::cli
