#include "bus/room_impl.hpp"
#include "shm/destroy_hint.hpp"
#include "shm/process.hpp"
#include "shm/slot_table.hpp"

#include <agentbus/error.hpp>
#include <agentbus/hash.hpp>
#include <agentbus/names.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace agentbus {
namespace {

using Clock = std::chrono::steady_clock;

bool is_power_of_two(std::uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

constexpr std::size_t kDefaultMaxRecord = 64 << 10;

RoomOptions with_defaults(RoomOptions o) {
  if (o.max_record_bytes == 0) o.max_record_bytes = std::min(kDefaultMaxRecord, o.ring_bytes / 4);
  return o;
}

void check_room_options(const RoomOptions& o) {
  if (!is_power_of_two(o.ring_bytes) || o.ring_bytes < shm::kMinRingBytes ||
      o.ring_bytes > shm::kMaxRingBytes)
    throw Error(Errc::invalid_argument, "ring_bytes " + std::to_string(o.ring_bytes) +
                                            " must be a power of two from 64 KiB to 128 MiB");
  if (o.max_record_bytes < 256 || o.max_record_bytes > o.ring_bytes / 4)
    throw Error(Errc::invalid_argument, "max_record_bytes " + std::to_string(o.max_record_bytes) +
                                            " must be from 256 to ring_bytes/4 (" +
                                            std::to_string(o.ring_bytes / 4) + ")");
}

std::shared_ptr<Room::Impl> attach(const std::shared_ptr<shm::Segment>& seg, shm::RoomSlot& slot,
                                   const RoomOptions& o) {
  const std::uint64_t off = slot.region_offset, ring = slot.ring_bytes;
  const bool sane = off >= seg->header().heap_offset && off % shm::kPage == 0 &&
                    is_power_of_two(ring) && ring >= shm::kMinRingBytes &&
                    ring <= shm::kMaxRingBytes && off + shm::kControlBytes + ring <= seg->size() &&
                    slot.max_record_bytes >= 256 && slot.max_record_bytes <= ring / 4 &&
                    slot.kind == static_cast<std::uint32_t>(shm::SlotKind::ring) &&
                    slot.name_len <= shm::kMaxRoomName;
  const std::string destroy_hint = "; " + shm::destroy_hint(seg->bus());
  if (!sane)
    throw Error(Errc::corrupt, "room table entry '" + std::string(shm::slot_name(slot)) + "' of bus '" +
                                   seg->bus() + "' is corrupt (offset " + std::to_string(off) +
                                   ", ring " + std::to_string(ring) + " bytes, max record " +
                                   std::to_string(slot.max_record_bytes) + " bytes)" + destroy_hint);
  auto* control = reinterpret_cast<shm::RingControl*>(seg->base() + off);
  shm::Ring::Timeouts timeouts{o.stall_timeout, o.publish_timeout, o.coarse_timestamps};
  auto impl = std::make_shared<Room::Impl>(Room::Impl{
      seg, std::string(shm::slot_name(slot)),
      shm::Ring(control, seg->base() + off + shm::kControlBytes, ring, slot.max_record_bytes, timeouts,
                seg->host_id())});
  if (const std::string problem = impl->ring.check_control(); !problem.empty())
    throw Error(Errc::corrupt, "room '" + impl->name + "' of bus '" + seg->bus() + "' is corrupt: " +
                                   problem + destroy_hint);
  return impl;
}

// Runs while we hold the slot in state "creating".
void initialise_room(shm::Segment& seg, shm::RoomSlot& slot, const RoomOptions& o) {
  const std::uint64_t bytes = shm::kControlBytes + o.ring_bytes;
  if (slot.region_offset == 0 || slot.region_bytes < bytes) {
    slot.region_offset = seg.allocate(bytes);
    slot.region_bytes = bytes;
  } else {
    seg.commit_region(slot.region_offset, slot.region_bytes);  // a dead creator's region
  }
  slot.ring_bytes = o.ring_bytes;
  slot.max_record_bytes = static_cast<std::uint32_t>(o.max_record_bytes);
  slot.kind = static_cast<std::uint32_t>(shm::SlotKind::ring);
  auto* control = reinterpret_cast<shm::RingControl*>(seg.base() + slot.region_offset);
  shm::Ring::initialise(*control, o.ring_bytes);
}

bool is_room(const shm::RoomSlot& slot) {
  return slot.state.load(std::memory_order_acquire) == shm::kRoomReady &&
         slot.kind == static_cast<std::uint32_t>(shm::SlotKind::ring);
}

// "<hostname>:<bus>", made to fit the host id grammar: other bytes become '-', and one too
// long keeps its start plus a hash of the whole, so distinct buses stay distinct.
std::string default_host_id(const std::string& bus) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "localhost");
  std::string id = std::string(host) + ':' + bus;
  for (char& c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' && c != ':') c = '-';
  if (id.size() > kMaxHostIdBytes) {
    char suffix[18];
    std::snprintf(suffix, sizeof suffix, ".%016llx", static_cast<unsigned long long>(fnv1a(id)));
    id = id.substr(0, kMaxHostIdBytes - 17) + suffix;
  }
  return id;
}

std::string resolve_host_id(const BusOptions& o, const std::string& bus) {
  if (!o.host_id.empty()) {
    validate_host_id(o.host_id);
    return o.host_id;
  }
  if (const char* env = std::getenv("AGENTBUS_HOST_ID"); env != nullptr && *env != '\0') {
    try {
      validate_host_id(env);
    } catch (const Error& e) {
      throw Error(Errc::bad_name, std::string("$AGENTBUS_HOST_ID: ") + e.what());
    }
    return env;
  }
  return default_host_id(bus);
}

}  // namespace

Bus::Bus(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::string Bus::default_name() {
  const char* env = std::getenv("AGENTBUS_BUS");
  return env != nullptr && *env != '\0' ? env : "default";
}

Bus Bus::open(const BusOptions& o) {
  const std::string bus = o.name.empty() ? default_name() : o.name;
  shm::SegmentParams p{bus,     o.segment_bytes, o.max_rooms, o.create, o.group_access || !o.group.empty(),
                       o.group, o.init_timeout,  resolve_host_id(o, bus)};
  return Bus(std::make_shared<Impl>(Impl{shm::Segment::open(p)}));
}

bool Bus::destroy(std::string_view bus_name) { return shm::Segment::destroy(std::string(bus_name)); }

const std::string& Bus::name() const noexcept { return impl_->segment->bus(); }
std::string_view Bus::host_id() const noexcept { return impl_->segment->host_id(); }

Room Bus::room(std::string_view name, const RoomOptions& options) {
  validate_room_name(name);
  const RoomOptions o = with_defaults(options);
  check_room_options(o);
  const auto& seg = impl_->segment;
  shm::RoomSlot* slot = shm::find_or_create_slot(
      *seg, name, o.create, [&](shm::RoomSlot& s) { initialise_room(*seg, s, o); });
  if (slot == nullptr)
    throw Error(Errc::not_found, "no room '" + std::string(name) + "' on bus '" + seg->bus() + "'");
  return Room(attach(seg, *slot, o));
}

std::vector<std::string> Bus::room_names() const {
  std::vector<std::string> names;
  const auto& seg = impl_->segment;
  shm::RoomSlot* table = seg->room_table();
  for (std::uint32_t i = 0; i < seg->header().max_rooms; ++i)
    if (is_room(table[i])) names.emplace_back(shm::slot_name(table[i]));
  std::sort(names.begin(), names.end());
  return names;
}

BusInfo Bus::info() const {
  const auto& seg = impl_->segment;
  const shm::SegmentHeader& h = seg->header();
  BusInfo info;
  info.name = seg->bus();
  info.object_name = seg->object_name();
  info.segment_bytes = seg->size();
  info.used_bytes = h.heap_cursor.load(std::memory_order_relaxed);
  info.max_rooms = h.max_rooms;
  info.layout_version = h.layout_version;
  info.host_id = std::string(seg->host_id());
  info.creator_pid = static_cast<int>(h.creator_pid);
  info.dead_writers_reclaimed = h.dead_writers_reclaimed.load(std::memory_order_relaxed);
  shm::RoomSlot* table = seg->room_table();
  for (std::uint32_t i = 0; i < h.max_rooms; ++i) {
    if (!is_room(table[i])) continue;
    try {
      info.rooms.push_back(Room(attach(seg, table[i], {})).info());
    } catch (const Error& e) {
      if (e.code() != Errc::corrupt) throw;
      RoomInfo broken;  // reported, so that the other rooms are still shown
      broken.name = std::string(shm::slot_name(table[i]));
      broken.corrupt = e.what();
      info.rooms.push_back(std::move(broken));
    }
  }
  std::sort(info.rooms.begin(), info.rooms.end(),
            [](const RoomInfo& a, const RoomInfo& b) { return a.name < b.name; });
  return info;
}

std::vector<Counter> counter_list(const BusInfo& info) {
  return {{"dead_writers_reclaimed", info.dead_writers_reclaimed}};
}

}  // namespace agentbus
