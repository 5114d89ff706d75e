#include "shm/layout.hpp"
#include "shm/process.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cstring>
#include <thread>
#include <unistd.h>

using namespace agentbus;
using agentbus::test::TestBus;
using agentbus::test::unique_bus_name;
using namespace std::chrono_literals;

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

// Layout 6 added the host id and record origins: a bus made by an older build must be removed.
TEST(Segment, RefusesALayout6BusWithTheDestroyHint) {
  TestBus bus("version6");
  patch_header(bus.name(), [](std::byte* p) {
    reinterpret_cast<shm::SegmentHeader*>(p)->layout_version = 6;  // before the recent index
  });
  expect_error([&] { (void)Bus::open({.name = bus.name()}); }, Errc::incompatible,
               "layout version 6, this build uses 7");
  expect_error([&] { (void)Bus::open({.name = bus.name()}); }, Errc::incompatible,
               "agentbus --bus " + bus.name() + " destroy");
}

TEST(Segment, RefusesACorruptHostId) {
  TestBus bus("hostid");
  patch_header(bus.name(), [](std::byte* p) {
    reinterpret_cast<shm::SegmentHeader*>(p)->host_id_len = 200;
  });
  expect_error([&] { (void)Bus::open({.name = bus.name()}); }, Errc::corrupt, "host id length 200");
  patch_header(bus.name(), [](std::byte* p) {
    auto* h = reinterpret_cast<shm::SegmentHeader*>(p);
    h->host_id_len = 2;
    std::memcpy(h->host_id, "a\x1b", 2);
  });
  expect_error([&] { (void)Bus::open({.name = bus.name()}); }, Errc::corrupt, "byte 0x1b");
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

// ---- reads never remove a segment (issue 9, defects 4 and 6) -----------------------------

namespace {

std::string shm_path(const std::string& bus) { return "/dev/shm/" + segment_object_name(bus); }

ino_t inode_of(const std::string& bus) {
  struct stat st{};
  return ::stat(shm_path(bus).c_str(), &st) == 0 ? st.st_ino : 0;
}

pid_t a_dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

}  // namespace

TEST(Segment, AGarbageHeaderWordIsReportedAndTheSegmentKept) {
  const std::string name = unique_bus_name("garbage-init");
  { (void)Bus::open({.name = name, .segment_bytes = 8 << 20}).room("r").publish("t", "a", "kept"); }
  const ino_t inode = inode_of(name);
  const std::uint64_t garbage = 0x9e3779b97f4a7c15ull;
  patch_header(name, [&](std::byte* p) { std::memcpy(p + 64, &garbage, 8); });

  for (const bool create : {false, true}) {
    expect_error([&] { (void)Bus::open({.name = name, .create = create, .init_timeout = 200ms}); },
                 Errc::corrupt, "'initialised' at offset 64 is 0x7f4a7c15, expected 1");
    expect_error([&] { (void)Bus::open({.name = name, .create = create, .init_timeout = 200ms}); },
                 Errc::corrupt, "agentbus --bus " + name + " destroy");
  }
  EXPECT_EQ(inode_of(name), inode) << "the segment was removed or replaced";
  std::uint64_t now = 0;
  patch_header(name, [&](std::byte* p) { std::memcpy(&now, p + 64, 8); });
  EXPECT_EQ(now, garbage) << "a read changed the segment";
  EXPECT_TRUE(Bus::destroy(name));
}

TEST(Segment, OnlyACreatingOpenReplacesASegmentWhoseCreatorDiedMidInitialisation) {
  const std::string name = unique_bus_name("dead-creator");
  { (void)Bus::open({.name = name, .segment_bytes = 8 << 20}); }
  const pid_t dead = a_dead_pid();
  patch_header(name, [&](std::byte* p) {
    auto* h = reinterpret_cast<shm::SegmentHeader*>(p);
    h->initialised.store(0);
    h->creator_pid = static_cast<std::uint32_t>(dead);
  });
  const ino_t inode = inode_of(name);
  expect_error([&] { (void)Bus::open({.name = name, .create = false, .init_timeout = 200ms}); },
               Errc::corrupt, "died while setting it up");
  EXPECT_EQ(inode_of(name), inode);

  // A live creator is waited for, never replaced.
  patch_header(name, [&](std::byte* p) {
    auto* h = reinterpret_cast<shm::SegmentHeader*>(p);
    h->creator_pid = static_cast<std::uint32_t>(::getpid());
    h->creator_start_time = shm::self_process().start_time;
  });
  expect_error([&] { (void)Bus::open({.name = name, .init_timeout = 100ms}); }, Errc::timeout,
               "was not initialised within 100 ms");
  EXPECT_EQ(inode_of(name), inode);

  patch_header(name, [&](std::byte* p) {
    reinterpret_cast<shm::SegmentHeader*>(p)->creator_pid = static_cast<std::uint32_t>(dead);
  });
  Bus fresh = Bus::open({.name = name, .segment_bytes = 8 << 20, .init_timeout = 200ms});
  EXPECT_EQ(fresh.info().creator_pid, ::getpid());
  EXPECT_TRUE(fresh.room("r").publish("t", "a", "x").ok());
  Bus::destroy(name);
}

TEST(Segment, GroupAccessGivesTheSegmentToTheGroupWithMode0660) {
  const std::string name = unique_bus_name("group");
  // Root may give it to any group; anyone else to a group they belong to.
  gid_t gid = ::getegid();
  if (::geteuid() == 0) gid = 65534;
  {
    Bus bus = Bus::open({.name = name, .segment_bytes = 8 << 20, .group = std::to_string(gid)});
    (void)bus.room("r");  // regions live inside the segment: they share its mode and group
  }
  struct stat st{};
  ASSERT_EQ(::stat(shm_path(name).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, gid);
  Bus::destroy(name);

  expect_error([&] { (void)Bus::open({.name = name, .group = "no-such-group-xyz"}); },
               Errc::invalid_argument, "no group named 'no-such-group-xyz'");
  EXPECT_EQ(inode_of(name), 0u) << "a failed create leaves nothing behind";
}

TEST(Segment, DestroyWithoutPermissionIsAnError) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root to own a segment another uid may not remove (sticky /dev/shm)";
  const std::string name = unique_bus_name("perm");
  { (void)Bus::open({.name = name, .segment_bytes = 8 << 20}); }
  // A child that is another user tries to remove root's segment from the sticky /dev/shm.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    try {
      (void)Bus::destroy(name);
      ::_exit(1);  // removed, or claimed there was none
    } catch (const Error& e) {
      const std::string what = e.what();
      ::_exit(e.code() == Errc::system && what.find("cannot destroy bus '" + name + "'") != std::string::npos &&
                      what.find("only its owner") != std::string::npos
                  ? 0
                  : 2);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: destroy returned; 2: wrong error; 3: setuid failed";
  EXPECT_NE(inode_of(name), 0u);
  EXPECT_TRUE(Bus::destroy(name));
}
