// agentbus-bench/bridge.hpp — the Redis bridge's figures (issue 11), each beside a same-run
// baseline: mirror rate vs pipelined XADD, cross-host latency vs XADD -> XREAD BLOCK, and
// local 1->1 publishing with Redis stopped vs no bridge at all; see bridge.cpp.
#pragma once

#include "common.hpp"

#include <cstdio>

namespace bench {

// Runs its own redis-server, two buses standing for hosts A and B, and real agentbus-bridge
// processes ($AGENTBUS_BRIDGE, else the build's). Prints one line per figure (JSON objects
// with `json`). Returns non-zero on failure.
int run_bridge_bench(const ModeSettings& settings, bool json, std::FILE* out);

}  // namespace bench
