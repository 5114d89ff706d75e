#include "tasks.hpp"

#include "common.hpp"
#include "probe.hpp"
#include "proc.hpp"
#include "stats.hpp"

#include <agentbus/agentbus.hpp>

#include <string>
#include <unistd.h>
#include <vector>

namespace bench {
namespace {

constexpr int kRacers = 2;

agentbus::Bus open_bus(const std::string& name) {
  agentbus::BusOptions o;
  o.name = name;
  o.segment_bytes = 512ull << 20;
  return agentbus::Bus::open(o);
}

agentbus::TaskBoard open_board(agentbus::Bus& bus, int tasks) {
  agentbus::RoomOptions ro;
  ro.ring_bytes = 32 << 20;
  agentbus::TaskBoardOptions to;
  to.task_capacity = static_cast<std::uint32_t>(tasks * 2);  // two-choice buckets: keep load ≤ 50%
  to.max_payload_bytes = 64;
  agentbus::TaskBoard board(bus.room("tasks", ro), to);
  board.register_task({"job", "benchmark task", "", ""});
  return board;
}

std::vector<agentbus::EventId> post(agentbus::TaskBoard& board, int n) {
  std::vector<agentbus::EventId> ids;
  ids.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ids.push_back(board.post_task("job", "poster", "{}"));
  return ids;
}

// One process, one thread: claim then complete each task. Tasks are posted before timing.
double uncontended_rate(const TaskBenchSettings& s, const std::string& bus_name) {
  agentbus::Bus::destroy(bus_name);
  agentbus::Bus bus = open_bus(bus_name);
  agentbus::TaskBoard board = open_board(bus, s.tasks);
  std::vector<double> rates;
  for (int run = 0; run < s.runs; ++run) {
    const auto ids = post(board, s.tasks);
    const std::int64_t t0 = now_ns();
    for (const agentbus::EventId id : ids) {
      const agentbus::Claim c = board.claim(id, "worker");
      if (!c.ok()) throw std::runtime_error("uncontended claim lost");
      board.complete(id, c.token, "ok");
    }
    rates.push_back(double(ids.size()) / (double(now_ns() - t0) * 1e-9));
  }
  agentbus::Bus::destroy(bus_name);
  return median(rates);
}

struct RaceShared {
  Control control;
  std::atomic<std::uint64_t> end_ns[kRacers];
  std::atomic<std::uint64_t> wins[kRacers];
  std::atomic<std::uint64_t> double_claims;
  std::atomic<std::uint8_t> winner[1];  // one per task, sized at mapping time
};

struct RaceResult {
  double claims_per_s = 0;
  std::uint64_t double_claims = 0, claimed = 0;
};

// Two processes, pinned to different CPUs, walk the same task ids in the same order, each
// trying to claim every one. Every task must be won exactly once.
RaceResult race(const TaskBenchSettings& s, const std::string& bus_name) {
  agentbus::Bus::destroy(bus_name);
  agentbus::Bus bus = open_bus(bus_name);
  agentbus::TaskBoard board = open_board(bus, s.tasks);
  const auto ids = post(board, s.tasks);
  SharedMapping mapping(sizeof(RaceShared) + ids.size());
  auto* shared = new (mapping.data()) RaceShared{};
  std::vector<pid_t> pids;
  for (int r = 0; r < kRacers; ++r) {
    pids.push_back(fork_child(
        [&, r] {
          pin_to_cpu(r % online_cpus());
          agentbus::Bus mine = open_bus(bus_name);
          agentbus::TaskBoard b = open_board(mine, s.tasks);
          const std::string agent = "racer-" + std::to_string(r);
          // The claims belong to the parent, which outlives both racers: a racer that finishes
          // first and exits must not hand its claims to the other as a dead session's.
          agentbus::ClaimOptions options;
          options.session_pid = static_cast<int>(::getppid());
          shared->control.mark_ready();
          shared->control.wait_go();
          std::uint64_t won = 0;
          for (std::size_t i = 0; i < ids.size(); ++i) {
            if (!b.claim(ids[i], agent, options).ok()) continue;
            ++won;
            if (shared->winner[i].exchange(std::uint8_t(r + 1)) != 0) shared->double_claims.fetch_add(1);
          }
          shared->wins[r].store(won);
          shared->end_ns[r].store(static_cast<std::uint64_t>(now_ns()));
        },
        [](const char* what) { std::fprintf(stderr, "racer failed: %s\n", what); }));
  }
  while (shared->control.ready.load() < kRacers) usleep(100);
  const std::int64_t go = now_ns();
  shared->control.release(go);
  if (reap_children(pids, now_ns() + 120'000'000'000) != 0) throw std::runtime_error("a racer failed");
  RaceResult out;
  std::uint64_t last = 0;
  for (int r = 0; r < kRacers; ++r) {
    out.claimed += shared->wins[r].load();
    last = std::max(last, shared->end_ns[r].load());
  }
  out.double_claims = shared->double_claims.load();
  out.claims_per_s = double(out.claimed) / (double(std::int64_t(last) - go) * 1e-9);
  const agentbus::TaskBoardCounters c = board.counters();
  if (c.dead_sessions_reclaimed + c.expired_reclaimed + c.transitions_rolled_back != 0)
    std::fprintf(stderr, "race: %llu dead-owner reclaims, %llu expired, %llu rolled back\n",
                 static_cast<unsigned long long>(c.dead_sessions_reclaimed),
                 static_cast<unsigned long long>(c.expired_reclaimed),
                 static_cast<unsigned long long>(c.transitions_rolled_back));
  agentbus::Bus::destroy(bus_name);
  return out;
}

}  // namespace

int run_task_bench(const TaskBenchSettings& s, bool json, std::FILE* out) {
  const std::string bus_name = "bench-tasks-" + std::to_string(::getpid());
  const double before = probe_round_trip_ns();
  const double one = uncontended_rate(s, bus_name);
  std::vector<double> race_rates;
  std::uint64_t doubles = 0, missing = 0;
  for (int run = 0; run < s.runs; ++run) {
    const RaceResult r = race(s, bus_name);
    race_rates.push_back(r.claims_per_s);
    doubles += r.double_claims;
    missing += std::uint64_t(s.tasks) - std::min<std::uint64_t>(r.claimed, std::uint64_t(s.tasks));
  }
  const double after = probe_round_trip_ns();
  const std::string placement = classify_placement(before, after);
  const double raced = median(race_rates);
  if (json) {
    std::fprintf(out,
                 "{\"system\":\"agentbus\",\"scenario\":\"claim+complete\",\"processes\":1,\"ops_per_s\":%.0f,"
                 "\"placement\":\"%s\"}\n"
                 "{\"system\":\"agentbus\",\"scenario\":\"claim-race\",\"processes\":2,\"tasks\":%d,"
                 "\"claims_per_s\":%.0f,\"double_claims\":%llu,\"unclaimed\":%llu,\"placement\":\"%s\"}\n",
                 one, placement.c_str(), s.tasks, raced, static_cast<unsigned long long>(doubles),
                 static_cast<unsigned long long>(missing), placement.c_str());
  } else {
    std::fprintf(out,
                 "== tasks: median of %d runs, %d tasks each; placement %s (probe %.0f/%.0f ns)\n"
                 "claim+complete, 1 process, uncontended     %8.2f M/s\n"
                 "claim race, 2 processes on 2 CPUs          %8.2f M claims/s   double claims %llu, unclaimed %llu\n",
                 s.runs, s.tasks, placement.c_str(), before, after, one / 1e6, raced / 1e6,
                 static_cast<unsigned long long>(doubles), static_cast<unsigned long long>(missing));
  }
  return doubles == 0 && missing == 0 ? 0 : 1;
}

}  // namespace bench
