// agentbus-bench/plan.hpp — which scenarios exist and how one result row is measured.
#pragma once

#include "common.hpp"
#include "report.hpp"
#include "systems.hpp"

#include <string>
#include <vector>

namespace bench {

struct Scenario {
  std::string name;
  int producers;
  int subscribers;
  std::vector<Wait> waits;
  std::vector<std::size_t> payloads;  // {0}: payload does not matter (idle)
  bool pin;                           // producer on CPU 0, subscriber on CPU 1
  std::string about;
};

// 1to1, 2to1, 1to4 (block only: two cores cannot host five spinners), idle.
[[nodiscard]] std::vector<Scenario> all_scenarios();

struct Settings {
  int runs = 5;                   // throughput runs per row; the median is reported
  double seconds = 0.5;           // producer time per throughput run
  int samples = 20'000;           // latency samples per producer
  int warmup = 1'000;
  double idle_seconds = 1.0;
  std::int64_t spin_pace_ns = 20'000;   // gap between latency sends, spin rows
  std::int64_t block_pace_ns = 50'000;  // block rows: long enough for the reader to go to sleep
  int probe_round_trips = 10'000;
  int redis_port = 0;
};

// A row naming the system and scenario, with nothing measured yet.
[[nodiscard]] Row empty_row(const SystemEntry& system, const Scenario& scenario,
                            std::size_t payload, Wait wait);

// Measures one row: placement probe, `runs` throughput runs, one latency run, probe again.
[[nodiscard]] Row measure_row(const SystemEntry& system, const Scenario& scenario,
                              std::size_t payload, Wait wait, const Settings& settings);

}  // namespace bench
