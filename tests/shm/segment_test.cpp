#include "shm/layout.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace agentbus;
using agentbus::test::TestBus;
using agentbus::test::unique_bus_name;

namespace {

// Expects `fn` to throw agentbus::Error with `code` and a message containing `text`.
template <class Fn>
void expect_error(Fn fn, Errc code, const std::string& text) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown; expected one containing: " << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

void write_shm(const std::string& bus, const std::string& bytes) {
  const std::string name = "/" + segment_object_name(bus);
  int fd = ::shm_open(name.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

// Maps an existing bus's header so a test can damage it.
template <class Fn>
void patch_header(const std::string& bus, Fn fn) {
  const std::string name = "/" + segment_object_name(bus);
  int fd = ::shm_open(name.c_str(), O_RDWR, 0);
  ASSERT_GE(fd, 0);
  void* p = ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED);
  fn(static_cast<std::byte*>(p));
  ::munmap(p, 1 << 20);
  ::close(fd);
}

}  // namespace

TEST(Segment, CreatesWithMode0600AndReopens) {
  TestBus bus("seg");
  struct stat st{};
  ASSERT_EQ(::stat(("/dev/shm/" + segment_object_name(bus.name())).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = Bus::open({.name = bus.name()});
  EXPECT_EQ(again.info().layout_version, shm::kLayoutVersion);
  EXPECT_EQ(again.info().creator_pid, ::getpid());
}

TEST(Segment, OpenWithoutCreateNeedsAnExistingBus) {
  expect_error([] { (void)Bus::open({.name = unique_bus_name("absent"), .create = false}); },
               Errc::not_found, "no bus named");
}

TEST(Segment, DestroyReportsWhetherThereWasOne) {
  const std::string name = unique_bus_name("destroy");
  { auto bus = Bus::open({.name = name, .segment_bytes = 8 << 20}); }
  EXPECT_TRUE(Bus::destroy(name));
  EXPECT_FALSE(Bus::destroy(name));
}

TEST(Segment, RefusesAForeignObject) {
  const std::string name = unique_bus_name("foreign");
  write_shm(name, std::string(8192, 'Z'));
  expect_error([&] { (void)Bus::open({.name = name}); }, Errc::incompatible,
               "agentbus --bus " + name + " destroy");
  Bus::destroy(name);
}

TEST(Segment, RefusesATruncatedObject) {
  const std::string name = unique_bus_name("trunc");
  write_shm(name, std::string(16, '\0'));
  expect_error([&] { (void)Bus::open({.name = name, .init_timeout = std::chrono::milliseconds(50)}); },
               Errc::incompatible, "too small");
  Bus::destroy(name);
}

TEST(Segment, RefusesAnotherLayoutVersion) {
  TestBus bus("version");
  patch_header(bus.name(), [](std::byte* p) {
    reinterpret_cast<shm::SegmentHeader*>(p)->layout_version = 99;
  });
  expect_error([&] { (void)Bus::open({.name = bus.name()}); }, Errc::incompatible, "layout version 99");
}

TEST(Segment, RefusesASizeThatDisagreesWithTheHeader) {
  TestBus bus("size");
  patch_header(bus.name(), [](std::byte* p) {
    reinterpret_cast<shm::SegmentHeader*>(p)->segment_bytes += 4096;
  });
  expect_error([&] { (void)Bus::open({.name = bus.name()}); }, Errc::incompatible, "truncated");
}

TEST(Segment, RefusesACorruptRoomEntry) {
  TestBus bus("corruptroom");
  (void)bus->room("r");
  patch_header(bus.name(), [](std::byte* p) {
    auto* h = reinterpret_cast<shm::SegmentHeader*>(p);
    auto* table = reinterpret_cast<shm::RoomSlot*>(p + h->room_table_offset);
    for (std::uint32_t i = 0; i < h->max_rooms; ++i)
      if (table[i].state.load() == shm::kRoomReady) table[i].ring_bytes = 12345;
  });
  expect_error([&] { (void)bus->room("r"); }, Errc::corrupt, "corrupt");
}

TEST(Segment, RoomsAreSharedByName) {
  TestBus bus("rooms");
  Room a = bus->room("repo/main");
  Room b = bus->room("repo/main");
  Room c = bus->room("repo/dev");
  auto id = a.publish("t", "x", "hello").id;
  auto events = b.recent(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].id, id);
  EXPECT_TRUE(c.recent(1).empty());
  EXPECT_EQ(bus->room_names(), (std::vector<std::string>{"repo/dev", "repo/main"}));
  expect_error([&] { (void)bus->room("nope", {.create = false}); }, Errc::not_found, "no room 'nope'");
  expect_error([&] { (void)bus->room("bad name"); }, Errc::bad_name, "' '");
}

TEST(Segment, RacingCreatorsGetOneRoom) {
  TestBus bus("race");
  std::vector<std::thread> threads;
  std::atomic<int> published{0};
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      Room r = bus->room("contested");
      if (r.publish("t", "x", "p").ok()) ++published;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(bus->room_names().size(), 1u);
  EXPECT_EQ(bus->room("contested").recent(10).size(), 4u);
}

TEST(Segment, FullTablesAreClearErrors) {
  TestBus bus("full", {.segment_bytes = 4 << 20, .max_rooms = 2});
  (void)bus->room("a", {.ring_bytes = 64 << 10});
  (void)bus->room("b", {.ring_bytes = 64 << 10});
  expect_error([&] { (void)bus->room("c", {.ring_bytes = 64 << 10}); }, Errc::no_space, "no free slot");

  TestBus small("heap", {.segment_bytes = 4 << 20, .max_rooms = 8});
  (void)small->room("a", {.ring_bytes = 2 << 20});
  expect_error([&] { (void)small->room("b", {.ring_bytes = 2 << 20}); }, Errc::no_space, "is full");
}

TEST(Segment, RejectsBadRoomOptions) {
  TestBus bus("opts");
  expect_error([&] { (void)bus->room("a", {.ring_bytes = 100000}); }, Errc::invalid_argument, "power of two");
  expect_error([&] { (void)bus->room("a", {.ring_bytes = 1 << 20, .max_record_bytes = 1 << 20}); },
               Errc::invalid_argument, "ring_bytes/4");
}
