// session_test.cpp — the session a CLI call acts for (issue 9, defect 1): resolved through
// wrappers (timeout, xargs) and throwaway shells (bash -c, $(...), ( ... ) &, pipelines) to
// the long-lived agent process above them. The agent here is session-parent, a non-shell
// process; the tests kill it with SIGKILL and wait (bounded) for what it held to be released.
#include "cli_process.hpp"
#include "session.hpp"

#include "../support/child_process.hpp"
#include "../support/expect.hpp"
#include "../support/test_bus.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace {

using namespace std::chrono_literals;
using agentbus::test::ChildProcess;
using agentbus::test::cli;
using agentbus::test::eventually;
using agentbus::test::TestBus;
using cli_test::CliResult;
using cli_test::lines;

// The comm of session-parent as the kernel reports it (at most 15 bytes).
constexpr const char* kParentProgram = "session-parent";

class cli_session : public ::testing::Test {
 protected:
  void SetUp() override {
    // Whoever runs the tests may have exported a session or an agent of their own.
    ::unsetenv("AGENTBUS_SESSION_PID");
    ::unsetenv("AGENTBUS_AGENT");
    ::unsetenv("CLAUDE_ENV_FILE");
    dir_ = std::filesystem::temp_directory_path() / ("agentbus-session-" + bus_.name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  CliResult agentbus(std::vector<std::string> args) {
    args.insert(args.begin(), {"--bus", bus_.name(), "--room", "r"});
    cli_test::CliCall call;
    call.args = std::move(args);
    return cli_test::run_cli(call);
  }

  // session-parent running `commands` (words split at tabs) with the bus, room and CLI in its
  // environment; returns once it printed "ready", with `outputs` holding everything before.
  std::unique_ptr<ChildProcess> start_parent(const std::vector<std::string>& commands, std::string& outputs,
                                             std::vector<std::string> env = {}) {
    std::vector<std::string> argv{SESSION_PARENT};
    argv.insert(argv.end(), commands.begin(), commands.end());
    env.insert(env.end(), {"AGENTBUS_BUS=" + bus_.name(), "AGENTBUS_ROOM=r", "CLI=" + cli()});
    env_ = std::move(env);  // putenv() keeps pointers into these strings
    auto parent = std::make_unique<ChildProcess>(argv, env_);
    outputs.clear();
    for (;;) {
      const std::string line = parent->read_line(60s);
      if (line.empty() || line == "ready") {
        EXPECT_EQ(line, "ready") << "session-parent did not finish its commands; output so far:\n" << outputs;
        return parent;
      }
      outputs += line + "\n";
    }
  }

  std::string file(const std::string& name, const std::string& content) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << content;
    return path;
  }

  TestBus bus_{"session"};
  std::filesystem::path dir_;
  std::vector<std::string> env_;
};

std::string field(const std::string& json, const std::string& name) {
  std::smatch m;
  const std::regex re("\"" + name + "\":(\"([^\"]*)\"|(-?[0-9]+|true|false))");
  if (!std::regex_search(json, m, re)) return "";
  return m[2].matched ? m[2].str() : m[3].str();
}

std::string sh(const std::string& script) { return "bash\t-c\t" + script; }

// ---- the rule, on facts as /proc gives them ---------------------------------------------

agentbus::cli::ProcessFacts facts(std::string comm, std::vector<std::string> argv, std::string exe = "") {
  return {.pid = 10, .ppid = 9, .comm = std::move(comm), .argv = std::move(argv), .exe = std::move(exe)};
}

TEST(cli_session_rule, command_shells) {
  using agentbus::cli::is_command_shell;
  EXPECT_TRUE(is_command_shell(facts("bash", {"bash", "-c", "agentbus who"})));
  EXPECT_TRUE(is_command_shell(facts("bash", {"/bin/bash", "-c", "-l", "eval 'agentbus who'"})));  // Claude Code
  EXPECT_TRUE(is_command_shell(facts("sh", {"sh", "-ec", "x"})));
  EXPECT_TRUE(is_command_shell(facts("bash", {"bash", "-o", "pipefail", "-c", "x"})));
  EXPECT_TRUE(is_command_shell(facts("zsh", {"zsh", "-c", "x"})));
  EXPECT_FALSE(is_command_shell(facts("bash", {"bash", "-ic", "x"})));  // interactive
  EXPECT_FALSE(is_command_shell(facts("bash", {"-bash"})));             // a login shell
  EXPECT_FALSE(is_command_shell(facts("bash", {"bash", "run-agent.sh", "-c"})));  // a script
  EXPECT_FALSE(is_command_shell(facts("bash", {"bash", "-o", "c"})));             // -o's value
  EXPECT_FALSE(is_command_shell(facts("python3", {"python3", "-c", "x"})));  // not a shell
}

TEST(cli_session_rule, wrappers_and_subshells) {
  using agentbus::cli::is_transient;
  EXPECT_TRUE(is_transient(facts("timeout", {"timeout", "10", "agentbus"}), std::nullopt));
  EXPECT_TRUE(is_transient(facts("xargs", {"xargs", "agentbus", "join"}), std::nullopt));
  EXPECT_FALSE(is_transient(facts("node", {"node", "/usr/bin/claude"}), std::nullopt));
  const auto interactive = facts("bash", {"bash"}, "/usr/bin/bash");
  EXPECT_FALSE(is_transient(interactive, std::nullopt));
  EXPECT_TRUE(is_transient(interactive, interactive)) << "a fork of its parent shell: $(...), ( ... ) &";
  EXPECT_FALSE(is_transient(interactive, facts("bash", {"bash"}, "/opt/other/bash"))) << "another program";
  EXPECT_FALSE(is_transient(interactive, facts("bash", {"bash", "--norc"}, "/usr/bin/bash"))) << "another shell";
}

TEST(cli_session_rule, export_lines_are_shell_quoted) {
  EXPECT_EQ(agentbus::cli::shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(agentbus::cli::session_exports("a-1", 42), "export AGENTBUS_AGENT='a-1'\nexport AGENTBUS_SESSION_PID=42\n");
  EXPECT_EQ(agentbus::cli::session_exports("", 42), "export AGENTBUS_SESSION_PID=42\n");
}

// ---- real processes -----------------------------------------------------------------------

// Everything taken through a wrapper or a throwaway shell belongs to the agent above them, and
// lives exactly as long as the agent.
TEST_F(cli_session, wrappers_and_shells_act_for_the_agent_until_it_is_killed) {
  ASSERT_EQ(agentbus({"register", "fix", "fix a bug"}).exit_code, 0);
  const CliResult posted = agentbus({"post", "fix", "{}", "--agent", "lead"});
  ASSERT_EQ(posted.exit_code, 0) << posted.err;
  const std::string task = lines(posted.out).at(0);
  const std::string xargs_input = file("handles", "via-xargs\n");

  std::string out;
  const auto parent = start_parent(
      // As Claude Code's Bash tool does: more than the one command, so bash forks the CLI
      // (a lone command would be exec'd in place and the CLI's parent would be the agent).
      {sh("\"$CLI\" join via-bash-c && pwd -P >/dev/null"),
       "timeout\t10\t" + cli() + "\tjoin\tvia-timeout",
       "xargs\t-a\t" + xargs_input + "\t" + cli() + "\tjoin",
       sh("h=$(\"$CLI\" join via-subst); echo \"$h\""),
       sh("( \"$CLI\" join via-background; true ) & wait"),
       sh("\"$CLI\" join via-pipe | cat"),
       // 8 racers for one task, each from its own ( ... ) & subshell.
       sh("for i in 1 2 3 4 5 6 7 8; do ( \"$CLI\" claim " + task +
          " --agent racer$i >/dev/null 2>&1; echo \"racer $?\" ) & done; wait"),
       sh("\"$CLI\" lease acquire path:src --agent owner --purpose refactor")},
      out);
  const std::string parent_pid = std::to_string(parent->pid());

  // Every join printed a handle and exited 0.
  for (const char* handle : {"via-bash-c", "via-timeout", "via-xargs", "via-subst", "via-background", "via-pipe"})
    EXPECT_NE(out.find(std::string(handle) + "-"), std::string::npos) << handle << " missing in:\n" << out;

  // who lists all six, each owned by the agent process and showing its program.
  const CliResult who = agentbus({"who", "--json"});
  ASSERT_EQ(who.exit_code, 0) << who.err;
  std::set<std::string> present;
  for (const std::string& line : lines(who.out)) {
    present.insert(field(line, "handle").substr(0, field(line, "handle").rfind('-')));
    EXPECT_EQ(field(line, "pid"), parent_pid) << line;
    EXPECT_EQ(field(line, "session_program"), kParentProgram) << line;
  }
  EXPECT_EQ(present, (std::set<std::string>{"via-bash-c", "via-timeout", "via-xargs", "via-subst", "via-background",
                                            "via-pipe"}))
      << who.out;
  const CliResult who_text = agentbus({"who"});
  EXPECT_NE(who_text.out.find(parent_pid + " " + kParentProgram), std::string::npos) << who_text.out;

  // Exactly one racer won; the others were told the task is taken (exit 3).
  int won = 0, lost = 0;
  for (const std::string& line : lines(out)) {
    if (line == "racer 0") ++won;
    if (line == "racer 3") ++lost;
  }
  EXPECT_EQ(won, 1) << out;
  EXPECT_EQ(lost, 7) << out;
  // ... and its claim is still held, by the agent's session, after every racer exited.
  const CliResult state = agentbus({"state", task, "--json"});
  EXPECT_EQ(field(state.out, "state"), "claimed") << state.out;
  EXPECT_EQ(field(state.out, "owner_pid"), parent_pid) << state.out;
  EXPECT_EQ(field(state.out, "owner_alive"), "true") << state.out;
  EXPECT_EQ(field(state.out, "session_program"), kParentProgram) << state.out;
  EXPECT_NE(agentbus({"state", task}).out.find("session   " + parent_pid + " " + kParentProgram), std::string::npos);
  EXPECT_EQ(agentbus({"claim", task, "--agent", "late"}).exit_code, 3);

  // The lease taken through bash -c still holds: guard refuses another agent.
  EXPECT_EQ(agentbus({"guard", "path:src/x.cpp", "--agent", "other"}).exit_code, 3);
  const CliResult leases = agentbus({"lease", "list", "--json"});
  EXPECT_EQ(field(leases.out, "session_pid"), parent_pid) << leases.out;
  EXPECT_EQ(field(leases.out, "session_program"), kParentProgram) << leases.out;
  EXPECT_NE(agentbus({"lease", "list"}).out.find("session " + parent_pid + " " + kParentProgram), std::string::npos);

  // The agent dies: presence, claim and lease go with it.
  ASSERT_EQ(::kill(parent->pid(), SIGKILL), 0);
  ASSERT_EQ(parent->wait(10s), 128 + SIGKILL);
  EXPECT_TRUE(eventually([&] { return agentbus({"who", "--json"}).out.empty(); }, 10s));
  EXPECT_TRUE(eventually([&] { return agentbus({"guard", "path:src/x.cpp", "--agent", "other"}).exit_code == 0; }, 10s));
  EXPECT_TRUE(eventually([&] { return agentbus({"claim", task, "--agent", "late"}).exit_code == 0; }, 10s));
}

// A script interpreter running a script is an agent in its own right: the walk stops there.
TEST_F(cli_session, a_script_is_its_own_session) {
  const std::string script = file("agent.sh", "\"$CLI\" join scripted --json\n\"$CLI\" who --json\n");
  std::string out;
  const auto parent = start_parent({"bash\t" + script}, out);
  const std::vector<std::string> got = lines(out);
  ASSERT_GE(got.size(), 2u) << out;
  EXPECT_NE(field(got[0], "pid"), std::to_string(parent->pid())) << out;
  EXPECT_EQ(field(got[1], "pid"), field(got[0], "pid")) << out;
  EXPECT_EQ(field(got[1], "session_program"), "bash") << out;
}

TEST_F(cli_session, session_pid_overrides_the_resolved_session) {
  ChildProcess sleeper({"/bin/sleep", "60"});
  const std::string pid = std::to_string(sleeper.pid());
  std::string out;
  const auto parent = start_parent({sh("\"$CLI\" --session-pid " + pid + " join by-flag --json"),
                                    sh("\"$CLI\" join by-env --json")},
                                   out, {"AGENTBUS_SESSION_PID=" + pid});
  for (const std::string& line : lines(out))
    if (line.rfind("{", 0) == 0) {
      EXPECT_EQ(field(line, "pid"), pid) << line;
    }
  EXPECT_EQ(std::count(out.begin(), out.end(), '{'), 2) << out;

  // Validated: a dead pid is an error naming the option, a non-number a usage error.
  const CliResult dead = agentbus({"--session-pid", "999999999", "join", "x"});
  EXPECT_EQ(dead.exit_code, 1);
  EXPECT_NE(dead.err.find("--session-pid"), std::string::npos) << dead.err;
  EXPECT_NE(dead.err.find("not a running process"), std::string::npos) << dead.err;
  EXPECT_EQ(agentbus({"--session-pid", "abc", "join", "x"}).exit_code, 2);
  EXPECT_EQ(agentbus({"--session-pid", "-5", "join", "x"}).exit_code, 2);

  // The entry lives as long as the named process, not the agent that ran the command.
  ASSERT_EQ(::kill(parent->pid(), SIGKILL), 0);
  ASSERT_EQ(parent->wait(10s), 128 + SIGKILL);
  EXPECT_EQ(lines(agentbus({"who", "--json"}).out).size(), 2u);
  ::kill(sleeper.pid(), SIGKILL);
  ASSERT_EQ(sleeper.wait(10s), 128 + SIGKILL);
  EXPECT_TRUE(eventually([&] { return agentbus({"who", "--json"}).out.empty(); }, 10s));
}

TEST_F(cli_session, join_export_sets_agent_and_session_for_the_shell) {
  std::string out;
  const auto parent = start_parent(
      {sh("eval \"$(\"$CLI\" join exporter --export)\"; echo \"agent=$AGENTBUS_AGENT session=$AGENTBUS_SESSION_PID\"")},
      out);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("agent=(exporter-[0-9a-f]{8}) session=([0-9]+)"))) << out;
  EXPECT_EQ(m[2].str(), std::to_string(parent->pid()));
  const CliResult who = agentbus({"who", "--json"});
  EXPECT_EQ(field(who.out, "handle"), m[1].str()) << who.out;
  EXPECT_EQ(agentbus({"join", "x", "--export", "--json"}).exit_code, 2);
}

// session-start, run by Claude Code through `sh -c`, writes the agent and its session into
// $CLAUDE_ENV_FILE once, and a path it cannot write does not fail the hook.
TEST_F(cli_session, session_start_hook_writes_claude_env_file) {
  ASSERT_EQ(agentbus({"post", "NOTE", "hello", "--agent", "bob"}).exit_code, 0);  // a room to digest
  const std::string env_file = file("claude-env", "export EXISTING=1");  // no final newline
  const std::string hook = sh("printf '%s' \"$HOOK_JSON\" | \"$CLI\" hook session-start --agent fixer");
  std::string out;
  const auto parent = start_parent({hook, hook}, out,
                                   {"CLAUDE_ENV_FILE=" + env_file, "HOOK_JSON={\"session_id\":\"s1\",\"cwd\":\"/tmp\"}"});
  std::stringstream content;
  content << std::ifstream(env_file).rdbuf();
  EXPECT_EQ(content.str(), "export EXISTING=1\nexport AGENTBUS_AGENT='fixer'\nexport AGENTBUS_SESSION_PID=" +
                               std::to_string(parent->pid()) + "\n");
  EXPECT_NE(out.find("hookSpecificOutput"), std::string::npos) << out;

  std::string bad_out;
  const auto bad = start_parent({hook}, bad_out,
                                {"CLAUDE_ENV_FILE=" + (dir_ / "no-such-dir" / "env").string(),
                                 "HOOK_JSON={\"session_id\":\"s2\",\"cwd\":\"/tmp\"}"});
  EXPECT_NE(bad_out.find("hookSpecificOutput"), std::string::npos) << bad_out;
  EXPECT_NE(bad_out.find("exit 0"), std::string::npos) << bad_out;
}

}  // namespace
