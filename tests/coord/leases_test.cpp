// Resource leases: all-or-none sets, path ancestry, owners, expiry, dead sessions, audit events,
// and real processes racing through the CLI for overlapping sets.
#include "coord/leases_layout.hpp"
#include "shm/slot_table.hpp"
#include "bus/room_access.hpp"
#include "support/child_process.hpp"
#include "support/expect.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::ChildProcess;
using agentbus::test::TestBus;
using agentbus::test::cli;
using agentbus::test::eventually;
using agentbus::test::expect_error;

namespace {

LeaseInfo granted(const LeaseAcquisition& got) {
  EXPECT_TRUE(got.ok()) << got.reason;
  return got.lease;
}

// A lost race is a result naming the holder, not an exception.
void expect_held(const LeaseAcquisition& got, const std::string& text) {
  EXPECT_EQ(got.status, LeaseStatus::held);
  EXPECT_NE(got.reason.find(text), std::string::npos) << got.reason;
}

LeaseInfo renewed_lease(const LeaseRenewal& r) {
  EXPECT_TRUE(r.ok()) << r.reason;
  return r.lease;
}

void expect_lapsed(const LeaseRenewal& r, const std::string& text) {
  EXPECT_EQ(r.status, RenewStatus::lapsed);
  EXPECT_NE(r.reason.find(text), std::string::npos) << r.reason;
}

// path: resources are resolved against the repository root of the CLI's working directory
// (agentbus/lease_paths.hpp): run the CLI children at the root of a repository of their own, so
// `path:src` means what the library's leases in these tests mean.
class InRepoRoot {
 public:
  InRepoRoot() : previous_(std::filesystem::current_path()) {
    root_ = std::filesystem::temp_directory_path() / ("leases-repo-" + std::to_string(::getpid()));
    std::filesystem::create_directories(root_ / ".git");
    std::filesystem::current_path(root_);
  }
  ~InRepoRoot() {
    std::filesystem::current_path(previous_);
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

 private:
  std::filesystem::path previous_, root_;
};

struct CliRun {
  int exit_code = -1;
  std::vector<std::string> lines;
};

CliRun run_cli(const std::string& bus, std::vector<std::string> args) {
  std::vector<std::string> argv{cli(), "--bus", bus, "--room", "r"};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess child(argv);
  CliRun run;
  for (std::string line = child.read_line(10s); !line.empty(); line = child.read_line(10s)) run.lines.push_back(line);
  run.exit_code = child.wait(10s);
  return run;
}

std::vector<std::string> event_types(Room& room) {
  std::vector<std::string> out;
  Subscription sub = room.subscribe({.from = StartFrom::earliest});
  for (;;) {
    const ReadResult r = sub.next(std::chrono::milliseconds(0));
    if (!r.has_event()) break;
    out.emplace_back(r.event.type);
  }
  return out;
}

}  // namespace

TEST(Leases, AllOrNoneAcquisition) {
  TestBus bus("leases-all");
  Leases leases(bus->room("r"));
  const LeaseInfo a = granted(leases.acquire("alice", {"file:b.txt"}, "editing"));
  // bob wants a free resource and a held one: gets neither.
  expect_held(leases.acquire("bob", {"file:a.txt", "file:b.txt"}), "alice");
  EXPECT_FALSE(leases.holder_of("file:a.txt")) << "a refused acquisition left a resource taken";
  EXPECT_EQ(leases.list().size(), 1u);
  // Once alice releases, bob gets both, canonically sorted and de-duplicated.
  EXPECT_TRUE(leases.release(a.id, "alice"));
  const LeaseInfo b = granted(leases.acquire("bob", {"file:b.txt", "file:a.txt", "file:b.txt"}));
  EXPECT_EQ(b.resources, (std::vector<std::string>{"file:a.txt", "file:b.txt"}));
  EXPECT_GT(b.id, a.id);  // fencing tokens rise
  ASSERT_TRUE(leases.holder_of("file:a.txt"));
  EXPECT_EQ(leases.holder_of("file:a.txt")->lease.owner, "bob");
}

TEST(Leases, PathAncestryConflictsBothWays) {
  TestBus bus("leases-path");
  Leases leases(bus->room("r"));
  const LeaseInfo dir = granted(leases.acquire("alice", {"path:src"}, "refactor"));
  const LeaseAcquisition refused = leases.acquire("bob", {"path:src/lexer.cpp"});
  ASSERT_EQ(refused.status, LeaseStatus::held) << "descendant of a leased directory was granted";
  EXPECT_EQ(refused.resource, "path:src/lexer.cpp");
  EXPECT_EQ(refused.holder.resource, "path:src");
  EXPECT_EQ(refused.holder.lease.id, dir.id);
  // agentroom style: the resource, the holder, when it expires.
  const std::string& msg = refused.reason;
  EXPECT_NE(msg.find("path:src/lexer.cpp"), std::string::npos) << msg;
  EXPECT_NE(msg.find("alice"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expires in"), std::string::npos) << msg;

  EXPECT_TRUE(leases.acquire("bob", {"path:srcx/main.cpp"}).ok());  // a prefix, not an ancestor
  EXPECT_TRUE(leases.acquire("bob", {"path:sr"}).ok());
  leases.release(dir.id, "alice");
  const LeaseInfo file = granted(leases.acquire("bob", {"path:src/lexer/a.cpp"}));
  expect_held(leases.acquire("alice", {"path:src"}), "path:src/lexer/a.cpp");
  expect_held(leases.acquire("alice", {"path:src/lexer"}), "bob");
  EXPECT_TRUE(leases.acquire("alice", {"path:src/lexer/b.cpp"}).ok());
  EXPECT_TRUE(lease_resources_conflict("path:a/b", "path:a"));
  EXPECT_FALSE(lease_resources_conflict("path:a/b", "path:a/bc"));
  (void)file;
}

TEST(Leases, OtherKindsConflictOnlyWhenEqual) {
  TestBus bus("leases-kinds");
  Leases leases(bus->room("r"));
  ASSERT_TRUE(leases.acquire("alice", {"branch:main", "db:users", "file:src"}).ok());
  expect_held(leases.acquire("bob", {"branch:main"}), "branch:main");
  expect_held(leases.acquire("bob", {"db:users"}), "db:users");
  EXPECT_TRUE(leases.acquire("bob", {"branch:main/x", "db:users2", "file:src/a.cpp", "path:src"}).ok());
  EXPECT_TRUE(leases.acquire("carol", {"branch:dev"}).ok());
}

TEST(Leases, BadResourcesAreRefused) {
  TestBus bus("leases-bad");
  Leases leases(bus->room("r"));
  for (const std::string bad : {"path:/", "path://etc", "path:/etc/../x", "path:src/../x", "path:..", "path:./src", "path:src/./a",
                                "path:src//a", "path:src/", "path:src/*.cpp", "nokind", ":x", "path:",
                                "Path:x", "path:a b", "file:a\nb"})
    expect_error([&] { (void)leases.acquire("alice", {"file:ok", bad}); }, Errc::bad_name, "resource");
  EXPECT_TRUE(leases.list().empty());
  expect_error([&] { (void)leases.acquire("alice", {}); }, Errc::invalid_argument, "at least one");
  expect_error([&] { (void)leases.acquire("", {"file:x"}); }, Errc::invalid_argument, "owner");
  expect_error([&] { (void)leases.acquire("alice", {"file:x"}, "", {.ttl = 25h}); }, Errc::invalid_argument, "24h");
  std::vector<std::string> many;
  for (int i = 0; i < 40; ++i) many.push_back("file:f" + std::to_string(i));
  expect_error([&] { (void)leases.acquire("alice", many); }, Errc::too_large, "32");
}

TEST(Leases, RenewAndReleaseCheckTheOwner) {
  TestBus bus("leases-owner");
  Room room = bus->room("r");
  Leases leases(room);
  const LeaseInfo l = granted(leases.acquire("alice", {"path:docs"}, "docs", {.ttl = 1s}));
  expect_error([&] { (void)leases.renew(l.id, "bob", 1min); }, Errc::conflict, "held by alice");
  expect_error([&] { (void)leases.release(l.id, "bob"); }, Errc::conflict, "held by alice");
  const LeaseInfo renewed = renewed_lease(leases.renew(l.id, "alice", 1h));
  EXPECT_EQ(renewed.ttl, 1h);
  ASSERT_TRUE(leases.find(l.id));
  EXPECT_GT(leases.find(l.id)->expires_in, 50min);
  EXPECT_TRUE(leases.release(l.id, "alice"));
  EXPECT_FALSE(leases.release(l.id, "alice"));  // already gone: not an error
  EXPECT_FALSE(leases.find(l.id));
  EXPECT_EQ(leases.renew(l.id, "alice", 1min).status, RenewStatus::gone);
  EXPECT_EQ(event_types(room), (std::vector<std::string>{"LEASE_ACQUIRED", "LEASE_RENEWED", "LEASE_RELEASED"}));
}

TEST(Leases, AuditEventsCarryOwnerAndPayload) {
  TestBus bus("leases-audit");
  Room room = bus->room("r");
  Leases leases(room);
  const LeaseInfo l = granted(leases.acquire("alice", {"path:b", "path:a"}, "why \"quoted\"", {.ttl = 90s}));
  Subscription sub = room.subscribe({.from = StartFrom::earliest});
  const ReadResult r = sub.next(std::chrono::milliseconds(100));
  ASSERT_TRUE(r.has_event());
  const EventView* ev = &r.event;
  EXPECT_EQ(std::string(ev->type), "LEASE_ACQUIRED");
  EXPECT_EQ(std::string(ev->agent), "alice");
  const std::string payload(ev->payload);
  EXPECT_NE(payload.find("\"lease\":" + std::to_string(l.id)), std::string::npos) << payload;
  EXPECT_NE(payload.find("\"resources\":[\"path:a\",\"path:b\"]"), std::string::npos) << payload;
  EXPECT_NE(payload.find("\"purpose\":\"why \\\"quoted\\\"\""), std::string::npos) << payload;
  EXPECT_NE(payload.find("\"ttl_ms\":90000"), std::string::npos) << payload;
}

TEST(Leases, LapsedLeaseIsFreeAndCannotBeRenewed) {
  TestBus bus("leases-ttl");
  Leases leases(bus->room("r"));
  const LeaseInfo l = granted(leases.acquire("alice", {"path:src"}, "", {.ttl = 50ms}));
  expect_held(leases.acquire("bob", {"path:src/a"}), "alice");
  ASSERT_TRUE(eventually([&] { return leases.list().empty(); }));
  expect_lapsed(leases.renew(l.id, "alice", 1min), "lapsed");
  const LeaseInfo b = granted(leases.acquire("bob", {"path:src/a"}));
  EXPECT_EQ(leases.holder_of("path:src")->lease.id, b.id);
  EXPECT_FALSE(leases.release(l.id, "alice"));
}

TEST(Leases, KilledSessionFreesItsLease) {
  TestBus bus("leases-kill");
  Leases leases(bus->room("r"));
  ChildProcess session({"/bin/sleep", "1000"});
  const LeaseInfo l = granted(leases.acquire("alice", {"path:src"}, "", {.ttl = 1h, .session_pid = session.pid()}));
  EXPECT_EQ(l.session_pid, session.pid());
  expect_held(leases.acquire("bob", {"path:src"}), "alice");
  ::kill(session.pid(), SIGKILL);
  ASSERT_EQ(session.wait(5s), 128 + SIGKILL);
  ASSERT_TRUE(eventually([&] { return leases.list().empty(); }));
  EXPECT_TRUE(leases.acquire("bob", {"path:src"}).ok());
  EXPECT_EQ(leases.renew(l.id, "alice", 1min).status, RenewStatus::gone);
}

TEST(Leases, FullTableIsNoSpaceAndLapsedEntriesAreReused) {
  TestBus bus("leases-full");
  Leases leases(bus->room("r"), {.capacity = 4});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(leases.acquire("alice", {"file:" + std::to_string(i)}, "", {.ttl = 100ms}).ok());
  expect_error([&] { (void)leases.acquire("alice", {"file:x"}); }, Errc::no_space, "full");
  ASSERT_TRUE(eventually([&] { return leases.list().empty(); }));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(leases.acquire("bob", {"file:y" + std::to_string(i)}).ok());
  EXPECT_EQ(leases.counters().expired_reclaimed, 4u);
  EXPECT_EQ(leases.list().size(), 4u);
  Leases again(bus->room("r"), {.capacity = 99, .create = false});
  EXPECT_EQ(again.capacity(), 4u);  // the creator's capacity
}

TEST(Leases, CorruptHeaderIsRefused) {
  TestBus bus("leases-corrupt");
  Room room = bus->room("r");
  { Leases leases(room); }
  auto region = shm::open_region(*RoomAccess::segment(room), "r#leases", 0, false, [](std::span<std::byte>) {});
  auto* h = reinterpret_cast<coord::leases::LeasesHeader*>(region.data());
  h->capacity = 1u << 30;
  expect_error([&] { Leases again(room); }, Errc::corrupt, "destroy");
  h->capacity = 256;
  h->magic = 0;
  expect_error([&] { Leases again(room); }, Errc::corrupt, "bad header");
  Room other = bus->room("other");
  expect_error([&] { Leases none(other, {.create = false}); }, Errc::not_found, "no lease table");
}

TEST(Leases, AcquisitionLeftHalfDoneByADeadProcessIsRolledBack) {
  TestBus bus("leases-rollback");
  Room room = bus->room("r");
  Leases leases(room, {.capacity = 2});
  ChildProcess victim({"/bin/sleep", "1000"});
  ::kill(victim.pid(), SIGKILL);
  ASSERT_EQ(victim.wait(5s), 128 + SIGKILL);
  // Forge what a process killed between announcing and winning leaves: both entries acquiring.
  auto region = shm::open_region(*RoomAccess::segment(room), "r#leases", 0, false, [](std::span<std::byte>) {});
  auto* h = reinterpret_cast<coord::leases::LeasesHeader*>(region.data());
  for (std::uint32_t i = 0; i < 2; ++i) {
    auto* e = reinterpret_cast<coord::leases::LeaseEntry*>(region.data() + h->entries_offset + i * h->entry_stride);
    const char res[] = "path:src";
    std::memcpy(e->fields.resources, res, sizeof res - 1);
    e->fields.resources_len = sizeof res - 1;
    e->token.store(1000 + i);
    e->state.store(coord::leases::make_state(coord::leases::Phase::acquiring, 1,
                                             {static_cast<std::uint32_t>(victim.pid())}));
  }
  const LeaseInfo l = granted(leases.acquire("bob", {"path:src/a.cpp"}));
  EXPECT_EQ(l.owner, "bob");
  EXPECT_GE(leases.counters().transitions_rolled_back, 1u);
}

TEST(Leases, ThreadsRacingForOverlappingSetsNeverShare) {
  TestBus bus("leases-threads");
  Leases leases(bus->room("r"));
  constexpr int kThreads = 8, kRounds = 200;
  std::atomic<int> inside{0}, overlaps{0}, wins{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      const std::vector<std::string> set = t % 2 ? std::vector<std::string>{"path:src"}
                                                  : std::vector<std::string>{"path:docs", "path:src/f" + std::to_string(t)};
      for (int r = 0; r < kRounds; ++r) {
        try {
          const LeaseAcquisition got = leases.acquire("t" + std::to_string(t), set);
          if (!got.ok()) continue;  // lost the race: a result, not an error
          if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);  // every pair of sets conflicts (src, docs)
          wins.fetch_add(1);
          std::this_thread::yield();
          inside.fetch_sub(1);
          leases.release(got.lease.id, "t" + std::to_string(t));
        } catch (const Error& e) {
          ADD_FAILURE() << e.what();
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_GT(wins.load(), 0);
  EXPECT_TRUE(leases.list().empty());
}

TEST(Leases, OneWinnerAmongProcessesAcquiringOverlappingPaths) {
  TestBus bus("leases-procs");
  ChildProcess session({"/bin/sleep", "1000"});
  // Four pairwise-conflicting sets (ancestry or equality through src/a.cpp) and two that
  // conflict with nobody: exactly one of the four and both of the two must win, every round.
  const std::vector<std::vector<std::string>> sets = {
      {"path:src"}, {"path:src/a.cpp", "path:docs"}, {"path:docs/guide.md", "path:src/a.cpp"},
      {"path:src/a.cpp", "branch:main"}, {"path:srcx/main.cpp"}, {"branch:dev", "path:tests"}};
  for (int round = 0; round < 5; ++round) {
    std::vector<std::unique_ptr<ChildProcess>> racers;
    for (std::size_t p = 0; p < sets.size(); ++p) {
      std::vector<std::string> argv{cli(), "--bus", bus.name(), "--room", "r", "--session-pid",
                                    std::to_string(session.pid()), "lease", "acquire", "--agent",
                                    "w" + std::to_string(p) + "-" + std::to_string(round), "--ttl", "1m"};
      argv.insert(argv.end(), sets[p].begin(), sets[p].end());
      racers.push_back(std::make_unique<ChildProcess>(argv));
    }
    int group_winners = 0;
    std::vector<std::string> ids;
    for (std::size_t p = 0; p < racers.size(); ++p) {
      const std::string out = racers[p]->read_line(10s);
      const int rc = racers[p]->wait(10s);
      if (p < 4) {
        EXPECT_TRUE(rc == 0 || rc == 3) << "acquire exited " << rc;
        if (rc == 0) ++group_winners;
      } else {
        EXPECT_EQ(rc, 0) << "a non-conflicting set was refused in round " << round;
      }
      if (rc == 0) ids.push_back(out);
    }
    EXPECT_EQ(group_winners, 1) << "round " << round;
    Leases leases(bus->room("r"), {.create = false});
    const auto live = leases.list();
    EXPECT_EQ(live.size(), ids.size());
    for (const LeaseInfo& l : live) EXPECT_EQ(l.session_pid, session.pid());
    for (const LeaseInfo& l : live) EXPECT_TRUE(leases.release(l.id, l.owner));
  }
}

TEST(LeasesCli, AcquireListRenewReleaseAndExitCodes) {
  const InRepoRoot in_repo;
  TestBus bus("leases-cli");
  ChildProcess session({"/bin/sleep", "1000"});
  const std::string pid = std::to_string(session.pid());
  const CliRun got = run_cli(bus.name(), {"--session-pid", pid, "lease", "acquire", "path:src", "--agent", "alice",
                                          "--purpose", "refactor lexer"});
  ASSERT_EQ(got.exit_code, 0);
  ASSERT_EQ(got.lines.size(), 1u);
  const std::string id = got.lines[0];
  EXPECT_EQ(run_cli(bus.name(), {"--session-pid", pid, "lease", "acquire", "path:src/x.cpp", "--agent", "bob"}).exit_code, 3);
  EXPECT_EQ(run_cli(bus.name(), {"lease", "acquire", "path:src/*.cpp", "--agent", "bob"}).exit_code, 2);
  const CliRun list = run_cli(bus.name(), {"lease", "list", "--json"});
  ASSERT_EQ(list.lines.size(), 1u);
  EXPECT_NE(list.lines[0].find("\"owner\":\"alice\""), std::string::npos) << list.lines[0];
  EXPECT_NE(list.lines[0].find("\"purpose\":\"refactor lexer\""), std::string::npos) << list.lines[0];
  EXPECT_EQ(run_cli(bus.name(), {"lease", "renew", id, "--agent", "bob"}).exit_code, 3);
  EXPECT_EQ(run_cli(bus.name(), {"lease", "renew", id, "--agent", "alice", "--ttl", "20m"}).exit_code, 0);
  EXPECT_EQ(run_cli(bus.name(), {"lease", "renew", "999999", "--agent", "alice"}).exit_code, 4);
  EXPECT_EQ(run_cli(bus.name(), {"lease", "release", id, "--agent", "bob"}).exit_code, 3);
  EXPECT_EQ(run_cli(bus.name(), {"lease", "release", id, "--agent", "alice"}).exit_code, 0);
  const CliRun empty = run_cli(bus.name(), {"lease", "list"});
  ASSERT_EQ(empty.lines.size(), 1u);
  EXPECT_EQ(empty.lines[0], "(no leases)");
}

TEST(LeasesCli, GuardExitCodes) {
  const InRepoRoot in_repo;
  // No bus at all: exit 0, and nothing is created.
  const std::string nobus = agentbus::test::unique_bus_name("leases-guard-none");
  EXPECT_EQ(run_cli(nobus, {"guard", "path:src/a.cpp", "--agent", "me"}).exit_code, 0);
  BusOptions probe;
  probe.name = nobus;
  probe.create = false;
  expect_error([&] { (void)Bus::open(probe); }, Errc::not_found, "");

  TestBus bus("leases-guard");
  Room room = bus->room("r");
  EXPECT_EQ(run_cli(bus.name(), {"guard", "path:src/a.cpp"}).exit_code, 0);  // room, no lease table
  Leases leases(room);
  ChildProcess session({"/bin/sleep", "1000"});
  ASSERT_TRUE(leases.acquire("alice", {"path:src"}, "refactor", {.ttl = 1h, .session_pid = session.pid()}).ok());
  EXPECT_EQ(run_cli(bus.name(), {"guard", "path:src/a.cpp", "--agent", "bob"}).exit_code, 3);
  EXPECT_EQ(run_cli(bus.name(), {"guard", "path:docs", "path:src/a.cpp", "--agent", "bob"}).exit_code, 3);
  EXPECT_EQ(run_cli(bus.name(), {"guard", "path:src/a.cpp", "--agent", "alice"}).exit_code, 0);
  EXPECT_EQ(run_cli(bus.name(), {"guard", "path:docs/x.md", "branch:main", "--agent", "bob"}).exit_code, 0);
  EXPECT_EQ(run_cli(bus.name(), {"guard", "path:src/*.cpp", "--agent", "bob"}).exit_code, 2);
  EXPECT_EQ(run_cli(bus.name(), {"guard", "path:docs/../src/a.cpp", "--agent", "bob"}).exit_code, 3);  // normalised
  ::kill(session.pid(), SIGKILL);
  ASSERT_EQ(session.wait(5s), 128 + SIGKILL);
  ASSERT_TRUE(eventually([&] { return leases.list().empty(); }));
  EXPECT_EQ(run_cli(bus.name(), {"guard", "path:src/a.cpp", "--agent", "bob"}).exit_code, 0);
}
