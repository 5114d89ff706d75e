// Reader slots in a room's control block: attach a tailer or a durable reader, release it.
#pragma once

#include "shm/ring.hpp"

#include <agentbus/subscription.hpp>

#include <string_view>

namespace agentbus {

struct AttachedReader {
  shm::ReaderSlot* slot;
  std::uint64_t cursor;  // where reading starts (for a durable reader, its stored cursor)
};

// Positions a start option resolves to; throws Error{invalid_argument} for an id that is not
// an event of this room.
std::uint64_t resolve_start(shm::Ring& ring, const SubscribeOptions& options);

AttachedReader attach_tailer(shm::Ring& ring, std::uint64_t start);
AttachedReader attach_durable(shm::Ring& ring, std::string_view name, const SubscribeOptions& options);
void release_reader(shm::ReaderSlot& slot, bool durable, std::uint64_t cursor) noexcept;

// The durable reader of that name, or nullptr.
shm::ReaderSlot* find_durable(shm::Ring& ring, std::string_view name) noexcept;

}  // namespace agentbus
