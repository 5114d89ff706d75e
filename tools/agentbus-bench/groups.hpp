// agentbus-bench/groups.hpp — the consumer group's figure (issue 3 target): one producer and
// two member processes sharing a group, against the plain ring (one producer, one durable
// reader) measured in the same run.
#pragma once

#include <cstdio>

namespace bench {

struct GroupBenchSettings {
  int runs = 5;        // median of this many
  bool quick = false;  // short runs (CI smoke test)
};

// Prints one line per figure (JSON objects with --json). Returns non-zero if an event was
// lost or delivered twice.
int run_group_bench(const GroupBenchSettings& settings, bool json, std::FILE* out);

}  // namespace bench
