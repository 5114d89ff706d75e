// Consumer groups: one member per event, acks and the pending list, autoclaim, recovery from
// members killed with SIGKILL (real worker processes), dead letters, receipts, and the gate
// that keeps producers from overwriting unacked events.
#include "support/child_process.hpp"
#include "support/expect.hpp"
#include "support/run_cli.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::ChildProcess;
using agentbus::test::TestBus;
using agentbus::test::cli;
using agentbus::test::eventually;
using agentbus::test::expect_error;
using agentbus::test::run_cli;
using agentbus::test::helper_path;

namespace {

std::vector<EventId> publish_n(Room& room, int n, const std::string& type = "job", const std::string& prefix = "j") {
  std::vector<EventId> ids;
  for (int i = 0; i < n; ++i) ids.push_back(room.publish(type, "producer", prefix + std::to_string(i)).id);
  return ids;
}

// "<id> <payload>" lines a worker appended, as id -> times seen.
std::map<EventId, int> work_done(const std::vector<std::string>& files) {
  std::map<EventId, int> seen;
  for (const std::string& f : files) {
    std::ifstream in(f);
    for (std::string line; std::getline(in, line);) ++seen[std::stoull(line.substr(0, line.find(' ')))];
  }
  return seen;
}

std::string temp_file(const std::string& tag) {
  return testing::TempDir() + "agentbus-group-" + tag + "-" + std::to_string(::getpid()) + "-" +
         testing::UnitTest::GetInstance()->current_test_info()->name();
}

struct Worker {
  std::unique_ptr<ChildProcess> process;
  std::string outfile;
};

Worker start_worker(const TestBus& bus, const std::string& member, const std::string& failpoints = "",
                    const std::string& crash_on = "") {
  Worker w;
  w.outfile = temp_file(member);
  std::vector<std::string> argv{helper_path(), "group-worker", bus.name(), "r", "g", member, w.outfile};
  if (!crash_on.empty()) argv.push_back(crash_on);
  std::vector<std::string> env;
  if (!failpoints.empty()) env.push_back("AGENTBUS_FAILPOINTS=" + failpoints);
  w.process = std::make_unique<ChildProcess>(argv, env);
  EXPECT_EQ(w.process->read_line(10s), "ready");
  return w;
}

void stop(Worker& w) {
  ::kill(w.process->pid(), SIGTERM);
  EXPECT_EQ(w.process->wait(10s), 0);
}

}  // namespace

TEST(ConsumerGroup, EachEventGoesToOneMemberAndAcksEmptyThePendingList) {
  TestBus bus("group-basic");
  Room room = bus->room("r");
  ConsumerGroup a(room, "g", "a"), b(room, "g", "b");
  const auto ids = publish_n(room, 10);
  std::set<EventId> got;
  for (int i = 0; i < 10; ++i) {
    ConsumerGroup& m = i % 2 == 0 ? a : b;
    const auto d = m.read(1s);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->deliveries, 1u);
    EXPECT_TRUE(got.insert(d->event.id).second) << "delivered twice: " << d->event.id;
    EXPECT_EQ(m.ack(*d), AckResult::acked);
    EXPECT_EQ(m.ack(*d), AckResult::not_pending);
  }
  EXPECT_EQ(got, std::set<EventId>(ids.begin(), ids.end()));
  EXPECT_FALSE(a.read(0ms));
  EXPECT_FALSE(b.read(5ms));
  const GroupInfo info = a.info();
  EXPECT_EQ(info.pending, 0u);
  EXPECT_EQ(info.dispatched, 10u);
  EXPECT_EQ(info.members.size(), 2u);
  // Everything acked: the gate has moved to the end, producers are free.
  EXPECT_EQ(info.floor_id, room.info().tail);
}

TEST(ConsumerGroup, LatestStartSkipsOlderEventsAndEarliestIncludesThem) {
  TestBus bus("group-start");
  Room room = bus->room("r");
  publish_n(room, 3, "job", "old");
  ConsumerGroup late(room, "late", "m");
  ConsumerGroup early(room, "early", "m", {.from = StartFrom::earliest});
  room.publish("job", "p", "new");
  EXPECT_EQ(late.read(1s)->event.payload, "new");
  EXPECT_EQ(early.read(1s)->event.payload, "old0");
}

TEST(ConsumerGroup, InterestsFilterByTypeAndOthersAreAckedUnseen) {
  TestBus bus("group-interest");
  Room room = bus->room("r");
  ConsumerGroup g(room, "g", "m", {.interests = {"review", "fix"}});
  room.publish("chat", "p", "ignored");
  room.publish("review", "p", "r1");
  room.publish("status", "p", "ignored");
  room.publish("fix", "p", "f1");
  auto d1 = g.read(1s), d2 = g.read(1s);
  ASSERT_TRUE(d1 && d2);
  EXPECT_EQ(d1->event.payload, "r1");
  EXPECT_EQ(d2->event.payload, "f1");
  EXPECT_FALSE(g.read(0ms));
  EXPECT_EQ(g.info().counters.filtered, 2u);
  EXPECT_EQ(g.pending().size(), 2u);
  expect_error([&] { ConsumerGroup(room, "bad", "m", {.interests = {}}); }, Errc::invalid_argument, "interest");
  expect_error([&] { ConsumerGroup(room, "bad", "m", {.interests = {"a,b"}}); }, Errc::invalid_argument, "a,b");
}

TEST(ConsumerGroup, PendingListShowsOwnerTimeAndCountAndAutoclaimTakesIdleEvents) {
  TestBus bus("group-pending");
  Room room = bus->room("r");
  ConsumerGroup a(room, "g", "a"), b(room, "g", "b");
  const auto ids = publish_n(room, 2);
  const auto d = a.read(1s);
  ASSERT_TRUE(d);
  const auto pending = b.pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].id, ids[0]);
  EXPECT_EQ(pending[0].owner, "a");
  EXPECT_TRUE(pending[0].owner_alive);
  EXPECT_EQ(pending[0].type, "job");
  EXPECT_EQ(pending[0].deliveries, 1u);
  EXPECT_GT(pending[0].delivered_ns, 0);

  // Not idle for an hour: nothing to take. Idle for 0 ms: b takes it (XAUTOCLAIM).
  EXPECT_TRUE(b.autoclaim(1h, 10).empty());
  const auto taken = b.autoclaim(0ms, 10);
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].event.id, ids[0]);
  EXPECT_EQ(taken[0].deliveries, 2u);
  EXPECT_EQ(b.pending()[0].owner, "b");
  // a's ack still settles it: any member may ack, as in Redis.
  EXPECT_EQ(a.ack(*d), AckResult::acked);
  EXPECT_EQ(b.ack(taken[0]), AckResult::not_pending);
  // Ack by id, as the CLI does.
  const auto d2 = b.read(1s);
  ASSERT_TRUE(d2);
  EXPECT_EQ(a.ack(d2->event.id), AckResult::acked);
  EXPECT_EQ(a.ack(d2->event.id), AckResult::not_pending);
  EXPECT_TRUE(b.pending().empty());
}

TEST(ConsumerGroup, PoisonEventIsDeadLetteredAfterMaxDeliveries) {
  TestBus bus("group-poison");
  Room room = bus->room("r");
  ConsumerGroup a(room, "g", "a", {.interests = {"job"}, .max_deliveries = 3});
  ConsumerGroup b(room, "g", "b");
  const EventId poison = room.publish("job", "p", "poison").id;
  ASSERT_TRUE(a.read(1s));
  EXPECT_EQ(b.autoclaim(0ms, 1).at(0).deliveries, 2u);
  EXPECT_EQ(a.autoclaim(0ms, 1).at(0).deliveries, 3u);
  EXPECT_TRUE(b.autoclaim(0ms, 1).empty());  // a 4th delivery: dead-lettered instead
  EXPECT_TRUE(a.pending().empty());
  EXPECT_EQ(a.info().counters.dead_lettered, 1u);
  const auto events = room.recent(10);
  const auto letter = std::find_if(events.begin(), events.end(),
                                   [](const Event& e) { return e.type == "ENGINE_RUNTIME_ERROR"; });
  ASSERT_NE(letter, events.end());
  EXPECT_EQ(letter->reply_to, poison);
  EXPECT_NE(letter->payload.find("\"deliveries\":3"), std::string::npos) << letter->payload;
  EXPECT_NE(letter->payload.find("\"group\":\"g\""), std::string::npos) << letter->payload;
}

TEST(ConsumerGroup, WorkThatThrowsIsReportedAndAcked) {
  TestBus bus("group-throw");
  Room room = bus->room("r");
  ConsumerGroup g(room, "g", "w", {.interests = {"job"}});
  const EventId id = room.publish("job", "p", "x").id;
  EXPECT_TRUE(g.process(1s, [](const Event&) { throw std::runtime_error("disk \"full\""); }));
  EXPECT_TRUE(g.pending().empty());
  const auto events = room.recent(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "ENGINE_RUNTIME_ERROR");
  EXPECT_EQ(events[0].reply_to, id);
  EXPECT_EQ(events[0].payload, R"({"error":"disk \"full\""})");
}

TEST(ConsumerGroup, GroupGatesProducersUntilItAcks) {
  TestBus bus("group-gate");
  Room room = bus->room("r", {.ring_bytes = 64 << 10, .publish_timeout = 50ms});
  ConsumerGroup g(room, "g", "m");
  const std::string payload(1000, 'x');
  int published = 0;
  while (room.publish("job", "p", payload).ok()) ++published;
  EXPECT_GT(published, 30);
  EXPECT_LT(published, 70);  // a 64 KiB ring holds about 60 such events
  // Reading is not enough: only acks move the floor.
  auto first = g.read(1s);
  ASSERT_TRUE(first);
  EXPECT_FALSE(room.publish("job", "p", payload).ok());
  // Two acks free room for one more record even if it needs padding at the wrap.
  EXPECT_EQ(g.ack(*first), AckResult::acked);
  auto second = g.read(1s);
  ASSERT_TRUE(second);
  EXPECT_EQ(g.ack(*second), AckResult::acked);
  EXPECT_TRUE(room.publish("job", "p", payload).ok());
  // Every event published is delivered, none overwritten.
  int delivered = 2;
  std::optional<Delivery> d;
  while ((d = g.read(0ms))) {
    ++delivered;
    g.ack(*d);
  }
  EXPECT_EQ(delivered, published + 1);
}

TEST(ConsumerGroup, FullPendingListStopsNewDeliveriesUntilAcked) {
  TestBus bus("group-full");
  Room room = bus->room("r");
  ConsumerGroup g(room, "g", "m", {.pending_capacity = 16});
  publish_n(room, 20);
  std::vector<Delivery> held;
  while (auto d = g.read(0ms)) held.push_back(*d);
  EXPECT_EQ(held.size(), 16u);
  g.ack(held[1]);  // not the oldest: the floor cannot move
  EXPECT_FALSE(g.read(0ms));
  g.ack(held[0]);
  EXPECT_TRUE(g.read(0ms));
  EXPECT_TRUE(g.read(0ms));
  EXPECT_FALSE(g.read(0ms));
}

TEST(ConsumerGroup, PositionSurvivesAllMembersLeaving) {
  TestBus bus("group-survive");
  Room room = bus->room("r");
  {
    ConsumerGroup g(room, "g", "m");
    publish_n(room, 3);
    auto d = g.read(1s);
    g.ack(*d);
  }
  ConsumerGroup again(room, "g", "other", {.create = false});
  const auto d = again.read(1s);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->event.payload, "j1");
  expect_error([&] { ConsumerGroup(room, "nope", "m", {.create = false}); }, Errc::not_found, "nope");
}

TEST(ConsumerGroup, LeavingHandsPendingEventsToTheNextReader) {
  TestBus bus("group-leave");
  Room room = bus->room("r");
  ConsumerGroup a(room, "g", "a"), b(room, "g", "b");
  const auto ids = publish_n(room, 1);
  ASSERT_TRUE(a.read(1s));
  EXPECT_FALSE(b.read(0ms));
  a.leave();
  const auto d = b.read(1s);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->event.id, ids[0]);
  EXPECT_EQ(d->deliveries, 2u);
  EXPECT_EQ(b.info().counters.redelivered, 1u);
}

TEST(ConsumerGroup, RejoiningFromTheSameProcessKeepsPendingEvents) {
  TestBus bus("group-rejoin");
  Room room = bus->room("r");
  const auto ids = [&] {
    ConsumerGroup a(room, "g", "a");
    const auto published = publish_n(room, 2);
    EXPECT_TRUE(a.read(1s));
    return published;
  }();
  // Same name, same owning process (as successive CLI calls of one session): the pending
  // event is still being worked on, so the next read hands out the next event.
  ConsumerGroup a(room, "g", "a");
  const auto d = a.read(1s);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->event.id, ids[1]);
  EXPECT_EQ(a.pending().size(), 2u);
}

TEST(ConsumerGroup, NamesAreCheckedAndALiveMemberNameIsNotShared) {
  TestBus bus("group-names");
  Room room = bus->room("r");
  expect_error([&] { ConsumerGroup(room, "bad/name", "m"); }, Errc::bad_name, "group name 'bad/name'");
  expect_error([&] { ConsumerGroup(room, "g", "a b"); }, Errc::bad_name, "member name 'a b'");
  ConsumerGroup observer(room, "g", "");
  expect_error([&] { (void)observer.read(0ms); }, Errc::invalid_argument, "observer");
  expect_error([&] { ConsumerGroup(room, "g", std::string(65, 'm')); }, Errc::bad_name, "64");
  expect_error([&] { ConsumerGroup(room, "g", "m", {.max_deliveries = 0}); }, Errc::invalid_argument, "max_deliveries");
  // A member held by another live process (a session that a CLI call joined for).
  ChildProcess session({"/bin/sleep", "30"});
  ConsumerGroup(room, "g", "w", {.owner_pid = session.pid()});
  expect_error([&] { ConsumerGroup(room, "g", "w"); }, Errc::conflict,
               "belongs to the session of pid " + std::to_string(session.pid()));
  // One handle per member at a time, even within one process.
  ConsumerGroup x(room, "g", "x");
  expect_error([&] { ConsumerGroup(room, "g", "x"); }, Errc::conflict, "is open in pid " + std::to_string(::getpid()));
  // Consumer groups' gates are not for subscriptions.
  expect_error([&] { (void)room.subscribe({.durable_name = "group.g"}); }, Errc::invalid_argument, "consumer groups");
  // Once that session is gone, the name is free again and its pending events are inherited.
  ::kill(session.pid(), SIGKILL);
  session.wait(5s);
  EXPECT_NO_THROW(ConsumerGroup(room, "g", "w"));
}

TEST(ConsumerGroup, ThreadsAsMembersTakeEveryEventExactlyOnce) {
  TestBus bus("group-threads");
  Room room = bus->room("r", {.ring_bytes = 256 << 10});
  constexpr int kEvents = 20000, kMembers = 3;
  ConsumerGroup observer(room, "g", "", {.pending_capacity = 256});
  std::vector<std::atomic<int>> seen(kEvents);
  std::atomic<int> consumed{0};
  std::vector<std::thread> members;
  for (int m = 0; m < kMembers; ++m)
    members.emplace_back([&, m] {
      ConsumerGroup g(room, "g", "m" + std::to_string(m));
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      while (consumed.load() < kEvents && std::chrono::steady_clock::now() < deadline) {
        const auto d = g.read(5ms);
        if (!d) continue;
        seen[std::stoi(d->event.payload.substr(1))].fetch_add(1);
        g.ack(*d);
        consumed.fetch_add(1);
      }
    });
  for (int i = 0; i < kEvents; ++i)  // the ring is small: the group's floor gates this producer
    ASSERT_TRUE(room.publish("job", "p", "j" + std::to_string(i)).ok()) << i;
  for (auto& t : members) t.join();
  for (int i = 0; i < kEvents; ++i) EXPECT_EQ(seen[i].load(), 1) << "event " << i;
  EXPECT_TRUE(observer.pending().empty());
}

// ---- real processes ------------------------------------------------------------------------

TEST(ConsumerGroupProcesses, TwoWorkersShareTheWorkExactlyOnceWithoutCrashes) {
  TestBus bus("group-two");
  Room room = bus->room("r", {.ring_bytes = 1 << 20});
  ConsumerGroup observer(room, "g", "observer", {.interests = {"job"}});
  Worker w1 = start_worker(bus, "w1"), w2 = start_worker(bus, "w2");
  const auto ids = publish_n(room, 2000);
  ASSERT_TRUE(eventually([&] { return work_done({w1.outfile, w2.outfile}).size() == ids.size(); }, 30s));
  stop(w1);
  stop(w2);
  const auto seen = work_done({w1.outfile, w2.outfile});
  for (const EventId id : ids) EXPECT_EQ(seen.count(id) ? seen.at(id) : 0, 1) << id;
  EXPECT_TRUE(observer.pending().empty());
  std::remove(w1.outfile.c_str());
  std::remove(w2.outfile.c_str());
}

TEST(ConsumerGroupProcesses, MemberKilledMidWorkHasItsEventRedeliveredToAnother) {
  TestBus bus("group-kill");
  Room room = bus->room("r");
  ConsumerGroup observer(room, "g", "observer", {.interests = {"job"}});
  // w1 is SIGKILLed on its 3rd event, after the work and before its receipt or ack.
  Worker w1 = start_worker(bus, "w1", "group_before_receipt@3=kill");
  const auto ids = publish_n(room, 3);
  EXPECT_EQ(w1.process->wait(10s), 128 + SIGKILL);
  ASSERT_EQ(observer.pending().size(), 1u);
  EXPECT_EQ(observer.pending()[0].owner, "w1");
  EXPECT_FALSE(observer.pending()[0].owner_alive);
  Worker w2 = start_worker(bus, "w2");
  const auto more = publish_n(room, 5, "job", "k");
  ASSERT_TRUE(eventually([&] { return work_done({w1.outfile, w2.outfile}).size() == 8u && observer.pending().empty(); }, 20s));
  stop(w2);
  // Nothing lost; the interrupted event ran twice (at least once), everything else once.
  const auto seen = work_done({w1.outfile, w2.outfile});
  EXPECT_EQ(seen.at(ids[2]), 2);
  for (const EventId id : {ids[0], ids[1], more[0], more[4]}) EXPECT_EQ(seen.at(id), 1);
  EXPECT_EQ(observer.info().counters.redelivered, 1u);
  std::remove(w1.outfile.c_str());
  std::remove(w2.outfile.c_str());
}

TEST(ConsumerGroupProcesses, WorkerKilledAfterItsReceiptIsNotRunAgain) {
  TestBus bus("group-receipt");
  Room room = bus->room("r");
  ConsumerGroup observer(room, "g", "observer", {.interests = {"job"}});
  // Killed after recording the receipt for its 2nd event, before the ack.
  Worker w1 = start_worker(bus, "w1", "group_before_ack@2=kill");
  const auto ids = publish_n(room, 2);
  EXPECT_EQ(w1.process->wait(10s), 128 + SIGKILL);
  ASSERT_EQ(observer.pending().size(), 1u);
  EXPECT_TRUE(observer.pending()[0].receipt);
  Worker w2 = start_worker(bus, "w2");
  const auto more = publish_n(room, 3, "job", "k");
  ASSERT_TRUE(eventually([&] { return work_done({w1.outfile, w2.outfile}).size() == 5u && observer.pending().empty(); }, 20s));
  stop(w2);
  const auto seen = work_done({w1.outfile, w2.outfile});
  for (const EventId id : {ids[0], ids[1], more[0], more[1], more[2]}) EXPECT_EQ(seen.at(id), 1) << id;
  EXPECT_EQ(observer.info().counters.receipts_honoured, 1u);
  std::remove(w1.outfile.c_str());
  std::remove(w2.outfile.c_str());
}

TEST(ConsumerGroupProcesses, ReclaimerKilledMidwayIsFinishedByTheNextProcessOfItsName) {
  TestBus bus("group-midreclaim");
  Room room = bus->room("r");
  ConsumerGroup observer(room, "g", "", {.interests = {"job"}});
  Worker w1 = start_worker(bus, "w1", "group_before_receipt=kill");
  const EventId id = room.publish("job", "p", "j0").id;
  EXPECT_EQ(w1.process->wait(10s), 128 + SIGKILL);
  // w2 takes over w1's event and is killed while holding it half taken over.
  Worker w2 = start_worker(bus, "w2", "group_mid_reclaim=kill");
  EXPECT_EQ(w2.process->wait(10s), 128 + SIGKILL);
  ASSERT_EQ(observer.pending().size(), 1u);
  EXPECT_FALSE(observer.pending()[0].owner_alive);
  // A new process under the same name finishes it: nothing is stuck.
  Worker again = start_worker(bus, "w2");
  ASSERT_TRUE(eventually([&] { return observer.pending().empty(); }, 10s));
  stop(again);
  // w1's run, then the new w2's (which writes to the old w2's file: the same name).
  ASSERT_EQ(w2.outfile, again.outfile);
  EXPECT_EQ(work_done({w1.outfile, again.outfile}).at(id), 2);
  for (const std::string& f : {w1.outfile, again.outfile}) std::remove(f.c_str());
}

TEST(ConsumerGroupProcesses, CliReadKilledMidDispatchDoesNotHoldUpOthers) {
  TestBus bus("group-middispatch");
  Room room = bus->room("r");
  ConsumerGroup other(room, "g", "other");
  const EventId id = room.publish("job", "p", "j0").id;
  ChildProcess session({"/bin/sleep", "30"});
  ChildProcess read({cli(), "--bus", bus.name(), "--room", "r", "--session-pid", std::to_string(session.pid()),
                     "group", "read", "g", "--member", "c1"},
                    {"AGENTBUS_FAILPOINTS=group_mid_dispatch=kill"});
  EXPECT_EQ(read.wait(10s), 128 + SIGKILL);
  // c1's session lives on, but the process handing the event out is gone: another member
  // adopts the half-done delivery at once.
  const auto d = other.read(2s);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->event.id, id);
  EXPECT_EQ(d->deliveries, 1u);
}

TEST(ConsumerGroupProcesses, WorkersKilledAtRandomLoseNothing) {
  TestBus bus("group-chaos");
  Room room = bus->room("r", {.ring_bytes = 256 << 10, .publish_timeout = 10s});
  ConsumerGroup observer(room, "g", "", {.interests = {"job"}, .max_deliveries = 1000});
  constexpr int kEvents = 3000, kKills = 6;
  std::vector<Worker> workers;
  std::vector<std::string> files;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(start_worker(bus, "w" + std::to_string(i)));
    files.push_back(workers.back().outfile);
  }
  // Paced, so that the kills below land while work is in flight (pacing, not synchronisation).
  std::jthread producer([&] {
    for (int i = 0; i < kEvents; ++i) {
      ASSERT_TRUE(room.publish("job", "p", "j" + std::to_string(i)).ok());
      std::this_thread::sleep_for(500us);
    }
  });
  // SIGKILL a worker whenever some new work has been done, and start a replacement.
  int killed = 0;
  std::size_t done_at_last_kill = 0;
  while (killed < kKills) {
    ASSERT_TRUE(eventually([&] { return work_done(files).size() >= done_at_last_kill + 100; }, 20s));
    done_at_last_kill = work_done(files).size();
    Worker& victim = workers[killed % 2];
    ::kill(victim.process->pid(), SIGKILL);
    EXPECT_EQ(victim.process->wait(5s), 128 + SIGKILL);
    ++killed;
    victim = start_worker(bus, "w" + std::to_string(killed % 2) + "-" + std::to_string(killed));
    files.push_back(victim.outfile);
  }
  producer.join();
  ASSERT_TRUE(eventually([&] { return work_done(files).size() == std::size_t(kEvents) && observer.pending().empty(); }, 30s));
  for (Worker& w : workers) stop(w);
  // At least once: every event ran; only an event interrupted by a kill ran twice.
  std::size_t twice = 0;
  for (const auto& [id, n] : work_done(files)) {
    EXPECT_LE(n, 2) << id;
    twice += n > 1;
  }
  EXPECT_LE(twice, std::size_t(kKills));
  for (const std::string& f : files) std::remove(f.c_str());
}

TEST(ConsumerGroupProcesses, PoisonEventThatKillsEveryWorkerIsDeadLettered) {
  TestBus bus("group-poison-procs");
  Room room = bus->room("r");
  ConsumerGroup observer(room, "g", "observer", {.interests = {"job"}, .max_deliveries = 3});
  room.publish("job", "p", "before");
  const EventId poison = room.publish("job", "p", "poison").id;
  room.publish("job", "p", "after");
  // Each worker dies (SIGKILL) when handed the poison event; the 4th delivery is a dead letter.
  std::vector<std::string> files;
  for (int i = 0; i < 3; ++i) {
    Worker w = start_worker(bus, "w" + std::to_string(i), "", "poison");
    EXPECT_EQ(w.process->wait(20s), 128 + SIGKILL) << "worker " << i;
    files.push_back(w.outfile);
  }
  Worker last = start_worker(bus, "last", "", "poison");
  files.push_back(last.outfile);
  ASSERT_TRUE(eventually([&] { return observer.pending().empty() && work_done(files).size() == 2u; }, 20s));
  stop(last);
  const auto seen = work_done(files);
  EXPECT_EQ(seen.count(poison), 0u);
  EXPECT_EQ(observer.info().counters.dead_lettered, 1u);
  const auto events = room.recent(20);
  EXPECT_EQ(std::count_if(events.begin(), events.end(),
                          [&](const Event& e) { return e.type == "ENGINE_RUNTIME_ERROR" && e.reply_to == poison; }),
            1);
  for (const std::string& f : files) std::remove(f.c_str());
}

// ---- the CLI -------------------------------------------------------------------------------

TEST(ConsumerGroupCli, ReadAckPendingReceiptAndRecoveryFromAnEndedSession) {
  TestBus bus("group-cli");
  Room room = bus->room("r");
  ChildProcess s1({"/bin/sleep", "30"}), s2({"/bin/sleep", "30"});
  const std::string p1 = std::to_string(s1.pid()), p2 = std::to_string(s2.pid());
  std::string out;
  // The first read creates the group (latest): nothing yet.
  ASSERT_EQ(run_cli(bus, {"--session-pid", p1, "group", "read", "builds", "--member", "w1", "--interest", "build"}, &out), 0);
  EXPECT_EQ(out, "");
  const EventId b1 = room.publish("build", "ci", "one").id;
  room.publish("chat", "ci", "not for the group");
  const EventId b2 = room.publish("build", "ci", "two").id;
  ASSERT_EQ(run_cli(bus, {"--session-pid", p1, "group", "read", "builds", "--member", "w1", "--json"}, &out), 0);
  EXPECT_NE(out.find("\"id\":" + std::to_string(b1)), std::string::npos) << out;
  EXPECT_NE(out.find("\"deliveries\":1"), std::string::npos) << out;
  // w1's session ends with b1 pending: w2's next read gets it first, as a redelivery.
  ::kill(s1.pid(), SIGKILL);
  s1.wait(5s);
  ASSERT_EQ(run_cli(bus, {"--session-pid", p2, "group", "read", "builds", "--member", "w2", "-n", "5", "--json"}, &out), 0);
  const auto first = out.substr(0, out.find('\n'));
  EXPECT_NE(first.find("\"id\":" + std::to_string(b1)), std::string::npos) << out;
  EXPECT_NE(first.find("\"deliveries\":2"), std::string::npos) << out;
  EXPECT_NE(out.find("\"id\":" + std::to_string(b2)), std::string::npos) << out;
  ASSERT_EQ(run_cli(bus, {"group", "pending", "builds", "--json"}, &out), 0);
  EXPECT_NE(out.find("\"owner\":\"w2\""), std::string::npos) << out;
  // Receipts only for the member holding the event.
  EXPECT_EQ(run_cli(bus, {"--session-pid", p2, "group", "receipt", "builds", std::to_string(b1), "--member", "w1"}), 3);
  EXPECT_EQ(run_cli(bus, {"--session-pid", p1, "group", "read", "builds", "--member", "w1"}), 1) << "dead session";
  EXPECT_EQ(run_cli(bus, {"--session-pid", p2, "group", "receipt", "builds", std::to_string(b1), "--member", "w2"}), 0);
  EXPECT_EQ(run_cli(bus, {"group", "ack", "builds", std::to_string(b1), std::to_string(b2)}), 0);
  EXPECT_EQ(run_cli(bus, {"group", "ack", "builds", std::to_string(b1)}), 4);
  ASSERT_EQ(run_cli(bus, {"group", "info", "builds", "--json"}, &out), 0);
  EXPECT_NE(out.find("\"pending\":0"), std::string::npos) << out;
  EXPECT_NE(out.find("\"filtered\":1"), std::string::npos) << out;
  EXPECT_EQ(run_cli(bus, {"group", "info", "nope"}), 4);
  EXPECT_EQ(run_cli(bus, {"group", "read", "builds", "--member", "bad/name"}), 2);
}

// A group delivers an imported event with its origin, and a local one with the bus's.
TEST(ConsumerGroup, DeliveriesCarryTheEventsOrigin) {
  TestBus bus("group-origin", {.host_id = "hostB"});
  Room room = bus->room("r");
  ConsumerGroup g(room, "g", "m");
  PublishOptions o;
  o.origin = OriginRef{"hostA", 4096, {17, 2}};
  o.reply_to_origin = OriginRef{"hostC", 8, {}};
  ASSERT_TRUE(room.publish("job", "remote", "a", o).ok());
  const PublishResult local = room.publish("job", "local", "b");
  auto first = g.read(1s);
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->event.imported);
  EXPECT_EQ(first->event.origin.host, "hostA");
  EXPECT_EQ(first->event.origin.id, 4096u);
  EXPECT_EQ(first->event.origin.stream, (StreamId{17, 2}));
  ASSERT_TRUE(first->event.reply_to_origin);
  EXPECT_EQ(first->event.reply_to_origin->host, "hostC");
  auto second = g.read(1s);
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->event.imported);
  EXPECT_EQ(second->event.origin.host, "hostB");
  EXPECT_EQ(second->event.origin.id, local.id);
  EXPECT_FALSE(second->event.reply_to_origin);
}
