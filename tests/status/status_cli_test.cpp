// The status CLI (real processes): post/recent/summary/watch, export/import, and cross-process
// notification of a StatusBus subscriber.
#include "support/child_process.hpp"
#include "support/expect.hpp"
#include "support/run_cli.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::ChildProcess;
using agentbus::test::TestBus;
using agentbus::test::cli;
using agentbus::test::eventually;
using agentbus::test::run_cli;

TEST(status_cli, PostRecentSummaryWithFiltersAndExitCodes) {
  TestBus bus("st-cli");
  std::string out;
  ASSERT_EQ(run_cli(bus, {"status", "recent"}, &out), 0);
  EXPECT_EQ(out, "No activity yet.\n");
  ASSERT_EQ(run_cli(bus, {"status", "summary"}, &out), 0);
  EXPECT_EQ(out, "No status entries.\n");

  ASSERT_EQ(run_cli(bus, {"status", "post", "search_google", "ok", "--detail", "Found 7 results", "--agent", "exec"}, &out), 0);
  const EventId id = std::stoull(out);
  ASSERT_EQ(run_cli(bus, {"status", "post", "read", "failed", "--detail", "evil \x1b]0;title\x07", "--agent", "exec"}), 0);
  ASSERT_EQ(run_cli(bus, {"status", "post", "task", "completed", "--metadata", R"({"pr": 42})", "--agent", "fixer"}), 0);
  EXPECT_EQ(run_cli(bus, {"status", "post", "x", "done"}), 2) << "unknown status is a usage error";
  EXPECT_EQ(run_cli(bus, {"status", "post", "x", "ok", "--metadata", "[1]"}), 2);
  EXPECT_EQ(run_cli(bus, {"status", "post", "x", "ok", "--metadata", "{oops"}), 2);

  ASSERT_EQ(run_cli(bus, {"status", "recent"}, &out), 0);
  EXPECT_NE(out.find("] exec: search_google \u2192 ok | Found 7 results\n"), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "escape sequences are stripped";
  ASSERT_EQ(run_cli(bus, {"status", "recent", "--agent", "exec", "--status", "failed", "--json"}, &out), 0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find(R"("agent_id":"exec","action":"read","status":"failed")"), std::string::npos) << out;
  ASSERT_EQ(run_cli(bus, {"status", "recent", "-n", "1", "--json"}, &out), 0);
  EXPECT_NE(out.find(R"("metadata":{"pr":42}})"), std::string::npos) << out;
  ASSERT_EQ(run_cli(bus, {"status", "recent", "--json", "-n", "3"}, &out), 0);
  EXPECT_EQ(out.rfind("{\"id\":" + std::to_string(id) + ",\"ts\":\"", 0), 0u) << out;

  ASSERT_EQ(run_cli(bus, {"status", "summary"}, &out), 0);
  EXPECT_NE(out.find("Status Log"), std::string::npos) << out;
  EXPECT_NE(out.find("   1. [+] exec   search_google\n      Found 7 results\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Total: 3 entries (1 ok, 1 failed, 1 completed)"), std::string::npos) << out;
}

TEST(status_cli, AnEntryPostedByAnotherProcessReachesASubscriberCallback) {
  TestBus bus("st-xproc");
  StatusBus sb(bus->room("r"));
  std::mutex mu;
  std::vector<StatusEntry> got;
  StatusSubscription sub = sb.subscribe([&](const StatusEntry& e) {
    std::lock_guard lock(mu);
    got.push_back(e);
  });
  ASSERT_EQ(run_cli(bus, {"status", "post", "build", "completed", "--detail", "all green", "--agent", "ci",
                          "--metadata", R"({"secs":12})"}),
            0);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return got.size() == 1;
  }));
  std::lock_guard lock(mu);
  EXPECT_EQ(got[0].agent_id, "ci");
  EXPECT_EQ(got[0].action, "build");
  EXPECT_EQ(got[0].status, StatusLevel::completed);
  EXPECT_EQ(got[0].detail, "all green");
  EXPECT_EQ(got[0].metadata, R"({"secs":12})");
}

TEST(status_cli, WatchPrintsEachEntryAsItArrivesFromAnotherProcess) {
  TestBus bus("st-watch");
  StatusBus sb(bus->room("r"));
  sb.post("exec", "backlog", "info");
  ChildProcess watch({cli(), "--bus", bus.name(), "--room", "r", "status", "watch", "-n", "1", "--json", "--timeout", "20s"});
  // The backlog line proves the watcher has subscribed: what follows must arrive live.
  const std::string first = watch.read_line(10s);
  EXPECT_NE(first.find(R"("action":"backlog")"), std::string::npos) << first;
  sb.room().publish("chatter", "x", "not a status entry");
  sb.post("exec", "live", "failed", "it broke");
  const std::string second = watch.read_line(10s);
  EXPECT_NE(second.find(R"("agent_id":"exec","action":"live","status":"failed","detail":"it broke")"),
            std::string::npos)
      << second;
  ::kill(watch.pid(), SIGTERM);
  EXPECT_EQ(watch.wait(10s), 0);

  // Text mode, filtered.
  ChildProcess text({cli(), "--bus", bus.name(), "--room", "r", "status", "watch", "-n", "1", "--status", "ok",
                     "--timeout", "20s"});
  sb.post("exec", "ready-marker", "ok");  // may land before or after it subscribed: -n 1 or live
  const std::string marker = text.read_line(10s);
  EXPECT_NE(marker.find("exec: ready-marker \u2192 ok"), std::string::npos) << marker;
  sb.post("exec", "skipped", "pending");
  sb.post("exec", "shown", "ok", "yes");
  const std::string shown = text.read_line(10s);
  EXPECT_NE(shown.find("] exec: shown \u2192 ok | yes"), std::string::npos) << shown;
  ::kill(text.pid(), SIGINT);
  EXPECT_EQ(text.wait(10s), 0);
}

TEST(status_cli, ExportAndImportThroughTheCli) {
  TestBus bus("st-cli-jsonl");
  StatusBus sb(bus->room("r"));
  sb.post("exec", "a", "ok", "first");
  sb.post("exec", "b", "completed", "second", R"({"k":[1,2]})");
  char tmpl[] = "/tmp/agentbus-status-cli-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string file = dir + "/out.jsonl";
  std::string out;
  ASSERT_EQ(run_cli(bus, {"export", "--jsonl", file}, &out), 0);
  EXPECT_NE(out.find("exported 2 entries"), std::string::npos) << out;

  std::vector<std::string> argv{cli(), "--bus", bus.name(), "--room", "copy", "import", file};
  {
    ChildProcess p(argv);
    EXPECT_EQ(p.read_line(10s), "imported 2 entries");
    EXPECT_EQ(p.wait(10s), 0);
  }
  std::string copied;
  {
    ChildProcess p({cli(), "--bus", bus.name(), "--room", "copy", "export", "--jsonl", "-"});
    for (std::string line; !(line = p.read_line(10s)).empty();) copied += line + "\n";
    EXPECT_EQ(p.wait(10s), 0);
  }
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(copied, ss.str());

  {
    std::ofstream bad(file, std::ios::app);
    bad << "{broken\n";
  }
  {
    ChildProcess p({cli(), "--bus", bus.name(), "--room", "copy2", "import", file});
    EXPECT_EQ(p.read_line(10s), "imported 2 entries, skipped 1 malformed lines");
    EXPECT_EQ(p.wait(10s), 0);
  }
  {
    ChildProcess p({cli(), "--bus", bus.name(), "--room", "copy3", "import", file, "--strict"});
    EXPECT_EQ(p.wait(10s), 1);
  }
  {
    ChildProcess p({cli(), "--bus", bus.name(), "--room", "copy3", "import", dir + "/absent.jsonl"});
    EXPECT_EQ(p.wait(10s), 4);
  }
  std::filesystem::remove_all(dir);
}

// What each command's --help says its -n default is, it does: recent 10, summary 500, watch 0.
TEST(status_cli, CountDefaultsInHelpAreTheOnesThatApply) {
  TestBus bus("st-defaults");
  StatusBus sb(bus->room("r"));
  for (int i = 0; i < 12; ++i) sb.post_sync("exec", "step" + std::to_string(i), "ok");
  std::string out;
  const auto help_default = [&](const std::string& command) {
    EXPECT_EQ(run_cli(bus, {"status", command, "--help"}, &out), 0);
    const auto at = out.find("-n,--count");
    const auto eq = out.find('=', at);
    return at == std::string::npos || eq == std::string::npos ? std::string("<none>")
                                                              : out.substr(eq + 1, out.find_first_of(" \n", eq) - eq - 1);
  };
  EXPECT_EQ(help_default("recent"), "10");
  ASSERT_EQ(run_cli(bus, {"status", "recent", "--json"}, &out), 0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 10) << out;

  EXPECT_EQ(help_default("summary"), "500");
  ASSERT_EQ(run_cli(bus, {"status", "summary"}, &out), 0);
  EXPECT_NE(out.find("Total: 12 entries"), std::string::npos) << out;

  EXPECT_EQ(help_default("watch"), "0");
  ASSERT_EQ(run_cli(bus, {"status", "watch", "--json", "--timeout", "0"}, &out), 0);
  EXPECT_EQ(out, "") << "no backlog by default";
  ASSERT_EQ(run_cli(bus, {"status", "watch", "--json", "-n", "3", "--timeout", "0"}, &out), 0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3) << out;
}

TEST(status_cli, RecentAndSummaryOfZeroEntriesAreUsageErrors) {
  TestBus bus("st-zero");
  StatusBus(bus->room("r")).post_sync("exec", "a", "ok");
  std::string out;
  EXPECT_EQ(run_cli(bus, {"status", "recent", "-n", "0"}, &out), 2);
  EXPECT_EQ(out, "");
  EXPECT_EQ(run_cli(bus, {"status", "summary", "-n", "0"}, &out), 2);
  EXPECT_EQ(run_cli(bus, {"status", "recent", "-n", "1"}, &out), 0);
  EXPECT_NE(out.find("exec: a"), std::string::npos) << out;
}

// stdout and stderr of `agentbus --bus B --room R import FILE`, through a real shell.
int import_through_shell(const TestBus& bus, const std::string& room, const std::string& file, std::string* both) {
  ChildProcess p({"/bin/bash", "-c", "\"$0\" --bus \"$1\" --room \"$2\" import \"$3\" 2>&1", cli(), bus.name(), room, file});
  *both = p.read_all(10s);
  return p.wait(10s);
}

TEST(status_cli, ImportOfAFileWithNoEntryFailsWithOneCleanMessage) {
  TestBus bus("st-import-none");
  char tmpl[] = "/tmp/agentbus-status-import-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string file = dir + "/not-status.jsonl";
  {
    std::ofstream f(file);
    f << "hello\n{\"not\":\"an entry\"}\n[1,2]\n";
  }
  std::string both;
  EXPECT_EQ(import_through_shell(bus, "r", file, &both), 1) << both;
  EXPECT_EQ(both.find("error: warning"), std::string::npos) << both;
  EXPECT_NE(both.find("\nerror: imported nothing from " + file), std::string::npos) << both;
  EXPECT_EQ(both.rfind("warning: ", 0), 0u) << "each skipped line is a plain warning: " << both;
  EXPECT_EQ(both.find("imported 0 entries"), std::string::npos) << both;

  // One good line among bad ones is a success, with warnings that are not errors.
  {
    std::ofstream f(file, std::ios::app);
    f << R"({"ts":"2026-01-01T00:00:00Z","agent_id":"exec","action":"a","status":"ok","detail":"","metadata":{}})" << "\n";
  }
  EXPECT_EQ(import_through_shell(bus, "r2", file, &both), 0) << both;
  EXPECT_EQ(both.find("error:"), std::string::npos) << both;
  EXPECT_NE(both.find("imported 1 entries, skipped 3 malformed lines"), std::string::npos) << both;

  // An empty file imports nothing and that is fine: there was nothing to import.
  { std::ofstream f(file, std::ios::trunc); }
  EXPECT_EQ(import_through_shell(bus, "r3", file, &both), 0) << both;
  std::filesystem::remove_all(dir);
}
