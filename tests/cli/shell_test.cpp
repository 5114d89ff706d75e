// shell_test.cpp — the CLI as shell scripts and editors drive it (issue 9, defects 7, 8, 9):
// `path:` leases and the default room from any directory of a repository, `post --stdin`
// batches and record limits, size options meeting an existing room, `destroy` with followers
// attached, and what `top --once` shows. Every test runs the real binary on its own bus.
#include "cli_process.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using cli_test::CliCall;
using cli_test::CliProcess;
using cli_test::CliResult;
using cli_test::lines;

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

class ShellTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bus_ = agentbus::test::fresh_bus_name("shelltest");
    // A repository of its own: /tmp holds no .git above it, so the root is exactly `repo_`.
    repo_ = fs::temp_directory_path() / ("shellrepo-" + bus_);
    fs::create_directories(repo_ / "src" / "parser");
    fs::create_directories(repo_ / ".git");
  }
  void TearDown() override {
    agentbus::Bus::destroy(bus_);
    std::error_code ec;
    fs::remove_all(repo_, ec);
  }

  // The CLI on this test's bus, run in `cwd` (default: the repository root), default room.
  CliResult at(const fs::path& cwd, std::vector<std::string> args, std::string stdin_data = {}) {
    args.insert(args.begin(), {"--bus", bus_});
    return cli_test::run_cli({std::move(args), {}, std::move(stdin_data), cwd.string()});
  }
  CliResult run(std::vector<std::string> args, std::string stdin_data = {}) {
    return at(repo_, std::move(args), std::move(stdin_data));
  }
  CliProcess start(std::vector<std::string> args) {
    args.insert(args.begin(), {"--bus", bus_});
    return CliProcess({std::move(args), {}, {}, repo_.string()});
  }

  std::string bus_;
  fs::path repo_;
};

using cli_paths = ShellTest;
using cli_batch = ShellTest;
using cli_sizes = ShellTest;
using cli_destroy_follow = ShellTest;
using cli_top_shell = ShellTest;

// ---- defect 7: path: leases and rooms from anywhere in the repository --------------------------

TEST_F(cli_paths, guard_from_a_subdirectory_meets_a_lease_taken_at_the_root) {
  ASSERT_EQ(run({"lease", "acquire", "path:src/parser", "--agent", "alice"}).exit_code, 0);
  const fs::path sub = repo_ / "src";
  // The case: an editor's absolute path, from a subdirectory.
  const CliResult absolute = at(sub, {"guard", "path:" + (sub / "parser" / "x.cpp").string(), "--agent", "bob"});
  EXPECT_EQ(absolute.exit_code, 3) << absolute.err;
  EXPECT_TRUE(contains(absolute.err, "path:src/parser/x.cpp is leased by alice")) << absolute.err;
  // Relative to the subdirectory, with the clutter a script produces.
  EXPECT_EQ(at(sub, {"guard", "path:parser/y.cpp", "--agent", "bob"}).exit_code, 3);
  EXPECT_EQ(at(sub, {"guard", "path:.//parser/./z/../y.cpp", "--agent", "bob"}).exit_code, 3);
  EXPECT_EQ(at(sub / "parser", {"guard", "path:.", "--agent", "bob"}).exit_code, 3);
  // Elsewhere in the repository: free; the owner itself: free.
  EXPECT_EQ(at(sub, {"guard", "path:../docs/guide.md", "--agent", "bob"}).exit_code, 0);
  EXPECT_EQ(at(sub / "parser", {"guard", "path:x.cpp", "--agent", "alice"}).exit_code, 0);
  // A lease taken from a subdirectory is stored repo-relative.
  ASSERT_EQ(at(sub, {"lease", "acquire", "path:../docs", "--agent", "carol"}).exit_code, 0);
  EXPECT_TRUE(contains(run({"lease", "list"}).out, "carol  path:docs")) << run({"lease", "list"}).out;
}

TEST_F(cli_paths, paths_outside_the_repository_stay_absolute) {
  const fs::path outside = fs::temp_directory_path() / ("shell-outside-" + std::to_string(getpid()));
  ASSERT_EQ(at(repo_ / "src", {"lease", "acquire", "path:" + outside.string() + "/", "--agent", "alice"}).exit_code, 0);
  const CliResult list = run({"lease", "list"});
  EXPECT_TRUE(contains(list.out, "path:" + outside.string() + "  ")) << list.out;
  EXPECT_EQ(at(repo_ / "src" / "parser", {"guard", "path:" + (outside / "a.txt").string(), "--agent", "bob"}).exit_code, 3);
  // Same spelling relative to the repository: a different place.
  EXPECT_EQ(run({"guard", "path:" + outside.filename().string(), "--agent", "bob"}).exit_code, 0);
  // The root itself is not a resource.
  const CliResult root = at(repo_ / "src", {"guard", "path:..", "--agent", "bob"});
  EXPECT_EQ(root.exit_code, 2);
  EXPECT_TRUE(contains(root.err, "repository root")) << root.err;
}

TEST_F(cli_paths, default_room_is_the_repository_root_name_from_any_subdirectory) {
  const std::string room = repo_.filename().string() + "/main";
  ASSERT_EQ(at(repo_ / "src" / "parser", {"post", "note", "from-deep"}).exit_code, 0);
  ASSERT_EQ(at(repo_ / "src", {"post", "note", "from-src"}).exit_code, 0);
  const CliResult tail = cli_test::run_cli({{"--bus", bus_, "--room", room, "tail"}, {}, {}, {}});
  EXPECT_TRUE(contains(tail.out, "from-deep") && contains(tail.out, "from-src")) << tail.out << tail.err;
}

TEST_F(cli_paths, a_path_through_a_symlink_to_the_repository_is_inside_it) {
  // A shell's logical $PWD under a linked directory, while the CLI's cwd is the real one.
  const fs::path link = fs::temp_directory_path() / ("shelllink-" + std::to_string(getpid()));
  fs::remove(link);
  fs::create_directory_symlink(repo_, link);
  ASSERT_EQ(run({"lease", "acquire", "path:src/parser", "--agent", "alice"}).exit_code, 0);
  const CliResult r = at(repo_ / "src", {"guard", "path:" + (link / "src/parser/x.cpp").string(), "--agent", "bob"});
  fs::remove(link);
  EXPECT_EQ(r.exit_code, 3) << r.err;
}

TEST_F(cli_paths, a_worktree_git_file_marks_the_root) {
  fs::remove(repo_ / ".git");
  std::ofstream(repo_ / ".git") << "gitdir: /elsewhere/.git/worktrees/x\n";
  ASSERT_EQ(run({"lease", "acquire", "path:src", "--agent", "alice"}).exit_code, 0);
  EXPECT_EQ(at(repo_ / "src" / "parser", {"guard", "path:lexer.cpp", "--agent", "bob"}).exit_code, 3);
}

// ---- defect 9: batches from the shell ---------------------------------------------------------

TEST_F(cli_batch, stdin_publishes_one_event_per_line) {
  const CliResult post = run({"--room", "b", "post", "ITEM", "--stdin"}, "first\n\nsecond\r\nthird");
  ASSERT_EQ(post.exit_code, 0) << post.err;
  EXPECT_EQ(lines(post.out).size(), 3u) << post.out;  // one id per published line; the empty one skipped
  EXPECT_TRUE(std::regex_match(post.out, std::regex("([0-9]+\n){3}"))) << post.out;
  const CliResult tail = run({"--room", "b", "tail", "--json"});
  const std::vector<std::string> events = lines(tail.out);
  ASSERT_EQ(events.size(), 3u) << tail.out;
  EXPECT_TRUE(contains(events[0], "\"payload\":\"first\"")) << events[0];
  EXPECT_TRUE(contains(events[1], "\"payload\":\"second\"")) << events[1];  // no \r
  EXPECT_TRUE(contains(events[2], "\"payload\":\"third\"")) << events[2];   // no final newline needed
}

TEST_F(cli_batch, stdin_lines_go_out_as_one_batch) {
  // publish_batch stamps every event of a batch with one timestamp; one publish per line could not.
  const CliResult post = run({"--room", "b", "post", "ITEM", "--stdin"}, "one\ntwo\nthree\n");
  ASSERT_EQ(post.exit_code, 0) << post.err;
  const std::vector<std::string> events = lines(run({"--room", "b", "tail", "--json"}).out);
  ASSERT_EQ(events.size(), 3u);
  auto ts_of = [](const std::string& e) { return e.substr(e.find("\"ts\":"), 40); };
  EXPECT_EQ(ts_of(events[0]), ts_of(events[1]));
  EXPECT_EQ(ts_of(events[1]), ts_of(events[2]));
  // A task type is not batched: each line is posted onto the board as its own task.
  ASSERT_EQ(run({"--room", "t", "register", "job", "a job"}).exit_code, 0);
  const CliResult tasks = run({"--room", "t", "post", "job", "--stdin"}, "x\ny\n");
  ASSERT_EQ(tasks.exit_code, 0) << tasks.err;
  EXPECT_EQ(lines(tasks.out).size(), 2u);
  const CliResult open = run({"--room", "t", "open"});
  EXPECT_TRUE(contains(open.out, "job  from cli\n    x")) << open.out;
  EXPECT_TRUE(contains(open.out, "job  from cli\n    y")) << open.out;
}

TEST_F(cli_batch, a_line_too_large_is_named_and_the_rest_published) {
  // A 64 KiB ring takes records up to 16 KiB; the input stays within one pipe buffer.
  const std::string big(20'000, 'x');
  const CliResult post =
      run({"--room", "b", "--ring-bytes", "64KiB", "post", "ITEM", "--stdin"}, "one\n" + big + "\ntwo\n");
  EXPECT_EQ(post.exit_code, 1);
  EXPECT_EQ(lines(post.out).size(), 2u) << post.out;
  EXPECT_TRUE(contains(post.err, "line 2: payload is 20000 bytes")) << post.err;
  EXPECT_TRUE(contains(post.err, "error: 1 of 3 lines were too large for room b and not published (line 2)"))
      << post.err;
  EXPECT_EQ(lines(run({"--room", "b", "tail", "--json"}).out).size(), 2u);
}

TEST_F(cli_batch, a_full_ring_stops_the_batch_and_says_where) {
  // A consumer group that never acks gates producers: a 64 KiB ring takes about a thousand of
  // these small records, then stays full.
  ASSERT_EQ(run({"--room", "g", "--ring-bytes", "64KiB", "post", "x", "first"}).exit_code, 0);
  ASSERT_EQ(run({"--room", "g", "group", "read", "stuck", "--member", "m", "--from", "earliest", "--timeout", "0"})
                .exit_code,
            0);
  std::string input;
  for (int i = 0; i < 4000; ++i) input += "item-" + std::to_string(i) + "\n";  // under one pipe buffer
  const CliResult post = run({"--room", "g", "post", "ITEM", "--stdin"}, input);
  EXPECT_EQ(post.exit_code, 1);
  const std::size_t published = lines(post.out).size();
  EXPECT_GT(published, 0u);
  EXPECT_LT(published, 4000u);
  EXPECT_TRUE(contains(post.err, "is full")) << post.err;
  EXPECT_TRUE(contains(post.err, "published up to line " + std::to_string(published) + ", line " +
                                     std::to_string(published + 1) + " and after were not"))
      << post.err;
}

TEST_F(cli_batch, stdin_and_a_payload_argument_are_a_usage_error) {
  EXPECT_EQ(run({"--room", "b", "post", "ITEM", "payload", "--stdin"}, "x\n").exit_code, 2);
}

TEST_F(cli_batch, max_record_bytes_makes_a_room_for_large_payloads) {
  const std::string big(100'000, 'y');  // over 64 KiB, under the 128 KiB one argument may take
  const CliResult refused = run({"--room", "small", "post", "BLOB", big});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.err, "--max-record-bytes")) << refused.err;  // advice the CLI can follow
  EXPECT_EQ(lines(refused.err).size(), 1u) << refused.err;

  const CliResult post = run({"--room", "large", "--max-record-bytes", "1MiB", "post", "BLOB", big});
  EXPECT_EQ(post.exit_code, 0) << post.err;
  const CliResult info = run({"info", "--json"});
  EXPECT_TRUE(contains(info.out, "\"max_record_bytes\":1048576")) << info.out;
  EXPECT_TRUE(contains(run({"--room", "large", "tail"}).out, big.substr(0, 1000)));
}

TEST_F(cli_batch, max_record_bytes_out_of_range_is_a_usage_error) {
  EXPECT_EQ(run({"--room", "r", "--max-record-bytes", "100", "post", "x"}).exit_code, 2);
  const CliResult r = run({"--room", "r", "--ring-bytes", "1MiB", "--max-record-bytes", "1MiB", "post", "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "quarter")) << r.err;
}

// ---- defect 8 (parts): sizes of an existing room, destroy and followers, top ------------------

TEST_F(cli_sizes, ring_bytes_on_an_existing_room_warns_and_says_its_size) {
  const CliResult created = run({"--room", "r", "--ring-bytes", "256KiB", "post", "x", "1"});
  EXPECT_EQ(created.exit_code, 0);
  EXPECT_TRUE(created.err.empty()) << created.err;  // this call created it with that size
  const CliResult again = run({"--room", "r", "--ring-bytes", "4MiB", "post", "x", "2"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_TRUE(contains(again.err, "warning: room r already exists with a 256.0 KiB ring")) << again.err;
  EXPECT_TRUE(contains(again.err, "--ring-bytes ignored")) << again.err;
  const CliResult record = run({"--room", "r", "--max-record-bytes", "32KiB", "post", "x", "3"});
  EXPECT_TRUE(contains(record.err, "--max-record-bytes ignored")) << record.err;
}

TEST_F(cli_destroy_follow, destroy_warns_and_the_follower_exits_with_a_message) {
  ASSERT_EQ(run({"--room", "r", "post", "x", "backlog"}).exit_code, 0);
  CliProcess follower = start({"--room", "r", "tail", "-f", "--timeout", "60s"});
  // The backlog is printed after subscribing: the follower is attached.
  ASSERT_TRUE(follower.wait_for_output([](const std::string& o) { return contains(o, "backlog"); }, 10s))
      << follower.err();
  ASSERT_EQ(run({"--room", "r", "post", "x", "last-words"}).exit_code, 0);
  const CliResult destroy = run({"destroy"});
  EXPECT_EQ(destroy.exit_code, 0) << destroy.err;
  EXPECT_TRUE(contains(destroy.err, "warning: 1 follower(s) attached")) << destroy.err;
  EXPECT_TRUE(contains(destroy.err, "pid " + std::to_string(follower.pid()))) << destroy.err;
  // Well before its own 60 s timeout.
  EXPECT_EQ(follower.wait_exit(10s), std::optional<int>(1)) << follower.err();
  EXPECT_TRUE(contains(follower.err(), "error: bus " + bus_ + " was destroyed")) << follower.err();
  EXPECT_TRUE(contains(follower.out(), "last-words")) << follower.out();  // nothing before it lost
}

TEST_F(cli_destroy_follow, status_watch_of_a_destroyed_bus_exits_with_a_message) {
  ASSERT_EQ(run({"--room", "r", "status", "post", "build", "ok", "--agent", "a"}).exit_code, 0);
  CliProcess watcher = start({"--room", "r", "status", "watch", "-n", "1", "--timeout", "60s"});
  ASSERT_TRUE(watcher.wait_for_output([](const std::string& o) { return contains(o, "build"); }, 10s))
      << watcher.err();
  ASSERT_EQ(run({"destroy"}).exit_code, 0);
  EXPECT_EQ(watcher.wait_exit(10s), std::optional<int>(1)) << watcher.err();  // not its 60 s timeout
  EXPECT_TRUE(contains(watcher.err(), "error: bus " + bus_ + " was destroyed")) << watcher.err();
}

TEST_F(cli_destroy_follow, destroy_without_followers_does_not_warn) {
  ASSERT_EQ(run({"--room", "r", "post", "x", "1"}).exit_code, 0);
  const CliResult destroy = run({"destroy"});
  EXPECT_EQ(destroy.exit_code, 0);
  EXPECT_TRUE(destroy.err.empty()) << destroy.err;
}

TEST_F(cli_top_shell, once_shows_a_group_gate_as_such_and_no_key_help) {
  ASSERT_EQ(run({"--room", "r", "post", "build", "1"}).exit_code, 0);
  ASSERT_EQ(run({"--room", "r", "group", "read", "builders", "--member", "w1", "--timeout", "0"}).exit_code, 0);
  const CliResult top = run({"top", "--once"});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_TRUE(contains(top.out, "group.builders (gate of consumer group builders)")) << top.out;
  EXPECT_FALSE(contains(top.out, "(dead)")) << top.out;
  EXPECT_FALSE(contains(top.out, "q quits")) << top.out;  // --once takes no keys
}

TEST_F(cli_top_shell, a_killed_tailer_is_not_shown) {
  ASSERT_EQ(run({"--room", "r", "post", "x", "backlog"}).exit_code, 0);
  {
    CliProcess follower = start({"--room", "r", "tail", "-f", "--timeout", "60s"});
    ASSERT_TRUE(follower.wait_for_output([](const std::string& o) { return contains(o, "backlog"); }, 10s));
    ASSERT_TRUE(contains(run({"top", "--once"}).out, "readers  tailer"));  // shown while alive
    follower.send_signal(SIGKILL);
    EXPECT_EQ(follower.wait_exit(10s), std::optional<int>(128 + SIGKILL));
  }
  const CliResult top = run({"top", "--once"});
  EXPECT_FALSE(contains(top.out, "tailer")) << top.out;
  EXPECT_FALSE(contains(top.out, "(dead)")) << top.out;
}

}  // namespace
