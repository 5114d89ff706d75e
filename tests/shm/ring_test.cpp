#include "shm/failpoint.hpp"
#include "shm/layout.hpp"
#include "shm/process.hpp"
#include "support/ring_of.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::TestBus;
using agentbus::test::ring_of;

namespace {

std::string payload_of(std::size_t n, char fill) { return std::string(n, fill); }

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

TEST(Ring, PublishedFieldsComeBackIntact) {
  TestBus bus("fields");
  Room room = bus->room("r");
  Subscription sub = room.subscribe({.from = StartFrom::earliest});
  const auto before = now_ns();
  const auto first = room.publish("TASK", "fixer-1", R"({"x":1})");
  const auto second = room.publish("REPLY", "critic", "ok", {.to = "fixer-1", .reply_to = first.id});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_GT(second.id, first.id);

  ReadResult r = sub.next(1s);
  ASSERT_TRUE(r.has_event());
  EXPECT_EQ(r.event.id, first.id);
  EXPECT_EQ(r.event.type, "TASK");
  EXPECT_EQ(r.event.agent, "fixer-1");
  EXPECT_EQ(r.event.to, "");
  EXPECT_FALSE(r.event.reply_to.has_value());
  EXPECT_EQ(r.event.payload, R"({"x":1})");
  EXPECT_GE(r.event.ts_ns, before);
  EXPECT_LE(r.event.ts_ns, now_ns());

  r = sub.next(1s);
  ASSERT_TRUE(r.has_event());
  EXPECT_EQ(r.event.to, "fixer-1");
  ASSERT_TRUE(r.event.reply_to.has_value());
  EXPECT_EQ(*r.event.reply_to, first.id);
  EXPECT_EQ(sub.next(0ns).status, ReadStatus::timeout);
}

TEST(Ring, RefusesOversizedFields) {
  TestBus bus("oversize");
  Room room = bus->room("r", {.ring_bytes = 1 << 20, .max_record_bytes = 4096});
  EXPECT_TRUE(room.publish("t", "a", payload_of(4000, 'x')).ok());
  try {
    room.publish("t", "a", payload_of(5000, 'x'));
    FAIL() << "expected too_large";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::too_large);
    EXPECT_NE(std::string(e.what()).find("payload is 5000 bytes, max"), std::string::npos) << e.what();
  }
  EXPECT_THROW(room.publish(std::string(65, 't'), "a", ""), Error);
  EXPECT_THROW(room.publish("t", std::string(129, 'a'), ""), Error);
  EXPECT_THROW(room.publish("", "a", ""), Error);
  EXPECT_EQ(room.recent(10).size(), 1u);  // nothing refused was half-published
}

TEST(Ring, StartPositions) {
  TestBus bus("start");
  Room room = bus->room("r");
  const auto a = room.publish("t", "x", "a").id;
  const auto b = room.publish("t", "x", "b").id;
  Subscription latest = room.subscribe({.from = StartFrom::latest});
  Subscription earliest = room.subscribe({.from = StartFrom::earliest});
  Subscription from_b = room.subscribe({.from = StartFrom::id, .from_id = b});
  const auto c = room.publish("t", "x", "c").id;
  EXPECT_EQ(latest.next(1s).event.id, c);
  EXPECT_EQ(earliest.next(1s).event.id, a);
  EXPECT_EQ(from_b.next(1s).event.id, b);
  EXPECT_THROW((void)room.subscribe({.from = StartFrom::id, .from_id = b + 8}), Error);
  EXPECT_THROW((void)room.subscribe({.from = StartFrom::id, .from_id = c + 4096}), Error);
}

TEST(Ring, RecentIsNewestNOldestFirst) {
  TestBus bus("recent");
  Room room = bus->room("r");
  EXPECT_TRUE(room.recent(5).empty());
  for (int i = 0; i < 10; ++i) room.publish("t", "x", std::to_string(i));
  auto events = room.recent(3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].payload, "7");
  EXPECT_EQ(events[2].payload, "9");
  EXPECT_EQ(room.recent(100).size(), 10u);
}

TEST(Ring, WrapsWithPaddingAndKeepsOrder) {
  TestBus bus("wrap");
  Room room = bus->room("r", {.ring_bytes = 64 << 10, .max_record_bytes = 16 << 10});
  Subscription sub = room.subscribe({.from = StartFrom::earliest, .durable_name = "check"});
  // Odd sizes so records end at many different offsets and the wrap needs padding.
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(room.publish("t", "x", payload_of(17 + (i * 37) % 700, 'a' + i % 26) + std::to_string(i)).ok());
    ReadResult r = sub.next(1s);
    ASSERT_TRUE(r.has_event());
    EXPECT_TRUE(r.event.payload.ends_with(std::to_string(i)));
  }
  EXPECT_GT(room.info().counters.wrap_paddings, 0u);
}

TEST(Ring, LappedTailerGetsOverrunWithPlausibleCount) {
  TestBus bus("overrun");
  Room room = bus->room("r", {.ring_bytes = 64 << 10, .max_record_bytes = 16 << 10});
  Subscription sub = room.subscribe({.from = StartFrom::latest});
  const std::string p = payload_of(200, 'x');
  const int total = 2000;  // ~ 500 KB through a 64 KiB ring
  std::uint64_t first_id = 0, last_id = 0;
  for (int i = 0; i < total; ++i) {
    auto r = room.publish("t", "x", p + std::to_string(10000 + i));
    if (i == 0) first_id = r.id;
    last_id = r.id;
  }
  ReadResult r = sub.next(1s);
  ASSERT_EQ(r.status, ReadStatus::overrun);
  // Then the rest arrives in order, and missed + delivered accounts for every event.
  std::uint64_t delivered = 0, prev = 0;
  for (;;) {
    ReadResult e = sub.next(0ns);
    if (!e.has_event()) break;
    EXPECT_GT(e.event.id, prev);
    prev = e.event.id;
    ++delivered;
  }
  EXPECT_EQ(prev, last_id);
  // missed is estimated from record sizes (wrap padding inflates it slightly).
  EXPECT_NEAR(double(r.missed + delivered), total, total * 0.01);
  EXPECT_GE(r.missed_bytes, (total - delivered) * shm::align8(shm::kRecordHeaderBytes + 1 + 1 + 205));
  EXPECT_LT(r.missed_bytes, prev - first_id);
  EXPECT_GE(room.info().counters.overruns, 1u);
}

TEST(Ring, DurableReaderGatesProducersUntilBusFull) {
  TestBus bus("gate");
  Room room = bus->room("r", {.ring_bytes = 64 << 10, .max_record_bytes = 16 << 10,
                              .publish_timeout = 50ms});
  Subscription durable = room.subscribe({.from = StartFrom::latest, .durable_name = "audit"});
  int accepted = 0;
  PublishResult last;
  for (int i = 0; i < 1000; ++i) {
    last = room.publish("t", "x", payload_of(200, 'y') + std::to_string(i));
    if (!last.ok()) break;
    ++accepted;
  }
  ASSERT_EQ(last.status, PublishStatus::bus_full);
  EXPECT_GT(accepted, 200);                 // the ring filled up first
  EXPECT_LE(accepted * shm::align8(shm::kRecordHeaderBytes + 1 + 1 + 203), 64u << 10);  // nothing was overwritten to make room
  EXPECT_GE(room.info().counters.bus_full, 1u);
  // Every accepted event is still there, in order; draining makes room again.
  for (int i = 0; i < accepted; ++i) {
    ReadResult r = durable.next(1s);
    ASSERT_TRUE(r.has_event()) << i;
    EXPECT_TRUE(r.event.payload.ends_with(std::to_string(i)));
  }
  (void)durable.next(0ns);  // acknowledges the last one
  EXPECT_TRUE(room.publish("t", "x", "again").ok());
}

TEST(Ring, DurableCursorSurvivesTheReaderAndCanBeDropped) {
  TestBus bus("durable");
  Room room = bus->room("r", {.ring_bytes = 64 << 10, .max_record_bytes = 16 << 10,
                              .publish_timeout = 20ms});
  {
    Subscription s = room.subscribe({.from = StartFrom::latest, .durable_name = "job"});
    for (int i = 0; i < 5; ++i) room.publish("t", "x", std::to_string(i));
    ASSERT_EQ(s.next(1s).event.payload, "0");
    ASSERT_EQ(s.next(1s).event.payload, "1");
    EXPECT_THROW((void)room.subscribe({.durable_name = "job"}), Error);  // in use by us
  }
  Subscription again = room.subscribe({.durable_name = "job"});
  EXPECT_EQ(again.next(1s).event.payload, "1");  // "1" was viewed but never acknowledged
  EXPECT_EQ(again.next(1s).event.payload, "2");
  again.close();
  auto info = room.info();
  ASSERT_EQ(info.readers.size(), 1u);
  EXPECT_TRUE(info.readers[0].durable);
  EXPECT_EQ(info.readers[0].name, "job");
  EXPECT_EQ(info.readers[0].pid, 0);
  EXPECT_TRUE(room.drop_reader("job"));
  EXPECT_FALSE(room.drop_reader("job"));
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(room.publish("t", "x", payload_of(100, 'z')).ok());
}

TEST(Ring, ExplicitCommitKeepsTheCursorUntilCommitted) {
  TestBus bus("commit");
  Room room = bus->room("r", {.ring_bytes = 64 << 10, .max_record_bytes = 16 << 10, .publish_timeout = 20ms});
  std::vector<EventId> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(room.publish("t", "x", std::to_string(i)).id);
  {
    Subscription s = room.subscribe({.from = StartFrom::earliest, .durable_name = "ship", .explicit_commit = true});
    for (int i = 0; i < 4; ++i) ASSERT_EQ(s.next(1s).event.payload, std::to_string(i));
    s.commit(ids[2]);  // 0 and 1 are done; 2 and 3 were read but not finished
    EXPECT_THROW(s.commit(ids[1]), Error);   // behind the cursor
    EXPECT_THROW(s.commit(ids[5]), Error);   // past what was read
    EXPECT_EQ(room.info().readers[0].cursor, ids[2]);
  }  // "killed" here: the handle goes away without committing 2 and 3
  Subscription again = room.subscribe({.durable_name = "ship", .explicit_commit = true});
  EXPECT_EQ(again.next(1s).event.payload, "2");
  EXPECT_EQ(again.next(1s).event.payload, "3");
  again.commit(again.position());
  EXPECT_EQ(room.info().readers[0].cursor, ids[4]);
  Subscription tailer = room.subscribe({});
  EXPECT_THROW(tailer.commit(0), Error);
}

TEST(Ring, ExplicitCommitReaderGatesProducersUntilItCommits) {
  TestBus bus("commitgate");
  Room room = bus->room("r", {.ring_bytes = 64 << 10, .max_record_bytes = 16 << 10, .publish_timeout = 20ms});
  Subscription s = room.subscribe({.from = StartFrom::latest, .durable_name = "ship", .explicit_commit = true});
  const std::string big = payload_of(1000, 'b');
  int accepted = 0;
  while (room.publish("t", "x", big).ok()) ++accepted;  // fills the ring up to the cursor
  ASSERT_GT(accepted, 10);
  while (s.next(0ns).has_event()) {}  // read everything, commit nothing
  EXPECT_FALSE(room.publish("t", "x", big).ok());  // still gated: nothing was committed
  s.commit(s.position());
  EXPECT_TRUE(room.publish("t", "x", big).ok());
}

TEST(Ring, TimeoutWhenNothingArrives) {
  TestBus bus("timeout");
  Room room = bus->room("r");
  for (WaitStrategy w : {WaitStrategy::spin, WaitStrategy::yield, WaitStrategy::block}) {
    Subscription s = room.subscribe({.wait = w});
    EXPECT_EQ(s.next(5ms).status, ReadStatus::timeout);
  }
}

TEST(Ring, BlockedReaderIsWokenAndPublisherSkipsSyscallsWhenNobodyWaits) {
  TestBus bus("wake");
  Room room = bus->room("r");
  shm::Ring& ring = ring_of(room);
  for (int i = 0; i < 100; ++i) room.publish("t", "x", "no waiter");
  EXPECT_EQ(room.info().counters.wakeups, 0u);
  Subscription s = room.subscribe({.wait = WaitStrategy::block});
  std::thread publisher([&] {
    // Publish once the reader sleeps on the futex, so the wake path is what delivers it.
    for (int i = 0; i < 5000 && ring.control().waiters.load() == 0; ++i)
      std::this_thread::sleep_for(1ms);
    room.publish("t", "x", "wake up");
  });
  ReadResult r = s.next(10s);
  publisher.join();
  ASSERT_TRUE(r.has_event());
  EXPECT_EQ(r.event.payload, "wake up");
  EXPECT_GE(room.info().counters.wakeups, 1u);
}

// A producer presumed dead (here: its owner stamp is forged to a dead pid while it sleeps
// after claiming) must learn its claim was aborted and retry, never corrupt the ring.
TEST(Ring, ProducerDeclaredDeadRetriesInsteadOfOverwriting) {
  TestBus bus("resurrect");
  Room room = bus->room("r", {.stall_timeout = 10ms});
  shm::Ring& ring = ring_of(room);
  Subscription sub = room.subscribe({.from = StartFrom::earliest});
  const std::uint64_t pos = ring.tail();
  shm::set_failpoints("after_claim@1=sleep:300");
  std::thread slow([&] { EXPECT_TRUE(room.publish("t", "slow", "late").ok()); });
  // Wait (bounded) until the claim is stamped, then forge a dead owner and repair.
  auto* header = reinterpret_cast<shm::RecordHeader*>(const_cast<std::byte*>(ring.at(pos)));
  for (int i = 0; i < 2000 && header->owner.load() == 0; ++i) std::this_thread::sleep_for(100us);
  header->owner.store(shm::pack_owner({0x7ffffff0u, 1}));
  EXPECT_TRUE(ring.repair(pos));
  slow.join();
  shm::set_failpoints("");
  auto info = room.info();
  EXPECT_EQ(info.counters.dead_claims_padded, 1u);
  EXPECT_EQ(info.counters.aborted_claims, 1u);
  ReadResult r = sub.next(1s);
  ASSERT_TRUE(r.has_event());
  EXPECT_EQ(r.event.payload, "late");
  EXPECT_GT(r.event.id, pos);  // republished after the padded claim
}

// ---- history after many laps (issue 9, defect 2) ------------------------------------------

namespace {

// type "E", agent "a", 14-byte payload: a 48-byte record (32-byte header) in a 64 KiB ring.
constexpr std::uint64_t kRecord = shm::align8(shm::kRecordHeaderBytes + 1 + 1 + 14);
static_assert(kRecord == 48);
constexpr std::uint64_t kRing = 64 << 10;

std::string numbered(int i) {
  std::string s = std::to_string(i);
  return std::string(14 - s.size(), '0') + s;
}

// Ids of consecutive intact records differ by one record, or by a wrap padding.
void expect_contiguous(const std::vector<Event>& events) {
  for (std::size_t i = 1; i < events.size(); ++i) {
    const std::uint64_t step = events[i].id - events[i - 1].id;
    EXPECT_TRUE(step == kRecord || (step > kRecord && step < 2 * kRecord))
        << "gap of " << step << " bytes before event " << events[i].id;
  }
}

}  // namespace

TEST(RingHistory, AWrappedRingKeepsEveryIntactRecord) {
  TestBus bus("history");
  Room room = bus->room("r", {.ring_bytes = kRing, .max_record_bytes = 1024});
  const int total = 1365 * 7 + 123;  // many laps, ending mid-lap
  EventId last = 0;
  for (int i = 0; i < total; ++i) last = room.publish("E", "a", numbered(i)).id;

  // Everything but the record or two the last claims overwrote is still there.
  const std::uint64_t at_least = kRing / kRecord - 2;
  const RoomInfo info = room.info();
  EXPECT_GE(info.tail - info.oldest, at_least * kRecord) << "oldest " << info.oldest << " tail " << info.tail;
  EXPECT_LE(info.tail - info.oldest, kRing);

  const std::vector<Event> all = room.recent(100000);
  ASSERT_GE(all.size(), at_least);
  EXPECT_EQ(all.back().id, last);
  EXPECT_EQ(all.back().payload, numbered(total - 1));
  EXPECT_EQ(all.front().id, info.oldest);
  expect_contiguous(all);
  ASSERT_EQ(room.recent(20).size(), 20u);
  EXPECT_EQ(room.recent(20).front().payload, numbered(total - 20));

  // --from earliest delivers the same records.
  Subscription sub = room.subscribe({.from = StartFrom::earliest});
  std::size_t delivered = 0;
  for (ReadResult r = sub.next(0ns); r.status != ReadStatus::timeout; r = sub.next(0ns)) {
    ASSERT_EQ(r.status, ReadStatus::event);
    ASSERT_LT(delivered, all.size());
    EXPECT_EQ(r.event.id, all[delivered].id);
    ++delivered;
  }
  EXPECT_EQ(delivered, all.size());
}

TEST(RingHistory, EarliestReaderGetsTheIntactRecordsWhileAnotherProcessKeepsWrapping) {
  TestBus bus("history-live");
  Room room = bus->room("r", {.ring_bytes = kRing, .max_record_bytes = 1024});
  for (int i = 0; i < 1170 * 5; ++i) room.publish("E", "a", numbered(i));

  const RoomInfo before = room.info();
  const std::uint64_t intact = (before.tail - before.oldest) / kRecord;
  constexpr int kLivePosts = 3000;  // more than two further laps
  const pid_t writer = ::fork();
  ASSERT_GE(writer, 0);
  if (writer == 0) {
    // Load, not synchronisation: a steady writer that keeps the ring wrapping.
    Room mine = Bus::open({.name = bus.name(), .create = false}).room("r", {.create = false});
    for (int i = 0; i < kLivePosts; ++i) {
      if (!mine.publish("E", "a", numbered(100000 + i)).ok()) ::_exit(2);
      std::this_thread::sleep_for(20us);
    }
    ::_exit(0);
  }

  // Read from the oldest up to the tail as it was before the writer started.
  Subscription sub = room.subscribe({.from = StartFrom::earliest});
  std::uint64_t received = 0, overruns = 0, lost = 0;
  while (sub.position() < before.tail) {
    const ReadResult r = sub.next(2s);
    ASSERT_NE(r.status, ReadStatus::timeout);
    if (r.status == ReadStatus::overrun) {
      ++overruns;
      lost += r.missed;
      continue;
    }
    ASSERT_EQ(r.status, ReadStatus::event);
    if (r.event.id < before.tail) ++received;
  }
  const std::uint64_t published_meanwhile = (room.info().tail - before.tail) / kRecord;

  int status = 0;
  ASSERT_EQ(::waitpid(writer, &status, 0), writer);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);

  // Each post overwrites about one record; a lapped reader resumes a sixteenth of the ring past
  // the oldest. Anything beyond that is history lost for nothing.
  const std::uint64_t allowance = published_meanwhile + 2 + (overruns ? kRing / 16 / kRecord + 2 : 0) * overruns;
  EXPECT_GE(received + allowance, intact)
      << "received " << received << " of " << intact << " intact records; " << published_meanwhile
      << " posted meanwhile, " << overruns << " overruns (" << lost << " missed)";
  EXPECT_GE(room.info().tail - room.info().oldest, (kRing / kRecord - 2) * kRecord);
}

TEST(Ring, CoarseTimestampsAreWithinAKernelTick) {
  TestBus bus("coarse");
  Room room = bus->room("r", {.coarse_timestamps = true});
  const auto before = now_ns();
  const PublishResult r = room.publish("t", "a", "x");
  const auto after = now_ns();
  ASSERT_TRUE(r.ok());
  const std::int64_t ts = room.recent(1).at(0).ts_ns;
  EXPECT_LE(ts, after);
  EXPECT_GE(ts, before - 50'000'000) << "more than 50 ms behind the precise clock";
}
