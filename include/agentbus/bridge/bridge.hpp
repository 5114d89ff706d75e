// agentbus/bridge/bridge.hpp — the Redis Streams bridge of one bus (docs/bridge.md).
//
// run_bridge() mirrors the bus's rooms that match the globs to Redis and back until `stop` is
// set: out, every local event exactly once (batches and a checkpoint in one Lua script; a
// spool on disk while Redis is away); in, every remote entry exactly once, never echoing this
// host's own. One bridge per bus. bridge_status() reads what a running (or the last) bridge
// recorded in the bus's shared memory, without asking it.
#pragma once

#include <agentbus/bridge/redis_target.hpp>
#include <agentbus/bus.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::bridge {

struct BridgeOptions {
  std::string bus;                       // the bus to bridge (created if absent)
  std::string host_id;                   // empty: the bus's; else must equal it
  RedisTarget redis;
  std::vector<std::string> rooms{"*"};   // shell globs over room names ('*' does not cross '/')
  std::string spool_dir;                 // empty: $XDG_STATE_HOME (or ~/.local/state)/agentbus/spool/<bus>
  std::uint64_t spool_max_bytes = 256ull << 20;
  std::uint64_t stream_maxlen = 10000;   // XADD MAXLEN ~, as agentroom
  std::chrono::milliseconds stream_ttl = std::chrono::hours(48);
  std::chrono::milliseconds connect_timeout{2000};
  std::function<void(std::string_view)> log;  // one line per state change; null: stderr
};

// Throws at startup, before mirroring anything: Error{conflict} when a bridge already runs for
// the bus (its pid in the message), Error{invalid_argument} for a host id that is not the
// bus's or credentials Redis refused, Error{system} when Redis cannot be reached.
void run_bridge(const BridgeOptions& options, const std::atomic<bool>& stop);

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
};

struct BridgeStatus {
  int pid = 0;                 // the running bridge's; 0: none runs
  bool connected = false;      // Redis answered last time it was asked
  std::uint64_t reconnects = 0;
  std::string last_error;
  std::vector<BridgeRoomStatus> rooms;
};

[[nodiscard]] BridgeStatus bridge_status(const Bus& bus);

}  // namespace agentbus::bridge
