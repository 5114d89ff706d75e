// main.cpp — the `agentbus` command: global options, the commands each commands_*.cpp adds
// (CLI11), and one place that turns failures into exit codes and one `error: ...` line.
//
// Exit codes (the table in README.md): 0 success; 1 a runtime failure; 2 a usage error (bad
// flags or arguments, an id or duration outside its grammar, a bus/room name outside the
// grammar); 3 lost a race or held a stale token; 4 not found or expired, a bus that does not
// exist included. A reader that goes away (`agentbus tail -f | head -1`) ends quietly with 0.
#include "common.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <exception>
#include <limits>

namespace {

using namespace agentbus;
using namespace agentbus::cli;

constexpr const char* kTopFooter = R"(Rooms: --room NAME, or agentroom style --repo R --branch B for room "R/B".
Names are segments of [A-Za-z0-9._-] joined by '/', at most 128 bytes.

Environment:
  AGENTBUS_BUS    bus name (default "default"); the bus is /dev/shm/agentbus.<bus>
  AGENTBUS_ROOM   room name; overrides REPO_ID/BRANCH_NAME
  REPO_ID         repo part of the room (default: the name of the repository root, the
                  nearest directory up from here holding .git; else this directory's name)
  BRANCH_NAME     branch part of the room (default "main")
  AGENTBUS_AGENT  agent id that `post` signs events with (default "cli")
  AGENTBUS_HOST_ID  host id a new bus names itself by in event origins
                  (default "<hostname>:<bus>"; `agentbus info` shows it)

Durations (--ttl, --timeout, ...): digits with a unit ms, s, m, h or d, largest first:
500ms, 90s, 10m, 1h30m, 1d; "0" needs no unit. At most 24h; each flag's help gives its range.
Ids (tasks, events, leases, tokens) are decimal digits only.

Exit codes:
  0  ok
  1  error: one "error: ..." line on stderr
  2  usage: a bad flag, argument, id, duration or name
  3  lost a race or stale token (task claimed by someone else, lease held)
  4  not found or expired (no such bus, task, key, lease, ...)

Examples:
  agentbus post status '{"state":"idle"}' --agent alice
  agentbus tail --follow --json
  agentbus --repo api --branch dev tail -n 5
  agentbus info)";

// A hook must never fail the agent's session (docs/hooks.md): even a malformed global option
// or environment variable ends it quietly, exit 0, with one line on stderr only when
// AGENTBUS_HOOK_DEBUG is set.
bool invoked_as_hook(int argc, char** argv) {
  // The command is the first argument that is neither a global option nor its value.
  constexpr std::string_view kTakesValue[] = {"--bus", "--room", "--repo", "--branch", "--session-pid",
                                              "--segment-bytes", "--ring-bytes", "--max-record-bytes",
                                              "--group-access"};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.empty() || arg[0] != '-') return arg == "hook";
    if (std::find(std::begin(kTakesValue), std::end(kTakesValue), arg) != std::end(kTakesValue)) ++i;
  }
  return false;
}

int quiet_hook_exit(const char* why) {
  if (const char* debug = std::getenv("AGENTBUS_HOOK_DEBUG"); debug != nullptr && *debug != '\0')
    std::fprintf(stderr, "agentbus hook: %s\n", why);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout becomes EPIPE: handled, quiet, exit 0

  Globals g;
  g.repo = default_repo();

  CLI::App app("agentbus: agent processes coordinating through rooms on a shared-memory bus.",
               "agentbus");
  app.footer(kTopFooter);
  app.fallthrough();  // global options may also follow the command name
  app.require_subcommand(1);
  app.add_option("--bus", g.bus, "Bus name")->envname("AGENTBUS_BUS")->capture_default_str();
  app.add_option("--room", g.room, "Room name; wins over --repo/--branch")->envname("AGENTBUS_ROOM");
  app.add_option("--repo", g.repo, "Repo part of the room name")
      ->envname("REPO_ID")
      ->capture_default_str();
  app.add_option("--branch", g.branch, "Branch part of the room name")
      ->envname("BRANCH_NAME")
      ->capture_default_str();
  app.add_option("--session-pid", g.session_pid,
                 "Process whose exit releases this agent's claims, presence and leases "
                 "(default: the agent process above the CLI, past wrappers and throwaway shells)")
      ->envname("AGENTBUS_SESSION_PID")
      ->check(id_validator(std::numeric_limits<int>::max(), 1));
  app.add_option("--segment-bytes", g.segment_bytes,
                 "Bus size when this command creates the bus (virtual; default 256MiB)")
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--group-access", g.group_access,
                 "When this command creates the bus: give it to GROUP (name or gid) with mode 0660, "
                 "so that its members can use it too")
      ->type_name("GROUP");
  app.add_option("--ring-bytes", g.ring_bytes,
                 "Ring size when this command creates the room (power of two, e.g. 4MiB)")
      ->transform(CLI::AsSizeValue(false))
      ->check(power_of_two_validator());
  app.add_option("--max-record-bytes", g.max_record_bytes,
                 "Largest record (payload + fields) when this command creates the room (e.g. 1MiB; "
                 "default 64KiB); the ring grows to 4 records if needed")
      ->transform(CLI::AsSizeValue(false));

  Commands commands;
  add_post_commands(app, g, commands);
  add_tail_commands(app, g, commands);
  add_room_commands(app, g, commands);
  add_tasks_commands(app, g, commands);
  add_presence_commands(app, g, commands);
  add_scratch_commands(app, g, commands);
  add_leases_commands(app, g, commands);
  add_inbox_commands(app, g, commands);
  add_group_commands(app, g, commands);
  add_status_commands(app, g, commands);
  add_hook_commands(app, g, commands);
  add_welcome_commands(app, g, commands);
  add_top_commands(app, g, commands);
  add_run_commands(app, g, commands);
  add_worker_commands(app, g, commands);

  const bool as_hook = invoked_as_hook(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a "parse error" that succeeds (exit code 0): a hook shows it like any command.
    if (as_hook && e.get_exit_code() != 0) return quiet_hook_exit(e.what());
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  if (const std::optional<std::string> problem = room_size_problem(g); problem && !as_hook) {
    report_error(*problem);
    return kExitUsage;
  }

  int rc = 0;
  try {
    validate_bus_name(g.bus);
    for (const Command& command : commands)
      if (command.app->parsed()) rc = command.run();
    write_out("", true);
  } catch (const StdoutClosed&) {
    return 0;
  } catch (const Error& e) {
    if (as_hook) return quiet_hook_exit(e.what());
    report_error(e.what());
    switch (e.code()) {
      case Errc::bad_name: return kExitUsage;
      case Errc::conflict: return kExitLostRace;
      case Errc::not_found:
      case Errc::expired: return kExitNotFound;
      default: return kExitFailure;
    }
  } catch (const std::exception& e) {
    if (as_hook) return quiet_hook_exit(e.what());
    report_error(e.what());
    return kExitFailure;
  }
  return rc;
}
