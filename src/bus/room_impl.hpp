// Process-local state behind the public Room and Bus handles.
#pragma once

#include "shm/ring.hpp"
#include "shm/segment.hpp"

#include <agentbus/bus.hpp>

#include <memory>
#include <string>

namespace agentbus {

struct Bus::Impl {
  std::shared_ptr<shm::Segment> segment;
};

struct Room::Impl {
  std::shared_ptr<shm::Segment> segment;  // keeps the mapping alive while the room is used
  std::string name;
  shm::Ring ring;
};

}  // namespace agentbus
