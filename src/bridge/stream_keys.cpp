#include "bridge/stream_keys.hpp"

#include <agentbus/names.hpp>

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

}  // namespace agentbus::bridge
