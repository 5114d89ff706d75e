#include "bridge_claims.hpp"

#include "common.hpp"
#include "figure.hpp"
#include "probe.hpp"
#include "stats.hpp"

#include <agentbus/bridge_status.hpp>
#include <agentbus/tasks.hpp>

#include <algorithm>
#include <stdexcept>
#include <thread>
#include <vector>

namespace bench {

namespace {

constexpr const char* kRoom = "claims";

// p50 of claim(), each on a fresh task, released after the clock stops.
double claim_p50_us(agentbus::TaskBoard& board, int samples) {
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(samples));
  for (int i = 0; i < samples; ++i) {
    const agentbus::EventId id = board.post_task("job", "bench", "x");
    const std::int64_t t0 = now_ns();
    const agentbus::Claim c = board.claim(id, "worker");
    const std::int64_t t1 = now_ns();
    if (!c.ok()) throw std::runtime_error("claim of a fresh task was refused (holder " + c.holder + ")");
    us.push_back(double(t1 - t0) / 1e3);
    (void)board.complete(id, c.token, "done");  // keeps the table from filling
  }
  return median(us);
}

bool through_redis(const agentbus::Bus& bus) {
  for (const auto& r : agentbus::bridge::bridge_status(bus).rooms)
    if (r.room == kRoom) return r.tasks_through_redis;
  return false;
}

}  // namespace

void claim_cost_figure(agentbus::Bus& bridged, const std::string& local_bus, int samples, bool json, std::FILE* out) {
  agentbus::TaskBoard remote_board(bridged.room(kRoom));
  remote_board.register_task({"job", "bench job", "", ""});
  const std::int64_t deadline = now_ns() + 20'000'000'000;
  while (!through_redis(bridged)) {
    if (now_ns() > deadline) throw std::runtime_error("the bridge did not attach the claims room's board");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  agentbus::Bus::destroy(local_bus);
  agentbus::Bus plain = agentbus::Bus::open({.name = local_bus});
  agentbus::TaskBoard local_board(plain.room(kRoom));
  local_board.register_task({"job", "bench job", "", ""});

  Figure f;
  f.before = probe_round_trip_ns();
  f.value = claim_p50_us(remote_board, samples);
  f.baseline = claim_p50_us(local_board, samples);
  f.after = probe_round_trip_ns();
  f.note = "one Redis script through the bridge per claim; " + std::to_string(samples) + " claims each";
  print_figure(out, json, "claim p50, bridged room", "us", f, "claim p50, room not bridged");
  agentbus::Bus::destroy(local_bus);
}

}  // namespace bench
