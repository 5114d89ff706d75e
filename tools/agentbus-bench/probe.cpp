#include "probe.hpp"

#include "common.hpp"
#include "proc.hpp"
#include "stats.hpp"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

namespace bench {

namespace {
constexpr int kBatch = 100;  // round trips timed together: one clock read per 100, not per trip

struct alignas(64) PingLine {
  std::atomic<std::uint64_t> value{0};
};
}  // namespace

double probe_round_trip_ns(int round_trips) {
  if (online_cpus() < 2) return std::nan("");
  PingLine line;
  const int batches = std::max(1, round_trips / kBatch);
  const std::uint64_t total = std::uint64_t(batches) * kBatch;

  // The echo thread turns every odd value into the next even one.
  std::thread echo([&] {
    pin_to_cpu(1);
    for (std::uint64_t expect = 1; expect < 2 * total; expect += 2) {
      while (line.value.load(std::memory_order_acquire) != expect) cpu_relax();
      line.value.store(expect + 1, std::memory_order_release);
    }
  });

  std::vector<double> per_trip;
  per_trip.reserve(batches);
  std::thread ping([&] {
    pin_to_cpu(0);
    std::uint64_t v = 0;
    for (int b = 0; b < batches; ++b) {
      const std::int64_t t0 = now_ns();
      for (int i = 0; i < kBatch; ++i) {
        line.value.store(++v, std::memory_order_release);
        ++v;
        while (line.value.load(std::memory_order_acquire) != v) cpu_relax();
      }
      per_trip.push_back(double(now_ns() - t0) / kBatch);
    }
  });
  ping.join();
  echo.join();
  return median(per_trip);
}

std::string classify_placement(double before_ns, double after_ns) {
  if (std::isnan(before_ns) || std::isnan(after_ns)) return "n/a";
  const bool near_before = before_ns < kNearThresholdNs;
  const bool near_after = after_ns < kNearThresholdNs;
  if (near_before != near_after) return "mixed";
  return near_before ? "near" : "far";
}

}  // namespace bench
