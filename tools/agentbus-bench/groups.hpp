// agentbus-bench/groups.hpp — placeholder.
#pragma once

#include <cstdio>

namespace bench {

struct GroupBenchSettings {
  int runs = 5;        // median of this many
  bool quick = false;  // short runs (CI smoke test)
};

// Prints one line per figure (JSON objects with --json). Returns non-zero on failure.
int run_group_bench(const GroupBenchSettings& settings, bool json, std::FILE* out);

}  // namespace bench
