// agentbus/names.hpp — the name grammar for buses, rooms and durable readers.
//
// A name is one or more segments joined by '/'; a segment is one or more of [A-Za-z0-9._-]
// and is neither "." nor "..". At most 128 bytes. Bus names may not contain '/' (they become
// the POSIX shared-memory object name `agentbus.<bus>`). `repo/branch` rooms mirror agentroom.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace agentbus {

inline constexpr std::size_t kMaxNameBytes = 128;

// Throws Error{Errc::bad_name} with a message naming the offending character or rule.
void validate_room_name(std::string_view name);
void validate_bus_name(std::string_view name);
// A host id (event origins, BusOptions::host_id): 1..64 bytes of [A-Za-z0-9._:-].
void validate_host_id(std::string_view host);
// What is wrong with a host id, or nothing: for input that is rejected, not thrown at (a
// remote entry's origin_host).
[[nodiscard]] std::optional<std::string> host_id_problem(std::string_view host);

// The shared-memory object name for a bus: "agentbus.<bus>".
[[nodiscard]] std::string segment_object_name(std::string_view bus);

}  // namespace agentbus
