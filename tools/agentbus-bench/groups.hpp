// agentbus-bench/groups.hpp — the consumer group's figure (issue 3 target): one producer and
// two member processes sharing a group, against the plain ring (one producer, one durable
// reader) measured in the same run.
#pragma once

#include "common.hpp"

#include <cstdio>

namespace bench {

// Prints one line per figure (JSON objects with --json). Returns non-zero if an event was
// lost or delivered twice.
int run_group_bench(const ModeSettings& settings, bool json, std::FILE* out);

}  // namespace bench
