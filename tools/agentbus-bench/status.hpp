// agentbus-bench/status.hpp — status bus figures (post rate, post->callback latency across
// processes, JSONL persistence rate), each beside a same-run baseline; see status.cpp.
#pragma once

#include "common.hpp"

#include <cstdio>

namespace bench {

// Prints one line per figure (JSON objects with --json). Returns non-zero on failure.
int run_status_bench(const ModeSettings& settings, bool json, std::FILE* out);

}  // namespace bench
