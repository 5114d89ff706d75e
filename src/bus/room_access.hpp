// RoomAccess: how agentbus's components built on a room (coord, status) reach the room's ring
// and segment. The public Room hides them; the layers above bus get them here, so the only way
// in is an include the layer check can see (scripts/check-layers.sh).
#pragma once

#include "bus/room_impl.hpp"

#include <agentbus/bus.hpp>
#include <agentbus/room.hpp>

#include <memory>

namespace agentbus {

class RoomAccess {
 public:
  [[nodiscard]] static shm::Ring& ring(const Room& room) noexcept { return room.impl_->ring; }
  // The mapping the room lives in; holding the pointer keeps it mapped.
  [[nodiscard]] static const std::shared_ptr<shm::Segment>& segment(const Room& room) noexcept {
    return room.impl_->segment;
  }
  // The bus's mapping, for state kept per bus rather than per room (the bridge's).
  [[nodiscard]] static const std::shared_ptr<shm::Segment>& segment(const Bus& bus) noexcept {
    return bus.impl_->segment;
  }
};

}  // namespace agentbus
