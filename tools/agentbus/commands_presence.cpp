// commands_presence.cpp — join, leave, who: the room's presence table (agentbus/presence.hpp).
#include "common.hpp"
#include "output.hpp"

#include <agentbus/bridge_status.hpp>
#include "session.hpp"

#include <agentbus/presence.hpp>

#include <algorithm>
#include <memory>

namespace agentbus::cli {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

struct JoinArgs {
  std::string handle;
  std::string role;
  std::string working_on;
  std::string ttl = "15m";
  bool json = false;
  bool export_lines = false;
};

struct LeaveArgs {
  std::string handle;
};

struct WhoArgs {
  bool json = false;
};

std::int64_t to_ns(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// "850ms", "42s", "14m57s", "2h05m": short enough for a table column.
std::string short_duration(milliseconds d) {
  const auto ms = std::max<std::int64_t>(0, d.count());
  if (ms < 1000) return std::to_string(ms) + "ms";
  const std::int64_t s = ms / 1000;
  const auto two = [](std::int64_t v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + two(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + two(s / 60 % 60) + "m";
}

CLI::Validator ttl_validator() { return duration_validator(1ms, kMaxPresenceTtl); }

// The presence table, or none when nobody has joined in this room (who and leave must not
// create a bus, a room or a table just to find them empty).
std::optional<Presence> existing_presence(const Globals& g) {
  std::optional<Room> room = open_existing_room(g);
  if (!room) return std::nullopt;
  try {
    return Presence(std::move(*room), PresenceOptions{.create = false});
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) return std::nullopt;
    throw;
  }
}

int run_join(const Globals& g, const JoinArgs& args) {
  const auto ttl = validated_ms(args.ttl);
  Presence presence(open_room(g));
  const int pid = session_pid(g);
  const std::string handle = presence.join(args.handle, args.role, args.working_on, {.session_pid = pid, .ttl = ttl});
  if (args.export_lines) {
    write_out(session_exports(handle, pid), true);
  } else if (args.json) {
    write_out("{\"handle\":" + json_string(handle) + ",\"room\":" + json_string(room_name(g)) +
                  ",\"pid\":" + std::to_string(pid) +
                  ",\"ttl_ms\":" + std::to_string(ttl.count()) + "}\n",
              true);
  } else {
    write_out(handle + "\n", true);
  }
  return 0;
}

int run_leave(const Globals& g, const LeaveArgs& args) {
  std::optional<Presence> presence = existing_presence(g);
  if (!presence || !presence->leave(args.handle)) {
    report_error("no agent '" + args.handle + "' in room " + room_name(g) +
                 " (give the qualified handle that `agentbus join` printed; `agentbus who` lists them)");
    return kExitNotFound;
  }
  return 0;
}

std::string who_json(const AgentInfo& a, const std::string& room, std::chrono::system_clock::time_point now) {
  const auto ago = std::chrono::duration_cast<milliseconds>(now - a.last_seen);
  return "{\"room\":" + json_string(room) + ",\"handle\":" + json_string(a.handle) +
         ",\"role\":" + json_string(a.role) + ",\"working_on\":" + json_string(a.working_on) +
         ",\"claims\":" + std::to_string(a.claims) + ",\"pid\":" + std::to_string(a.pid) +
         ",\"session_program\":" + json_string(process_program(static_cast<int>(a.pid))) + ",\"joined\":" + json_string(iso8601_utc(to_ns(a.joined))) +
         ",\"last_seen\":" + json_string(iso8601_utc(to_ns(a.last_seen))) +
         ",\"last_seen_ms_ago\":" + std::to_string(std::max<std::int64_t>(0, ago.count())) +
         ",\"ttl_ms\":" + std::to_string(a.ttl.count()) + ",\"ttl_left_ms\":" + std::to_string(a.ttl_left.count()) +
         "}\n";
}

// Agents on other hosts, as the Redis bridge last saw them (docs/bridge.md).
std::string remote_json(const bridge::RemoteAgent& a, const std::string& room) {
  return "{\"room\":" + json_string(room) + ",\"handle\":" + json_string(a.handle) + ",\"host\":" +
         json_string(a.host) + ",\"role\":" + json_string(a.role) + ",\"working_on\":" + json_string(a.working_on) +
         ",\"remote\":true}\n";
}

std::string who_text(const std::vector<AgentInfo>& agents, const std::vector<bridge::RemoteAgent>& remote,
                     const std::string& room, std::chrono::system_clock::time_point now) {
  if (agents.empty() && remote.empty()) return "no agents present in room " + sanitize_for_terminal(room) + "\n";
  std::vector<std::vector<std::string>> rows{
      {"HANDLE", "ROLE", "WORKING ON", "CLAIMS", "SESSION", "LAST SEEN", "TTL LEFT"}};
  for (const AgentInfo& a : agents) {
    // Other agents wrote these: strip anything that could drive the terminal.
    rows.push_back({sanitize_for_terminal(a.handle), sanitize_for_terminal(a.role),
                    clip_to_width(sanitize_for_terminal(a.working_on), 48), std::to_string(a.claims),
                    clip_to_width(session_text(static_cast<int>(a.pid)), 24),
                    short_duration(std::chrono::duration_cast<milliseconds>(now - a.last_seen)) + " ago",
                    short_duration(a.ttl_left)});
  }
  for (const bridge::RemoteAgent& a : remote)
    rows.push_back({sanitize_for_terminal(a.handle + "@" + a.host), sanitize_for_terminal(a.role),
                    clip_to_width(sanitize_for_terminal(a.working_on), 48), "-", "remote host", "-", "-"});
  return aligned_table(rows);
}

// Claim load from the task board: claims made as the qualified handle, or as the short handle
// from the same session process.
void add_claim_load(const Globals& g, std::vector<AgentInfo>& agents) {
  std::optional<Room> room = open_existing_room(g);
  if (!room || agents.empty()) return;
  std::vector<TaskState> claims;
  try {
    TaskBoardOptions options;
    options.create = false;
    claims = TaskBoard(*room, options).live_claims();
  } catch (const Error& e) {
    if (e.code() != Errc::not_found) throw;
  }
  for (AgentInfo& a : agents) {
    for (const TaskState& t : claims) {
      const bool short_form = t.owner_pid == a.pid && a.handle.size() > t.claimant.size() &&
                              a.handle.compare(0, t.claimant.size(), t.claimant) == 0 &&
                              a.handle[t.claimant.size()] == '-';
      if (t.claimant == a.handle || short_form) ++a.claims;
    }
  }
}

int run_who(const Globals& g, const WhoArgs& args) {
  const std::string room = room_name(g);
  std::optional<Presence> presence = existing_presence(g);
  std::vector<AgentInfo> agents = presence ? presence->who() : std::vector<AgentInfo>{};
  add_claim_load(g, agents);
  std::vector<bridge::RemoteAgent> remote;
  try {
    BusOptions options;
    options.name = g.bus;
    options.create = false;
    remote = bridge::remote_agents(Bus::open(options), room);
  } catch (const Error& e) {
    if (e.code() != Errc::not_found) throw;
  }
  const auto now = std::chrono::system_clock::now();
  if (args.json) {
    std::string out;
    for (const AgentInfo& a : agents) out += who_json(a, room, now);
    for (const bridge::RemoteAgent& a : remote) out += remote_json(a, room);
    write_out(out, true);
  } else {
    write_out(who_text(agents, remote, room, now), true);
  }
  return 0;
}

}  // namespace

void add_presence_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto join = std::make_shared<JoinArgs>();
  auto leave = std::make_shared<LeaveArgs>();
  auto who = std::make_shared<WhoArgs>();

  CLI::App* join_cmd = app.add_subcommand("join", "Announce this agent in the room; prints its qualified handle.");
  join_cmd->footer(
      "The handle is qualified with a token of the session (\"fixer-1\" becomes e.g.\n"
      "\"fixer-1-3f9a0c12\"), so two agents picking the same handle stay distinct. The session\n"
      "is --session-pid / $AGENTBUS_SESSION_PID, else the agent process found above this command\n"
      "past wrappers (timeout, xargs, env, nice, sudo, ...) and throwaway shells (`bash -c`,\n"
      "`$(...)`, `( ... ) &`): the entry goes away when that process exits, or when nothing\n"
      "refreshed it for --ttl. --export prints `export` lines for AGENTBUS_AGENT and\n"
      "AGENTBUS_SESSION_PID, so later commands of a shell act as this agent in this session.\n"
      "Joining again from the same session refreshes the same entry and replaces its role and\n"
      "working-on. A new entry posts AGENT_JOINED into the room; `leave` posts AGENT_LEFT.\n\n"
      "Examples:\n"
      "  me=$(agentbus join fixer-1 --role go-fixer --working-on 'flaky parser tests')\n"
      "  agentbus join fixer-1 --working-on 'lexer fuzzing'      # same session: same entry\n"
      "  agentbus join ci-bot --ttl 2m --json\n"
      "  eval \"$(agentbus join fixer-1 --export)\"; agentbus claim 42   # as $AGENTBUS_AGENT\n"
      "  agentbus leave \"$me\"");
  join_cmd->add_option("handle", join->handle, "Short agent handle: [A-Za-z0-9._-], at most 64 bytes")->required();
  join_cmd->add_option("--role", join->role, "What kind of agent this is, e.g. reviewer");
  join_cmd->add_option("--working-on", join->working_on, "What it is doing now (one line)");
  join_cmd->add_option("--ttl", join->ttl, "Drop the entry after this long without activity (max 24h)")
      ->check(ttl_validator())
      ->capture_default_str();
  join_cmd->add_flag("--json", join->json, "Print {handle, room, pid, ttl_ms} as one JSON object");
  join_cmd->add_flag("--export", join->export_lines,
                     "Print shell `export` lines for AGENTBUS_AGENT and AGENTBUS_SESSION_PID instead")
      ->excludes("--json");

  CLI::App* leave_cmd = app.add_subcommand("leave", "Remove an agent from the room's presence.");
  leave_cmd->footer(
      "Takes the qualified handle `join` printed. Exit code 4 when there is no such agent.\n\n"
      "Example:\n"
      "  agentbus leave fixer-1-3f9a0c12");
  leave_cmd->add_option("handle", leave->handle, "Qualified handle, as printed by join")->required();

  CLI::App* who_cmd = app.add_subcommand("who", "List the live agents in the room.");
  who_cmd->footer(
      "Live means seen within its TTL and its session process still running; a crashed agent\n"
      "drops out as soon as its session is gone. `who` only observes: it refreshes nobody.\n"
      "SESSION is the session process (pid and program) whose exit removes the entry.\n"
      "--json prints one object per line: room, handle, role, working_on, claims, pid,\n"
      "session_program, joined, last_seen, last_seen_ms_ago, ttl_ms, ttl_left_ms.\n\n"
      "Examples:\n"
      "  agentbus who\n"
      "  agentbus who --json | jq -r .handle");
  who_cmd->add_flag("--json", who->json, "One JSON object per agent, one per line");

  commands.push_back({join_cmd, [&g, join] { return run_join(g, *join); }});
  commands.push_back({leave_cmd, [&g, leave] { return run_leave(g, *leave); }});
  commands.push_back({who_cmd, [&g, who] { return run_who(g, *who); }});
}

}  // namespace agentbus::cli
