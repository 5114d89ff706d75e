// agentbus/bridge/bridge.hpp — the Redis Streams bridge of one bus (docs/bridge.md).
//
// run_bridge() mirrors the bus's rooms that match the globs to Redis and back until `stop` is
// set: out, every local event exactly once (batches and a checkpoint in one Lua script; a
// spool on disk while Redis is away); in, every remote entry exactly once, never echoing this
// host's own. One bridge per bus. bridge_status() (agentbus/bridge_status.hpp) reads what it
// records in the bus's shared memory.
#pragma once

#include <agentbus/bridge/redis_target.hpp>
#include <agentbus/bridge_status.hpp>
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
  // After an event, how long the bridge keeps looking for the next one (yielding the CPU
  // between looks) before it sleeps: an event inside the window costs no wake-up, which on a
  // VM whose other CPU has gone idle is tens of microseconds per hop. 0: sleep at once.
  std::chrono::microseconds awake{200};
  std::function<void(std::string_view)> log;  // one line per state change; null: stderr
};

// Throws at startup, before mirroring anything: Error{conflict} when a bridge already runs for
// the bus (its pid in the message), Error{invalid_argument} for a host id that is not the
// bus's or credentials Redis refused, Error{system} when Redis cannot be reached.
void run_bridge(const BridgeOptions& options, const std::atomic<bool>& stop);


}  // namespace agentbus::bridge
