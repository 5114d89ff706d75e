// common.hpp — what every agentbus command shares: global options, exit codes, stdout and
// stderr handling, bus and room access, argument parsing helpers, and how commands register.
#pragma once

#include <agentbus/agentbus.hpp>

#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace agentbus::cli {

inline constexpr int kExitFailure = 1;   // a runtime failure: one "error: ..." line on stderr
inline constexpr int kExitUsage = 2;     // bad flags or arguments, or a name outside the grammar
inline constexpr int kExitLostRace = 3;  // lost a race or held a stale token: claim taken, lease lost
inline constexpr int kExitNotFound = 4;  // no such task or key, or it expired

// Thrown when stdout's reader has gone (EPIPE): not an error for a pipeline like `| head`.
struct StdoutClosed {};

// Set by SIGINT/SIGTERM once install_stop_handlers() ran; long-running commands poll it.
// A lock-free atomic, not a volatile sig_atomic_t: threads read it too (serve_until_signal).
extern std::atomic<int> g_stop;
void install_stop_handlers();

// Runs `serve(stop)` with `stop` set once SIGINT/SIGTERM arrives (a watcher thread turns the
// signal flag into the atomic a library loop waits on); returns what it returns.
template <class Serve>
auto serve_until_signal(Serve&& serve) {
  install_stop_handlers();
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    while (!g_stop && !stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stop = true;
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& watcher;
    ~Join() {
      stop = true;
      watcher.join();
    }
  } join{stop, watcher};
  return serve(stop);
}

// SIGPIPE is ignored (see main), so a closed pipe shows up here as EPIPE.
void write_out(std::string_view text, bool flush);
// All of stdin, for a "-" argument (a payload, a result, a welcome).
[[nodiscard]] std::string read_all_stdin();
// Messages can quote a rejected name, which may hold escape sequences: keep them inert.
void report_error(std::string_view message);
// One "warning: ..." line on stderr: something was skipped, the command still succeeds.
void report_warning(std::string_view message);
void warn_overrun(std::uint64_t missed);
// One stderr warning when a read stepped over `records` unreadable records of `room`.
void warn_unreadable(std::string_view room, std::uint64_t records);

// For a follower (`tail -f`, `status watch`): nothing can arrive once the bus is destroyed.
// Call when caught up; it looks (one stat) at most every 250 ms. true: it said so on stderr,
// and the follower stops with exit 1.
class DestroyedBusCheck {
 public:
  explicit DestroyedBusCheck(const Room& room) : room_(room) {}
  [[nodiscard]] bool reported(std::string_view bus);

 private:
  const Room& room_;
  std::chrono::steady_clock::time_point next_ = std::chrono::steady_clock::now();
};

// Options every command accepts (before or after its name).
struct Globals {
  std::string bus = "default";
  std::string room;
  std::string repo;
  std::string branch = "main";
  std::uint64_t ring_bytes = 0;     // 0: the library's default
  std::uint64_t max_record_bytes = 0;  // 0: the library's default (64 KiB, or ring/4 if less)
  std::uint64_t segment_bytes = 0;  // 0: the library's default
  int session_pid = 0;              // 0: resolve it (session_pid())
  std::string group_access;         // non-empty: a bus this command creates belongs to it, 0660
};

// agentroom's default repo: the name of the repository root holding the working directory
// (agentbus/lease_paths.hpp; outside a repository, the directory's own name), made to fit the
// name grammar.
[[nodiscard]] std::string default_repo();
// --room, else "<repo>/<branch>".
[[nodiscard]] std::string room_name(const Globals& g);

// --max-record-bytes without --ring-bytes gets a ring of at least 4 such records. An existing
// room keeps its sizes: opening it with other --ring-bytes/--max-record-bytes warns on stderr.
[[nodiscard]] RoomOptions room_options(const Globals& g, bool create);
inline constexpr std::uint64_t kMinRecordBytes = 256;
inline constexpr std::uint64_t kMaxRecordBytes = 32ull << 20;  // a quarter of the largest ring
// What is wrong with the room size options together (a usage error), if anything.
[[nodiscard]] std::optional<std::string> room_size_problem(const Globals& g);
[[nodiscard]] Bus open_bus(const Globals& g);
// The room, created if needed.
[[nodiscard]] Room open_room(const Globals& g);
// Reading must not create anything: a room nobody has posted to is simply empty (nullopt), but
// a bus that does not exist is Error{not_found} (exit 4), the same for every command.
[[nodiscard]] std::optional<Room> open_existing_room(const Globals& g);

// ---- durations: one grammar and one cap for every --ttl / --timeout / duration flag ----------
// A duration is one or more <digits><unit> parts, units d, h, m, s, ms, largest first and each
// at most once: "250ms", "90s", "10m", "1h30m", "1d". A bare number has no unit and is refused,
// except "0", which needs none. Every duration flag is capped at kMaxDuration; a flag narrows
// the range where a shorter or non-zero one is all that makes sense (a TTL needs at least 1ms).
inline constexpr std::chrono::milliseconds kMaxDuration = std::chrono::hours(24);
inline constexpr std::string_view kForever = "forever";

// The duration `text` spells, or nullopt when it is outside the grammar. Values past any cap
// saturate (they are still durations, just too long), so "999999h" is reported as too long.
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// "0", "1ms", "90s", "1h30m", "24h": text parse_duration reads back as `d` (hours, not days).
[[nodiscard]] std::string format_duration(std::chrono::milliseconds d);
// A duration from `min` to `max` (at most kMaxDuration); `forever_ok`: the word "forever" too.
[[nodiscard]] CLI::Validator duration_validator(std::chrono::milliseconds min = std::chrono::milliseconds(0),
                                                std::chrono::milliseconds max = kMaxDuration,
                                                bool forever_ok = false);
// An option value a duration validator has already accepted; "forever" has no length: nullopt.
[[nodiscard]] std::optional<std::chrono::milliseconds> validated_duration(const std::string& text);
// The same for options that cannot be "forever".
[[nodiscard]] std::chrono::milliseconds validated_ms(const std::string& text);

// ---- ids: task, event, lease and ask ids, fencing tokens ----------------------------------
// Decimal digits only, at most `max`: "", "-1", "+1", "0x10", " 5", "1e3" and overflow are not
// ids (CLI11 alone would read them as 0, a wrapped, hexadecimal or clamped number).
[[nodiscard]] std::optional<std::uint64_t> parse_decimal(std::string_view text,
                                                         std::uint64_t max = UINT64_MAX);
// For every id argument: a usage error naming the argument and the bad text.
[[nodiscard]] CLI::Validator id_validator(std::uint64_t max = UINT64_MAX, std::uint64_t min = 0);
[[nodiscard]] CLI::Validator token_validator();

[[nodiscard]] CLI::Validator power_of_two_validator();

// A leaf subcommand and what runs when it was chosen. Each commands_*.cpp adds its own.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};
using Commands = std::vector<Command>;

void add_post_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_tail_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_room_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_tasks_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_presence_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_scratch_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_leases_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_inbox_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_group_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_status_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_hook_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_welcome_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_top_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_run_commands(CLI::App& app, const Globals& g, Commands& commands);
void add_worker_commands(CLI::App& app, const Globals& g, Commands& commands);

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

// True when the room's task board has `type` registered (a post of it is a task).
[[nodiscard]] bool is_task_type(Room& room, std::string_view type);
// Posts `type` as a task when the room's task board has that type registered; else nullopt.
[[nodiscard]] std::optional<EventId> post_if_task(Room& room, std::string_view type,
                                                  std::string_view agent, std::string_view payload);

// agentroom refreshes an agent's presence on any activity: every command acting as --agent
// calls this. Does nothing when the room has no presence table or the agent is not in it.
void touch_presence(Room& room, std::string_view agent);

// The process whose death ends what this command takes on behalf of the agent (a claim, a
// presence entry, a lease): --session-pid / $AGENTBUS_SESSION_PID when given (it must be a
// running process: else Error{invalid_argument}), else resolve_session(getppid()), which skips
// wrappers and throwaway shells (session.hpp has the rule). Resolved once per CLI call.
[[nodiscard]] int session_pid(const Globals& g);

}  // namespace agentbus::cli
