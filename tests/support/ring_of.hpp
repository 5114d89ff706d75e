// White-box access for tests that need to reach the ring under a Room.
#pragma once

#include "bus/room_impl.hpp"

#include <agentbus/room.hpp>

#include <memory>

namespace agentbus::test {

inline shm::Ring& ring_of(Room& room) {
  static_assert(sizeof(Room) == sizeof(std::shared_ptr<Room::Impl>));
  return reinterpret_cast<std::shared_ptr<Room::Impl>&>(room)->ring;
}

}  // namespace agentbus::test
