// The segment's table of named slots: a shm::ClaimTable (shm/claim_table.hpp) of RoomSlot,
// probed from the name's FNV-1a hash. A slot a dead creator left is taken over by the next
// process that creates a name there (dead_writers_reclaimed counts those). Slots are
// never freed, so the first free slot on a name's probe path proves the name is absent.
#pragma once

#include "shm/layout.hpp"
#include "shm/segment.hpp"

#include <cstddef>
#include <functional>
#include <span>
#include <string_view>

namespace agentbus::shm {

[[nodiscard]] std::string_view slot_name(const RoomSlot& slot) noexcept;

// The ready slot named `name`. When there is none: nullptr if !create, else a free slot is
// claimed, `initialise` fills it in (region, sizes, kind) and the slot is published ready.
RoomSlot* find_or_create_slot(Segment& seg, std::string_view name, bool create,
                              const std::function<void(RoomSlot&)>& initialise);

// The region named `name` (a room name plus "#suffix"). On first use it is created with
// `create_bytes` zero bytes and `initialise` runs on it before any other process can see it
// (write the structure's header there: magic, version, capacities). Openers get the region
// as created and must validate that header against the span's size: trust nothing in it.
// Returns an empty span when absent and !create. Throws Error{corrupt} if the slot is not a
// region inside the segment.
std::span<std::byte> open_region(Segment& seg, std::string_view name, std::uint64_t create_bytes,
                                 bool create,
                                 const std::function<void(std::span<std::byte>)>& initialise);

}  // namespace agentbus::shm
