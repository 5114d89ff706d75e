// A batch of a room's events on its way to Redis, and the one call that puts it there.
//
// Each entry is its local id and the XADD fields (entry_codec.hpp). The same batch goes to the
// spool when Redis is away (serialise / parse) and through the ship script when it is back;
// the script skips what an earlier attempt already added, so shipping twice adds once.
#pragma once

#include "bridge/redis_connection.hpp"

#include <agentbus/event.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::bridge {

struct ShipEntry {
  EventId local_id = 0;
  std::vector<std::string> fields;  // name, value, name, value, ...
};

// One spool record per entry: [local id u64 | count u32 | (len u32, bytes)...].
[[nodiscard]] std::string serialise(const ShipEntry& e);
// Nothing for bytes that are not one record (a spool written by something else).
[[nodiscard]] std::optional<ShipEntry> parse_ship_entry(std::string_view bytes);

struct ShipTarget {
  std::string stream_key{};
  std::string checkpoint_key{};
  std::string incarnation{};      // the bus's: a recreated bus starts a new checkpoint
  std::uint64_t maxlen = 10000;   // MAXLEN ~
  std::uint64_t ttl_ms = 48ull * 3600 * 1000;
};

struct ShipResult {
  std::uint64_t added = 0;     // entries new to Redis (the rest were there already)
  EventId checkpoint = 0;      // the newest local id Redis holds for this host
};

// Runs the ship script. Throws RedisDisconnected when the connection goes (nothing is known
// about the batch then: ship it again), Error{system} when Redis refuses the script.
ShipResult ship(RedisConnection& conn, RedisScript& script, const ShipTarget& target,
                std::span<const ShipEntry> batch);

// ship() in two halves, so that the next batch can be sent before this one's reply is read:
// the calls run in order on one connection, and the script skips what the checkpoint covers,
// so a pipeline keeps exactly-once. receive_ship() reads the oldest pending reply.
void send_ship(RedisConnection& conn, RedisScript& script, const ShipTarget& target, std::span<const ShipEntry> batch);
ShipResult receive_ship(RedisConnection& conn, RedisScript& script, const ShipTarget& target);


}  // namespace agentbus::bridge
