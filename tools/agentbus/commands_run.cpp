// commands_run.cpp — run FILE / run --resume RUN_ID / runs: durable orchestration runs
// (docs/orchestration.md). The library does the work; this parses arguments and prints.
#include "common.hpp"
#include "output.hpp"

#include <agentbus/clock.hpp>
#include <agentbus/orchestration/bus_agent.hpp>
#include <agentbus/orchestration/command_provider.hpp>
#include <agentbus/orchestration/run.hpp>
#include <agentbus/orchestration/run_file.hpp>
#include <agentbus/orchestration/strategies.hpp>

#include <simdjson.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <unistd.h>

namespace agentbus::cli {
namespace {

using namespace agentbus::orchestration;

struct RunArgs {
  std::string file;
  std::string resume;
  std::string input;
  CLI::Option* input_opt = nullptr;
  std::string run_id;
  bool follow = false;
  bool json = false;
};

std::string field(simdjson::dom::element& doc, const char* key) {
  std::string_view s;
  if (doc[key].get_string().get(s)) return {};
  return std::string(s);
}

// One line per step event, as it happens.
std::string step_line(const EventView& e) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(e.payload.data(), e.payload.size()).get(doc)) return {};
  std::uint64_t step = 0;
  if (doc["step"].get_uint64().get(step)) step = 0;
  const std::string at = "[step " + std::to_string(step) + "] ";
  if (e.type == "STEP_CALLED") return at + field(doc, "agent") + ": called";
  if (e.type == "STEP_REPLY") {
    std::string_view text;
    if (doc["reply"]["text"].get_string().get(text)) text = "";
    std::string first(text.substr(0, std::min<std::size_t>(text.find('\n'), 160)));
    return at + field(doc, "agent") + ": " + first;
  }
  if (e.type == "STEP_FAILED") return at + field(doc, "agent") + ": FAILED " + field(doc, "error");
  if (e.type == "SYSTEM") return at + field(doc, "text");
  if (e.type == "VERDICT") {
    bool ok = false;
    if (doc["approved"].get_bool().get(ok)) ok = false;
    return at + field(doc, "reviewer") + ": " + (ok ? "APPROVED" : "not approved");
  }
  if (e.type == "HANDOFF") {
    bool ok = false;
    if (doc["result"]["accepted"].get_bool().get(ok)) ok = false;
    if (!ok) return at + "handoff rejected: " + std::string(doc["result"]["reason"].get_string().value_unsafe());
  }
  if (e.type == "DELEGATION_RESULTS") {
    simdjson::dom::array results;
    const std::size_t n = doc["results"].get(results) ? 0 : results.size();
    return at + field(doc, "agent") + ": " + std::to_string(n) + " delegation result" + (n == 1 ? "" : "s") + " added to its prompt";
  }
  if (e.type == "STAGE_FINISHED" || e.type == "WORKGROUP_FINISHED") {
    const std::string what = e.type == "STAGE_FINISHED" ? "stage " + field(doc, "name") : "workgroup " + field(doc, "workgroup");
    const std::string output = field(doc, "output");
    return at + what + ": " + field(doc, "status") + (output.empty() ? "" : ": " + output.substr(0, std::min<std::size_t>(output.find('\n'), 160)));
  }
  if (e.type == "RUN_RESUMED") return "run resumed by process " + std::to_string(doc["pid"].get_uint64().value_unsafe());
  return {};
}

// Prints the run room's step events until RUN_FINISHED (or `stop`).
void follow_room(Room room, std::atomic<bool>& stop) {
  SubscribeOptions o;
  o.from = StartFrom::earliest;
  Subscription sub = room.subscribe(o);
  for (;;) {
    ReadResult r = sub.next(std::chrono::milliseconds(100));
    if (r.status != ReadStatus::event) {
      if (stop.load()) return;
      continue;
    }
    const std::string line = step_line(r.event);
    if (!line.empty()) {
      std::fprintf(stderr, "%s\n", sanitize_for_terminal(line).c_str());
      std::fflush(stderr);
    }
    if (r.event.type == "RUN_FINISHED") return;
  }
}

int print_result(const std::string& id, const RunResult& r, bool json) {
  if (json) {
    write_out("{\"run\":" + json_string(id) + ",\"state\":" + json_string(std::string(to_string(r.state))) +
                  ",\"output\":" + json_string(r.output) + ",\"error\":" + json_string(r.error) +
                  ",\"approved\":" + (r.approved ? "true" : "false") + ",\"iterations\":" + std::to_string(r.iterations) +
                  ",\"detail\":" + r.detail + "}\n",
              true);
  } else if (!r.output.empty()) {
    write_out(r.output + (r.output.back() == '\n' ? "" : "\n"), true);
  }
  if (r.state == RunState::completed) return 0;
  report_error("run " + id + " " + std::string(to_string(r.state)) + (r.error.empty() ? "" : ": " + r.error));
  return kExitFailure;
}

int run_run(const Globals& g, const RunArgs& a) {
  if (a.file.empty() == a.resume.empty()) {
    report_error("give a run FILE, or --resume RUN_ID");
    return kExitUsage;
  }
  Bus bus = open_bus(g);
  RunOptions options;
  std::optional<Run> run;
  RunSpec spec;
  if (!a.resume.empty()) {
    // Agents, strategy and budget come from the spec the run was started with.
    Run probe = Run::resume(bus, a.resume, options);
    spec = spec_of_run(probe, &bus);
    probe.set_budget(spec.budget);
    run.emplace(std::move(probe));
  } else {
    spec = load_run_file(a.file, &bus);
    if (a.input_opt->count() > 0) spec.input = a.input;
    if (!a.run_id.empty()) spec.run_id = a.run_id;
    if (spec.run_id.empty()) {
      char buf[48];
      std::snprintf(buf, sizeof buf, "r-%llx-%d", static_cast<unsigned long long>(realtime_ns() / 1'000'000), ::getpid());
      spec.run_id = buf;
    }
    options.run_id = spec.run_id;
    options.budget = spec.budget;
    options.ring_bytes = spec.ring_bytes;
    run.emplace(Run::start(bus, spec.strategy->name(), spec.input, spec.json, options));
  }
  std::fprintf(stderr, "run %s: %s %s\n", run->id().c_str(), a.resume.empty() ? "started" : "resumed", run->strategy().c_str());
  std::atomic<bool> stop{false};
  std::thread follower;
  if (a.follow) follower = std::thread([room = run->room(), &stop]() mutable { follow_room(room, stop); });
  RunResult result;
  try {
    if (run->strategy() != spec.strategy->name())
      throw Error(Errc::corrupt, "run " + run->id() + " was started as " + run->strategy() + " but its spec is a " +
                                     std::string(spec.strategy->name()));
    result = drive(*run, *spec.strategy);
  } catch (...) {
    stop = true;
    if (follower.joinable()) follower.join();
    throw;
  }
  stop = true;
  if (follower.joinable()) follower.join();
  return print_result(run->id(), result, a.json);
}

int run_runs(const Globals& g, bool json) {
  Bus bus = open_bus(g);
  const auto runs = list_runs(bus);
  std::string out;
  std::vector<std::vector<std::string>> rows{{"RUN", "STRATEGY", "STATE", "STEPS", "STARTED", "OUTPUT"}};
  for (const auto& r : runs) {
    std::string state(to_string(r.state));
    if (r.state == RunState::running && !r.driver_alive) state = r.start_lost ? "lost" : "interrupted";  // resume it
    if (json) {
      out += "{\"run\":" + json_string(r.run_id) + ",\"strategy\":" + json_string(r.strategy) + ",\"state\":" + json_string(state) +
             ",\"steps\":" + std::to_string(r.steps) + ",\"started\":" + json_string(iso8601_utc(r.started_ns)) +
             ",\"driver_pid\":" + std::to_string(r.driver_pid) + ",\"output\":" + json_string(r.output) + "}\n";
    } else {
      rows.push_back({sanitize_for_terminal(r.run_id), sanitize_for_terminal(r.strategy), state, std::to_string(r.steps),
                      clock_local(r.started_ns), clip_to_width(sanitize_for_terminal(r.output), 50)});
    }
  }
  if (!json && !runs.empty()) out = aligned_table(rows);
  if (!json && runs.empty()) out = "No runs.\n";
  write_out(out, true);
  return 0;
}

struct AgentArgs {
  std::string id, role, description, command, member;
};

int run_agent(const Globals& g, const AgentArgs& a) {
  Bus bus = open_bus(g);
  AgentServerOptions o;
  o.agent_id = a.id;
  o.role = a.role;
  o.description = a.description;
  o.member = a.member;
  o.provider = std::make_shared<CommandProvider>(a.command);
  std::fprintf(stderr, "agent %s: serving room %s%s on bus %s\n", a.id.c_str(), std::string(kAgentRoomPrefix).c_str(), a.id.c_str(),
               bus.name().c_str());
  const auto stats = serve_until_signal([&](std::atomic<bool>& stop) { return serve_agent(bus, o, stop); });
  std::fprintf(stderr, "agent %s: served %llu, failed %llu, expired %llu\n", a.id.c_str(),
               static_cast<unsigned long long>(stats.served), static_cast<unsigned long long>(stats.failed),
               static_cast<unsigned long long>(stats.expired));
  return 0;
}

}  // namespace

void add_run_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* run = app.add_subcommand("run", "Drive an orchestration run declared in a JSON file, or resume one");
  run->footer("The file declares agents (provider commands), the strategy and budgets: docs/orchestration.md.\n"
              "Every step is an event in room runs/<RUN_ID>; a driver killed with kill -9 is resumed with\n"
              "`agentbus run --resume RUN_ID`, and no agent is called again for a step that finished.\n"
              "Exit codes: 0 completed, 1 failed, budget_exceeded or a bad run file, 2 usage,\n"
              "3 the run has finished or its driver is alive, 4 no such run or file.\n\n"
              "Examples:\n"
              "  agentbus run examples/providers/loop.json --follow\n"
              "  agentbus run team.json --input \"Summarise the incident\" --run-id incident-7 --json\n"
              "  agentbus run --resume incident-7");
  run->add_option("file", args->file, "Run file (JSON)");
  run->add_option("--resume", args->resume, "Resume the interrupted run RUN_ID")->type_name("RUN_ID");
  args->input_opt = run->add_option("--input", args->input, "The run's input (overrides the file's \"input\")");
  run->add_option("--run-id", args->run_id, "Id of the new run (default: generated)");
  run->add_flag("--follow,-f", args->follow, "Print each step on stderr as it happens");
  run->add_flag("--json", args->json, "Print the result as one JSON object");
  commands.push_back({run, [&g, args] { return run_run(g, *args); }});

  auto agent = std::make_shared<AgentArgs>();
  CLI::App* serve = app.add_subcommand("agent", "Serve an agent from this process: answer its requests on the bus");
  serve->footer("Requests come from drivers whose run file marks the agent \"on_bus\": true. Start several\n"
                "with one --id for more capacity; a request whose server dies goes to another.\n\n"
                "Examples:\n"
                "  agentbus agent --id editor --role Reviewer --provider-cmd \"python3 examples/providers/echo_agent.py\"\n"
                "  agentbus --bus team agent --id writer --provider-cmd ./my_llm_agent.sh");
  serve->add_option("--id", agent->id, "Agent id (its room is agents/ID)")->required();
  serve->add_option("--role", agent->role, "Role told to the provider");
  serve->add_option("--description", agent->description, "Description told to the provider");
  serve->add_option("--provider-cmd", agent->command, "Provider command (JSON on stdin/stdout, docs/orchestration.md)")->required();
  serve->add_option("--member", agent->member, "Consumer-group member name (default ID-PID)");
  commands.push_back({serve, [&g, agent] { return run_agent(g, *agent); }});

  auto json = std::make_shared<bool>(false);
  CLI::App* runs = app.add_subcommand("runs", "List orchestration runs with their state");
  runs->add_flag("--json", *json, "One JSON object per run");
  runs->footer("STATE is running, interrupted (its driver died: resume it), completed, failed,\n"
               "budget_exceeded, or lost (its start was overwritten in its room: it cannot be resumed).\n\n"
               "Examples:\n"
               "  agentbus runs\n"
               "  agentbus runs --json");
  commands.push_back({runs, [&g, json] { return run_runs(g, *json); }});
}

}  // namespace agentbus::cli
