// common.hpp — what every agentbus command shares: global options, exit codes, stdout and
// stderr handling, bus and room access, argument parsing helpers, and how commands register.
#pragma once

#include <agentbus/agentbus.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::cli {

inline constexpr int kExitFailure = 1;   // a runtime failure: one "error: ..." line on stderr
inline constexpr int kExitUsage = 2;     // bad flags or arguments, or a name outside the grammar
inline constexpr int kExitLostRace = 3;  // lost a race or held a stale token: claim taken, lease lost
inline constexpr int kExitNotFound = 4;  // no such task or key, or it expired

// Thrown when stdout's reader has gone (EPIPE): not an error for a pipeline like `| head`.
struct StdoutClosed {};

// Set by SIGINT/SIGTERM once install_stop_handlers() ran; long-running commands poll it.
extern volatile std::sig_atomic_t g_stop;
void install_stop_handlers();

// SIGPIPE is ignored (see main), so a closed pipe shows up here as EPIPE.
void write_out(std::string_view text, bool flush);
// Messages can quote a rejected name, which may hold escape sequences: keep them inert.
void report_error(std::string_view message);
void warn_overrun(std::uint64_t missed);
// One stderr warning when a read stepped over `records` unreadable records of `room`.
void warn_unreadable(std::string_view room, std::uint64_t records);

// Options every command accepts (before or after its name).
struct Globals {
  std::string bus = "default";
  std::string room;
  std::string repo;
  std::string branch = "main";
  std::uint64_t ring_bytes = 0;     // 0: the library's default
  std::uint64_t segment_bytes = 0;  // 0: the library's default
  int session_pid = 0;              // 0: the CLI's parent process
  std::string group_access;         // non-empty: a bus this command creates belongs to it, 0660
};

// agentroom's default repo: the working directory's name, made to fit the name grammar.
[[nodiscard]] std::string default_repo();
// --room, else "<repo>/<branch>".
[[nodiscard]] std::string room_name(const Globals& g);

[[nodiscard]] RoomOptions room_options(const Globals& g, bool create);
[[nodiscard]] Bus open_bus(const Globals& g);
// The room, created if needed.
[[nodiscard]] Room open_room(const Globals& g);
// Reading must not create anything: a bus or room nobody has posted to is simply empty.
[[nodiscard]] std::optional<Room> open_existing_room(const Globals& g);

// "250ms", "10s", "5m", "1h"; a bare number is seconds.
[[nodiscard]] std::optional<std::chrono::nanoseconds> parse_duration(const std::string& text);
[[nodiscard]] CLI::Validator duration_validator();
// A duration from `min` to `max`, for options such as --ttl.
[[nodiscard]] CLI::Validator duration_range_validator(std::chrono::milliseconds min, std::chrono::milliseconds max);
// An option value a duration validator has already accepted, in milliseconds.
[[nodiscard]] std::chrono::milliseconds validated_ms(const std::string& text);
[[nodiscard]] CLI::Validator power_of_two_validator();

// A leaf subcommand and what runs when it was chosen. Each commands_*.cpp adds its own.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};
using Commands = std::vector<Command>;

void add_room_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_tasks_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_presence_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_scratch_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_leases_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_inbox_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_group_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_status_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_hook_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_top_commands(CLI::App& app, const Globals& g, Commands& commands);

// Runs `f`; a component the room does not have (no presence table, no task board, ...) is
// simply empty: returns `fallback`. Other errors pass through.
template <class T, class F>
T or_absent(F&& f, T fallback) {
  try {
    return f();
  } catch (const Error& e) {
    if (e.code() != Errc::not_found) throw;
    return fallback;
  }
}

// Posts `type` as a task when the room's task board has that type registered; else nullopt.
[[nodiscard]] std::optional<EventId> post_if_task(Room& room, std::string_view type,
                                                  std::string_view agent, std::string_view payload);

// agentroom refreshes an agent's presence on any activity: every command acting as --agent
// calls this. Does nothing when the room has no presence table or the agent is not in it.
void touch_presence(Room& room, std::string_view agent);

// The process whose death ends what this command takes on behalf of the agent (a claim, a
// presence entry, a lease): --session-pid / $AGENTBUS_SESSION_PID, else the CLI's parent (the
// agent's shell or hook runner), as agentroom's "<host>-<ppid>" session token does. The CLI
// process itself exits at once, so it can never be the owner.
[[nodiscard]] int session_pid(const Globals& g);

}  // namespace agentbus::cli
