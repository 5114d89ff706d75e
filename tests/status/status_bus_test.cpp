// StatusBus in one process: RoomKit's documented behaviours (levels, entry format, recent with
// filters, recent_text, summary totals, subscribe/unsubscribe, post vs post_sync), subscribers
// that throw or stall, and the delegation guard.
#include "support/expect.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::TestBus;
using agentbus::test::eventually;
using agentbus::test::expect_error;

namespace {

StatusEntry entry(std::string agent, std::string action, StatusLevel level, std::string detail = "") {
  StatusEntry e;
  e.ts = "2026-05-01T19:05:15.123456Z";
  e.agent_id = std::move(agent);
  e.action = std::move(action);
  e.status = level;
  e.detail = std::move(detail);
  return e;
}

std::vector<std::string> actions(const std::vector<StatusEntry>& es) {
  std::vector<std::string> out;
  for (const auto& e : es) out.push_back(e.action);
  return out;
}

// A latch a test opens once; bounded waits only.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void release() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
  bool wait(std::chrono::milliseconds within = 10s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, within, [&] { return open; });
  }
};

}  // namespace

TEST(status_levels, ExactlyRoomKitsFiveAndNothingElse) {
  for (std::string_view s : {"ok", "failed", "pending", "info", "completed"}) {
    ASSERT_TRUE(parse_status_level(s)) << s;
    EXPECT_EQ(to_string(*parse_status_level(s)), s);
  }
  EXPECT_FALSE(parse_status_level("OK"));
  EXPECT_FALSE(parse_status_level("done"));
  EXPECT_FALSE(parse_status_level(""));

  TestBus bus("st-levels");
  StatusBus sb(bus->room("r"));
  expect_error([&] { sb.post("exec", "x", "done"); }, Errc::invalid_argument,
               "use ok, failed, pending, info or completed");
  expect_error([&] { sb.post("exec", "x", "ok", "", "[1,2]"); }, Errc::invalid_argument, "JSON object");
  expect_error([&] { sb.post("exec", "x", "ok", "", "{\"a\":"); }, Errc::invalid_argument, "not valid JSON");
  expect_error([&] { sb.post("", "x", "ok"); }, Errc::invalid_argument, "agent_id");
  EXPECT_TRUE(sb.recent(10).empty()) << "refused posts publish nothing";
}

TEST(status_format, PayloadIsRoomKitsFieldsInOrderAndTheSameAsItsJsonlLine) {
  TestBus bus("st-format");
  Room room = bus->room("r");
  StatusBus sb(room);
  const PostResult r =
      sb.post("exec", "search_google", StatusLevel::ok, "Found \"7\"\nresults\x01", R"({ "n" : 7, "q": "x y" })");
  ASSERT_TRUE(r.ok());
  const std::vector<Event> events = room.recent(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].id, r.id);
  EXPECT_EQ(events[0].type, "STATUS");
  EXPECT_EQ(events[0].agent, "exec");
  const std::string& p = events[0].payload;
  ASSERT_EQ(p.rfind("{\"ts\":\"", 0), 0u) << p;
  // "2026-05-01T19:05:15.123456Z": ISO-8601 UTC, microseconds, Z.
  const std::string ts = p.substr(7, 27);
  EXPECT_EQ(ts.size(), 27u);
  EXPECT_EQ(ts[10], 'T');
  EXPECT_EQ(ts[19], '.');
  EXPECT_EQ(ts[26], 'Z');
  EXPECT_EQ(p.substr(34),
            R"(","agent_id":"exec","action":"search_google","status":"ok","detail":"Found \"7\"\nresults\u0001",)"
            R"("metadata":{"n":7,"q":"x y"}})");

  const std::optional<StatusEntry> e = parse_status_entry(p);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->ts, ts);
  EXPECT_EQ(e->detail, "Found \"7\"\nresults\x01");
  EXPECT_EQ(e->metadata, R"({"n":7,"q":"x y"})");
  EXPECT_EQ(e->to_json(), p) << "decode then encode gives the same bytes";
  ASSERT_TRUE(e->ts_ns());

  // Invalid UTF-8 becomes U+FFFD, and stays stable through another round.
  StatusEntry bad = entry("a", "b", StatusLevel::info, "x\xff\xc0y");
  const std::string once = bad.to_json();
  ASSERT_TRUE(parse_status_entry(once));
  EXPECT_EQ(parse_status_entry(once)->to_json(), once);

  // RoomKit's Python writes "+00:00" offsets; they normalise to Z.
  const auto py = parse_status_entry(
      R"({"ts":"2026-05-01T21:05:15.5+02:00","agent_id":"a","action":"b","status":"pending"})");
  ASSERT_TRUE(py);
  EXPECT_EQ(py->ts, "2026-05-01T19:05:15.500000Z");
  EXPECT_EQ(py->detail, "");
  EXPECT_EQ(py->metadata, "{}");
  std::string why;
  EXPECT_FALSE(parse_status_entry(R"({"ts":"yesterday","agent_id":"a","action":"b","status":"ok"})", why));
  EXPECT_NE(why.find("ts"), std::string::npos) << why;
  EXPECT_FALSE(parse_status_entry(R"({"ts":"2026-05-01T19:05:15Z","agent_id":"a","action":"b","status":"meh"})", why));
  EXPECT_NE(why.find("status"), std::string::npos) << why;
  EXPECT_FALSE(parse_status_entry(R"({"ts":"2026-05-01T19:05:15Z","agent_id":"a","status":"ok"})", why));
  EXPECT_NE(why.find("action"), std::string::npos) << why;
}

TEST(status_recent, FiltersCombineWithAndOldestFirstLastN) {
  TestBus bus("st-recent");
  Room room = bus->room("r");
  StatusBus sb(room);
  EXPECT_TRUE(sb.recent(10).empty());
  sb.post("exec", "a1", "ok");
  room.publish("chatter", "exec", "not a status entry");
  room.publish("STATUS", "exec", "not JSON: ignored");
  sb.post("plan", "p1", "ok");
  sb.post("exec", "a2", "failed");
  sb.post("exec", "a3", "ok");
  sb.post("plan", "p2", "failed");
  sb.post("exec", "a4", "ok");

  EXPECT_EQ(actions(sb.recent(10)), (std::vector<std::string>{"a1", "p1", "a2", "a3", "p2", "a4"}));
  EXPECT_EQ(actions(sb.recent(2)), (std::vector<std::string>{"p2", "a4"}));
  EXPECT_TRUE(sb.recent(0).empty()) << "n = 0 is empty (RoomKit's Python would return everything)";
  EXPECT_EQ(actions(sb.recent(10, {.agent_id = "exec"})), (std::vector<std::string>{"a1", "a2", "a3", "a4"}));
  EXPECT_EQ(actions(sb.recent(10, {.status = StatusLevel::failed})), (std::vector<std::string>{"a2", "p2"}));
  EXPECT_EQ(actions(sb.recent(10, {.agent_id = "exec", .status = StatusLevel::ok})),
            (std::vector<std::string>{"a1", "a3", "a4"}));
  EXPECT_EQ(actions(sb.recent(1, {.agent_id = "exec", .status = StatusLevel::ok})), (std::vector<std::string>{"a4"}));
  EXPECT_TRUE(sb.recent(10, {.agent_id = "nobody"}).empty());

  // Many other events between entries: recent still finds n entries.
  for (int i = 0; i < 500; ++i) room.publish("chatter", "x", "noise");
  EXPECT_EQ(actions(sb.recent(3)), (std::vector<std::string>{"a3", "p2", "a4"}));

  // Any StatusBus on the room (another process, too) sees the same history.
  StatusBus other(bus->room("r"));
  EXPECT_EQ(other.recent(10).size(), 6u);
}

TEST(status_text, RecentTextIsRoomKitsLineFormat) {
  EXPECT_EQ(status_line(entry("exec", "search_google", StatusLevel::ok, "Found 7 results")),
            "[19:05:15] exec: search_google \u2192 ok | Found 7 results");
  EXPECT_EQ(status_line(entry("exec", "plan", StatusLevel::pending)), "[19:05:15] exec: plan \u2192 pending");
  EXPECT_EQ(status_text({}), "No activity yet.");
  EXPECT_EQ(status_text({entry("a", "x", StatusLevel::ok), entry("b", "y", StatusLevel::info, "d")}),
            "[19:05:15] a: x \u2192 ok\n[19:05:15] b: y \u2192 info | d");

  TestBus bus("st-text");
  StatusBus sb(bus->room("r"));
  EXPECT_EQ(sb.recent_text(), "No activity yet.");
  sb.post("exec", "search_google", "ok", "Found 7 results");
  const std::string text = sb.recent_text(5);
  ASSERT_EQ(text.size(), std::string("[00:00:00] exec: search_google \u2192 ok | Found 7 results").size()) << text;
  EXPECT_EQ(text[0], '[');
  EXPECT_EQ(text.substr(9), "] exec: search_google \u2192 ok | Found 7 results");
}

// An entry a bridge imported from another host names that host; a local one does not.
TEST(status_origin, AnImportedEntryCarriesItsOriginHost) {
  TestBus bus("st-origin");
  Room room = bus->room("r");
  StatusBus sb(room);
  sb.post("local", "build", "ok");
  PublishOptions o;
  o.origin = OriginRef{"hostA:main", 4096, {1700000000000, 1}};
  ASSERT_TRUE(room.publish(kStatusEventType, "remote", entry("remote", "deploy", StatusLevel::ok).to_json(), o).ok());

  const std::vector<StatusEntry> es = sb.recent(10);
  ASSERT_EQ(es.size(), 2u);
  EXPECT_EQ(es[0].origin_host, "");
  EXPECT_EQ(es[1].origin_host, "hostA:main");
  EXPECT_EQ(es[0].to_json().find("origin_host"), std::string::npos);
  EXPECT_NE(es[1].to_json().find(R"(,"origin_host":"hostA:main"})"), std::string::npos) << es[1].to_json();
  const std::string text = sb.recent_text(10);
  EXPECT_NE(text.find("] local: build"), std::string::npos) << text;
  EXPECT_NE(text.find("] remote@hostA:main: deploy"), std::string::npos) << text;
}

TEST(status_summary, NumberedLogIconsAndTotals) {
  EXPECT_EQ(status_summary({}), "No status entries.\n");
  const std::string s = status_summary({entry("exec", "search", StatusLevel::ok, "Found 7 results"),
                                        entry("exec", "fetch", StatusLevel::ok),
                                        entry("planner", "plan", StatusLevel::completed, std::string(150, 'd')),
                                        entry("w", "wait", StatusLevel::pending), entry("w", "note", StatusLevel::info),
                                        entry("w", "boom", StatusLevel::failed)});
  EXPECT_EQ(s.rfind("Status Log\n" + std::string(60, '=') + "\n", 0), 0u) << s;
  EXPECT_NE(s.find("   1. [+] exec   search\n      Found 7 results\n"), std::string::npos) << s;
  EXPECT_NE(s.find("   3. [*] planner plan\n      " + std::string(100, 'd') + "\n"), std::string::npos) << s;
  EXPECT_NE(s.find("   4. [?] w      wait\n"), std::string::npos) << s;
  EXPECT_NE(s.find("   5. [~] w      note\n"), std::string::npos) << s;
  EXPECT_NE(s.find("   6. [x] w      boom\n"), std::string::npos) << s;
  EXPECT_NE(s.find("\n  Total: 6 entries (2 ok, 1 failed, 1 completed)\n"), std::string::npos) << s;

  TestBus bus("st-summary");
  StatusBus sb(bus->room("r"));
  sb.post("exec", "search_google", "ok");
  sb.post("exec", "read", "ok");
  sb.post("exec", "task", "completed");
  EXPECT_NE(sb.summary().find("Total: 3 entries (2 ok, 0 failed, 1 completed)"), std::string::npos) << sb.summary();
}

TEST(status_subscribe, CallbacksSeeLaterEntriesInOrderUntilUnsubscribed) {
  TestBus bus("st-sub");
  StatusBus sb(bus->room("r"));
  sb.post("exec", "before", "ok");  // posted before subscribing: not delivered
  std::mutex mu;
  std::vector<std::string> seen;
  StatusSubscription sub = sb.subscribe([&](const StatusEntry& e) {
    std::lock_guard lock(mu);
    seen.push_back(e.action + ":" + std::string(to_string(e.status)));
  });
  EXPECT_TRUE(sub.active());
  sb.post("exec", "one", "ok");
  sb.post("plan", "two", "pending", "d", R"({"k":1})");
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return seen.size() == 2;
  }));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(seen, (std::vector<std::string>{"one:ok", "two:pending"}));
  }
  sub.unsubscribe();
  EXPECT_FALSE(sub.active());
  sub.unsubscribe();  // twice is fine
  sb.post_sync("exec", "three", "ok");
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(seen.size(), 2u) << "an unsubscribed callback never runs again";
  }

  // Dropping the handle unsubscribes too.
  std::atomic<int> count{0};
  {
    StatusSubscription temp = sb.subscribe([&](const StatusEntry&) { count.fetch_add(1); });
    ASSERT_EQ(sb.post_sync("exec", "four", "ok").status, PostStatus::ok);
    EXPECT_EQ(count.load(), 1);
  }
  sb.post_sync("exec", "five", "ok");
  EXPECT_EQ(count.load(), 1);
}

TEST(status_subscribe, PostSyncReturnsAfterEveryCallbackRanPostDoesNotWait) {
  TestBus bus("st-sync");
  StatusBus sb(bus->room("r"));
  Gate gate;
  std::atomic<int> fast{0}, slow{0};
  StatusSubscription a = sb.subscribe([&](const StatusEntry&) { fast.fetch_add(1); });
  StatusSubscription b = sb.subscribe([&](const StatusEntry&) {
    gate.wait();
    slow.fetch_add(1);
  });
  // Fire and forget: returns while the slow callback is still held.
  ASSERT_TRUE(sb.post("exec", "async", "ok").ok());
  EXPECT_EQ(slow.load(), 0);
  ASSERT_TRUE(eventually([&] { return fast.load() == 1; })) << "a slow subscriber does not delay another";
  gate.release();
  // Synchronous: both callbacks have run for this entry when it returns.
  const PostResult r = sb.post_sync("exec", "sync", "ok");
  EXPECT_EQ(r.status, PostStatus::ok);
  EXPECT_EQ(fast.load(), 2);
  EXPECT_EQ(slow.load(), 2);

  // Bounded: a callback stuck past sync_timeout makes post_sync report a timeout.
  StatusBusOptions o;
  o.sync_timeout = 100ms;
  StatusBus bounded(bus->room("r2"), o);
  Gate stuck;
  StatusSubscription c = bounded.subscribe([&](const StatusEntry&) { stuck.wait(); });
  EXPECT_EQ(bounded.post_sync("exec", "x", "ok").status, PostStatus::timeout);
  stuck.release();
}

TEST(status_subscribe, ThrowingAndSlowSubscribersDoNotBlockOthers) {
  TestBus bus("st-throw");
  StatusBus sb(bus->room("r"));
  Gate gate;
  std::atomic<int> good{0}, slow{0}, thrower{0};
  std::mutex mu;
  std::vector<StatusEntry> reports;
  StatusSubscription bad = sb.subscribe([&](const StatusEntry& e) {
    thrower.fetch_add(1);
    throw std::runtime_error("boom on " + e.action);
  });
  StatusSubscription stalled = sb.subscribe([&](const StatusEntry&) {
    gate.wait();
    slow.fetch_add(1);
  });
  StatusSubscription ok = sb.subscribe([&](const StatusEntry& e) {
    good.fetch_add(1);
    if (e.agent_id == "system") {
      std::lock_guard lock(mu);
      reports.push_back(e);
    }
  });
  for (int i = 0; i < 20; ++i) sb.post("exec", "job" + std::to_string(i), "ok");
  // 20 entries, plus one `system` report per entry the thrower failed on (not for the reports
  // themselves, so a callback that always throws cannot loop).
  ASSERT_TRUE(eventually([&] { return good.load() == 40; })) << good.load() << " " << sb.recent(100).size() << " " << sb.stats().callback_errors << " reports " << reports.size();
  EXPECT_EQ(slow.load(), 0) << "the stalled subscriber is still stuck on its first entry";
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(reports.size(), 20u);
    EXPECT_EQ(reports[0].status, StatusLevel::failed);
    EXPECT_EQ(reports[0].action, "subscriber-error");
    EXPECT_NE(reports[0].detail.find("boom on job0"), std::string::npos) << reports[0].detail;
  }
  // The thrower also gets the 20 reports (and throws on them, unreported): it may still be
  // working through them when `good` has seen everything.
  EXPECT_TRUE(eventually([&] { return thrower.load() == 40; })) << thrower.load();
  gate.release();
  ASSERT_TRUE(eventually([&] { return slow.load() == 40; }));
  EXPECT_EQ(sb.stats().callback_errors, 40u);
  EXPECT_EQ(sb.recent(100, {.agent_id = "system", .status = StatusLevel::failed}).size(), 20u);
}

TEST(status_subscribe, UnsubscribeFromInsideTheCallbackAndPostSyncFromACallback) {
  TestBus bus("st-self");
  StatusBus sb(bus->room("r"));
  std::atomic<int> calls{0};
  StatusSubscription self;
  std::mutex mu;
  self = sb.subscribe([&](const StatusEntry&) {
    calls.fetch_add(1);
    std::lock_guard lock(mu);
    self.unsubscribe();
  });
  std::atomic<int> nested{0};
  StatusSubscription poster = sb.subscribe([&](const StatusEntry& e) {
    if (e.action == "outer") sb.post_sync("exec", "inner", "ok");  // must not wait for itself
    nested.fetch_add(1);
  });
  ASSERT_TRUE(sb.post_sync("exec", "outer", "ok").ok());
  ASSERT_TRUE(eventually([&] { return nested.load() == 2; }));
  EXPECT_EQ(calls.load(), 1);
  sb.close();
  sb.close();  // idempotent
  expect_error([&] { sb.post("exec", "late", "ok"); }, Errc::invalid_argument, "closed");
}

TEST(status_guard, AgeOfTheLatestCompletedEntry) {
  TestBus bus("st-guard");
  StatusBus sb(bus->room("r"));
  EXPECT_FALSE(sb.has_completed());
  EXPECT_FALSE(sb.last_completed_age());
  sb.post("worker", "task", "pending");
  EXPECT_FALSE(sb.has_completed());
  sb.post("worker", "task", "completed", "done");
  sb.post("other", "task", "ok");
  EXPECT_TRUE(sb.has_completed());
  EXPECT_TRUE(sb.has_completed("worker"));
  EXPECT_FALSE(sb.has_completed("other"));
  const auto age = sb.last_completed_age("worker");
  ASSERT_TRUE(age);
  EXPECT_GE(age->count(), 0);
  EXPECT_LT(*age, std::chrono::minutes(1));
  EXPECT_FALSE(sb.last_completed_age("other"));
}

TEST(status_subscribe, ManyThreadsPostingEveryEntryDeliveredOnce) {
  TestBus bus("st-threads");
  RoomOptions ro;
  ro.ring_bytes = 8 << 20;
  StatusBus sb(bus->room("r", ro));
  std::mutex mu;
  std::map<std::string, int> seen;
  StatusSubscription sub = sb.subscribe([&](const StatusEntry& e) {
    std::lock_guard lock(mu);
    ++seen[e.action];
  });
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) sb.post("t" + std::to_string(t), std::to_string(t) + "-" + std::to_string(i), "ok");
    });
  for (auto& th : threads) th.join();
  ASSERT_TRUE(sb.post_sync("main", "last", "ok").ok());
  std::lock_guard lock(mu);
  EXPECT_EQ(seen.size(), std::size_t(kThreads * kEach + 1));
  for (const auto& [k, n] : seen) EXPECT_EQ(n, 1) << k;
  EXPECT_EQ(sb.stats().overruns, 0u);
}
