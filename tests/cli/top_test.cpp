// top_test.cpp — `agentbus top`: the pure screen model (top_view.hpp), `top --once`, and the
// live curses view driven inside a detached tmux session (skipped when tmux is missing).
#include "cli_process.hpp"
#include "support/test_bus.hpp"
#include "output.hpp"
#include "top_view.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>

namespace {

using namespace std::chrono_literals;
using agentbus::cli::TopRoom;
using agentbus::cli::TopSnapshot;
using cli_test::CliResult;

constexpr const char* kStatus =
    R"({"ts":"2026-03-01T19:05:15Z","agent_id":"exec","action":"search_google","status":"ok",)"
    R"("detail":"Found 7 results","metadata":{"n":7}})";

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// ---- pure parts ----------------------------------------------------------------------------

TEST(cli_top_unit, parses_iso8601) {
  using agentbus::cli::parse_iso8601;
  EXPECT_EQ(parse_iso8601("1970-01-01T00:00:01Z"), 1'000'000'000);
  EXPECT_EQ(parse_iso8601("1970-01-01T00:00:01.5Z"), 1'500'000'000);
  EXPECT_EQ(parse_iso8601("1970-01-01T02:00:00+02:00"), 0);
  EXPECT_EQ(parse_iso8601("1970-01-01T00:00:00-0100"), 3'600'000'000'000);
  EXPECT_FALSE(parse_iso8601("yesterday"));
  EXPECT_FALSE(parse_iso8601("1970-01-01T00:00:00Zjunk"));
  EXPECT_FALSE(parse_iso8601("1970-13-01T00:00:00Z"));
  EXPECT_FALSE(parse_iso8601(""));
}

TEST(cli_top_unit, renders_status_lines) {
  using agentbus::cli::status_line;
  const auto ts = agentbus::cli::parse_iso8601("2026-03-01T19:05:15Z");
  ASSERT_TRUE(ts);
  EXPECT_EQ(status_line(kStatus, "x", 0),
            "[" + agentbus::cli::clock_local(*ts) + "] exec: search_google \u2192 ok | Found 7 results");
  // No agent_id or ts: the event's.
  EXPECT_EQ(status_line(R"({"action":"build","status":"failed"})", "ci", 0),
            "[" + agentbus::cli::clock_local(0) + "] ci: build \u2192 failed");
  EXPECT_EQ(status_line(R"({"status":"info","detail":"warming up"})", "ci", 0),
            "[" + agentbus::cli::clock_local(0) + "] ci: info | warming up");
  // An entry imported from another host names that host.
  EXPECT_EQ(status_line(kStatus, "x", 0, "hostA:main"),
            "[" + agentbus::cli::clock_local(*ts) + "] exec@hostA:main: search_google \u2192 ok | Found 7 results");
  EXPECT_FALSE(status_line("not json", "x", 0));
  EXPECT_FALSE(status_line(R"({"state":"idle"})", "x", 0));
  const auto evil = status_line(R"({"action":"a\u001b[2Jb","status":"ok","detail":"line1\nline2"})", "x", 0);
  ASSERT_TRUE(evil);
  EXPECT_EQ(evil->find('\x1b'), std::string::npos);
  EXPECT_EQ(evil->find('\n'), std::string::npos);
}

TopSnapshot sample() {
  TopSnapshot s;
  s.bus = "demo";
  s.live = true;  // as drawn by the live view
  s.now_ns = 0;
  TopRoom r;
  r.name = "proj/main";
  r.ring_bytes = 1 << 20;
  r.tail = 1 << 18;
  r.oldest = 0;
  r.rate = 3.5;
  r.readers.push_back({"indexer", true, true, 2048});
  r.agents.push_back({"fixer-3f9a0c12", "go-fixer", "parser tests"});
  r.open_tasks = 2;
  r.claimed.push_back({4096, "fix", "fixer-3f9a0c12"});
  r.status.push_back("[19:05:15] exec: search_google \u2192 ok | Found 7 results");
  s.rooms.push_back(r);
  return s;
}

TEST(cli_top_unit, screen_shows_every_part) {
  const std::string screen = joined(agentbus::cli::render_top(sample(), 0, 0));
  EXPECT_NE(screen.find("bus demo"), std::string::npos) << screen;
  EXPECT_NE(screen.find("q quits"), std::string::npos);
  EXPECT_NE(screen.find("EV/S"), std::string::npos);
  EXPECT_NE(screen.find("3.5"), std::string::npos) << screen;
  EXPECT_NE(screen.find("25%"), std::string::npos) << screen;   // a quarter of the ring
  EXPECT_NE(screen.find("2.0 KiB"), std::string::npos) << screen;  // reader lag
  EXPECT_NE(screen.find("fixer-3f9a0c12 (go-fixer): parser tests"), std::string::npos);
  EXPECT_NE(screen.find("4096 fix by fixer-3f9a0c12"), std::string::npos);
  EXPECT_NE(screen.find("indexer (durable) lag 2.0 KiB"), std::string::npos) << screen;
  EXPECT_NE(screen.find("search_google \u2192 ok | Found 7 results"), std::string::npos);
}

TEST(cli_top_unit, screen_fits_the_terminal) {
  TopSnapshot s = sample();
  for (int i = 0; i < 30; ++i) s.rooms.front().status.push_back("status line " + std::to_string(i));
  const std::vector<std::string> lines = agentbus::cli::render_top(s, 40, 12);
  ASSERT_EQ(lines.size(), 12u);
  for (const std::string& l : lines) EXPECT_LE(agentbus::cli::to_ascii(l).size(), 42u) << l;  // "…" is 3 dots
  EXPECT_NE(lines.back().find("more line(s)"), std::string::npos) << lines.back();
  const std::vector<std::string> tiny = agentbus::cli::render_top(s, 5, 1);
  EXPECT_EQ(tiny.size(), 1u);
}

TEST(cli_top_unit, empty_bus_and_ascii) {
  TopSnapshot s;
  s.bus = "none";
  s.note = "no bus named 'none' yet";
  const std::string screen = joined(agentbus::cli::render_top(s, 0, 0));
  EXPECT_NE(screen.find("no rooms yet"), std::string::npos) << screen;
  EXPECT_NE(screen.find("note: no bus named 'none' yet"), std::string::npos) << screen;
  EXPECT_EQ(agentbus::cli::to_ascii("a \u2192 b\u2026 \u00e9"), "a -> b... ?");
}

// ---- the binary ------------------------------------------------------------------------------

class TopTest : public ::testing::Test {
 protected:
  void SetUp() override { bus_ = agentbus::test::fresh_bus_name("toptest"); }
  void TearDown() override { agentbus::Bus::destroy(bus_); }

  CliResult run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--bus", bus_});
    return cli_test::run_cli({std::move(args), {}, {}, {}});
  }

  std::string bus_;
};

using cli_top = TopTest;

TEST_F(cli_top, once_prints_a_snapshot) {
  const CliResult none = run({"top", "--once"});
  EXPECT_EQ(none.exit_code, 4) << none.err;  // an unknown bus, as for every read
  EXPECT_NE(none.err.find("no bus named"), std::string::npos) << none.err;
  EXPECT_TRUE(none.out.empty()) << none.out;

  ASSERT_EQ(run({"--room", "proj/main", "join", "watcher", "--session-pid", std::to_string(getpid())}).exit_code, 0);
  ASSERT_EQ(run({"--room", "proj/main", "post", "STATUS", kStatus, "--agent", "exec"}).exit_code, 0);
  const CliResult r = run({"top", "--once"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("proj/main"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("watcher-"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exec: search_google \u2192 ok | Found 7 results"), std::string::npos) << r.out;
  // Without a terminal the live view refuses, saying what to use instead.
  const CliResult live = run({"top"});
  EXPECT_EQ(live.exit_code, 1);
  EXPECT_NE(live.err.find("--once"), std::string::npos) << live.err;
}

// Runs a command (PATH lookup) to completion within `limit`; {exit code, stdout}. -1: did not
// finish in time (then it is killed).
std::pair<int, std::string> run_cmd(std::vector<std::string> argv, std::chrono::milliseconds limit = 10s) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return {-1, ""};
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    const int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, STDIN_FILENO);
    dup2(devnull, STDERR_FILENO);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    const ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  close(out[0]);
  int status = 0;
  for (;;) {
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return {-1, text};
    }
    std::this_thread::sleep_for(2ms);
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), text};
}

// Polls `check` (each call runs a process, so not in a tight loop) until it holds or `limit`.
template <class F>
bool poll_until(F&& check, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (check()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return check();
}

TEST_F(cli_top, renders_under_tmux_and_quits_on_q) {
  if (run_cmd({"tmux", "-V"}).first != 0) GTEST_SKIP() << "tmux is not installed";
  ASSERT_EQ(run({"--room", "proj/main", "post", "NOTE", "hello"}).exit_code, 0);

  const std::string socket = "agentbus-" + bus_;
  struct KillServer {
    std::string socket;
    ~KillServer() { run_cmd({"tmux", "-L", socket, "kill-server"}); }
  } kill_server{socket};
  const std::string cli = std::getenv("AGENTBUS_CLI");
  const auto tmux = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"tmux", "-L", socket, "-f", "/dev/null"});
    return run_cmd(std::move(args));
  };
  ASSERT_EQ(tmux({"new-session", "-d", "-s", "top", "-x", "120", "-y", "40",
                  "exec '" + cli + "' --bus '" + bus_ + "' top"})
                .first,
            0);
  std::string screen;
  const auto capture = [&] {
    const auto [rc, out] = tmux({"capture-pane", "-p", "-t", "top"});
    screen = out;
    return rc == 0;
  };
  ASSERT_TRUE(poll_until([&] { return capture() && screen.find("proj/main") != std::string::npos; }, 30s))
      << screen;
  EXPECT_NE(screen.find("agentbus top -- bus " + bus_), std::string::npos) << screen;

  ASSERT_EQ(run({"--room", "proj/main", "post", "STATUS", kStatus, "--agent", "exec"}).exit_code, 0);
  EXPECT_TRUE(poll_until(
      [&] { return capture() && screen.find("exec: search_google -> ok | Found 7 results") != std::string::npos; },
      30s))
      << screen;

  ASSERT_EQ(tmux({"send-keys", "-t", "top", "q"}).first, 0);
  // The pane's command exits, so the session (and then the server) goes away.
  EXPECT_TRUE(poll_until([&] { return tmux({"has-session", "-t", "top"}).first != 0; }, 30s)) << screen;
}

}  // namespace
