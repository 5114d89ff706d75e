// agentbus-bench/delegation.hpp — delegate -> worker process claims -> completes -> parent
// wakes, p50/p99 and delegations/s with 2 workers, beside one in-process claim+complete pair
// and one Redis SET NX + GET round trip measured in the same run.
#pragma once

#include "common.hpp"

#include <cstdio>

namespace bench {

int run_delegation_bench(const ModeSettings& settings, bool json, std::FILE* out);

}  // namespace bench
