// Segment: one POSIX shared-memory object per bus, created or opened through
// Boost.Interprocess, validated, and carved into a room table and a bump-allocated heap.
#pragma once

#include "shm/layout.hpp"

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace agentbus::shm {

struct SegmentParams {
  std::string bus;
  std::uint64_t segment_bytes;
  std::uint32_t max_rooms;
  bool create;
  bool group_access;
  std::string group;  // non-empty: chown the new segment to this group (implies 0660)
  std::chrono::milliseconds init_timeout;
  std::string host_id;  // a valid host id, written into a segment this open creates
};

class Segment {
 public:
  static std::shared_ptr<Segment> open(const SegmentParams& params);
  static bool destroy(const std::string& bus);

  [[nodiscard]] SegmentHeader& header() const noexcept;
  [[nodiscard]] RoomSlot* room_table() const noexcept;
  [[nodiscard]] std::byte* base() const noexcept;
  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
  [[nodiscard]] const std::string& bus() const noexcept { return bus_; }
  [[nodiscard]] const std::string& object_name() const noexcept { return object_name_; }
  // The host id written at creation (validated on open); it never changes, so the view into
  // the header stays valid as long as the mapping.
  [[nodiscard]] std::string_view host_id() const noexcept;

  // True once /dev/shm no longer holds the object this handle maps (destroyed, or replaced by
  // a new bus of the same name): nothing will ever be published here again. One fstat+stat.
  [[nodiscard]] bool unlinked() const noexcept;

  // Reserves `bytes` (page-aligned) of the heap, backed by real memory now (fallocate), so a
  // full /dev/shm is an error here rather than SIGBUS later. Returns the offset.
  std::uint64_t allocate(std::uint64_t bytes);

  // Reserves memory again for a region allocated by a creator that died before finishing.
  void commit_region(std::uint64_t offset, std::uint64_t bytes);

 private:
  Segment() = default;
  void validate() const;
  void wait_initialised(std::chrono::milliseconds timeout) const;

  std::string bus_;
  std::string object_name_;
  boost::interprocess::shared_memory_object object_;
  boost::interprocess::mapped_region region_;
  std::uint64_t size_ = 0;
};

}  // namespace agentbus::shm
