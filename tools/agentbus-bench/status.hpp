// agentbus-bench/status.hpp — status bus figures (post rate, post->callback latency across
// processes, JSONL persistence rate), each beside a same-run baseline; see status.cpp.
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
