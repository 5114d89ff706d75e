// presence_test.cpp — the presence table: join/who/leave, session-qualified handles, TTL
// expiry, a killed agent dropping out, reclaiming entries of dead writers, a full table, a
// corrupt header, concurrent joins, and the `agentbus join/leave/who` commands.
//
// Multi-process tests use `sleep` children as agent sessions and the real CLI ($AGENTBUS_CLI)
// as the process that joins on their behalf, as an agent's shell would.
#include "support/child_process.hpp"
#include "support/expect.hpp"
#include "support/test_bus.hpp"

#include "bus/room_access.hpp"
#include "shm/process.hpp"
#include "shm/slot_table.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using agentbus::AgentInfo;
using agentbus::Errc;
using agentbus::Error;
using agentbus::Event;
using agentbus::JoinOptions;
using agentbus::Presence;
using agentbus::PresenceOptions;
using agentbus::Room;
using agentbus::test::ChildProcess;
using agentbus::test::TestBus;

constexpr const char* kRoom = "repo/main";

// Layout facts the white-box tests rely on (documented in src/coord/presence_layout.hpp and
// docs/coordination.md); TableLayoutIsAsDocumented checks them so the others fail loudly
// rather than poke the wrong bytes.
constexpr std::size_t kHeaderBytes = 128;
constexpr std::size_t kEntryBytes = 512;
// The state word is an owner word [phase:3 | generation:20 | pid:22 | start:19].
constexpr std::uint64_t kKindMask = 7ull << 61;
constexpr std::uint64_t kKindLive = 2ull << 61;
constexpr std::uint64_t kKindWriting = 1ull << 61;

std::span<std::byte> presence_region(Room& room) {
  return agentbus::shm::open_region(*agentbus::RoomAccess::segment(room), room.name() + "#presence", 0, false, {});
}

std::atomic<std::uint64_t>& entry_state(Room& room, std::size_t i) {
  return *reinterpret_cast<std::atomic<std::uint64_t>*>(presence_region(room).data() + kHeaderBytes +
                                                         i * kEntryBytes);
}

using agentbus::test::eventually;

bool listed(const Presence& p, const std::string& handle) {
  for (const AgentInfo& a : p.who())
    if (a.handle == handle) return true;
  return false;
}

std::vector<Event> events_of_type(Room& room, const std::string& type) {
  std::vector<Event> out;
  for (Event& e : room.recent(1000))
    if (e.type == type) out.push_back(std::move(e));
  return out;
}

// A process that is certainly gone: forked, exited, reaped.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

std::string cli_path() {
  const char* p = std::getenv("AGENTBUS_CLI");
  return p != nullptr ? p : "./agentbus";
}

struct CliRun {
  int exit_code = -1;
  std::vector<std::string> lines;
};

// Runs the CLI against `bus`/kRoom and collects its stdout lines (bounded waits throughout).
CliRun run_cli(const TestBus& bus, std::vector<std::string> args) {
  std::vector<std::string> argv{cli_path(), "--bus", bus.name(), "--room", kRoom};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess child(argv);
  CliRun run;
  for (std::string line = child.read_line(10s); !line.empty(); line = child.read_line(10s))
    run.lines.push_back(line);
  run.exit_code = child.wait(10s);
  return run;
}

std::string sleep_path() { return ::access("/bin/sleep", X_OK) == 0 ? "/bin/sleep" : "/usr/bin/sleep"; }

TEST(Presence, JoinWhoLeave) {
  TestBus bus("pres");
  Room room = bus->room(kRoom);
  Presence p(room);
  EXPECT_EQ(p.capacity(), 256u);
  EXPECT_TRUE(p.who().empty());

  const std::string me = p.join("fixer-1", "go-fixer", "flaky parser tests");
  EXPECT_EQ(me, Presence::qualify("fixer-1"));
  EXPECT_TRUE(me.starts_with("fixer-1-")) << me;
  EXPECT_EQ(me.size(), std::string("fixer-1-").size() + 8) << me;

  const std::vector<AgentInfo> agents = p.who();
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].handle, me);
  EXPECT_EQ(agents[0].role, "go-fixer");
  EXPECT_EQ(agents[0].working_on, "flaky parser tests");
  EXPECT_EQ(agents[0].pid, ::getpid());
  EXPECT_EQ(agents[0].ttl, std::chrono::milliseconds(15min));
  EXPECT_GT(agents[0].ttl_left, 14min);
  EXPECT_LE(agents[0].ttl_left, agents[0].ttl);
  EXPECT_EQ(agents[0].claims, 0u);
  EXPECT_LE(std::chrono::abs(std::chrono::system_clock::now() - agents[0].last_seen), 5s);

  // Another handle on the same bus sees the same table.
  Presence other(bus->room(kRoom));
  EXPECT_TRUE(listed(other, me));

  EXPECT_TRUE(p.leave(me));
  EXPECT_TRUE(p.who().empty());
  EXPECT_FALSE(p.leave(me)) << "a second leave finds nothing";
  EXPECT_FALSE(p.refresh(me));
  EXPECT_FALSE(p.find(me).has_value());

  const auto joined = events_of_type(room, "AGENT_JOINED");
  ASSERT_EQ(joined.size(), 1u);
  EXPECT_EQ(joined[0].agent, me);
  EXPECT_EQ(joined[0].payload, R"({"role":"go-fixer","working_on":"flaky parser tests","pid":)" +
                                   std::to_string(::getpid()) + R"(,"ttl_ms":900000})");
  const auto left = events_of_type(room, "AGENT_LEFT");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].agent, me);
  EXPECT_EQ(left[0].payload, R"({"reason":"left"})");
  EXPECT_EQ(p.counters().joins, 1u);
  EXPECT_EQ(p.counters().leaves, 1u);
}

TEST(Presence, SameHandleFromTwoSessionsStaysDistinct) {
  TestBus bus("pres");
  Presence p(bus->room(kRoom));
  ChildProcess session(std::vector<std::string>{sleep_path(), "1000"});

  const std::string mine = p.join("fixer-1", "a", "");
  const std::string theirs = p.join("fixer-1", "b", "", {.session_pid = session.pid()});
  EXPECT_NE(mine, theirs);
  EXPECT_TRUE(theirs.starts_with("fixer-1-")) << theirs;
  EXPECT_EQ(theirs, Presence::qualify("fixer-1", session.pid()));

  const auto agents = p.who();
  ASSERT_EQ(agents.size(), 2u);
  EXPECT_EQ(p.find(theirs)->pid, session.pid());
  EXPECT_EQ(p.find(theirs)->role, "b");
  EXPECT_EQ(p.find(mine)->role, "a");
}

TEST(Presence, RejoinFromSameSessionRefreshesSameEntry) {
  TestBus bus("pres");
  Room room = bus->room(kRoom);
  Presence p(room);
  const std::string first = p.join("rev", "reviewer", "PR triage", {.ttl = 1min});
  const auto joined_at = p.find(first)->joined;

  const std::string second = p.join("rev", "reviewer", "PR #42", {.ttl = 10min});
  EXPECT_EQ(second, first);
  // Passing the qualified handle back is the same agent too, not "rev-<token>-<token>".
  EXPECT_EQ(p.join(first, "reviewer", "PR #43"), first);

  const auto agents = p.who();
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].working_on, "PR #43");
  EXPECT_EQ(agents[0].ttl, std::chrono::milliseconds(15min));
  EXPECT_EQ(agents[0].joined, joined_at) << "a re-join keeps the original join time";
  EXPECT_EQ(events_of_type(room, "AGENT_JOINED").size(), 1u) << "re-joins are not transitions";
  EXPECT_EQ(p.counters().joins, 1u);
}

TEST(Presence, RefreshAndSetWorkingOn) {
  TestBus bus("pres");
  Presence p(bus->room(kRoom));
  const std::string me = p.join("w", "worker", "one");
  EXPECT_TRUE(p.set_working_on(me, "two"));
  EXPECT_EQ(p.find(me)->working_on, "two");
  EXPECT_EQ(p.find(me)->role, "worker") << "set_working_on keeps the role";
  EXPECT_TRUE(p.refresh(me));
  EXPECT_FALSE(p.refresh("nobody-00000000"));
  EXPECT_FALSE(p.set_working_on("nobody-00000000", "x"));
  EXPECT_THROW((void)p.set_working_on(me, "line\nbreak"), Error);
}

TEST(Presence, RefreshKeepsAnAgentPastItsTtl) {
  TestBus bus("pres");
  Presence p(bus->room(kRoom));
  const std::string me = p.join("busy", "", "", {.ttl = 500ms});
  // Refresh every 20 ms for three TTLs: the agent must stay listed throughout.
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_TRUE(p.refresh(me));
    ASSERT_TRUE(listed(p, me));
    std::this_thread::sleep_for(20ms);
  }
  // Then it goes quiet and drops out.
  EXPECT_TRUE(eventually([&] { return !listed(p, me); }));
}

TEST(Presence, ExpiredAgentDropsOutAndIsReclaimedByTheNextJoin) {
  TestBus bus("pres");
  Room room = bus->room(kRoom);
  Presence p(room, {.capacity = 1});
  const std::string old = p.join("short", "", "", {.ttl = 200ms});
  EXPECT_TRUE(listed(p, old));
  EXPECT_THROW(p.join("blocked", "", ""), Error) << "the only entry is live";

  ASSERT_TRUE(eventually([&] { return p.who().empty(); })) << "who() must skip an expired agent";
  EXPECT_FALSE(p.refresh(old)) << "an expired agent must join again";

  const std::string next = p.join("next", "", "");
  EXPECT_TRUE(listed(p, next));
  EXPECT_EQ(p.counters().expired_reclaimed, 1u);
  const auto left = events_of_type(room, "AGENT_LEFT");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].agent, old);
  EXPECT_EQ(left[0].payload, R"({"reason":"expired"})");
}

TEST(Presence, ExpiredAgentRejoiningIsAnnouncedAgain) {
  TestBus bus("pres");
  Room room = bus->room(kRoom);
  Presence p(room);
  const std::string me = p.join("nap", "", "", {.ttl = 100ms});
  ASSERT_TRUE(eventually([&] { return !listed(p, me); }));
  EXPECT_EQ(p.join("nap", "", ""), me);
  EXPECT_TRUE(listed(p, me));
  EXPECT_EQ(events_of_type(room, "AGENT_JOINED").size(), 2u);
}

// The scenario presence exists for: an agent's session is killed, and `who` stops listing it
// at once, without waiting for the TTL.
TEST(Presence, KilledAgentDropsFromWho) {
  TestBus bus("pres");
  Room room = bus->room(kRoom);
  Presence p(room, {.capacity = 1});
  ChildProcess session(std::vector<std::string>{sleep_path(), "1000"});

  const CliRun join = run_cli(bus, {"--session-pid", std::to_string(session.pid()), "join", "doomed",
                                    "--role", "victim"});
  ASSERT_EQ(join.exit_code, 0);
  ASSERT_EQ(join.lines.size(), 1u);
  const std::string handle = join.lines[0];
  EXPECT_EQ(handle, Presence::qualify("doomed", session.pid()));

  const auto before = p.find(handle);
  ASSERT_TRUE(before.has_value()) << "the CLI has exited; the entry belongs to the session";
  EXPECT_EQ(before->pid, session.pid());
  EXPECT_EQ(before->role, "victim");
  EXPECT_EQ(run_cli(bus, {"who", "--json"}).lines.size(), 1u);

  ASSERT_EQ(::kill(session.pid(), SIGKILL), 0);
  ASSERT_EQ(session.wait(5s), 128 + SIGKILL);

  EXPECT_FALSE(listed(p, handle));
  EXPECT_FALSE(p.find(handle).has_value());
  EXPECT_TRUE(run_cli(bus, {"who", "--json"}).lines.empty());

  // Its entry (the only one) is reclaimed by the next join, which reports the departure.
  const std::string next = p.join("successor", "", "");
  EXPECT_TRUE(listed(p, next));
  EXPECT_EQ(p.counters().dead_sessions_reclaimed, 1u);
  const auto left = events_of_type(room, "AGENT_LEFT");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].agent, handle);
  EXPECT_EQ(left[0].payload, R"({"reason":"session_ended"})");
}

TEST(Presence, FullTableIsNoSpace) {
  TestBus bus("pres");
  Presence p(bus->room(kRoom), {.capacity = 2});
  const std::string a = p.join("a", "", "");
  (void)p.join("b", "", "");
  try {
    (void)p.join("c", "", "");
    FAIL() << "a third agent fits in a table of two";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::no_space);
    EXPECT_NE(std::string(e.what()).find("full"), std::string::npos) << e.what();
  }
  // A re-join of a present agent needs no new entry.
  EXPECT_EQ(p.join("a", "", "x"), a);
  ASSERT_TRUE(p.leave(a));
  EXPECT_TRUE(listed(p, p.join("c", "", "")));
}

TEST(Presence, LaterOpenersGetTheCreatorsCapacity) {
  TestBus bus("pres");
  Presence creator(bus->room(kRoom), {.capacity = 3});
  Presence opener(bus->room(kRoom), {.capacity = 100});
  EXPECT_EQ(opener.capacity(), 3u);
  try {
    Presence absent(bus->room("other/main"), {.create = false});
    FAIL() << "create=false made a table";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_found);
  }
}

TEST(Presence, TableLayoutIsAsDocumented) {
  TestBus bus("pres");
  Room room = bus->room(kRoom);
  Presence p(room, {.capacity = 2});
  EXPECT_GE(presence_region(room).size(), kHeaderBytes + 2 * kEntryBytes);
  EXPECT_EQ(std::memcmp(presence_region(room).data(), "AGBPRES1", 8), 0);
  EXPECT_EQ(entry_state(room, 0).load(), 0u);
  const std::string me = p.join("probe", "", "");
  EXPECT_EQ(entry_state(room, 0).load() & kKindMask, kKindLive);
  EXPECT_EQ(std::memcmp(presence_region(room).data() + kHeaderBytes + 64, me.data(), me.size()), 0);
  ASSERT_TRUE(p.leave(me));
  EXPECT_EQ(entry_state(room, 0).load(), 0u);
}

TEST(Presence, CorruptHeaderIsRefused) {
  TestBus bus("pres");
  Room room = bus->room(kRoom);
  { Presence p(room, {.capacity = 4}); }
  std::byte* header = presence_region(room).data();

  const auto expect_corrupt = [&](const char* what) {
    try {
      Presence p(room);
      ADD_FAILURE() << "accepted a table with " << what;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::corrupt) << what;
      EXPECT_NE(std::string(e.what()).find("destroy"), std::string::npos) << e.what();
    }
  };

  header[0] = std::byte{'X'};  // magic
  expect_corrupt("a bad magic");
  header[0] = std::byte{'A'};
  EXPECT_NO_THROW(Presence{room});

  std::uint32_t capacity = 0;
  std::memcpy(&capacity, header + 20, 4);
  ASSERT_EQ(capacity, 4u);
  const std::uint32_t huge = 1'000'000;  // more entries than the region holds
  std::memcpy(header + 20, &huge, 4);
  expect_corrupt("a capacity larger than the region");
  std::memcpy(header + 20, &capacity, 4);

  // An entry whose state word is garbage is corrupt too, not a crash or a hang.
  Presence p(room);
  entry_state(room, 1).store(0x77ull << 56);
  try {
    (void)p.who();
    ADD_FAILURE() << "who() read an entry in an unknown state";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::corrupt);
  }
}

// A process that died between taking an entry and publishing it must not wedge the entry.
TEST(Presence, EntryOfDeadWriterIsReclaimed) {
  TestBus bus("pres");
  Room room = bus->room(kRoom);
  Presence p(room, {.capacity = 1});
  const pid_t dead = dead_pid();
  entry_state(room, 0).store(kKindWriting | (std::uint64_t(dead) << 19) | 0x12345);

  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(p.who().empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "who() waited on a dead writer";

  const std::string me = p.join("phoenix", "", "");
  EXPECT_TRUE(listed(p, me));
  EXPECT_EQ(p.counters().dead_writers_reclaimed, 1u);
}

// ...but an entry a live process is writing is left alone (the writer is merely slow).
TEST(Presence, EntryOfLiveWriterIsNotTaken) {
  TestBus bus("pres");
  Room room = bus->room(kRoom);
  Presence p(room, {.capacity = 1});
  const auto self = agentbus::shm::self_process();
  entry_state(room, 0).store(kKindWriting | (std::uint64_t(self.pid) << 19) | (self.start_time & 0x7ffff));

  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(p.who().empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "who() must bound its wait";
  try {
    (void)p.join("impatient", "", "");
    FAIL() << "took an entry a live process holds";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::no_space);
  }
  EXPECT_EQ(p.counters().dead_writers_reclaimed, 0u);
}

TEST(Presence, RejectsBadArguments) {
  TestBus bus("pres");
  Presence p(bus->room(kRoom));
  const auto code = [&](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.code();
    }
    ADD_FAILURE() << "no error";
    return Errc::system;
  };
  EXPECT_EQ(code([&] { (void)p.join("", "", ""); }), Errc::bad_name);
  EXPECT_EQ(code([&] { (void)p.join("has space", "", ""); }), Errc::bad_name);
  EXPECT_EQ(code([&] { (void)p.join("a/b", "", ""); }), Errc::bad_name);
  EXPECT_EQ(code([&] { (void)p.join("..", "", ""); }), Errc::bad_name);
  EXPECT_EQ(code([&] { (void)p.join(std::string(65, 'h'), "", ""); }), Errc::bad_name);
  EXPECT_NO_THROW((void)p.join(std::string(64, 'h'), "", ""));
  EXPECT_EQ(code([&] { (void)p.join("r", std::string(65, 'r'), ""); }), Errc::too_large);
  EXPECT_EQ(code([&] { (void)p.join("w", "", std::string(257, 'w')); }), Errc::too_large);
  EXPECT_EQ(code([&] { (void)p.join("c", "\x1b[31mred", ""); }), Errc::invalid_argument);
  EXPECT_EQ(code([&] { (void)p.join("u", "", "\xff\xfe"); }), Errc::invalid_argument);
  EXPECT_EQ(code([&] { (void)p.join("t", "", "", {.ttl = 0ms}); }), Errc::invalid_argument);
  EXPECT_EQ(code([&] { (void)p.join("t", "", "", {.ttl = 25h}); }), Errc::invalid_argument);
  EXPECT_EQ(code([&] { (void)p.join("d", "", "", {.session_pid = dead_pid()}); }), Errc::invalid_argument);
  EXPECT_EQ(code([&] { Presence q(bus->room("x/y"), {.capacity = 0}); }), Errc::invalid_argument);
  EXPECT_NO_THROW((void)p.join("utf8", "r\u00f4le", "\u6f22\u5b57 \"quoted\" \\ back"));
  EXPECT_EQ(p.who().size(), 2u) << "only the valid joins made entries";
}

// Threads join, re-join (rewriting entries in place with new text), refresh and leave while
// another reads: who() only ever returns whole entries, and concurrent joins of one handle in
// one session end up as a single entry.
TEST(Presence, ConcurrentJoinsAndReaders) {
  TestBus bus("pres");
  Presence p(bus->room(kRoom), {.capacity = 64});
  const std::string shared = Presence::qualify("shared");
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<int> seen{0};

  // Role and working_on are written as a pair ("r" + k, "w" + k, k of varying length), so a
  // copy that mixes two writes shows up as a mismatch.
  const auto text = [](const std::string& base, int k) { return base + ":" + std::string(1 + k % 7 * 9, char('a' + k % 26)); };
  std::thread reader([&] {
    while (!stop.load()) {
      for (const AgentInfo& a : p.who()) {
        seen.fetch_add(1);
        if (a.role == "flipper") {
          // Rewritten in place all the time: one character repeated, never a mix.
          if (a.working_on.empty() || a.working_on.find_first_not_of(a.working_on[0]) != std::string::npos)
            bad.fetch_add(1);
        } else if (a.role.empty() || a.working_on.empty() || a.role.substr(1) != a.working_on.substr(1) ||
            a.role[0] != 'r' || a.working_on[0] != 'w')
          bad.fetch_add(1);
      }
    }
  });
  const std::string flipper = Presence::qualify("flipper");
  std::thread flip_reader([&] {  // reads just that entry, as fast as it can
    while (!stop.load()) {
      const auto a = p.find(flipper);
      if (a && a->working_on.find_first_not_of(a->working_on[0]) != std::string::npos) bad.fetch_add(1);
    }
  });
  std::vector<std::thread> writers;
  writers.emplace_back([&] {
    (void)p.join("flipper", "flipper", "x");
    for (int i = 0; i < 20000; ++i)
      (void)p.set_working_on(flipper, std::string(i % 2 ? agentbus::kMaxWorkingOnBytes : 97, char('a' + i % 26)));
  });
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 600; ++i) {
        const std::string k = text(std::to_string(t), i);
        (void)p.join("shared", "r" + k, "w" + k);
        const std::string mine = "t" + std::to_string(t) + "x" + std::to_string(i % 5);
        const std::string q = p.join(mine, "r" + k, "w" + k);
        (void)p.refresh(q);
        if (i % 3 == 0) (void)p.leave(q);
      }
    });
  }
  for (auto& w : writers) w.join();
  stop.store(true);
  reader.join();
  flip_reader.join();

  EXPECT_GT(seen.load(), 0);
  EXPECT_EQ(bad.load(), 0) << "who() returned a torn entry";
  int copies = 0;
  for (const AgentInfo& a : p.who()) copies += a.handle == shared ? 1 : 0;
  EXPECT_EQ(copies, 1);
}

TEST(PresenceCli, JoinWhoLeaveAndExitCodes) {
  TestBus bus("pcli");
  ChildProcess session(std::vector<std::string>{sleep_path(), "1000"});
  const std::string pid = std::to_string(session.pid());

  // Nothing joined yet: who is empty and succeeds; leave of anything is "not found".
  const CliRun empty = run_cli(bus, {"who", "--json"});
  EXPECT_EQ(empty.exit_code, 0);
  EXPECT_TRUE(empty.lines.empty());
  EXPECT_EQ(run_cli(bus, {"leave", "ghost-00000000"}).exit_code, 4);

  const CliRun join =
      run_cli(bus, {"--session-pid", pid, "join", "cli-agent", "--role", "tester", "--working-on",
                    "say \"hi\"", "--ttl", "10m", "--json"});
  ASSERT_EQ(join.exit_code, 0);
  ASSERT_EQ(join.lines.size(), 1u);
  const std::string handle = Presence::qualify("cli-agent", session.pid());
  EXPECT_EQ(join.lines[0], R"({"handle":")" + handle + R"(","room":")" + kRoom + R"(","pid":)" + pid +
                               R"(,"ttl_ms":600000})");

  const CliRun who = run_cli(bus, {"who", "--json"});
  EXPECT_EQ(who.exit_code, 0);
  ASSERT_EQ(who.lines.size(), 1u);
  const std::string& line = who.lines[0];
  EXPECT_TRUE(line.starts_with("{") && line.ends_with("}")) << line;
  for (const std::string& field :
       {R"("handle":")" + handle + "\"", std::string(R"("role":"tester")"),
        std::string(R"("working_on":"say \"hi\"")"), std::string(R"("claims":0)"), R"("pid":)" + pid,
        std::string(R"("ttl_ms":600000)"), std::string(R"("room":"repo/main")")})
    EXPECT_NE(line.find(field), std::string::npos) << field << " missing in " << line;

  const CliRun text = run_cli(bus, {"who"});
  EXPECT_EQ(text.exit_code, 0);
  ASSERT_EQ(text.lines.size(), 2u);
  EXPECT_TRUE(text.lines[0].starts_with("HANDLE")) << text.lines[0];
  EXPECT_NE(text.lines[0].find("TTL LEFT"), std::string::npos);
  EXPECT_TRUE(text.lines[1].starts_with(handle)) << text.lines[1];
  EXPECT_NE(text.lines[1].find("tester"), std::string::npos);

  // Same session, same handle: the same entry.
  const CliRun again = run_cli(bus, {"--session-pid", pid, "join", "cli-agent"});
  EXPECT_EQ(again.exit_code, 0);
  ASSERT_EQ(again.lines.size(), 1u);
  EXPECT_EQ(again.lines[0], handle);
  EXPECT_EQ(run_cli(bus, {"who", "--json"}).lines.size(), 1u);

  EXPECT_EQ(run_cli(bus, {"leave", handle}).exit_code, 0);
  EXPECT_EQ(run_cli(bus, {"leave", handle}).exit_code, 4);
  const CliRun none = run_cli(bus, {"who"});
  ASSERT_EQ(none.lines.size(), 1u);
  EXPECT_NE(none.lines[0].find("no agents"), std::string::npos) << none.lines[0];

  EXPECT_EQ(run_cli(bus, {"join", "bad handle"}).exit_code, 2);
  EXPECT_EQ(run_cli(bus, {"join", "x", "--ttl", "0"}).exit_code, 2);
  EXPECT_EQ(run_cli(bus, {"join", "x", "--ttl", "soon"}).exit_code, 2);
  EXPECT_EQ(run_cli(bus, {"--session-pid", std::to_string(dead_pid()), "join", "x"}).exit_code, 1);
}

TEST(PresenceCli, WhoSanitizesWhatOthersWrote) {
  TestBus bus("pcli");
  Room room = bus->room(kRoom);
  Presence p(room);
  const std::string me = p.join("clean", "r", "w");
  // A hostile process writes an escape sequence straight into shared memory (join() refuses
  // control characters, so nothing through the API can).
  std::byte* entry = presence_region(room).data() + kHeaderBytes;
  std::memcpy(entry + 64 + 128, "\x1b]0;pwned\x07", 10);  // role field
  const CliRun text = run_cli(bus, {"who"});
  ASSERT_EQ(text.exit_code, 0);
  for (const std::string& line : text.lines) EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
  const CliRun json = run_cli(bus, {"who", "--json"});
  ASSERT_EQ(json.lines.size(), 1u);
  EXPECT_EQ(json.lines[0].find('\x1b'), std::string::npos) << "JSON must escape control characters";
  EXPECT_NE(json.lines[0].find(R"(\u001b)"), std::string::npos) << json.lines[0];
}

}  // namespace
