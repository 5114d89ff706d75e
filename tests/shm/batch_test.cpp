// Room::publish_batch (one claim, one commit for many events) and the batched read side,
// Subscription::poll / next_batch (one cursor store per batch).
#include "shm/failpoint.hpp"
#include "support/ring_of.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <random>
#include <sys/wait.h>
#include <unistd.h>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::TestBus;
using agentbus::test::ring_of;

namespace {

std::vector<std::string> numbered(int from, int count, std::size_t pad = 0) {
  std::vector<std::string> v;
  for (int i = from; i < from + count; ++i) v.push_back(std::to_string(i) + std::string(pad, '.'));
  return v;
}

std::vector<EventIn> events_of(const std::vector<std::string>& payloads) {
  std::vector<EventIn> v;
  for (const std::string& p : payloads) v.push_back({"b", "batcher", p});
  return v;
}

EventId cursor_of(Room& room, const std::string& name) {
  for (const ReaderInfo& r : room.info().readers)
    if (r.name == name) return r.cursor;
  ADD_FAILURE() << "no reader " << name;
  return 0;
}

}  // namespace

TEST(Batch, EventsComeBackInOrderUnderTheIdsReturned) {
  TestBus bus("batch-ids");
  Room room = bus->room("r");
  Subscription sub = room.subscribe({.from = StartFrom::earliest});
  const auto payloads = numbered(0, 32, 40);
  std::vector<EventId> ids(payloads.size());
  const PublishResult r = room.publish_batch(events_of(payloads), ids);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.id, ids[0]);
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    ReadResult got = sub.next(1s);
    ASSERT_TRUE(got.has_event()) << i;
    EXPECT_EQ(got.event.id, ids[i]);
    EXPECT_EQ(got.event.payload, payloads[i]);
    EXPECT_EQ(got.event.type, "b");
    EXPECT_EQ(got.event.ts_ns, room.recent(1)[0].ts_ns) << "one timestamp per batch";
  }
  EXPECT_EQ(sub.next(0ns).status, ReadStatus::timeout);
  EXPECT_EQ(ring_of(room).check_control(), "");
}

TEST(Batch, BatchesThatWrapTheRingArriveWholeAndInOrder) {
  TestBus bus("batch-wrap");
  Room room = bus->room("r", {.ring_bytes = 64 << 10});
  Subscription sub = room.subscribe({.from = StartFrom::earliest, .durable_name = "check"});
  std::mt19937 rng(11);
  int next_published = 0, next_read = 0;
  for (int round = 0; round < 200; ++round) {
    // 1..40 events of up to ~560 B: batches of up to half the ring, the most one may take.
    const int count = 1 + static_cast<int>(rng() % 40);
    const auto payloads = numbered(next_published, count, rng() % 500);
    ASSERT_TRUE(room.publish_batch(events_of(payloads)).ok()) << "round " << round;
    next_published += count;
    const PollResult polled = sub.poll(
        [&](const EventView& e) {
          EXPECT_EQ(std::stoi(std::string(e.payload)), next_read) << "round " << round;
          ++next_read;
        },
        1000, 1s);
    EXPECT_FALSE(polled.overrun);
    EXPECT_EQ(polled.missed, 0u);
    ASSERT_EQ(next_read, next_published) << "round " << round;
  }
  const RoomCounters c = room.info().counters;
  EXPECT_GT(c.wrap_paddings, 5u) << "the batches crossed the buffer end";
  EXPECT_EQ(ring_of(room).check_control(), "");
}

TEST(Batch, ABatchLargerThanHalfTheRingIsRefusedAndNothingIsPublished) {
  TestBus bus("batch-big");
  Room room = bus->room("r", {.ring_bytes = 64 << 10});
  ASSERT_TRUE(room.publish("t", "a", "before").ok());
  const EventId tail = room.info().tail;
  const auto payloads = numbered(0, 80, 1000);  // ~80 KiB of records
  try {
    (void)room.publish_batch(events_of(payloads));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::too_large);
    EXPECT_NE(std::string(e.what()).find("more than half the room's ring (32768 of 65536 bytes)"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("smaller batches"), std::string::npos) << e.what();
  }
  EXPECT_EQ(room.info().tail, tail);
}

TEST(Batch, ABadEventPublishesNoneOfTheBatch) {
  TestBus bus("batch-bad");
  Room room = bus->room("r");
  const std::vector<std::string> payloads = numbered(0, 5);  // the events view into it
  std::vector<EventIn> events = events_of(payloads);
  events[3].type = "";
  EXPECT_THROW((void)room.publish_batch(events), Error);
  events[3].type = "b";
  const std::string long_agent(kMaxAgentBytes + 1, 'a');
  events[4].agent = long_agent;
  EXPECT_THROW((void)room.publish_batch(events), Error);
  EXPECT_EQ(room.info().tail, 0u);
  std::vector<EventId> too_few(2);
  events[4].agent = "ok";
  EXPECT_THROW((void)room.publish_batch(events, too_few), Error);
  EXPECT_TRUE(room.recent(10).empty());
}

TEST(Batch, AProducerKilledMidBatchLeavesNoneOfItAndReadersGoOn) {
  for (const char* point : {"before_stamp", "after_claim", "before_commit"}) {
    TestBus bus("batch-kill");
    Room room = bus->room("r", {.stall_timeout = 10ms});
    Subscription sub = room.subscribe({.from = StartFrom::earliest, .durable_name = "d"});
    ASSERT_TRUE(room.publish("t", "a", "before").ok());
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      shm::set_failpoints(std::string(point) + "=kill");  // SIGKILL mid-batch
      (void)room.publish_batch(events_of(numbered(0, 20, 30)));
      ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << point;
    ASSERT_TRUE(room.publish("t", "a", "after").ok());
    std::vector<std::string> got;
    for (int i = 0; i < 10 && got.size() < 2; ++i) {
      ReadResult r = sub.next(200ms);
      if (r.has_event()) got.push_back(std::string(r.event.payload));
    }
    EXPECT_EQ(got, (std::vector<std::string>{"before", "after"})) << point;
    std::vector<std::string> recent;
    for (const Event& e : room.recent(50)) recent.push_back(e.payload);
    EXPECT_EQ(recent, (std::vector<std::string>{"before", "after"})) << point;
  }
}

TEST(Batch, PollStoresTheCursorOnceAfterTheLastHandler) {
  TestBus bus("batch-poll");
  Room room = bus->room("r");
  Subscription sub = room.subscribe({.from = StartFrom::earliest, .durable_name = "poller"});
  std::vector<EventId> ids(10);
  ASSERT_TRUE(room.publish_batch(events_of(numbered(0, 10)), ids).ok());
  const EventId start = cursor_of(room, "poller");
  int seen = 0;
  const PollResult r = sub.poll(
      [&](const EventView& e) {
        EXPECT_EQ(e.id, ids[static_cast<std::size_t>(seen)]);
        EXPECT_EQ(cursor_of(room, "poller"), start) << "cursor moved inside the batch";
        ++seen;
      },
      100);
  EXPECT_EQ(r.events, 10u);
  EXPECT_EQ(cursor_of(room, "poller"), room.info().tail);
  EXPECT_EQ(sub.poll([](const EventView&) {}, 100).events, 0u);

  // The limit is honoured, and the event after it is not lost.
  ASSERT_TRUE(room.publish_batch(events_of(numbered(10, 5))).ok());
  std::vector<std::string> first;
  EXPECT_EQ(sub.poll([&](const EventView& e) { first.emplace_back(e.payload); }, 3).events, 3u);
  EXPECT_EQ(first, numbered(10, 3));
  std::vector<std::string> rest;
  EXPECT_EQ(sub.poll([&](const EventView& e) { rest.emplace_back(e.payload); }, 3).events, 2u);
  EXPECT_EQ(rest, numbered(13, 2));
}

TEST(Batch, NextBatchViewsStayValidUntilTheNextCall) {
  TestBus bus("batch-next");
  Room room = bus->room("r");
  for (bool durable : {false, true}) {
    Subscription sub = room.subscribe({.from = StartFrom::latest, .durable_name = durable ? "nb" : ""});
    const auto payloads = numbered(0, 100);
    ASSERT_TRUE(room.publish_batch(events_of(payloads)).ok());
    std::vector<EventView> views;
    std::vector<std::string> got;
    while (got.size() < payloads.size()) {
      const PollResult r = sub.next_batch(views, 1000, 1s);
      ASSERT_GT(r.events, 0u);
      ASSERT_EQ(views.size(), r.events);
      EXPECT_LE(r.events, 64u);
      for (const EventView& v : views) got.emplace_back(v.payload);  // all still readable
      if (durable) {
        EXPECT_LE(cursor_of(room, "nb"), views.front().id) << "acknowledged only on the next call";
      }
    }
    EXPECT_EQ(got, payloads);
  }
}

TEST(Batch, ImportedEventsKeepTheirOrigins) {
  // What a bridge importing one XREAD reply would publish: events with origins, one a reply.
  TestBus bus("batch-origin");
  Room room = bus->room("r");
  const std::vector<std::string> payloads = numbered(0, 3);  // the events view into it
  std::vector<EventIn> events = events_of(payloads);
  events[0].options.origin = OriginRef{"hostA", 100, {1700000000000, 1}};
  events[1].options.origin = OriginRef{"hostA", 140, {1700000000000, 2}};
  events[1].options.reply_to_origin = OriginRef{"hostB:x", 7, {}};
  events[2].options.reply_to = 0;  // a local reply, no origin
  std::vector<EventId> ids(3);
  ASSERT_TRUE(room.publish_batch(events, ids).ok());
  const std::vector<Event> got = room.recent(3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[0].imported);
  EXPECT_EQ(got[0].origin.host, "hostA");
  EXPECT_EQ(got[0].origin.id, 100u);
  EXPECT_EQ(got[0].origin.stream.seq, 1u);
  EXPECT_EQ(got[1].origin.id, 140u);
  ASSERT_TRUE(got[1].reply_to_origin.has_value());
  EXPECT_EQ(got[1].reply_to_origin->host, "hostB:x");
  EXPECT_FALSE(got[2].imported);
  EXPECT_EQ(got[2].reply_to, std::optional<EventId>(0));
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].id, ids[i]);
    EXPECT_EQ(got[i].payload, std::to_string(i));
  }
}
