// agentbus-bench/orchestration.hpp — per-step overhead of a 10-stage Pipeline of scripted
// agents, in-process and with each agent in its own process, beside a same-run baseline.
#pragma once

#include "common.hpp"

#include <cstdio>

namespace bench {

int run_orchestration_bench(const ModeSettings& settings, bool json, std::FILE* out);

}  // namespace bench
