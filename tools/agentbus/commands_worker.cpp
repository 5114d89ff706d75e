// agentbus worker (serve delegated tasks) and agentbus delegate (hand one to a worker).
#include "common.hpp"
#include "output.hpp"

#include <agentbus/orchestration/command_provider.hpp>
#include <agentbus/orchestration/delegation.hpp>
#include <agentbus/orchestration/worker.hpp>

#include <atomic>
#include <cstdio>
#include <thread>

namespace agentbus::cli {

using namespace agentbus::orchestration;

namespace {

struct WorkerArgs {
  std::vector<std::string> types;
  std::string command, name, lease = "30s", task_timeout = "10m";
  unsigned concurrency = 1;
};

int run_worker(const Globals& g, const WorkerArgs& a) {
  Bus bus = open_bus(g);
  WorkerOptions o;
  o.types = a.types;
  o.provider = std::make_shared<CommandProvider>(a.command);
  o.name = a.name;
  o.concurrency = a.concurrency;
  o.lease = validated_ms(a.lease);
  o.task_timeout = validated_ms(a.task_timeout);
  validate_worker_options(o);
  std::string types;
  for (const auto& t : a.types) types += (types.empty() ? "" : ",") + t;
  std::fprintf(stderr, "worker %s: serving %s on bus %s\n", a.name.empty() ? ("worker-" + std::to_string(::getpid())).c_str() : a.name.c_str(),
               types.c_str(), bus.name().c_str());
  const auto s = serve_until_signal([&](std::atomic<bool>& stop) { return serve_delegations(bus, o, stop); });
  std::fprintf(stderr, "worker: completed %llu, failed %llu, cancelled %llu, stale refused %llu, taken over %llu\n",
               static_cast<unsigned long long>(s.completed), static_cast<unsigned long long>(s.failed),
               static_cast<unsigned long long>(s.cancelled), static_cast<unsigned long long>(s.stale_refused),
               static_cast<unsigned long long>(s.taken_over));
  return 0;
}

struct DelegateArgs {
  std::string type, task, agent = "cli", context = "{}", metadata = "{}", notify, timeout = "10m";
  bool no_wait = false, structured = false, json = false;
};

int run_delegate(const Globals& g, const DelegateArgs& a) {
  Bus bus = open_bus(g);
  const std::string room = room_name(g);
  Delegator d(bus, a.agent);
  DelegateOptions o;
  o.context = a.context;
  o.metadata = a.metadata;
  o.notify = a.notify;
  o.require_structured_result = a.structured;
  DelegatedTask t = d.delegate(room, a.type, a.task, o);
  if (a.no_wait) {
    write_out(a.json ? "{\"task_id\":" + json_string(t.task_id()) + ",\"child_room\":" + json_string(t.child_room_id()) + "}\n"
                     : t.task_id() + "\n",
              true);
    return 0;
  }
  const DelegatedTaskResult r = t.wait(validated_ms(a.timeout));
  if (a.json) {
    std::string out = "{\"task_id\":" + json_string(r.task_id) + ",\"child_room\":" + json_string(r.child_room_id) +
                      ",\"status\":" + json_string(to_string(r.status)) + ",\"worker\":" + json_string(r.worker) +
                      ",\"duration_ms\":" + std::to_string(r.duration_ms);
    if (r.output) out += ",\"output\":" + json_string(*r.output);
    if (r.error) out += ",\"error\":" + json_string(*r.error);
    write_out(out + "}\n", true);
  } else if (r.status == TaskStatus::completed) {
    write_out(*r.output + "\n", true);
  } else {
    std::fprintf(stderr, "error: delegated task %s %s: %s\n", r.task_id.c_str(), std::string(to_string(r.status)).c_str(),
                 r.error.value_or("").c_str());
  }
  return r.status == TaskStatus::completed ? 0 : 1;
}

}  // namespace

void add_worker_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto w = std::make_shared<WorkerArgs>();
  CLI::App* worker = app.add_subcommand("worker", "Serve tasks delegated to the given types, running a provider on each");
  worker->footer("Claims tasks on the boards of rooms delegations/TYPE, renews the claim while the provider\n"
                 "works and completes it with its fencing token. A worker killed mid-task frees the task at\n"
                 "once (its process is the claim's session) and another worker takes it over.\n\n"
                 "Examples:\n"
                 "  agentbus worker --type research --provider-cmd \"python3 examples/providers/echo_agent.py\"\n"
                 "  agentbus worker --type review --type summary --provider-cmd ./llm.sh --concurrency 4");
  worker->add_option("--type", w->types, "Task type to serve (repeat for several)")->required();
  worker->add_option("--provider-cmd", w->command, "Provider command (JSON on stdin/stdout, docs/orchestration.md)")->required();
  worker->add_option("--concurrency", w->concurrency, "Tasks run at once")->check(CLI::Range(1u, 64u));
  worker->add_option("--name", w->name, "Claimant name (default worker-PID)");
  worker->add_option("--lease", w->lease, "Claim lease, renewed every third of it")->check(duration_validator(std::chrono::milliseconds(30)));
  worker->add_option("--task-timeout", w->task_timeout, "Longest provider call")->check(duration_validator(std::chrono::milliseconds(1)));
  commands.push_back({worker, [&g, w] { return run_worker(g, *w); }});

  auto d = std::make_shared<DelegateArgs>();
  CLI::App* del = app.add_subcommand("delegate", "Delegate a task to a worker type and wait for its result");
  del->footer("The task goes to the board of room delegations/TYPE, addressed as <room>/task-<12 hex>; the\n"
              "result also lands in the notified agent's inbox in --room. Exit 0 completed, 1 failed or\n"
              "cancelled (or timed out: the task stays on the board), 4 no such room.\n\n"
              "Examples:\n"
              "  agentbus --room team delegate --type research \"Find the root cause\"\n"
              "  agentbus --room team delegate --type review --agent lead --no-wait \"Review PR 7\"");
  del->add_option("--type", d->type, "Worker type to delegate to")->required();
  del->add_option("task", d->task, "The task text")->required();
  del->add_option("--agent", d->agent, "Delegating agent (notified by default)");
  del->add_option("--notify", d->notify, "Agent whose inbox gets the result");
  del->add_option("--context", d->context, "Context, a JSON object");
  del->add_option("--metadata", d->metadata, "The parent's metadata envelope, a JSON object");
  del->add_option("--timeout", d->timeout, "How long to wait")->check(duration_validator(std::chrono::milliseconds(1)));
  del->add_flag("--no-wait", d->no_wait, "Print the task id and return");
  del->add_flag("--structured", d->structured, "The result must be a JSON object");
  del->add_flag("--json", d->json, "Print the result as one JSON object");
  commands.push_back({del, [&g, d] { return run_delegate(g, *d); }});
}

}  // namespace agentbus::cli
