// agentbus-bench/probe.hpp — the placement probe.
//
// The two vCPUs of the development machine flip between a "near" placement (core-to-core
// round trip ~70 ns) and a "far" one (~450 ns), which moves every cross-core figure ~5x.
// So every result carries a probe taken just before and just after it: two threads pinned
// to CPU 0 and CPU 1 bounce one cache line through an atomic, and we keep the median round
// trip. Results are only compared inside one run, and only when the placements agree.
#pragma once

#include <string>

namespace bench {

inline constexpr double kNearThresholdNs = 200.0;

// Median core-to-core round trip in ns between CPU 0 and CPU 1 (NaN with fewer than 2 CPUs).
[[nodiscard]] double probe_round_trip_ns(int round_trips = 10'000);

// "near", "far", or "mixed" when the placement changed between the two probes.
[[nodiscard]] std::string classify_placement(double before_ns, double after_ns);

}  // namespace bench
