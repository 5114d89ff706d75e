// Presence across hosts, agentroom's way: each bridge writes its host's live agents of a room
// as `<prefix>:presence:<handle>` (JSON, PX ttl) indexed in `<prefix>:presence:index` (zset:
// handle -> expiry in unix ms), and reads the other hosts' back into the room's bridge state,
// where `agentbus who` finds them. Presence is soft state: pushed about once a second with a
// short TTL, so an agent that leaves one host is gone from the others within that TTL.
#pragma once

#include "bridge/redis_connection.hpp"

#include <agentbus/bridge_status.hpp>
#include <agentbus/room.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::bridge {

inline constexpr std::chrono::milliseconds kRemotePresenceTtl{5000};

// This host's live agents of `room` into Redis. Throws RedisDisconnected.
void push_presence(RedisConnection& conn, Room& room, std::string_view key_prefix, std::string_view host);

// The live agents of other hosts, read from Redis (untrusted: anything malformed is skipped).
[[nodiscard]] std::vector<RemoteAgent> pull_presence(RedisConnection& conn, std::string_view key_prefix,
                                                     std::string_view host);

}  // namespace agentbus::bridge
