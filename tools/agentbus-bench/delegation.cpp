// agentbus-bench/delegation.cpp — what a delegation costs end to end (issue 13):
//  * latency: the parent delegates one task and waits (block mode) for its result, served by
//    one of 2 worker processes (serve_delegations with a scripted provider); p50 and p99;
//  * throughput: up to 64 delegations in flight, 2 workers, delegations/s;
//  * baselines, same run: one claim + complete pair on a TaskBoard in this process (p50), and
//    one Redis SET NX + GET round trip to a private redis-server (p50; skipped without one).
// The result also goes to the parent's inbox, as in real use; the parent acks it between
// samples (untimed) so the inbox never fills.
#include "delegation.hpp"

#include "figure.hpp"
#include "probe.hpp"
#include "proc.hpp"
#include "redis_client.hpp"
#include "stats.hpp"

#include <agentbus/agentbus.hpp>
#include <agentbus/inbox.hpp>
#include <agentbus/orchestration/delegation.hpp>
#include <agentbus/orchestration/worker.hpp>
#include <agentbus_testing/redis_server.hpp>

#include <csignal>
#include <deque>
#include <string>
#include <unistd.h>
#include <vector>

namespace bench {
namespace {

namespace orch = agentbus::orchestration;

agentbus::Bus open_bus(const std::string& name) {
  agentbus::BusOptions o;
  o.name = name;
  o.segment_bytes = 1ull << 30;
  return agentbus::Bus::open(o);
}

void drain_inbox(agentbus::Inbox& inbox) {
  for (;;) {
    const auto msgs = inbox.read("lead", 256);
    if (msgs.empty()) return;
    inbox.ack("lead", msgs.back().seq);
  }
}

double claim_complete_p50(agentbus::Bus& bus, int samples) {
  agentbus::TaskBoard board(bus.room("bench/claims"));
  board.register_task({"job", "", "", ""});
  std::vector<double> v;
  for (int i = 0; i < samples; ++i) {
    const agentbus::EventId id = board.post_task("job", "bench", "x");
    const std::int64_t t0 = now_ns();
    const agentbus::Claim c = board.claim(id, "worker");
    if (!c.ok()) throw std::runtime_error("uncontended claim lost");
    board.complete(id, c.token, "ok");
    v.push_back(double(now_ns() - t0));
  }
  return median(v);
}

double redis_p50(int samples, std::string& note) {
  agentbus::testing::RedisServer server;
  if (!server.start()) {
    note = "skipped: " + server.why();
    return 0;
  }
  RedisClient client(server.port());
  std::vector<double> v;
  for (int i = 0; i < samples; ++i) {
    const std::string key = "claim:" + std::to_string(i);
    const std::int64_t t0 = now_ns();
    client.command("SET %s %s NX PX %d", key.c_str(), "worker", 30000);
    client.command("GET %s", key.c_str());
    v.push_back(double(now_ns() - t0));
  }
  return median(v);
}

}  // namespace

int run_delegation_bench(const ModeSettings& settings, bool json, std::FILE* out) {
  const std::string bus_name = "bench-deleg-" + std::to_string(::getpid());
  agentbus::Bus::destroy(bus_name);
  const int samples = settings.quick ? 200 : 5000;
  const int throughput_tasks = settings.quick ? 2000 : 40000;
  try {
    agentbus::Bus bus = open_bus(bus_name);
    agentbus::Room team = bus.room("team");
    agentbus::Inbox inbox(team);
    const double rtt_before = probe_round_trip_ns();
    const double claim_pair = claim_complete_p50(bus, samples);
    std::string redis_note;
    const double redis = redis_p50(samples, redis_note);

    std::vector<pid_t> workers;
    SharedMapping mapping(sizeof(Control));
    auto* control = new (mapping.data()) Control{};
    for (int i = 0; i < 2; ++i)
      workers.push_back(fork_child(
          [&, i] {
            agentbus::Bus b = open_bus(bus_name);
            orch::WorkerOptions o;
            o.types = {"bench"};
            o.name = "w" + std::to_string(i);
            o.provider = std::make_shared<orch::ScriptedProvider>(std::vector<orch::Reply>{orch::Reply::say("ok")});
            std::atomic<bool> stop{false};
            control->mark_ready();
            orch::serve_delegations(b, o, stop);  // until SIGKILL below
          },
          [](const char* what) { std::fprintf(stderr, "worker failed: %s\n", what); }));
    while (control->ready.load() < 2) usleep(1000);

    orch::Delegator lead(bus, "lead");
    for (int i = 0; i < 50; ++i) (void)lead.delegate("team", "bench", "warm up").wait(std::chrono::seconds(5));
    drain_inbox(inbox);
    std::vector<double> lat;
    for (int i = 0; i < samples; ++i) {
      const std::int64_t t0 = now_ns();
      const orch::DelegatedTaskResult r = lead.delegate("team", "bench", "task").wait(std::chrono::seconds(5));
      lat.push_back(double(now_ns() - t0));
      if (r.status != orch::TaskStatus::completed) throw std::runtime_error("a delegation did not complete");
      if (i % 64 == 63) drain_inbox(inbox);
    }
    drain_inbox(inbox);
    std::sort(lat.begin(), lat.end());

    std::deque<orch::DelegatedTask> window;
    const std::int64_t t0 = now_ns();
    for (int i = 0; i < throughput_tasks; ++i) {
      if (window.size() >= 64) {
        if (window.front().wait(std::chrono::seconds(5)).status != orch::TaskStatus::completed)
          throw std::runtime_error("a delegation did not complete");
        window.pop_front();
      }
      window.push_back(lead.delegate("team", "bench", "task"));
      if (i % 128 == 127) drain_inbox(inbox);
    }
    while (!window.empty()) {
      (void)window.front().wait(std::chrono::seconds(5));
      window.pop_front();
    }
    const double per_s = double(throughput_tasks) / (double(now_ns() - t0) / 1e9);
    for (pid_t p : workers) ::kill(p, SIGKILL);
    reap_children(workers, now_ns() + 5'000'000'000);
    const double rtt_after = probe_round_trip_ns();

    Figure f;
    f.before = rtt_before;
    f.after = rtt_after;
    f.baseline = claim_pair / 1000;
    f.value = percentile_sorted(lat, 0.5) / 1000;
    f.note = std::to_string(lat.size()) + " delegations, 2 workers, target <= 50 us";
    print_figure(out, json, "delegation round trip p50", "us", f, "claim+complete pair p50");
    f.value = percentile_sorted(lat, 0.99) / 1000;
    f.note.clear();
    print_figure(out, json, "delegation round trip p99", "us", f, "claim+complete pair p50");
    if (redis > 0) {
      f.baseline = redis / 1000;
      f.value = percentile_sorted(lat, 0.5) / 1000;
      f.note = "same samples";
      print_figure(out, json, "delegation round trip p50", "us", f, "redis SET NX+GET p50");
    } else {
      std::fprintf(out, "redis SET NX+GET baseline %s\n", redis_note.c_str());
    }
    f.baseline = 20000;
    f.value = per_s;
    f.note = std::to_string(throughput_tasks) + " delegations, 64 in flight, 2 workers";
    print_figure(out, json, "delegations per second", "1/s", f, "target");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "delegation bench failed: %s\n", e.what());
    agentbus::Bus::destroy(bus_name);
    return 1;
  }
  agentbus::Bus::destroy(bus_name);
  return 0;
}

}  // namespace bench
