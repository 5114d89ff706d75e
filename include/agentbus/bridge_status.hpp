// agentbus/bridge_status.hpp — what the Redis bridge of a bus has done, read from the bus's
// shared memory without asking the bridge (so it also answers while the bridge is stuck or
// dead, and needs no Redis client): `agentbus-bridge status`, `agentbus info` and `top`.
#pragma once

#include <agentbus/bus.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::bridge {

struct BridgeRoomStatus {
  std::string room;
  std::uint64_t out_events = 0;       // local events put into Redis
  std::uint64_t in_events = 0;        // remote entries published here
  std::uint64_t rejected = 0;         // remote entries skipped as malformed
  std::uint64_t echoes_skipped = 0;   // this host's own entries read back
  std::uint64_t spooled_events = 0;   // in the spool now (Redis away)
  std::uint64_t spool_bytes = 0;
  std::uint64_t spool_full = 0;       // batches a full spool refused
  std::uint64_t lag_events = 0;       // local events not yet in Redis or the spool
  std::int64_t oldest_lag_ns = 0;     // age of the oldest of them (0: none)
  bool tasks_through_redis = false;   // the room's task claims are decided in Redis (a bridge attached its board)
};

struct BridgeStatus {
  int pid = 0;                 // the running bridge's; 0: none runs
  bool connected = false;      // Redis answered last time it was asked
  std::uint64_t reconnects = 0;
  std::string last_error;
  std::vector<BridgeRoomStatus> rooms;
};

[[nodiscard]] BridgeStatus bridge_status(const Bus& bus);

// An agent present in a room on another host, as the bridge last saw it in Redis.
struct RemoteAgent {
  std::string host;
  std::string handle;      // qualified, as on its host
  std::string role;
  std::string working_on;
  std::int64_t expires_ns = 0;  // CLOCK_REALTIME: gone from `who` after this unless refreshed
};

// The live agents of `room` on other hosts (none without a bridge). `agentbus who` adds them.
[[nodiscard]] std::vector<RemoteAgent> remote_agents(const Bus& bus, std::string_view room);

}  // namespace agentbus::bridge
