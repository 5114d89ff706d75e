// coord::Region in isolation: a made-up region kind, opened and then damaged by hand.
#include "coord/region.hpp"

#include "bus/room_access.hpp"
#include "shm/slot_table.hpp"
#include "support/expect.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <cstring>

using namespace agentbus;
using agentbus::test::TestBus;
using agentbus::test::expect_error;

namespace {

struct ProbeHeader {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t capacity;
  std::uint64_t created_by_initialiser;
};

constexpr coord::RegionKind kProbe{"probe table", "#probe", 0x31424f5250474241ull, 3, sizeof(ProbeHeader)};
constexpr std::uint64_t kBytes = 4096;

coord::Region open_probe(Room& room, bool create = true) {
  return coord::Region::open(*RoomAccess::segment(room), room.name(), kProbe, kBytes, create,
                             [](std::span<std::byte> r) {
                               auto* h = reinterpret_cast<ProbeHeader*>(r.data());
                               h->capacity = 8;
                               h->created_by_initialiser = 1;
                             });
}

ProbeHeader& raw_header(Room& room) {
  const std::span<std::byte> r = shm::open_region(*RoomAccess::segment(room), room.name() + "#probe", 0, false, {});
  EXPECT_FALSE(r.empty());
  return *reinterpret_cast<ProbeHeader*>(r.data());
}

}  // namespace

TEST(Region, CreateWritesThePrefixAndRunsTheInitialiserOnce) {
  TestBus bus("region");
  Room room = bus->room("r");
  const coord::Region first = open_probe(room);
  ASSERT_GE(first.size(), kBytes);
  const auto* h = first.header<ProbeHeader>();
  EXPECT_EQ(h->magic, kProbe.magic);
  EXPECT_EQ(h->version, kProbe.version);
  EXPECT_EQ(h->capacity, 8u);
  raw_header(room).created_by_initialiser = 7;  // a second open must not initialise again
  const coord::Region second = open_probe(room, false);
  EXPECT_EQ(second.bytes().data(), first.bytes().data());
  EXPECT_EQ(second.header<ProbeHeader>()->created_by_initialiser, 7u);
}

TEST(Region, AbsentWithoutCreateIsNotFound) {
  TestBus bus("region-absent");
  Room room = bus->room("r");
  expect_error([&] { (void)open_probe(room, false); }, Errc::not_found,
               "room 'r' on bus '" + bus.name() + "' has no probe table");
  EXPECT_FALSE(coord::Region::find(*RoomAccess::segment(room), room.name(), kProbe, kBytes, false, {}).has_value());
}

TEST(Region, BadMagicIsCorruptWithTheDestroyHint) {
  TestBus bus("region-magic");
  Room room = bus->room("r");
  (void)open_probe(room);
  raw_header(room).magic ^= 1;
  expect_error([&] { (void)open_probe(room); }, Errc::corrupt,
               "probe table of room 'r' on bus '" + bus.name() + "' is corrupt (bad header: magic");
  expect_error([&] { (void)open_probe(room); }, Errc::corrupt, "agentbus --bus " + bus.name() + " destroy");
}

TEST(Region, OtherVersionIsIncompatible) {
  TestBus bus("region-version");
  Room room = bus->room("r");
  (void)open_probe(room);
  raw_header(room).version = kProbe.version + 1;
  expect_error([&] { (void)open_probe(room); }, Errc::incompatible, "has layout version 4, this build reads 3");
  expect_error([&] { (void)open_probe(room); }, Errc::incompatible, "agentbus --bus " + bus.name() + " destroy");
}

TEST(Region, RegionSmallerThanItsHeaderIsCorrupt) {
  TestBus bus("region-small");
  Room room = bus->room("r");
  // Another build made the region with a smaller header: 16 bytes, the prefix and nothing more.
  const coord::RegionKind tiny{"probe table", "#probe", kProbe.magic, kProbe.version, 16};
  (void)coord::Region::open(*RoomAccess::segment(room), room.name(), tiny, 16, true, {});
  const coord::RegionKind huge{"probe table", "#probe", kProbe.magic, kProbe.version, 1u << 20};
  expect_error([&] { (void)coord::Region::open(*RoomAccess::segment(room), room.name(), huge, 16, false, {}); },
               Errc::corrupt, "smaller than its header");
}

TEST(Region, RequireRaisesTheSameCorruptError) {
  TestBus bus("region-require");
  Room room = bus->room("r");
  const coord::Region region = open_probe(room);
  EXPECT_NO_THROW(region.require(true, "fine"));
  // A capacity beyond the region, as each primitive checks its own shape.
  const std::uint32_t capacity = 1u << 30;
  expect_error([&] { region.require(sizeof(ProbeHeader) + capacity * 64ull <= region.size(), "capacity beyond the region"); },
               Errc::corrupt, "probe table of room 'r' on bus '" + bus.name() + "' is corrupt (capacity beyond the region); remove the bus with `agentbus --bus " + bus.name() + " destroy`");
}
