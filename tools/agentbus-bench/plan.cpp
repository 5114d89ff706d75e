#include "plan.hpp"

#include "probe.hpp"
#include "stats.hpp"

#include <exception>
#include <string>
#include <unistd.h>

namespace bench {

std::vector<Scenario> all_scenarios() {
  return {
      {"1to1", 1, 1, {Wait::spin, Wait::block}, {64, 1024}, true, "one producer, one subscriber"},
      {"2to1", 2, 1, {Wait::spin, Wait::block}, {64, 1024}, false, "two producers, one subscriber"},
      {"1to4", 1, 4, {Wait::block}, {64, 1024}, false, "one producer, four subscribers"},
      {"idle", 0, 1, {Wait::block}, {0}, false, "a blocked subscriber, nothing published"},
  };
}

namespace {

std::string next_tag() {
  static int counter = 0;
  return std::to_string(getpid()) + "-" + std::to_string(++counter);
}

RunSpec base_spec(const Scenario& sc, std::size_t payload, Wait wait, const Settings& s) {
  RunSpec spec;
  spec.scenario = sc.name;
  spec.payload_bytes = std::max(payload, kMinPayload);
  spec.producers = sc.producers;
  spec.subscribers = sc.subscribers;
  spec.wait = wait;
  spec.seconds = s.seconds;
  spec.samples = s.samples;
  spec.warmup = s.warmup;
  spec.pace_ns = wait == Wait::spin ? s.spin_pace_ns : s.block_pace_ns;
  spec.pin = sc.pin;
  spec.redis_port = s.redis_port;
  return spec;
}

// One run, with any exception from the parent-side setup turned into an error result.
Measurement run_guarded(const SystemEntry& system, RunSpec spec) {
  spec.tag = next_tag();
  try {
    return system.run(spec);
  } catch (const std::exception& e) {
    return Measurement::failure(e.what());
  }
}

// Folds the counters of one run into the row's measurement.
void accumulate(Measurement& into, const Measurement& run) {
  into.lost += run.lost;
  into.overruns += run.overruns;
  into.order_errors += run.order_errors;
  if (run.wakeups) into.wakeups = into.wakeups.value_or(0) + *run.wakeups;
  if (into.error.empty()) into.error = run.error;
}

void measure_throughput(const SystemEntry& system, RunSpec spec, const Settings& s, Row& row) {
  spec.mode = Mode::throughput;
  if (!system.supports(spec)) return;
  std::vector<double> slowest;
  for (int i = 0; i < s.runs; ++i) {
    const Measurement m = run_guarded(system, spec);
    accumulate(row.m, m);
    row.m.sent += m.sent;
    if (!m.error.empty()) break;
    if (m.msgs_per_s) row.run_rates.push_back(*m.msgs_per_s);
    if (m.min_sub_msgs_per_s) slowest.push_back(*m.min_sub_msgs_per_s);
  }
  if (!row.run_rates.empty()) row.m.msgs_per_s = median(row.run_rates);
  if (!slowest.empty()) row.m.min_sub_msgs_per_s = median(slowest);
}

void measure_latency(const SystemEntry& system, RunSpec spec, Row& row) {
  spec.mode = Mode::latency;
  if (!system.supports(spec)) return;
  const Measurement m = run_guarded(system, spec);
  accumulate(row.m, m);
  row.m.p50_ns = m.p50_ns;
  row.m.p99_ns = m.p99_ns;
  row.m.p999_ns = m.p999_ns;
}

void measure_idle(const SystemEntry& system, RunSpec spec, const Settings& s, Row& row) {
  spec.mode = Mode::idle;
  spec.seconds = s.idle_seconds;
  if (!system.supports(spec)) return;
  const Measurement m = run_guarded(system, spec);
  accumulate(row.m, m);
  row.m.idle_cpu_pct = m.idle_cpu_pct;
}

}  // namespace

Row empty_row(const SystemEntry& system, const Scenario& sc, std::size_t payload, Wait wait) {
  Row row;
  row.system = system.name;
  row.scenario = sc.name;
  row.payload_bytes = payload;
  row.producers = sc.producers;
  row.subscribers = sc.subscribers;
  row.wait = wait;
  return row;
}

Row measure_row(const SystemEntry& system, const Scenario& sc, std::size_t payload, Wait wait,
                const Settings& s) {
  Row row = empty_row(system, sc, payload, wait);

  const RunSpec spec = base_spec(sc, payload, wait, s);
  row.probe_before_ns = probe_round_trip_ns(s.probe_round_trips);
  if (sc.name == "idle") {
    measure_idle(system, spec, s, row);
  } else {
    measure_throughput(system, spec, s, row);
    measure_latency(system, spec, row);
  }
  row.probe_after_ns = probe_round_trip_ns(s.probe_round_trips);
  row.placement = classify_placement(row.probe_before_ns, row.probe_after_ns);
  return row;
}

}  // namespace bench
