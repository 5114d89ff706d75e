#include "shm/segment.hpp"

#include "shm/destroy_hint.hpp"
#include "shm/process.hpp"
#include "util/hex.hpp"

#include <agentbus/error.hpp>
#include <agentbus/names.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <grp.h>
#include <sys/mman.h>
#include <vector>
#include <cstring>
#include <fcntl.h>
#include <new>
#include <sys/stat.h>
#include <thread>

namespace agentbus::shm {
namespace bi = boost::interprocess;
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t round_up(std::uint64_t n, std::uint64_t to) { return (n + to - 1) / to * to; }

using util::hex;

// A group name or number, as `chgrp` takes it.
gid_t resolve_group(const std::string& group) {
  if (!group.empty() && group.find_first_not_of("0123456789") == std::string::npos && group.size() < 10)
    return static_cast<gid_t>(std::stoul(group));
  std::vector<char> buf(16384);
  struct group entry{}, *found = nullptr;
  if (::getgrnam_r(group.c_str(), &entry, buf.data(), buf.size(), &found) != 0 || found == nullptr)
    throw Error(Errc::invalid_argument, "no group named '" + group + "' (--group-access takes a group name or gid)");
  return found->gr_gid;
}

int fd_of(const bi::shared_memory_object& object) {
  return object.get_mapping_handle().handle;
}

struct Layout {
  std::uint64_t table_offset, heap_offset;
};
Layout layout_for(std::uint32_t max_rooms) {
  const std::uint64_t table = round_up(sizeof(SegmentHeader), kCacheLine);
  return {table, round_up(table + std::uint64_t(max_rooms) * sizeof(RoomSlot), kPage)};
}

}  // namespace

std::shared_ptr<Segment> Segment::open(const SegmentParams& p) {
  validate_bus_name(p.bus);
  std::shared_ptr<Segment> seg(new Segment);
  seg->bus_ = p.bus;
  seg->object_name_ = segment_object_name(p.bus);
  const char* name = seg->object_name_.c_str();
  const auto deadline = Clock::now() + p.init_timeout;

  if (p.create) validate_host_id(p.host_id);
  if (p.max_rooms == 0 || p.max_rooms > 65536)
    throw Error(Errc::invalid_argument, "max_rooms must be 1..65536");
  const Layout layout = layout_for(p.max_rooms);
  if (p.segment_bytes < layout.heap_offset + kControlBytes + kMinRingBytes)
    throw Error(Errc::invalid_argument, "segment_bytes " + std::to_string(p.segment_bytes) +
                                            " is too small for one room");

  for (int attempt = 0;; ++attempt) {
    if (p.create) {
      try {
        const unsigned mode = p.group_access ? 0660 : 0600;
        const bool chgrp = !p.group.empty();
        const gid_t gid = chgrp ? resolve_group(p.group) : 0;
        bi::shared_memory_object created(bi::create_only, name, bi::read_write, bi::permissions(mode));
        // Group first, then the mode, which is not subject to the umask. Every room and region
        // lives inside this one object, so they share its owner, group and mode.
        if (chgrp && ::fchown(fd_of(created), static_cast<uid_t>(-1), gid) != 0) {
          const int err = errno;
          bi::shared_memory_object::remove(name);
          throw Error(Errc::system, "cannot give /dev/shm/" + seg->object_name_ + " to group '" + p.group +
                                        "': " + std::strerror(err) + " (you must be a member of it)");
        }
        ::fchmod(fd_of(created), mode);
        created.truncate(static_cast<bi::offset_t>(p.segment_bytes));
        seg->object_ = std::move(created);
        seg->region_ = bi::mapped_region(seg->object_, bi::read_write);
        seg->size_ = p.segment_bytes;
        auto* h = new (seg->region_.get_address()) SegmentHeader{};
        const ProcessId me = self_process();
        h->creator_pid = me.pid;
        h->creator_start_time = me.start_time;
        h->magic = kMagic;
        h->layout_version = kLayoutVersion;
        h->header_bytes = sizeof(SegmentHeader);
        h->segment_bytes = p.segment_bytes;
        h->max_rooms = p.max_rooms;
        h->room_table_offset = layout.table_offset;
        h->heap_offset = layout.heap_offset;
        h->host_id_len = static_cast<std::uint32_t>(p.host_id.size());
        std::memcpy(h->host_id, p.host_id.data(), p.host_id.size());
        h->heap_cursor.store(layout.heap_offset, std::memory_order_relaxed);
        h->initialised.store(1, std::memory_order_release);
        return seg;
      } catch (const bi::interprocess_exception& e) {
        if (e.get_error_code() != bi::already_exists_error)
          throw Error(Errc::system, "cannot create shared memory /dev/shm/" + seg->object_name_ +
                                        ": " + e.what());
      }
    }
    try {
      seg->object_ = bi::shared_memory_object(bi::open_only, name, bi::read_write);
    } catch (const bi::interprocess_exception& e) {
      if (e.get_error_code() == bi::not_found_error) {
        if (!p.create) throw Error(Errc::not_found, "no bus named '" + p.bus + "' (/dev/shm/" + seg->object_name_ + " does not exist)");
        continue;  // destroyed between our create and open: try creating again
      }
      throw Error(Errc::system, "cannot open /dev/shm/" + seg->object_name_ + ": " + e.what() +
                                    (e.get_error_code() == bi::security_error
                                         ? " (it belongs to another user; its creator can share it with a group: `agentbus --group-access GROUP ...`)"
                                         : ""));
    }
    // The creator truncates right after creating; wait for that, bounded.
    bi::offset_t size = 0;
    while (seg->object_.get_size(size), size < static_cast<bi::offset_t>(sizeof(SegmentHeader))) {
      if (Clock::now() >= deadline)
        throw Error(Errc::incompatible, "/dev/shm/" + seg->object_name_ + " is " +
                                            std::to_string(size) + " bytes, too small to be an agentbus segment; " +
                                            destroy_hint(p.bus));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    seg->region_ = bi::mapped_region(seg->object_, bi::read_write);
    seg->size_ = static_cast<std::uint64_t>(size);
    const SegmentHeader& h = seg->header();
    bool removed = false;
    for (;;) {
      if (h.magic != 0 && h.magic != kMagic)
        throw Error(Errc::incompatible, "/dev/shm/" + seg->object_name_ + " is not an agentbus segment (magic " +
                                            hex(h.magic) + " at offset 0, expected " + hex(kMagic) + "); " +
                                            destroy_hint(p.bus));
      const std::uint32_t init = h.initialised.load(std::memory_order_acquire);
      if (init == 1) break;
      if (init != 0)
        throw Error(Errc::corrupt, "bus '" + p.bus + "' is corrupt: header word 'initialised' at offset " +
                                       std::to_string(offsetof(SegmentHeader, initialised)) + " is " + hex(init) +
                                       ", expected 1 (0 while its creator sets it up); " + destroy_hint(p.bus));
      // A creator that has stored its identity and is gone will never finish.
      const bool creator_dead = h.creator_pid != 0 && !process_alive({h.creator_pid, h.creator_start_time});
      if (creator_dead || Clock::now() >= deadline) {
        // Such a segment is unusable, so a creating open removes it (only if it is still the
        // same object) and starts over. A read never removes or changes a segment.
        struct stat ours{}, current{};
        const std::string path = "/dev/shm/" + seg->object_name_;
        if (p.create && creator_dead && attempt < 3 && ::fstat(fd_of(seg->object_), &ours) == 0 &&
            ::stat(path.c_str(), &current) == 0 && ours.st_ino == current.st_ino) {
          bi::shared_memory_object::remove(name);
          removed = true;
          break;
        }
        if (creator_dead)
          throw Error(Errc::corrupt, "bus '" + p.bus + "' was never initialised: its creator (pid " +
                                         std::to_string(h.creator_pid) + ") died while setting it up; " +
                                         destroy_hint(p.bus));
        throw Error(Errc::timeout, "bus '" + p.bus + "' was not initialised within " +
                                       std::to_string(p.init_timeout.count()) + " ms (creator pid " +
                                       std::to_string(h.creator_pid) + "); " + destroy_hint(p.bus));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (removed) {
      seg->region_ = bi::mapped_region();
      continue;
    }
    seg->validate();
    return seg;
  }
}

void Segment::validate() const {
  const SegmentHeader& h = header();
  if (h.layout_version != kLayoutVersion)
    throw Error(Errc::incompatible, "bus '" + bus_ + "' has layout version " +
                                        std::to_string(h.layout_version) + ", this build uses " +
                                        std::to_string(kLayoutVersion) + "; " + destroy_hint(bus_));
  if (h.header_bytes != sizeof(SegmentHeader) || h.segment_bytes != size_)
    throw Error(Errc::incompatible, "bus '" + bus_ + "' header says " +
                                        std::to_string(h.segment_bytes) + " bytes but the object is " +
                                        std::to_string(size_) + " (truncated?); " + destroy_hint(bus_));
  const Layout layout = layout_for(h.max_rooms);
  if (h.max_rooms == 0 || h.max_rooms > 65536 || h.room_table_offset != layout.table_offset ||
      h.heap_offset != layout.heap_offset || h.heap_offset > size_)
    throw Error(Errc::corrupt, "bus '" + bus_ + "' has a corrupt header (max_rooms " +
                                   std::to_string(h.max_rooms) + ", room table at " +
                                   std::to_string(h.room_table_offset) + ", heap at " +
                                   std::to_string(h.heap_offset) + "); " + destroy_hint(bus_));
  if (h.host_id_len < 1 || h.host_id_len > kMaxHostIdBytes)
    throw Error(Errc::corrupt, "bus '" + bus_ + "' has a corrupt header: host id length " +
                                   std::to_string(h.host_id_len) + ", expected 1.." +
                                   std::to_string(kMaxHostIdBytes) + "; " + destroy_hint(bus_));
  try {
    validate_host_id(host_id());
  } catch (const Error& e) {
    throw Error(Errc::corrupt, "bus '" + bus_ + "' has a corrupt header: " + e.what() + "; " + destroy_hint(bus_));
  }
  const std::uint64_t cursor = h.heap_cursor.load(std::memory_order_acquire);
  if (cursor < h.heap_offset || cursor > size_ || cursor % kPage != 0)
    throw Error(Errc::corrupt, "bus '" + bus_ + "' is corrupt: heap_cursor is " + std::to_string(cursor) +
                                   ", expected a multiple of " + std::to_string(kPage) + " from " +
                                   std::to_string(h.heap_offset) + " to " + std::to_string(size_) + "; " +
                                   destroy_hint(bus_));
}

bool Segment::unlinked() const noexcept {
  struct stat ours{}, current{};
  if (::fstat(fd_of(object_), &ours) != 0) return false;
  const std::string path = "/dev/shm/" + object_name_;
  if (::stat(path.c_str(), &current) != 0) return errno == ENOENT;
  return ours.st_ino != current.st_ino || ours.st_dev != current.st_dev;
}

bool Segment::destroy(const std::string& bus) {
  validate_bus_name(bus);
  const std::string name = segment_object_name(bus);
  if (::shm_unlink(name.c_str()) == 0) return true;
  const int err = errno;
  if (err == ENOENT) return false;
  std::string owner;
  struct stat st{};
  if (::stat(("/dev/shm/" + name).c_str(), &st) == 0)
    owner = " (owned by uid " + std::to_string(st.st_uid) + ", mode " + [&] {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return std::string(mode);
    }() + ")";
  throw Error(Errc::system, "cannot destroy bus '" + bus + "': /dev/shm/" + name + owner + ": " +
                                std::strerror(err) + (err == EACCES || err == EPERM
                                                          ? "; only its owner (or root) may remove it"
                                                          : ""));
}

SegmentHeader& Segment::header() const noexcept {
  return *static_cast<SegmentHeader*>(region_.get_address());
}
std::string_view Segment::host_id() const noexcept {
  const SegmentHeader& h = header();
  return {h.host_id, std::min<std::size_t>(h.host_id_len, kMaxHostIdBytes)};
}
std::byte* Segment::base() const noexcept { return static_cast<std::byte*>(region_.get_address()); }
RoomSlot* Segment::room_table() const noexcept {
  return reinterpret_cast<RoomSlot*>(base() + header().room_table_offset);
}

std::uint64_t Segment::allocate(std::uint64_t bytes) {
  bytes = round_up(bytes, kPage);
  auto& cursor = header().heap_cursor;
  std::uint64_t at = cursor.load(std::memory_order_relaxed);
  do {
    if (at < header().heap_offset || at > size_ || size_ - at < bytes)
      throw Error(Errc::no_space,
                  "bus '" + bus_ + "' is full: " + std::to_string(at) + " of " +
                      std::to_string(size_) + " bytes allocated, a new room needs " +
                      std::to_string(bytes) +
                      "; recreate the bus with a larger segment (`agentbus --segment-bytes`, BusOptions::segment_bytes) or "
                      "smaller rings");
  } while (!cursor.compare_exchange_weak(at, at + bytes, std::memory_order_acq_rel));
  commit_region(at, bytes);
  return at;
}

void Segment::commit_region(std::uint64_t offset, std::uint64_t bytes) {
  const int rc = ::posix_fallocate(fd_of(object_), static_cast<off_t>(offset), static_cast<off_t>(bytes));
  if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL)
    throw Error(Errc::no_space, "cannot reserve " + std::to_string(bytes) +
                                    " bytes in /dev/shm for bus '" + bus_ + "': " + std::strerror(rc));
}

}  // namespace agentbus::shm
