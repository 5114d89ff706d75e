// agentbus-bench/bridge_claims.hpp — what a task claim costs in a bridged room (decided in
// Redis through the bridge, docs/bridge.md) beside the same claim in a room that is not.
#pragma once

#include <agentbus/bus.hpp>

#include <cstdio>
#include <string>

namespace bench {

// `bridged` is a bus whose bridge is running; `local_bus` names a bus with no bridge (made and
// destroyed here). Prints the p50 of claim() in each, `samples` claims each.
void claim_cost_figure(agentbus::Bus& bridged, const std::string& local_bus, int samples, bool json, std::FILE* out);

}  // namespace bench
