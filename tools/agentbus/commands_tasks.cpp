// commands_tasks.cpp — the task board: register, catalog, open, claim, renew, done, release,
// state. A task is posted with `agentbus post <registered type> [payload]`.
#include "common.hpp"
#include "output.hpp"
#include "session.hpp"

#include <memory>

namespace agentbus::cli {
namespace {

using namespace std::chrono_literals;

TaskBoard board_of(Room room, bool create) {
  TaskBoardOptions options;
  options.create = create;
  return TaskBoard(std::move(room), options);
}

// claim, renew, done, release and state act on a task that must exist: they create nothing.
Room room_with_tasks(const Globals& g) {
  std::optional<Room> room = open_existing_room(g);
  if (!room) throw Error(Errc::not_found, "room '" + room_name(g) + "' does not exist, so it has no tasks");
  return std::move(*room);
}

// An open task whose last claim lapsed or whose claimant's session ended still names it.
bool lapsed_claim(const TaskState& t) { return t.phase == TaskPhase::open && !t.claimant.empty(); }

std::string phase_name(TaskPhase p) {
  switch (p) {
    case TaskPhase::open: return "open";
    case TaskPhase::claimed: return "claimed";
    case TaskPhase::done: return "done";
  }
  return "?";
}

std::string type_json(const TaskType& t) {
  return "{\"type\":" + json_string(t.type) + ",\"description\":" + json_string(t.description) +
         ",\"produces\":" + json_string(t.produces) + ",\"requires\":" + json_string(t.requires_) + "}\n";
}

std::string task_json(const TaskState& t) {
  std::string out = "{\"id\":" + std::to_string(t.id) + ",\"state\":\"" + phase_name(t.phase) +
                    "\",\"type\":" + json_string(t.type) + ",\"creator\":" + json_string(t.creator) +
                    ",\"created\":\"" + iso8601_utc(t.created_ts_ns) + "\",\"payload\":" + payload_json(t.payload);
  if (t.phase != TaskPhase::open || lapsed_claim(t)) {
    out += ",\"claimant\":" + json_string(t.claimant) + ",\"token\":" + std::to_string(t.token) +
           ",\"owner_pid\":" + std::to_string(t.owner_pid);
  }
  if (t.phase == TaskPhase::claimed)
    out += ",\"session_program\":" + json_string(process_program(static_cast<int>(t.owner_pid)));
  if (t.phase == TaskPhase::claimed || lapsed_claim(t)) {
    out += ",\"lease_left_ms\":" + std::to_string(t.lease_left.count()) +
           ",\"owner_alive\":" + (t.owner_alive ? "true" : "false");
  }
  if (t.phase == TaskPhase::done)
    out += ",\"result\":" + payload_json(t.result) + ",\"done\":\"" + iso8601_utc(t.done_ts_ns) + "\"";
  return out + "}\n";
}

std::string task_line(const TaskState& t) {
  std::string line = std::to_string(t.id) + "  " + sanitize_for_terminal(t.type) + "  from " +
                     sanitize_for_terminal(t.creator);
  if (lapsed_claim(t))
    line += "  (lease of " + sanitize_for_terminal(t.claimant) + (t.owner_alive ? " lapsed" : ", whose session died") + ")";
  if (!t.payload.empty()) line += "\n    " + sanitize_for_terminal(t.payload);
  return line + "\n";
}

std::string task_text(const TaskState& t) {
  std::string out = "task      " + std::to_string(t.id) + "\nstate     " + phase_name(t.phase) +
                    "\ntype      " + sanitize_for_terminal(t.type) + "\ncreator   " +
                    sanitize_for_terminal(t.creator) + "\ncreated   " + iso8601_utc(t.created_ts_ns) + "\n";
  if (t.phase != TaskPhase::open || lapsed_claim(t))
    out += "claimant  " + sanitize_for_terminal(t.claimant) + " (token " + std::to_string(t.token) +
           ", session pid " + std::to_string(t.owner_pid) + ")\n";
  if (t.phase == TaskPhase::claimed)
    out += "session   " + (t.owner_alive ? session_text(static_cast<int>(t.owner_pid))
                                         : std::to_string(t.owner_pid) + " (gone)") + "\n";
  if (t.phase == TaskPhase::claimed) out += "lease     " + std::to_string(t.lease_left.count() / 1000) + " s left\n";
  if (lapsed_claim(t))
    out += std::string("lease     ") + (t.owner_alive ? "lapsed" : "ended with its session") + ": anyone may claim it\n";
  if (t.phase == TaskPhase::done) out += "done      " + iso8601_utc(t.done_ts_ns) + "\nresult    " + sanitize_for_terminal(t.result) + "\n";
  if (!t.payload.empty()) out += "payload   " + sanitize_for_terminal(t.payload) + "\n";
  return out;
}

// The token to act with: --token, else the current claim's if `agent` holds it.
std::uint32_t token_for(TaskBoard& board, EventId id, std::string_view agent, std::uint32_t token, bool given) {
  if (given) return token;
  const TaskState t = board.state(id);
  // A lapsed claim nobody took yet may still be renewed or completed; the board checks the token.
  if ((t.phase == TaskPhase::claimed || lapsed_claim(t)) && t.claimant == agent) return t.token;
  if (t.phase == TaskPhase::claimed)
    throw Error(Errc::conflict, "task " + std::to_string(id) + " is claimed by " + t.claimant +
                                    ", not " + std::string(agent) + "; pass --token if you hold its claim");
  throw Error(Errc::conflict, "task " + std::to_string(id) + " is " + phase_name(t.phase) +
                                  ", not claimed by " + std::string(agent));
}

struct TaskArgs {
  EventId id = 0;
  std::string agent = "cli";
  std::string ttl = "5m";
  std::uint32_t token = 0;
  std::string result;
  std::size_t count = 20;
  bool json = false;
  TaskType type;
};

CLI::App* with_agent(CLI::App* cmd, TaskArgs& a) {
  cmd->add_option("--agent", a.agent, "Agent id acting")->envname("AGENTBUS_AGENT")->capture_default_str();
  return cmd;
}

}  // namespace

bool is_task_type(Room& room, std::string_view type) {
  try {
    return board_of(room, false).find_type(type).has_value();
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) return false;
    throw;
  }
}

std::optional<EventId> post_if_task(Room& room, std::string_view type, std::string_view agent,
                                    std::string_view payload) {
  std::optional<TaskBoard> board;
  try {
    board.emplace(board_of(room, false));
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) return std::nullopt;
    throw;
  }
  if (!board->find_type(type)) return std::nullopt;
  return board->post_task(type, agent, payload);
}

void add_tasks_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto a = std::make_shared<TaskArgs>();
  const std::string group = "Tasks";

  CLI::App* reg = app.add_subcommand("register", "Add a task type to the room's catalog.");
  reg->group(group);
  reg->add_option("type", a->type.type, "Event type of such tasks, e.g. review")->required();
  reg->add_option("description", a->type.description, "What the task is")->required();
  reg->add_option("--produces", a->type.produces, "What completing it yields");
  reg->add_option("--requires", a->type.requires_, "What it needs first");
  reg->footer("Then `agentbus post <type> [payload]` posts a task of that type; its id is printed.\n\n"
              "Example:\n  agentbus register review 'Review a diff' --produces verdict\n"
              "  agentbus post review '{\"pr\":42}'");
  commands.push_back({reg, [&g, a] {
                        TaskBoard board = board_of(open_room(g), true);
                        board.register_task(a->type);
                        write_out("registered " + a->type.type + "\n", true);
                        return 0;
                      }});

  CLI::App* cat = app.add_subcommand("catalog", "List the room's task types.");
  cat->group(group);
  cat->add_flag("--json", a->json, "One JSON object per line");
  cat->footer("Types are added with `agentbus register`.\n\n"
              "Examples:\n  agentbus catalog\n  agentbus catalog --json | jq -r .type");
  commands.push_back({cat, [&g, a] {
                        std::optional<Room> room = open_existing_room(g);
                        if (!room) return 0;
                        std::string out;
                        try {
                          for (const TaskType& t : board_of(*room, false).catalog())
                            out += a->json ? type_json(t)
                                           : sanitize_for_terminal(t.type) + "  " + sanitize_for_terminal(t.description) +
                                                 (t.produces.empty() ? "" : "  produces: " + sanitize_for_terminal(t.produces)) +
                                                 (t.requires_.empty() ? "" : "  requires: " + sanitize_for_terminal(t.requires_)) + "\n";
                        } catch (const Error& e) {
                          if (e.code() != Errc::not_found) throw;
                        }
                        write_out(out, true);
                        return 0;
                      }});

  CLI::App* open = app.add_subcommand("open", "List tasks nobody holds, oldest first.");
  open->group(group);
  open->add_option("-n,--count", a->count, "At most this many")->check(CLI::NonNegativeNumber)->capture_default_str();
  open->add_flag("--json", a->json, "One JSON object per line");
  open->footer("A task whose claim lapsed or whose claimant's session ended is open again: it is listed\n"
               "(naming that claim) and `state` says open too.\n\n"
               "Examples:\n  agentbus open\n  agentbus open -n 1 --json | jq .id");
  commands.push_back({open, [&g, a] {
                        std::optional<Room> room = open_existing_room(g);
                        if (!room) return 0;
                        std::string out;
                        try {
                          for (const TaskState& t : board_of(*room, false).open_tasks(a->count))
                            out += a->json ? task_json(t) : task_line(t);
                        } catch (const Error& e) {
                          if (e.code() != Errc::not_found) throw;
                        }
                        write_out(out, true);
                        return 0;
                      }});

  CLI::App* claim = with_agent(app.add_subcommand("claim", "Claim a task; prints the fencing token."), *a);
  claim->group(group);
  claim->add_option("id", a->id, "Task id")->required()->check(id_validator());
  claim->add_option("--ttl", a->ttl, "Lease length, 1ms to 24h; renew to keep it longer")
      ->check(duration_validator(1ms))
      ->capture_default_str();
  claim->add_flag("--json", a->json, "A JSON object instead of the bare token");
  claim->footer("The claim belongs to the session process (--session-pid, default: the agent process\n"
                "above this command, past wrappers and `bash -c`/`$(...)` shells; `agentbus join\n"
                "--help` says more): it ends when that process exits or the lease runs out.\n"
                "Exit 3 when someone else holds the task, or when --agent already holds it (the\n"
                "message then says \"already yours\" with its token; `renew` extends it). Exit 4\n"
                "when there is no such task.\n\n"
                "Example:\n  token=$(agentbus claim 4096 --agent fixer --ttl 10m)");
  commands.push_back({claim, [&g, a] {
                        Room room = room_with_tasks(g);
                        touch_presence(room, a->agent);
                        TaskBoard board = board_of(room, false);
                        ClaimOptions o;
                        o.ttl = validated_ms(a->ttl);
                        o.session_pid = session_pid(g);
                        const Claim c = board.claim(a->id, a->agent, o);
                        if (c.status == ClaimStatus::done)
                          throw Error(Errc::conflict, "task " + std::to_string(a->id) + " is already done");
                        // Not a new claim either: the lease is not extended and no token is printed.
                        if (c.status == ClaimStatus::held && c.holder == a->agent)
                          throw Error(Errc::conflict, "task " + std::to_string(a->id) + " is already yours (" + c.holder +
                                                          ", token " + std::to_string(c.holder_token) + ", lease ends in " +
                                                          std::to_string(c.lease_left.count() / 1000) +
                                                          " s); `agentbus renew " + std::to_string(a->id) + "` extends it");
                        if (c.status == ClaimStatus::held)
                          throw Error(Errc::conflict, "task " + std::to_string(a->id) + " is claimed by " + c.holder +
                                                          " (token " + std::to_string(c.holder_token) + ", lease ends in " +
                                                          std::to_string(c.lease_left.count() / 1000) + " s)");
                        write_out(a->json ? "{\"id\":" + std::to_string(c.id) + ",\"token\":" + std::to_string(c.token) +
                                                ",\"ttl_ms\":" + std::to_string(c.ttl.count()) + "}\n"
                                          : std::to_string(c.token) + "\n",
                                  true);
                        return 0;
                      }});

  auto add_token = [&a](CLI::App* cmd) {
    cmd->add_option("--token", a->token, "Fencing token from claim (default: the claim --agent holds)")
        ->check(token_validator());
  };

  CLI::App* renew = with_agent(app.add_subcommand("renew", "Extend a claim's lease."), *a);
  renew->group(group);
  renew->add_option("id", a->id, "Task id")->required()->check(id_validator());
  renew->add_option("--ttl", a->ttl, "New lease length from now, 1ms to 24h")
      ->check(duration_validator(1ms))
      ->capture_default_str();
  add_token(renew);
  renew->footer("Exit 3 when the claim is no longer yours (the token is stale), 4 when there is no\n"
                "such task.\n\n"
                "Examples:\n  agentbus renew 4096 --agent fixer --ttl 30m\n"
                "  agentbus renew 4096 --token \"$token\" --ttl 10m");
  commands.push_back({renew, [&g, a, renew] {
                        Room room = room_with_tasks(g);
                        touch_presence(room, a->agent);
                        TaskBoard board = board_of(room, false);
                        const bool given = renew->count("--token") > 0;
                        board.renew(a->id, token_for(board, a->id, a->agent, a->token, given), validated_ms(a->ttl));
                        return 0;
                      }});

  CLI::App* done = with_agent(app.add_subcommand("done", "Complete a claimed task; publishes TASK_DONE."), *a);
  done->group(group);
  done->add_option("id", a->id, "Task id")->required()->check(id_validator());
  done->add_option("result", a->result, "Result (JSON by convention); \"-\" reads stdin");
  add_token(done);
  done->footer("Exit 3 when the token is stale (the lease lapsed and someone else claimed it).\n\n"
               "Examples:\n  agentbus done 4096 '{\"verdict\":\"lgtm\"}' --agent fixer\n"
               "  run_tests | agentbus done 4096 - --token \"$token\"");
  commands.push_back({done, [&g, a, done] {
                        Room room = room_with_tasks(g);
                        touch_presence(room, a->agent);
                        TaskBoard board = board_of(room, false);
                        std::string result = a->result;
                        if (result == "-") result = read_all_stdin();
                        const bool given = done->count("--token") > 0;
                        const EventId ev = board.complete(a->id, token_for(board, a->id, a->agent, a->token, given), result);
                        write_out(std::to_string(ev) + "\n", true);
                        return 0;
                      }});

  CLI::App* release = with_agent(app.add_subcommand("release", "Give a claimed task back."), *a);
  release->group(group);
  release->add_option("id", a->id, "Task id")->required()->check(id_validator());
  add_token(release);
  release->footer("The task is open again at once. Exit 3 when the claim is no longer yours.\n\n"
                  "Example:\n  agentbus release 4096 --agent fixer");
  commands.push_back({release, [&g, a, release] {
                        Room room = room_with_tasks(g);
                        touch_presence(room, a->agent);
                        TaskBoard board = board_of(room, false);
                        const bool given = release->count("--token") > 0;
                        board.release(a->id, token_for(board, a->id, a->agent, a->token, given));
                        return 0;
                      }});

  CLI::App* state = app.add_subcommand("state", "Show a task: open, claimed (by whom, lease) or done.");
  state->group(group);
  state->add_option("id", a->id, "Task id")->required()->check(id_validator());
  state->add_flag("--json", a->json, "One JSON object");
  state->footer("A claim that lapsed or whose session ended shows as open, naming that claim, as `open`\n"
                "lists it. Exit 4 when there is no such task.\n\n"
                "Examples:\n  agentbus state 4096\n  agentbus state 4096 --json | jq -r .state");
  commands.push_back({state, [&g, a] {
                        const TaskState t = board_of(room_with_tasks(g), false).state(a->id);
                        write_out(a->json ? task_json(t) : task_text(t), true);
                        return 0;
                      }});
}

}  // namespace agentbus::cli
