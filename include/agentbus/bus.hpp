// agentbus/bus.hpp — a bus: one POSIX shared-memory segment holding a table of rooms.
//
// There is no broker: every process maps the segment itself. The first to open a bus creates
// it; the others wait (bounded) until its header is initialised, then validate magic, layout
// version and size. A segment that fails validation is refused with a message saying how to
// remove it (`agentbus --bus NAME destroy`); opening never removes a segment, except that a
// creating open removes one whose creator (same pid and start time) died before finishing its
// header, which nobody could ever use. Rooms are created on first use by a CAS on a free
// slot of the room table; no lock a crash could leave held is taken anywhere.
//
// Thread safety: a Bus and the Rooms it returns may be shared by any number of threads.
#pragma once

#include <agentbus/room.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus {

struct BusOptions {
  std::string name{};                        // empty: $AGENTBUS_BUS, else "default"
  std::size_t segment_bytes = 256ull << 20;  // virtual size; memory is committed per room
  std::uint32_t max_rooms = 256;
  bool create = true;          // false: throw Error{not_found} when the bus does not exist
  bool group_access = false;   // create with mode 0660 instead of 0600
  std::string group{};         // create owned by this group (name or number), mode 0660
  std::chrono::milliseconds init_timeout{2000};
  // This bus's name in the origin of its events, written once when the bus is created (an open
  // of an existing bus never changes it). Empty: $AGENTBUS_HOST_ID, else "<hostname>:<bus>",
  // so two buses on one machine are two hosts. 1..64 bytes of [A-Za-z0-9._:-].
  std::string host_id{};
};

struct BusInfo {
  std::string name;
  std::string object_name;     // the /dev/shm object
  std::size_t segment_bytes = 0;
  std::size_t used_bytes = 0;  // allocated to rooms so far
  std::uint32_t max_rooms = 0;
  std::uint32_t layout_version = 0;
  std::string host_id;
  int creator_pid = 0;
  std::uint64_t dead_writers_reclaimed = 0;  // room-table entries taken over from dead creators
  std::vector<RoomInfo> rooms;
};

// The bus-wide counters (not the rooms'), as name/value pairs; see counter.hpp.
[[nodiscard]] std::vector<Counter> counter_list(const BusInfo& info);

class Bus {
 public:
  static Bus open(const BusOptions& options = {});

  // Removes the bus's shared-memory object. Processes that have it mapped keep working on
  // their mapping; new opens create a fresh bus. Returns false if there was none; throws
  // Error{system} when it may not be removed (another user's bus, no write access to /dev/shm).
  static bool destroy(std::string_view bus_name);

  // The bus name from $AGENTBUS_BUS, or "default".
  [[nodiscard]] static std::string default_name();

  [[nodiscard]] Room room(std::string_view name, const RoomOptions& options = {});
  [[nodiscard]] std::vector<std::string> room_names() const;
  [[nodiscard]] BusInfo info() const;
  [[nodiscard]] const std::string& name() const noexcept;
  // The host id stored in the segment (see BusOptions::host_id).
  [[nodiscard]] std::string_view host_id() const noexcept;

  struct Impl;
  explicit Bus(std::shared_ptr<Impl> impl);

 private:
  friend class RoomAccess;  // the bus's segment, for the layers above (src/bus/room_access.hpp)
  std::shared_ptr<Impl> impl_;
};

}  // namespace agentbus
