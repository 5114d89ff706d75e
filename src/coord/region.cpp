#include "coord/region.hpp"

#include "shm/destroy_hint.hpp"
#include "shm/slot_table.hpp"
#include "util/hex.hpp"

#include <agentbus/error.hpp>

#include <cstring>

namespace agentbus::coord {

Error corrupt_region(std::string_view bus, std::string_view room, std::string_view noun, std::string_view what) {
  return Error(Errc::corrupt, std::string(noun) + " of room '" + std::string(room) + "' on bus '" +
                                  std::string(bus) + "' is corrupt (" + std::string(what) + "); " +
                                  shm::destroy_hint(bus));
}

std::optional<Region> Region::find(shm::Segment& seg, std::string_view room, const RegionKind& kind,
                                   std::uint64_t create_bytes, bool create,
                                   const std::function<void(std::span<std::byte>)>& initialise) {
  const std::string name = std::string(room) + std::string(kind.suffix);
  const std::span<std::byte> bytes = shm::open_region(seg, name, create_bytes, create, [&](std::span<std::byte> r) {
    // open_region hands over at least create_bytes, and every caller asks for its header.
    const RegionPrefix prefix{kind.magic, kind.version};
    std::memcpy(r.data(), &prefix, sizeof prefix);
    if (initialise) initialise(r);
  });
  if (bytes.empty()) return std::nullopt;
  Region region(bytes, seg.bus(), std::string(room), std::string(kind.noun));
  if (bytes.size() < sizeof(RegionPrefix) || bytes.size() < kind.header_bytes)
    region.corrupt("bad header: the region is " + std::to_string(bytes.size()) + " bytes, smaller than its header");
  RegionPrefix prefix{};
  std::memcpy(&prefix, bytes.data(), sizeof prefix);
  if (prefix.magic != kind.magic)
    region.corrupt("bad header: magic " + util::hex(prefix.magic) + ", expected " + util::hex(kind.magic));
  if (prefix.version != kind.version)
    throw Error(Errc::incompatible, region.noun_ + " of room '" + region.room_ + "' on bus '" + region.bus_ +
                                        "' has layout version " + std::to_string(prefix.version) +
                                        ", this build reads " + std::to_string(kind.version) + "; " +
                                        shm::destroy_hint(region.bus_));
  return region;
}

Region Region::open(shm::Segment& seg, std::string_view room, const RegionKind& kind, std::uint64_t create_bytes,
                    bool create, const std::function<void(std::span<std::byte>)>& initialise) {
  std::optional<Region> region = find(seg, room, kind, create_bytes, create, initialise);
  if (!region)
    throw Error(Errc::not_found, "room '" + std::string(room) + "' on bus '" + seg.bus() + "' has no " +
                                     std::string(kind.noun));
  return *std::move(region);
}

void Region::require(bool ok, std::string_view what) const {
  if (!ok) corrupt(what);
}

void Region::corrupt(std::string_view what) const { throw corrupt_region(bus_, room_, noun_, what); }

}  // namespace agentbus::coord
