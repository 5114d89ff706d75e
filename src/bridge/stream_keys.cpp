#include "bridge/stream_keys.hpp"

#include <agentbus/error.hpp>
#include <agentbus/names.hpp>

namespace agentbus::bridge {

std::string room_key_prefix(std::string_view room) {
  validate_room_name(room);
  const std::size_t slash = room.find('/');
  if (slash == std::string_view::npos) return "agentbus:room:" + std::string(room);
  return "repo:" + std::string(room.substr(0, slash)) + ":" + std::string(room.substr(slash + 1));
}

std::string stream_key(std::string_view room) { return room_key_prefix(room) + ":events"; }

std::string checkpoint_key(std::string_view room, std::string_view host) {
  validate_host_id(host);
  return room_key_prefix(room) + ":bridge:" + std::string(host) + ":out";
}

std::optional<std::string> room_of_stream_key(std::string_view key) {
  const std::string_view whole = key;
  constexpr std::string_view kEvents = ":events", kRoom = "agentbus:room:", kRepo = "repo:";
  if (key.size() <= kEvents.size() || key.substr(key.size() - kEvents.size()) != kEvents) return std::nullopt;
  key.remove_suffix(kEvents.size());
  std::string room;
  if (key.substr(0, kRoom.size()) == kRoom) {
    room = key.substr(kRoom.size());
  } else if (key.substr(0, kRepo.size()) == kRepo) {
    key.remove_prefix(kRepo.size());
    const std::size_t colon = key.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    room = std::string(key.substr(0, colon)) + "/" + std::string(key.substr(colon + 1));
  } else {
    return std::nullopt;
  }
  try {
    validate_room_name(room);  // a key another client made up is not a room
  } catch (const Error&) {
    return std::nullopt;
  }
  if (stream_key(room) != whole) return std::nullopt;  // "agentbus:room:a/b" is no key of ours
  return room;
}

}  // namespace agentbus::bridge
