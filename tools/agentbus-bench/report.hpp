// agentbus-bench/report.hpp — result rows and their two renderings: a human table grouped by
// scenario and payload (with ratios against the naive ring and Redis of the same run), and
// JSON lines, one object per row.
#pragma once

#include "common.hpp"

#include <cstdio>
#include <string>
#include <vector>

namespace bench {

struct Row {
  std::string system;
  std::string scenario;
  std::size_t payload_bytes = 0;  // 0: not applicable (idle)
  int producers = 1;
  int subscribers = 1;
  Wait wait = Wait::spin;
  Measurement m;                  // throughput median merged with the latency run
  std::vector<double> run_rates;  // throughput of each run, msgs/s
  double probe_before_ns = 0;
  double probe_after_ns = 0;
  std::string placement;
  std::string note;               // why a system was skipped, or an error
};

// Ratios of `row` against the same scenario and payload in the same run (absent: no baseline).
struct Ratios {
  std::optional<double> msgs_vs_naive, msgs_vs_redis_pipelined, msgs_vs_redis;
  std::optional<double> p50_vs_naive;  // row p50 / naive p50 (lower is better)
  std::optional<double> p50_vs_redis;  // redis p50 / row p50 (how many times faster)
};
[[nodiscard]] Ratios ratios_for(const Row& row, const std::vector<Row>& all);

void print_table(std::FILE* out, const std::vector<Row>& rows, const std::string& header);
void print_json_line(std::FILE* out, const Row& row, const std::vector<Row>& all);

}  // namespace bench
