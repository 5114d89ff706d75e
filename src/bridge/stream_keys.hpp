// bridge/stream_keys.hpp — the Redis keys of a mirrored room.
//
// A room `repo/branch` is agentroom's room for that repository and branch, so the bridge
// shares its stream with agentroom: `repo:<repo>:<branch>:events` (the first '/' splits; the
// branch may hold more). Any other room is `agentbus:room:<name>:events`. A bridge's
// checkpoint of what it has shipped from a room sits beside the stream, under the same prefix:
// `<prefix>:bridge:<host>:out`.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <string>
#include <string_view>

namespace agentbus::bridge {

// Throw Error{Errc::bad_name} for a room outside the name grammar or a bad host id.
[[nodiscard]] std::string room_key_prefix(std::string_view room);
[[nodiscard]] std::string stream_key(std::string_view room);
[[nodiscard]] std::string checkpoint_key(std::string_view room, std::string_view host);
// The room whose stream `key` is, or nothing for any other key (SCAN finds what others wrote).
[[nodiscard]] std::optional<std::string> room_of_stream_key(std::string_view key);

}  // namespace agentbus::bridge
