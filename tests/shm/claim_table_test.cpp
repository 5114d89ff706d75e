// The claim table on its own, on a plain block of memory (threads), and on a real bus with a
// creator process killed at each step of the protocol (fork/exec, SIGKILL at a failpoint).
#include "bus/room_access.hpp"
#include "shm/claim_table.hpp"
#include "shm/slot_table.hpp"
#include "support/child_process.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <thread>
#include <vector>
#include <sys/wait.h>
#include <unistd.h>

using namespace agentbus;
using namespace agentbus::shm;
using namespace std::chrono_literals;
using Outcome = ClaimLookup::Outcome;

namespace {

struct Entry {
  std::atomic<std::uint64_t> state{0};
  std::atomic<std::uint32_t> key{0};
  std::atomic<std::uint32_t> value{0};
};

struct Table {
  explicit Table(std::size_t n, ClaimRules rules = {.settle_wait = 2000ms}) : entries(n), table(entries, rules) {}
  std::vector<Entry> entries;
  ClaimTable<Entry> table;
  std::atomic<int> fills{0};

  // Key k lives at hash `hash`; its value is k * 10.
  ClaimLookup get(std::uint32_t k, bool create, std::uint64_t hash) {
    return table.find_or_claim(
        hash, create, [&](const Entry& e) { return e.key.load() == k; },
        [&](Entry& e) {
          e.key.store(k);
          e.value.store(k * 10);
          fills.fetch_add(1);
        });
  }
  std::vector<std::uint64_t> states() const {
    std::vector<std::uint64_t> out;
    for (const Entry& e : entries) out.push_back(e.state.load());
    return out;
  }
};

std::uint32_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return static_cast<std::uint32_t>(child);
}

std::uint64_t writing_by(ProcessId who) { return ClaimWord::make(ClaimPhase::writing, 0, who); }

}  // namespace

TEST(ClaimTable, CreatesAnEntryAndFindsItAgain) {
  Table t(8);
  const ClaimLookup made = t.get(5, true, 3);
  ASSERT_EQ(made.outcome, Outcome::created);
  EXPECT_EQ(made.index, 3u);
  EXPECT_FALSE(made.took_over);
  EXPECT_EQ(t.entries[3].state.load(), kClaimReady);
  EXPECT_EQ(t.entries[3].value.load(), 50u);
  const ClaimLookup again = t.get(5, true, 3);
  EXPECT_EQ(again.outcome, Outcome::found);
  EXPECT_EQ(again.index, 3u);
  EXPECT_EQ(t.fills.load(), 1);
}

TEST(ClaimTable, ALookupOfAnAbsentKeyChangesNothing) {
  Table t(8);
  ASSERT_EQ(t.get(1, true, 0).outcome, Outcome::created);
  t.entries[2].state.store(writing_by({dead_pid(), 77}));  // a dead writer on the path
  const auto before = t.states();
  EXPECT_EQ(t.get(2, false, 0).outcome, Outcome::absent);
  EXPECT_EQ(t.get(3, false, 5).outcome, Outcome::absent);
  EXPECT_EQ(t.states(), before);
  EXPECT_EQ(t.fills.load(), 1);
}

TEST(ClaimTable, CollidingKeysProbeOnAndWrapAround) {
  Table t(8);
  for (std::uint32_t k = 1; k <= 4; ++k) ASSERT_EQ(t.get(k, true, 6).outcome, Outcome::created);
  // Home 6, then 7, then the start of the table.
  EXPECT_EQ(t.get(1, false, 6).index, 6u);
  EXPECT_EQ(t.get(2, false, 6).index, 7u);
  EXPECT_EQ(t.get(3, false, 6).index, 0u);
  EXPECT_EQ(t.get(4, false, 6).index, 1u);
  EXPECT_EQ(t.get(4, false, 6).outcome, Outcome::found);
  EXPECT_EQ(t.entries[1].value.load(), 40u);
}

TEST(ClaimTable, AFullTableSaysSo) {
  Table t(4);
  for (std::uint32_t k = 1; k <= 4; ++k) ASSERT_EQ(t.get(k, true, k).outcome, Outcome::created);
  EXPECT_EQ(t.get(9, true, 0).outcome, Outcome::full);
  EXPECT_EQ(t.get(9, false, 0).outcome, Outcome::absent);
  EXPECT_EQ(t.get(3, true, 0).outcome, Outcome::found);
  EXPECT_EQ(t.fills.load(), 4);
}

TEST(ClaimTable, ConcurrentCreatorsOfTheSameKeysMakeEachEntryOnce) {
  constexpr int kThreads = 8;
  constexpr std::uint32_t kKeys = 48;
  Table t(64);
  std::vector<std::map<std::uint32_t, std::uint32_t>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th)
    threads.emplace_back([&, th] {
      for (std::uint32_t n = 0; n < kKeys; ++n) {
        const std::uint32_t k = 1 + (n + static_cast<std::uint32_t>(th) * 7) % kKeys;
        const ClaimLookup r = t.get(k, true, k % 5);  // five homes: long probe chains
        if (r.outcome == Outcome::found || r.outcome == Outcome::created) seen[th][k] = r.index;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(t.fills.load(), static_cast<int>(kKeys));
  for (int th = 0; th < kThreads; ++th) {
    ASSERT_EQ(seen[th].size(), kKeys);
    EXPECT_EQ(seen[th], seen[0]) << "thread " << th << " found a key elsewhere";
  }
  for (const auto& [k, i] : seen[0]) EXPECT_EQ(t.entries[i].key.load(), k);
}

TEST(ClaimTable, AnEntryADeadWriterLeftIsTakenOverByACreator) {
  Table t(8);
  t.entries[4].state.store(writing_by({dead_pid(), 5}));
  t.entries[4].key.store(99);  // half of another key's write
  const ClaimLookup r = t.get(7, true, 4);
  ASSERT_EQ(r.outcome, Outcome::created);
  EXPECT_EQ(r.index, 4u);
  EXPECT_TRUE(r.took_over);
  EXPECT_EQ(t.entries[4].key.load(), 7u);
  EXPECT_EQ(t.entries[4].state.load(), kClaimReady);
}

TEST(ClaimTable, AWriterWithOurPidButAnotherStartTimeIsDead) {
  // Our pid, recorded by a process that had it before us: pid alone would call it alive.
  const ProcessId me = self_process();
  Table t(4, {.settle_wait = 5000ms});
  t.entries[0].state.store(writing_by({me.pid, (me.start_time & owner_bits::kStartMask) ^ 1}));
  const ClaimLookup r = t.get(1, true, 0);
  EXPECT_EQ(r.outcome, Outcome::created);
  EXPECT_TRUE(r.took_over);
}

TEST(ClaimTable, ALiveWriterIsWaitedForNotTakenOver) {
  Table t(4, {.settle_wait = 10s});
  t.entries[1].state.store(writing_by(self_process()));  // live: this process
  std::thread writer([&] {
    t.entries[1].key.store(3);
    t.entries[1].value.store(333);
    t.entries[1].state.store(kClaimReady);
  });
  const ClaimLookup r = t.get(3, true, 1);
  writer.join();
  EXPECT_EQ(r.outcome, Outcome::found);
  EXPECT_EQ(r.index, 1u);
  EXPECT_EQ(t.entries[1].value.load(), 333u) << "the waiting creator overwrote a live writer's entry";
  EXPECT_EQ(t.fills.load(), 0);
}

TEST(ClaimTable, AWriterThatStaysTooLongIsReportedOrProbedPast) {
  Table strict(4, {.settle_wait = 20ms});
  const std::uint64_t live = writing_by(self_process());
  strict.entries[0].state.store(live);
  const ClaimLookup r = strict.get(1, true, 0);
  EXPECT_EQ(r.outcome, Outcome::stuck);
  EXPECT_EQ(r.word, live);
  EXPECT_EQ(strict.entries[0].state.load(), live);

  Table lenient(4, {.settle_wait = 20ms, .probe_past_stuck_reads = true});
  lenient.entries[0].state.store(live);
  EXPECT_EQ(lenient.get(1, false, 0).outcome, Outcome::absent);
  EXPECT_EQ(lenient.get(1, true, 0).outcome, Outcome::stuck) << "a creator may not pass a live writer";
}

TEST(ClaimTable, AForeignWordIsLeftAlone) {
  const std::uint64_t foreign = 0xfeedfacecafebeefull;  // phase 7: no claim table wrote it
  Table skip(4, {.probe_past_foreign = true});
  skip.entries[2].state.store(foreign);
  const ClaimLookup r = skip.get(1, true, 2);
  EXPECT_EQ(r.outcome, Outcome::created);
  EXPECT_EQ(r.index, 3u);
  EXPECT_EQ(skip.entries[2].state.load(), foreign);

  Table report(4);
  report.entries[2].state.store(foreign);
  const ClaimLookup f = report.get(1, true, 2);
  EXPECT_EQ(f.outcome, Outcome::foreign);
  EXPECT_EQ(f.index, 2u);
  EXPECT_EQ(report.entries[2].state.load(), foreign);
}

// ---- entries released and reused (presence, reader slots, the catalog) ----------------

TEST(ClaimTable, ReusableEntriesAreClaimedFromTheWordSeenOnly) {
  Entry e;
  const std::uint64_t published = ClaimWord::make(ClaimPhase::ready, 41);
  e.state.store(published);
  EXPECT_FALSE(ClaimTable<Entry>::claim(e, 0)) << "claimed from a word it did not hold";
  EXPECT_EQ(e.state.load(), published);
  ASSERT_TRUE(ClaimTable<Entry>::claim(e, published));
  EXPECT_TRUE(ClaimWord::held_by(e.state.load(), self_process()));
  EXPECT_TRUE(ClaimTable<Entry>::being_written(e.state.load()));
  EXPECT_FALSE(ClaimTable<Entry>::abandoned(e.state.load()));
  const std::uint64_t next = ClaimWord::make(ClaimPhase::ready, 42);
  ClaimTable<Entry>::publish(e, next);
  EXPECT_EQ(e.state.load(), next);
}

TEST(ClaimTable, OnlyAWriteWhoseWriterIsGoneIsAbandoned) {
  EXPECT_TRUE(ClaimTable<Entry>::abandoned(writing_by({dead_pid(), 9})));
  EXPECT_FALSE(ClaimTable<Entry>::abandoned(writing_by(self_process())));
  EXPECT_FALSE(ClaimTable<Entry>::abandoned(0));
  EXPECT_FALSE(ClaimTable<Entry>::abandoned(kClaimReady));
  // A published word of a table's own phase (a durable reader slot, phase 3) is not a write.
  EXPECT_FALSE(ClaimTable<Entry>::abandoned((3ull << 61) | owner_bits::holder({dead_pid(), 9})));
}

// ---- a creator process killed at each step ---------------------------------------------

namespace {

struct KillStep {
  const char* failpoint;
};

class ClaimTableCrash : public ::testing::TestWithParam<KillStep> {};

RoomSlot* slot_named(Segment& seg, std::string_view name) {
  for (std::uint32_t i = 0; i < seg.header().max_rooms; ++i)
    if (slot_name(seg.room_table()[i]) == name) return &seg.room_table()[i];
  return nullptr;
}

}  // namespace

TEST_P(ClaimTableCrash, ACreatorKilledMidClaimIsRecoveredAndOtherRoomsAreIntact) {
  test::TestBus bus("claimcrash");
  Room kept = bus->room("kept");
  const EventId first = kept.publish("t", "a", "before the crash").id;
  Segment& seg = *RoomAccess::segment(kept);

  test::ChildProcess child({test::helper_path(), "publish", bus.name(), "victim", "0", "1"},
                           {std::string("AGENTBUS_FAILPOINTS=") + GetParam().failpoint + "@1=kill"});
  ASSERT_EQ(child.wait(10s), 128 + SIGKILL) << "the creator did not die at " << GetParam().failpoint;

  // The creator's claim is left behind, in state writing by its (dead) pid.
  std::uint64_t left = 0;
  for (std::uint32_t i = 0; i < seg.header().max_rooms && left == 0; ++i) {
    const std::uint64_t s = seg.room_table()[i].state.load();
    if (s != 0 && s != kRoomReady) left = s;
  }
  ASSERT_NE(left, 0u);
  EXPECT_EQ(ClaimWord::phase(left), ClaimPhase::writing);
  EXPECT_EQ(ClaimWord::pid(left), static_cast<std::uint32_t>(child.pid()));

  // A lookup does not take it over: the room is absent and the word stays.
  EXPECT_THROW((void)bus->room("victim", {.create = false}), Error);
  EXPECT_EQ(seg.header().dead_writers_reclaimed.load(), 0u);

  // A creator does, and the room works.
  Room victim = bus->room("victim");
  EXPECT_EQ(seg.header().dead_writers_reclaimed.load(), 1u);
  ASSERT_NE(slot_named(seg, "victim"), nullptr);
  EXPECT_EQ(slot_named(seg, "victim")->state.load(), kRoomReady);
  const EventId id = victim.publish("t", "b", "after").id;
  const auto got = victim.recent(5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, id);
  EXPECT_EQ(got[0].payload, "after");

  // The room created before the crash kept its events.
  const auto old = bus->room("kept").recent(5);
  ASSERT_EQ(old.size(), 1u);
  EXPECT_EQ(old[0].id, first);
  EXPECT_EQ(old[0].payload, "before the crash");
}

INSTANTIATE_TEST_SUITE_P(EachStep, ClaimTableCrash,
                         ::testing::Values(KillStep{"claim_after_cas"}, KillStep{"claim_mid_write"},
                                           KillStep{"claim_before_ready"}),
                         [](const auto& info) { return std::string(info.param.failpoint); });
