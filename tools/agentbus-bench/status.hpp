// agentbus-bench/status.hpp — placeholder.
#pragma once

#include <cstdio>

namespace bench {

struct StatusBenchSettings {
  int runs = 5;        // median of this many
  bool quick = false;  // short runs (CI smoke test)
};

// Prints one line per figure (JSON objects with --json). Returns non-zero on failure.
int run_status_bench(const StatusBenchSettings& settings, bool json, std::FILE* out);

}  // namespace bench
