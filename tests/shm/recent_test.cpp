// recent(n) reads the newest events through the ring's sparse back-link (RingControl::
// recent_index). It must give exactly what a full scan from the oldest record gives, on rings
// of random records, after any number of laps, with dead producers' claims (stamped or not)
// and a live producer's claim in the ring, and whatever the index holds.
#include "shm/failpoint.hpp"
#include "support/ring_of.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::TestBus;
using agentbus::test::ring_of;

namespace {

constexpr RoomOptions kSmallRing{.ring_bytes = 64 << 10, .stall_timeout = 5ms};

// Every committed event from the oldest record on, oldest first: the walk recent() did
// before it had an index. Claims of dead producers are padded as recent() pads them.
std::vector<EventId> full_scan(Room& room) {
  shm::Ring& ring = ring_of(room);
  std::vector<EventId> ids;
  const std::uint64_t tail = ring.tail();
  for (std::uint64_t pos = ring.oldest(); pos < tail;) {
    const shm::PeekResult p = ring.peek(pos);
    if (p.kind == shm::Peek::committed) ids.push_back(pos);
    if (p.kind == shm::Peek::committed || p.kind == shm::Peek::padding) {
      pos += p.len;
    } else if (p.kind == shm::Peek::pending && p.len > 0) {
      if (!ring.repair(pos)) pos += p.len;  // a live claim is stepped over
    } else if (p.kind == shm::Peek::pending) {
      if (!ring.repair(pos)) pos = ring.next_intact(pos, tail);  // a dead claim never stamped
    } else {
      ADD_FAILURE() << "full scan stopped at " << pos << " below tail " << tail;
      break;
    }
  }
  return ids;
}

void expect_recent_matches_scan(Room& room, const std::string& where) {
  const std::vector<EventId> all = full_scan(room);
  for (std::size_t n : {1, 2, 7, 10, 33, 100, 1000, 100000}) {
    std::vector<EventId> got;
    for (const Event& e : room.recent(n)) got.push_back(e.id);
    const std::size_t k = std::min(n, all.size());
    const std::vector<EventId> want(all.end() - static_cast<std::ptrdiff_t>(k), all.end());
    ASSERT_EQ(got, want) << where << ", n=" << n;
  }
}

// A producer that dies at `failpoint` while publishing one event: a claim left stamped
// (after_claim) or unstamped (before_stamp) by a dead process.
void publish_and_die(Room& room, const char* failpoint) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    shm::set_failpoints(std::string(failpoint) + "=exit");
    (void)room.publish("dead", "ghost", "never committed");
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 137) << failpoint;
}

std::string random_payload(std::mt19937& rng) {
  // Mostly small, now and then near the room's max record, so blocks hold 0..many records.
  const std::size_t size = rng() % 8 == 0 ? rng() % 9000 : rng() % 200;
  return std::string(size, static_cast<char>('a' + rng() % 26));
}

}  // namespace

TEST(Recent, EqualsAFullScanOnRandomRingsAcrossLaps) {
  for (unsigned seed = 1; seed <= 6; ++seed) {
    TestBus bus("recent-rand");
    Room room = bus->room("r", kSmallRing);
    std::mt19937 rng(seed);
    expect_recent_matches_scan(room, "empty ring");
    // Up to ~6 laps of a 64 KiB ring, checked at random moments, so the tail lands anywhere
    // in a block and the oldest record anywhere in the ring.
    const int events = 200 + static_cast<int>(rng() % 3000);
    for (int i = 0; i < events; ++i) {
      ASSERT_TRUE(room.publish("t", "agent-" + std::to_string(rng() % 5), random_payload(rng)).ok());
      if (rng() % 400 == 0) expect_recent_matches_scan(room, "seed " + std::to_string(seed) + " event " + std::to_string(i));
    }
    expect_recent_matches_scan(room, "seed " + std::to_string(seed) + " end");
    EXPECT_GT(ring_of(room).oldest(), 0u) << "the ring wrapped";
  }
}

TEST(Recent, EqualsAFullScanWithDeadClaimsInTheRing) {
  TestBus bus("recent-dead");
  Room room = bus->room("r", kSmallRing);
  std::mt19937 rng(42);
  for (int lap = 0; lap < 3; ++lap) {
    for (int i = 0; i < 300; ++i) ASSERT_TRUE(room.publish("t", "a", random_payload(rng)).ok());
    publish_and_die(room, "after_claim");   // stamped claim, dead owner
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(room.publish("t", "a", random_payload(rng)).ok());
    publish_and_die(room, "before_stamp");  // unstamped claim: a gap of unknown length
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(room.publish("t", "a", "x").ok());
    // recent() before any repair: it must step over or pad them itself.
    std::vector<EventId> got;
    for (const Event& e : room.recent(20)) got.push_back(e.id);
    const std::vector<EventId> all = full_scan(room);
    ASSERT_GE(all.size(), 20u);
    EXPECT_EQ(got, std::vector<EventId>(all.end() - 20, all.end())) << "lap " << lap;
    expect_recent_matches_scan(room, "lap " + std::to_string(lap));
  }
  const RoomCounters c = room.info().counters;
  EXPECT_GE(c.dead_claims_padded, 1u);
  EXPECT_GE(c.gaps_padded, 1u);
}

TEST(Recent, StepsOverALiveClaimLikeAFullScan) {
  TestBus bus("recent-live");
  Room room = bus->room("r", kSmallRing);
  std::mt19937 rng(7);
  for (int i = 0; i < 900; ++i) ASSERT_TRUE(room.publish("t", "a", random_payload(rng)).ok());
  const pid_t stuck = ::fork();
  ASSERT_GE(stuck, 0);
  if (stuck == 0) {
    shm::set_failpoints("after_claim=stop");  // alive, holding a stamped claim
    (void)room.publish("live", "slow", "not yet");
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(stuck, &status, WUNTRACED), stuck);
  ASSERT_TRUE(WIFSTOPPED(status));
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(room.publish("t", "a", "after").ok());
  expect_recent_matches_scan(room, "live claim");
  for (const Event& e : room.recent(100)) EXPECT_NE(e.type, "live");
  EXPECT_EQ(room.info().counters.dead_claims_padded, 0u);  // alive: never padded
  ::kill(stuck, SIGKILL);
  ::waitpid(stuck, nullptr, 0);
}

TEST(Recent, ScribbledIndexEntriesOnlyCostTime) {
  TestBus bus("recent-scribble");
  Room room = bus->room("r", kSmallRing);
  std::mt19937 rng(3);
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(room.publish("t", "a", random_payload(rng)).ok());
  shm::RingControl& control = ring_of(room).control();
  const std::uint64_t tail = ring_of(room).tail();
  // Entries that point into the middle of records, past the tail, or nowhere.
  for (std::size_t i = 0; i < shm::kRecentIndexSlots; ++i)
    control.recent_index[i].store(i % 3 == 0 ? tail - 8 * (rng() % 64) : i % 3 == 1 ? rng() : 0);
  expect_recent_matches_scan(room, "scribbled index");
}
