// agentbus-bench/orchestration.cpp — what a durable orchestration step costs (issue 12):
//  * a 10-stage Pipeline of scripted agents driven in this process: per step, the time from
//    one STEP_CALLED event to the next (journal events, state commit, handoff notice, status);
//  * the same with each agent served by its own process (serve_agent, block-mode waits):
//    per step, p50 and p99 over every step of every run;
//  * one agent's call round trip through its server process, back to back and with 500 us of
//    driver work between calls (what waking a server that fell asleep costs);
//  * baseline, same run: one Room::publish + block-mode tail round trip to another process
//    and back (two hops), p50.
// Step times are taken from the run room's own event timestamps (CLOCK_REALTIME at publish).
#include "orchestration.hpp"

#include "figure.hpp"
#include "probe.hpp"
#include "proc.hpp"
#include "stats.hpp"

#include <agentbus/agentbus.hpp>
#include <agentbus/orchestration/bus_agent.hpp>
#include <agentbus/orchestration/strategies.hpp>

#include <csignal>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace bench {
namespace {

namespace orch = agentbus::orchestration;

constexpr int kStages = 10;

agentbus::Bus open_bus(const std::string& name) {
  agentbus::BusOptions o;
  o.name = name;
  o.segment_bytes = 1ull << 30;
  o.max_rooms = 1024;
  return agentbus::Bus::open(o);
}

// Durations between consecutive STEP_CALLED events of one run (the last step ends at
// RUN_FINISHED), in ns.
void step_times(agentbus::Bus& bus, const std::string& run_id, std::vector<double>& out) {
  agentbus::RoomOptions ro;
  ro.create = false;
  agentbus::Room room = bus.room("runs/" + run_id, ro);
  std::int64_t last = 0;
  for (const auto& e : room.recent(100000)) {
    if (e.type != "STEP_CALLED" && e.type != "RUN_FINISHED") continue;
    if (last != 0) out.push_back(double(e.ts_ns - last));
    last = e.ts_ns;
  }
}

std::vector<orch::Agent> scripted_stages() {
  std::vector<orch::Agent> agents;
  for (int i = 0; i < kStages; ++i)
    agents.push_back(orch::scripted_agent("stage" + std::to_string(i), {orch::Reply::say("stage output")}));
  return agents;
}

std::vector<double> run_pipelines(agentbus::Bus& bus, const std::vector<orch::Agent>& agents, int runs, const std::string& tag) {
  std::vector<double> steps;
  for (int r = 0; r < runs; ++r) {
    orch::Pipeline p(agents);
    orch::RunOptions o;
    o.run_id = tag + "-" + std::to_string(r);
    o.ring_bytes = 1 << 20;
    o.budget.call_timeout = std::chrono::seconds(10);
    const orch::RunResult res = orch::drive(bus, p, "benchmark input", o);
    if (res.state != orch::RunState::completed) throw std::runtime_error("pipeline run failed: " + res.error);
    step_times(bus, o.run_id, steps);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

// The baseline: publish to "ping", the other process's tailer answers on "pong".
double round_trip_p50(const std::string& bus_name, int samples) {
  agentbus::Bus bus = open_bus(bus_name);
  agentbus::Room ping = bus.room("bench/ping"), pong = bus.room("bench/pong");
  SharedMapping mapping(sizeof(Control));
  auto* control = new (mapping.data()) Control{};
  const pid_t child = fork_child(
      [&] {
        agentbus::Bus b = open_bus(bus_name);
        agentbus::Room in = b.room("bench/ping"), back = b.room("bench/pong");
        agentbus::Subscription sub = in.subscribe({.wait = agentbus::WaitStrategy::block});
        control->mark_ready();
        for (int i = 0; i < samples;) {
          const agentbus::ReadResult r = sub.next(std::chrono::seconds(5));
          if (!r.has_event()) return;
          back.publish("pong", "echo", r.event.payload);
          ++i;
        }
      },
      [](const char* what) { std::fprintf(stderr, "echo failed: %s\n", what); });
  agentbus::Subscription replies = pong.subscribe({.wait = agentbus::WaitStrategy::block});
  while (control->ready.load() < 1) usleep(100);
  std::vector<double> rtt;
  for (int i = 0; i < samples; ++i) {
    const std::int64_t t0 = now_ns();
    ping.publish("ping", "bench", "x");
    const agentbus::ReadResult r = replies.next(std::chrono::seconds(5));
    if (!r.has_event()) throw std::runtime_error("no pong");
    rtt.push_back(double(now_ns() - t0));
  }
  reap_children({child}, now_ns() + 5'000'000'000);
  return median(rtt);
}

// One agent's call round trip through its server process, back to back (the server stays
// awake) or with `gap_us` of driver work between calls (long enough for it to fall asleep).
double call_p50(orch::BusAgentProvider& agent, int calls, int gap_us) {
  orch::ProviderRequest req;
  req.agent.id = "stage0";
  req.messages = {{"user", "", "benchmark input"}};
  std::vector<double> v;
  for (int i = 0; i < calls; ++i) {
    const std::int64_t t0 = now_ns();
    if (!agent.call(req, std::chrono::seconds(5)).ok()) throw std::runtime_error("agent call failed");
    v.push_back(double(now_ns() - t0));
    const std::int64_t until = now_ns() + std::int64_t(gap_us) * 1000;
    while (now_ns() < until) {
    }
  }
  return median(v);
}

}  // namespace

int run_orchestration_bench(const ModeSettings& settings, bool json, std::FILE* out) {
  const std::string bus_name = "bench-orch-" + std::to_string(::getpid());
  agentbus::Bus::destroy(bus_name);
  const int runs = settings.quick ? 3 : 20;
  try {
    agentbus::Bus bus = open_bus(bus_name);
    const double rtt_before = probe_round_trip_ns();
    const double baseline = round_trip_p50(bus_name, settings.quick ? 200 : 2000);

    // In-process.
    run_pipelines(bus, scripted_stages(), 1, "warm");
    const std::vector<double> local = run_pipelines(bus, scripted_stages(), runs, "local");

    // Each agent in its own process, block-mode waits on both sides.
    std::vector<pid_t> servers;
    SharedMapping mapping(sizeof(Control));
    auto* control = new (mapping.data()) Control{};
    for (int i = 0; i < kStages; ++i)
      servers.push_back(fork_child(
          [&, i] {
            agentbus::Bus b = open_bus(bus_name);
            orch::AgentServerOptions o;
            o.agent_id = "stage" + std::to_string(i);
            o.provider = std::make_shared<orch::ScriptedProvider>(std::vector<orch::Reply>{orch::Reply::say("stage output")});
            std::atomic<bool> stop{false};
            control->mark_ready();
            orch::serve_agent(b, o, stop);  // until SIGTERM below
          },
          [](const char* what) { std::fprintf(stderr, "agent server failed: %s\n", what); }));
    while (control->ready.load() < kStages) usleep(1000);
    usleep(200'000);  // let every server reach its first read (joining the group is part of setup)
    std::vector<orch::Agent> remote;
    for (int i = 0; i < kStages; ++i) {
      const std::string id = "stage" + std::to_string(i);
      remote.push_back(orch::Agent{id, "", "", std::make_shared<orch::BusAgentProvider>(bus, id)});
    }
    run_pipelines(bus, remote, 1, "warm-remote");
    const std::vector<double> cross = run_pipelines(bus, remote, runs, "remote");
    orch::BusAgentProvider first(bus, "stage0");
    const int calls = settings.quick ? 200 : 2000;
    const double hot = call_p50(first, calls, 0), after_gap = call_p50(first, calls, 500);
    for (pid_t p : servers) ::kill(p, SIGKILL);
    reap_children(servers, now_ns() + 5'000'000'000);
    const double rtt_after = probe_round_trip_ns();

    Figure f;
    f.before = rtt_before;
    f.after = rtt_after;
    f.baseline = baseline / 1000;
    f.value = percentile_sorted(local, 0.5) / 1000;
    f.note = std::to_string(local.size()) + " steps";
    print_figure(out, json, "pipeline step, in-process p50", "us", f, "publish+tail round trip p50");
    f.value = percentile_sorted(cross, 0.5) / 1000;
    f.note = std::to_string(cross.size()) + " steps, target <= 30 us";
    print_figure(out, json, "pipeline step, agent processes p50", "us", f, "publish+tail round trip p50");
    f.value = percentile_sorted(cross, 0.99) / 1000;
    f.note.clear();
    print_figure(out, json, "pipeline step, agent processes p99", "us", f, "publish+tail round trip p50");
    f.value = hot / 1000;
    f.note = "one agent process, back to back";
    print_figure(out, json, "agent call round trip p50", "us", f, "publish+tail round trip p50");
    f.value = after_gap / 1000;
    f.note = "500 us of driver work between calls";
    print_figure(out, json, "agent call after a gap p50", "us", f, "publish+tail round trip p50");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "orchestration bench failed: %s\n", e.what());
    agentbus::Bus::destroy(bus_name);
    return 1;
  }
  agentbus::Bus::destroy(bus_name);
  return 0;
}

}  // namespace bench
