// agentbus-bench — agentbus side by side with a naive SPSC shared-memory ring (the floor),
// boost::interprocess::message_queue and Redis Streams on loopback, in one run, with a
// placement probe around every result. See docs/benchmarks.md for how to read the output.
#include "bridge.hpp"
#include "plan.hpp"
#include "proc.hpp"
#include "report.hpp"
#include "systems.hpp"
#include "groups.hpp"
#include "status.hpp"
#include "orchestration.hpp"
#include "delegation.hpp"
#include "tasks.hpp"
#include "probe.hpp"

#include <CLI/CLI.hpp>
#include <agentbus_testing/redis_server.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <sys/utsname.h>
#include <vector>

namespace {

using namespace bench;
using agentbus::testing::RedisServer;

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

// The 1-minute load average when the run started: anything well above 0 means other work
// shared the two cores and the figures are noisier than they should be.
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one.empty() ? "?" : one;
}

std::string run_header(int argc, char** argv, const Settings& s, const std::string& load) {
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
  utsname u{};
  uname(&u);
  char when[64];
  const std::time_t t = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  char buf[1536];
  std::snprintf(buf, sizeof buf,
                "agentbus-bench: %s\n  %s, %d CPUs, %s %s, %s, load average at start %s\n"
                "  throughput: median of %d runs x %.2f s; latency: %d samples/producer, paced "
                "%.0f us (spin) / %.0f us (block); idle window %.2f s\n"
                "  probe: median core-to-core round trip CPU0<->CPU1 before/after each row; "
                "near < 200 ns",
                cmd.c_str(), cpu_model().c_str(), online_cpus(), u.sysname, u.release, when, load.c_str(), s.runs,
                s.seconds, s.samples, double(s.spin_pace_ns) / 1000, double(s.block_pace_ns) / 1000,
                s.idle_seconds);
  return buf;
}

bool selected(const std::vector<std::string>& filter, const std::string& name) {
  return filter.empty() || std::find(filter.begin(), filter.end(), name) != filter.end();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"agentbus-bench: agentbus beside a naive shm ring, Boost message_queue and Redis "
               "Streams, in one run"};
  bool json = false;
  bool quick = false;
  std::vector<std::string> only;
  std::vector<std::string> scenarios;
  int runs = 0;
  double seconds = 0;
  int samples = 0;
  app.add_flag("--json", json, "one JSON object per result line instead of the table");
  app.add_flag("--quick", quick, "short runs (CI smoke test, well under a minute)");
  app.add_option("--only", only, "measure only these systems (repeatable)")
      ->check(CLI::IsMember({"agentbus", "agentbus-excl", "agentbus-batch", "naive-ring", "boost-mq", "redis", "redis-pipelined"}));
  app.add_option("--scenario", scenarios, "only these scenarios (repeatable)")
      ->check(CLI::IsMember({"1to1", "2to1", "1to4", "idle"}));
  app.add_option("--runs", runs, "throughput runs per result (median reported)")
      ->check(CLI::Range(1, 100));
  app.add_option("--seconds", seconds, "producer time per throughput run")
      ->check(CLI::Range(0.01, 30.0));
  bool tasks = false;
  app.add_flag("--tasks", tasks,
               "measure the task board instead: claim+complete in one process, and two processes "
               "racing to claim the same tasks");
  bool groups = false;
  app.add_flag("--groups", groups,
               "measure consumer groups instead: two member processes sharing a group, against "
               "the plain 1->1 ring in the same run");
  bool status = false;
  app.add_flag("--status", status,
               "measure the status bus instead: post, post->callback across processes, JSONL "
               "persistence");
  bool bridge = false;
  app.add_flag("--bridge", bridge,
               "measure the Redis bridge instead: mirror rate vs pipelined XADD, A->B latency vs XADD->XREAD, "
               "local publishing with Redis stopped vs no bridge");
  bool orchestration = false;
  app.add_flag("--orchestration", orchestration,
               "measure orchestration instead: per-step overhead of a 10-stage Pipeline, in-process and "
               "with each agent in its own process, vs one publish+tail round trip");
  bool delegation = false;
  app.add_flag("--delegation", delegation,
               "measure delegation instead: delegate -> worker process -> result, p50/p99 and delegations/s "
               "with 2 workers, vs one claim+complete pair and one Redis SET NX+GET");
  bool probe_only = false;
  app.add_flag("--probe", probe_only,
               "print one placement probe (median CPU 0 <-> CPU 1 round trip) as JSON and exit; "
               "bench/python_bench.py takes it around each of its figures");
  app.add_option("--samples", samples, "latency samples per producer")->check(CLI::Range(10, 1'000'000));
  CLI11_PARSE(app, argc, argv);
  if (probe_only) {
    const double rtt = probe_round_trip_ns(quick ? 2'000 : 10'000);
    std::fprintf(stdout, "{\"probe_rtt_ns\":%.1f,\"placement\":\"%s\"}\n", rtt, classify_placement(rtt, rtt).c_str());
    return 0;
  }

  const auto header = [&](const char* mode) {
    std::fprintf(stdout, "agentbus-bench %s: %s, %d CPUs, load average at start %s\n", mode, cpu_model().c_str(),
                 online_cpus(), load_average().c_str());
  };
  ModeSettings mode;
  mode.quick = quick;
  mode.runs = runs > 0 ? runs : quick ? 1 : mode.runs;
  if (groups) {
    header("--groups");
    return run_group_bench(mode, json, stdout);
  }
  if (delegation) {
    header("--delegation");
    return run_delegation_bench(mode, json, stdout);
  }
  if (orchestration) {
    header("--orchestration");
    return run_orchestration_bench(mode, json, stdout);
  }
  if (bridge) {
    header("--bridge");
    return run_bridge_bench(mode, json, stdout);
  }
  if (status) {
    header("--status");
    return run_status_bench(mode, json, stdout);
  }
  if (tasks) {
    TaskBenchSettings ts;
    if (quick) {
      ts.runs = 1;
      ts.tasks = 10'000;
    }
    if (runs > 0) ts.runs = runs;
    std::fprintf(stdout, "agentbus-bench --tasks: %s, %d CPUs, load average at start %s\n", cpu_model().c_str(),
                 online_cpus(), load_average().c_str());
    return run_task_bench(ts, json, stdout);
  }

  const std::string load_at_start = load_average();
  Settings settings;
  if (quick) {
    settings.runs = 1;
    settings.seconds = 0.1;
    settings.samples = 2'000;
    settings.warmup = 200;
    settings.idle_seconds = 0.3;
    settings.probe_round_trips = 2'000;
  }
  if (runs > 0) settings.runs = runs;
  if (seconds > 0) settings.seconds = seconds;
  if (samples > 0) settings.samples = samples;

  std::vector<SystemEntry> systems;
  for (SystemEntry& s : all_systems())
    if (selected(only, s.name)) systems.push_back(std::move(s));

  RedisServer redis;
  std::string redis_note;
  if (std::any_of(systems.begin(), systems.end(), [](const SystemEntry& s) { return s.needs_redis; })) {
    if (redis.start()) settings.redis_port = redis.port();
    else redis_note = "skipped: " + redis.why();
  }

  std::vector<Row> rows;
  for (const Scenario& sc : all_scenarios()) {
    if (!selected(scenarios, sc.name)) continue;
    for (const std::size_t payload : sc.payloads) {
      for (const Wait wait : sc.waits) {
        for (const SystemEntry& system : systems) {
          RunSpec probe_spec;  // would the system take part in this row at all?
          probe_spec.scenario = sc.name;
          probe_spec.producers = sc.producers;
          probe_spec.subscribers = sc.subscribers;
          probe_spec.wait = wait;
          probe_spec.mode = sc.name == "idle" ? Mode::idle : Mode::throughput;
          if (!system.supports(probe_spec)) continue;
          if (system.needs_redis && settings.redis_port == 0) {
            Row skipped = empty_row(system, sc, payload, wait);
            skipped.note = redis_note;
            rows.push_back(std::move(skipped));
            continue;
          }
          std::fprintf(stderr, "  %-5s %5zu B  %-16s %-5s ...", sc.name.c_str(), payload,
                       system.name.c_str(), std::string(to_string(wait)).c_str());
          std::fflush(stderr);
          rows.push_back(measure_row(system, sc, payload, wait, settings));
          std::fprintf(stderr, " done%s\n", rows.back().m.error.empty() ? "" : " (error)");
        }
      }
    }
  }
  redis.stop();

  // Printed at the end, because every ratio needs the baselines measured in the same run.
  if (json) {
    for (const Row& r : rows) print_json_line(stdout, r, rows);
  } else {
    print_table(stdout, rows, run_header(argc, argv, settings, load_at_start));
  }
  const bool failed = std::any_of(rows.begin(), rows.end(), [](const Row& r) { return !r.m.error.empty(); });
  return failed ? 1 : 0;
}
