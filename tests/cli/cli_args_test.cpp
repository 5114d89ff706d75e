// cli_args_test.cpp — the CLI's strictness, end to end with the real binary: ids and durations
// have one grammar for every argument, a bus that does not exist is exit 4 for every command
// that reads one, a second claim by its holder says so, `state` and `open` agree about a claim
// whose session is gone, and every command's --help shows its own examples.
#include "cli_process.hpp"
#include "support/test_bus.hpp"
#include "support/child_process.hpp"
#include "support/expect.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace {

using namespace std::chrono_literals;
using cli_test::CliResult;
using cli_test::lines;

class cli_args : public ::testing::Test {
 protected:
  void SetUp() override { bus_ = agentbus::test::fresh_bus_name("cliargs"); }
  void TearDown() override { agentbus::Bus::destroy(bus_); }

  CliResult run(std::vector<std::string> args, std::string stdin_data = {},
                std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), {"--bus", bus_, "--room", "r"});
    return cli_test::run_cli({std::move(args), std::move(env), std::move(stdin_data), {}});
  }
  bool bus_exists() const {
    return std::filesystem::exists("/dev/shm/" + agentbus::segment_object_name(bus_));
  }
  // A registered task type and one posted task; returns the task's id as text.
  std::string post_task() {
    EXPECT_EQ(run({"register", "fix", "Fix it"}).exit_code, 0);
    const CliResult r = run({"post", "fix", "{}"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }
  std::string state_of(const std::string& id) {
    const CliResult r = run({"state", id, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::smatch m;
    return std::regex_search(r.out, m, std::regex("\"state\":\"([a-z]+)\"")) ? m[1].str() : "<" + r.out + ">";
  }

  std::string bus_;
};

std::string joined(const std::vector<std::string>& args) {
  std::string out;
  for (const std::string& a : args) out += (out.empty() ? "" : " ") + a;
  return out;
}

// ---- ids ----------------------------------------------------------------------------------

// Texts CLI11 alone turned into ids: "" -> 0, "-1" -> 2^64-1, "0x10" -> 16, overflow clamped.
const std::vector<std::string> kNotIds = {"", "-1", "+1", "0x10", "1e3", " 5", "5 ", "1.0", "18446744073709551616"};

TEST_F(cli_args, every_id_argument_refuses_anything_but_decimal_digits) {
  struct IdArg {
    std::vector<std::string> before, after;  // the command around the id
    std::string name;                        // how the error names the argument
  };
  const std::vector<IdArg> args = {
      {{"claim"}, {"--agent", "a"}, "id"},
      {{"renew"}, {}, "id"},
      {{"done"}, {}, "id"},
      {{"release"}, {}, "id"},
      {{"state"}, {}, "id"},
      {{"renew", "1", "--token"}, {}, "--token"},
      {{"done", "1", "--token"}, {}, "--token"},
      {{"group", "ack", "g"}, {}, "ids"},
      {{"group", "receipt", "g", "1"}, {}, "ids"},
      {{"reply"}, {"yes"}, "ask-id"},
      {{"lease", "renew"}, {}, "id"},
      {{"lease", "release"}, {}, "id"},
      {{"post", "t", "p", "--reply-to"}, {}, "--reply-to"},
      {{"export", "--jsonl", "-", "--from"}, {}, "--from"},
      {{"tail", "--from"}, {}, "--from"},
  };
  for (const IdArg& a : args) {
    for (const std::string& bad : kNotIds) {
      std::vector<std::string> argv = a.before;
      argv.push_back(bad);
      argv.insert(argv.end(), a.after.begin(), a.after.end());
      const CliResult r = run(argv);
      EXPECT_EQ(r.exit_code, 2) << joined(argv) << "\n" << r.err;
      EXPECT_NE(r.err.find(a.name), std::string::npos) << joined(argv) << ": " << r.err;
      EXPECT_NE(r.err.find("'" + bad + "'"), std::string::npos) << joined(argv) << ": " << r.err;
      EXPECT_TRUE(r.out.empty()) << joined(argv) << ": " << r.out;
    }
  }
  // A session pid is no id of the bus, but the same grammar: a pid of 16 is not "0x10".
  for (const std::string& bad : {std::string("0x10"), std::string("0"), std::string("-1"), std::string("2147483648")}) {
    const CliResult r = run({"--session-pid", bad, "who"});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("--session-pid"), std::string::npos) << r.err;
    EXPECT_EQ(run({"who"}, {}, {{"AGENTBUS_SESSION_PID", bad}}).exit_code, 2) << bad;
  }
  EXPECT_FALSE(bus_exists()) << "a refused command must not create the bus";
  // Tokens are 32 bits: one past that is refused too, not wrapped.
  EXPECT_EQ(run({"release", "1", "--token", "4294967296"}).exit_code, 2);
}

TEST_F(cli_args, an_empty_id_does_not_claim_or_complete_task_0) {
  const std::string id = post_task();
  ASSERT_EQ(id, "0") << "the room's first event is task 0, the id '' used to reach";
  EXPECT_EQ(run({"claim", "", "--agent", "a"}).exit_code, 2);
  EXPECT_EQ(state_of("0"), "open");
  const CliResult claimed = run({"claim", "00", "--agent", "a"});  // leading zeros are still decimal
  ASSERT_EQ(claimed.exit_code, 0) << claimed.err;
  EXPECT_EQ(run({"done", "", "--agent", "a"}).exit_code, 2);
  EXPECT_EQ(state_of("0"), "claimed");
  // The largest id is in range: it is simply not a task.
  EXPECT_EQ(run({"state", "18446744073709551615"}).exit_code, 4);
}

// ---- durations ----------------------------------------------------------------------------

// Every duration flag, with what must precede the value.
const std::vector<std::vector<std::string>> kDurationFlags = {
    {"claim", "1", "--ttl"},
    {"renew", "1", "--ttl"},
    {"join", "h", "--ttl"},
    {"lease", "acquire", "path:a", "--ttl"},
    {"lease", "renew", "1", "--ttl"},
    {"scratch", "set", "k", "v", "--ttl"},
    {"ask", "a", "m", "--timeout"},
    {"group", "read", "g", "--timeout"},
    {"group", "autoclaim", "g", "--min-idle"},
    {"tail", "-f", "--timeout"},
    {"status", "watch", "--timeout"},
    {"top", "--once", "--interval"},
};

TEST_F(cli_args, every_duration_flag_needs_a_unit_and_is_capped_at_24h) {
  for (const auto& flag : kDurationFlags) {
    for (const std::string bad : {"5", "999999h", "25h", "1.5s", "500us", "1m1h", "5 s", "s", "-1s", ""}) {
      std::vector<std::string> argv = flag;
      argv.push_back(bad);
      const CliResult r = run(argv);
      EXPECT_EQ(r.exit_code, 2) << joined(argv) << "\n" << r.err;
      EXPECT_NE(r.err.find(flag.back()), std::string::npos) << joined(argv) << ": " << r.err;
      if (bad == "5") {
        EXPECT_NE(r.err.find("no unit"), std::string::npos) << joined(argv) << ": " << r.err;
      }
      if (bad == "999999h" || bad == "25h") {  // a duration, only too long: the range is shown
        EXPECT_NE(r.err.find("must be a duration from"), std::string::npos) << joined(argv) << ": " << r.err;
        EXPECT_TRUE(r.err.find("24h") != std::string::npos || flag.back() == "--interval") << r.err;
      }
    }
  }
  EXPECT_FALSE(bus_exists());
}

TEST_F(cli_args, a_ttl_of_0_is_refused_everywhere_and_forever_is_spelled_out) {
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"claim", "1", "--ttl", "0"}, {"join", "h", "--ttl", "0"}, {"lease", "acquire", "path:a", "--ttl", "0"}}) {
    EXPECT_EQ(run(cmd).exit_code, 2) << joined(cmd);
  }
  const CliResult zero = run({"scratch", "set", "k", "v", "--ttl", "0"});
  EXPECT_EQ(zero.exit_code, 2) << "scratch --ttl 0 used to mean forever";
  EXPECT_NE(zero.err.find("forever"), std::string::npos) << zero.err;
  EXPECT_EQ(run({"claim", "1", "--ttl", "forever"}).exit_code, 2) << "only the scratchpad keeps things forever";

  ASSERT_EQ(run({"scratch", "set", "k", "v", "--ttl", "forever"}).exit_code, 0);
  const CliResult got = run({"scratch", "get", "k", "--json"});
  EXPECT_NE(got.out.find("\"ttl_ms\":null"), std::string::npos) << got.out;
  ASSERT_EQ(run({"scratch", "set", "k2", "v", "--ttl", "1h30m"}).exit_code, 0);
  const CliResult timed = run({"scratch", "get", "k2", "--json"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(timed.out, m, std::regex("\"ttl_ms\":([0-9]+)"))) << timed.out;
  EXPECT_GT(std::stoll(m[1].str()), 5'300'000);
  EXPECT_LE(std::stoll(m[1].str()), 5'400'000);
}

TEST_F(cli_args, durations_read_as_written) {
  const std::string id = post_task();
  for (const auto& [text, ms] : std::vector<std::pair<std::string, long long>>{
           {"250ms", 250}, {"90s", 90'000}, {"1h30m", 5'400'000}, {"1d", 86'400'000}, {"24h", 86'400'000},
           {"2m30s500ms", 150'500}}) {
    const CliResult c = run({"claim", id, "--agent", "a", "--ttl", text, "--json"});
    ASSERT_EQ(c.exit_code, 0) << text << ": " << c.err;
    EXPECT_NE(c.out.find("\"ttl_ms\":" + std::to_string(ms) + "}"), std::string::npos) << text << ": " << c.out;
    ASSERT_EQ(run({"release", id, "--agent", "a"}).exit_code, 0);
  }
  // "0" needs no unit where zero means "do not wait".
  EXPECT_EQ(run({"group", "read", "g", "--timeout", "0"}).exit_code, 0);
}

TEST_F(cli_args, a_hook_reports_a_bad_duration_only_in_debug_mode) {
  const CliResult quiet = run({"hook", "session-start", "--timeout", "5"}, "{}");
  EXPECT_EQ(quiet.exit_code, 0);
  EXPECT_TRUE(quiet.err.empty()) << quiet.err;
  const CliResult debug = run({"hook", "session-start", "--timeout", "5"}, "{}", {{"AGENTBUS_HOOK_DEBUG", "1"}});
  EXPECT_EQ(debug.exit_code, 0);
  EXPECT_NE(debug.err.find("no unit"), std::string::npos) << debug.err;
}

// ---- claims -------------------------------------------------------------------------------

TEST_F(cli_args, a_second_claim_by_the_holder_says_it_is_already_yours) {
  const std::string id = post_task();
  const CliResult first = run({"claim", id, "--agent", "alice"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string token = first.out.substr(0, first.out.find('\n'));

  const CliResult again = run({"claim", id, "--agent", "alice"});
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_TRUE(again.out.empty()) << "not a new claim: no token on stdout";
  EXPECT_EQ(lines(again.err).size(), 1u) << again.err;
  EXPECT_NE(again.err.find("already yours"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("token " + token), std::string::npos) << again.err;

  const CliResult other = run({"claim", id, "--agent", "bob"});
  EXPECT_EQ(other.exit_code, 3);
  EXPECT_EQ(other.err.find("already yours"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find("claimed by alice"), std::string::npos) << other.err;
}

TEST_F(cli_args, state_and_open_agree_about_a_claim_whose_session_was_killed) {
  const std::string id = post_task();
  agentbus::test::ChildProcess session({"/bin/sleep", "60"});
  const CliResult c = run({"claim", id, "--agent", "alice", "--session-pid", std::to_string(session.pid())});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(state_of(id), "claimed");
  EXPECT_EQ(run({"open", "--json"}).out, "");

  ::kill(session.pid(), SIGKILL);
  ASSERT_EQ(session.wait(10s), 128 + SIGKILL);
  const CliResult open = run({"open", "--json"});
  EXPECT_NE(open.out.find("\"id\":" + id + ","), std::string::npos) << open.out;
  EXPECT_NE(open.out.find("\"state\":\"open\""), std::string::npos) << open.out;
  EXPECT_EQ(state_of(id), "open") << "open offers the task, so state must not call it claimed";
  const CliResult text = run({"state", id});
  EXPECT_NE(text.out.find("state     open"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("alice"), std::string::npos) << "the ended claim is still named: " << text.out;
  EXPECT_NE(text.out.find("ended with its session"), std::string::npos) << text.out;

  const CliResult taken = run({"claim", id, "--agent", "bob"});
  EXPECT_EQ(taken.exit_code, 0) << taken.err;
  EXPECT_EQ(state_of(id), "claimed");
}

TEST_F(cli_args, state_and_open_agree_about_a_lapsed_claim) {
  const std::string id = post_task();
  ASSERT_EQ(run({"claim", id, "--agent", "alice", "--ttl", "1ms"}).exit_code, 0);
  // Awaited on `open`, judged on `state`.
  EXPECT_TRUE(agentbus::test::eventually([&] { return run({"open", "--json"}).out.find("\"id\":" + id + ",") != std::string::npos; }, 10s));
  EXPECT_EQ(state_of(id), "open");
  // The holder of a lapsed claim nobody took may still finish it; the board checks the token.
  const CliResult done = run({"done", id, "ok", "--agent", "alice"});
  EXPECT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(state_of(id), "done");
}

// ---- a bus that does not exist ------------------------------------------------------------

TEST_F(cli_args, every_command_reading_a_bus_that_does_not_exist_exits_4) {
  const std::vector<std::vector<std::string>> readers = {
      {"tail"}, {"tail", "--from", "earliest"}, {"who"}, {"info"}, {"catalog"}, {"open"}, {"state", "1"},
      {"claim", "1"}, {"renew", "1"}, {"done", "1"}, {"release", "1"}, {"inbox"}, {"directed"},
      {"scratch", "get", "k"}, {"scratch", "rm", "k"}, {"scratch", "ls"}, {"lease", "renew", "1"},
      {"lease", "release", "1"}, {"lease", "list"}, {"group", "ack", "g", "1"}, {"group", "receipt", "g", "1"},
      {"group", "pending", "g"}, {"group", "autoclaim", "g"}, {"group", "info", "g"}, {"status", "recent"},
      {"status", "summary"}, {"export", "--jsonl", "-"}, {"welcome", "--show"}, {"leave", "x-1"},
      {"top", "--once"}};
  for (const auto& cmd : readers) {
    const CliResult r = run(cmd);
    EXPECT_EQ(r.exit_code, 4) << joined(cmd) << ": " << r.err;
    EXPECT_EQ(lines(r.err).size(), 1u) << joined(cmd) << ": " << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << joined(cmd) << ": " << r.err;
    EXPECT_NE(r.err.find(bus_), std::string::npos) << joined(cmd) << ": the message names the bus: " << r.err;
    EXPECT_TRUE(r.out.empty()) << joined(cmd) << ": " << r.out;
  }
  EXPECT_FALSE(bus_exists()) << "no reader may create the bus";
  // The exceptions, by design: a pre-edit guard and the hooks must not block an agent.
  EXPECT_EQ(run({"guard", "path:src/x.cpp"}).exit_code, 0);
  EXPECT_EQ(run({"hook", "session-start"}, "{}").exit_code, 0);
  EXPECT_FALSE(bus_exists());
}

TEST_F(cli_args, a_room_nobody_posted_to_is_still_just_empty) {
  ASSERT_EQ(run({"post", "x", "y"}).exit_code, 0);
  for (std::vector<std::string> cmd : std::vector<std::vector<std::string>>{
           {"tail"}, {"who", "--json"}, {"open"}, {"lease", "list", "--json"}, {"status", "recent", "--json"}}) {
    cmd.insert(cmd.begin(), {"--bus", bus_, "--room", "other"});
    const CliResult r = cli_test::run_cli({cmd, {}, {}, {}});
    EXPECT_EQ(r.exit_code, 0) << joined(cmd) << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << joined(cmd) << ": " << r.out;
  }
}

// ---- help ---------------------------------------------------------------------------------

// Every leaf command. A new command must be added here, and give its own examples.
const std::vector<std::string> kCommands = {
    "post", "tail", "info", "destroy", "register", "catalog", "open", "claim", "renew", "done", "release",
    "state", "join", "leave", "who", "scratch set", "scratch get", "scratch rm", "scratch ls", "lease acquire",
    "lease renew", "lease release", "lease list", "guard", "inbox", "ask", "reply", "directed", "group read",
    "group ack", "group receipt", "group pending", "group autoclaim", "group info", "status post",
    "status recent", "status summary", "status watch", "export", "import", "hook session-start",
    "hook user-prompt-submit", "hook session-end", "welcome", "top", "run", "runs", "agent", "worker", "delegate"};

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

TEST_F(cli_args, every_command_shows_its_own_examples) {
  for (const std::string& command : kCommands) {
    std::vector<std::string> argv = words(command);
    argv.push_back("--help");
    const CliResult r = cli_test::run_cli({argv, {}, {}, {}});
    ASSERT_EQ(r.exit_code, 0) << command;
    const auto examples = r.out.find("\nExample");
    ASSERT_NE(examples, std::string::npos) << command << " has no examples:\n" << r.out;
    // An example of this command: "agentbus [global options] <command> ...".
    const std::regex own("agentbus( --?[a-z-]+( [^ -][^ ]*)?)* " + command + "( |$)");
    bool found = false;
    for (const std::string& line : lines(r.out.substr(examples))) found = found || std::regex_search(line, own);
    EXPECT_TRUE(found) << command << ": the examples are someone else's:\n" << r.out.substr(examples);
  }
}

TEST_F(cli_args, the_top_help_lists_no_command_missing_from_the_examples_check) {
  const CliResult r = cli_test::run_cli({{"--help"}, {}, {}, {}});
  std::set<std::string> known;
  for (const std::string& c : kCommands) known.insert(words(c).front());
  for (const std::string& line : lines(r.out)) {
    std::smatch m;
    if (std::regex_match(line, m, std::regex("  ([a-z-]+)  +[A-Z].*"))) {
      EXPECT_TRUE(known.count(m[1].str())) << m[1].str() << " is not in kCommands";
    }
  }
}

TEST_F(cli_args, hook_help_prints_help) {
  for (const auto& argv : std::vector<std::vector<std::string>>{{"hook", "--help"}, {"hook", "session-start", "--help"}}) {
    const CliResult r = cli_test::run_cli({argv, {}, {}, {}});
    EXPECT_EQ(r.exit_code, 0) << joined(argv);
    EXPECT_NE(r.out.find("Usage: agentbus hook"), std::string::npos) << joined(argv) << ":\n" << r.out;
  }
  const CliResult r = cli_test::run_cli({{"hook", "--help"}, {}, {}, {}});
  for (const char* sub : {"session-start", "user-prompt-submit", "session-end"})
    EXPECT_NE(r.out.find(sub), std::string::npos) << sub;
}

TEST_F(cli_args, the_top_help_has_the_exit_code_table_and_the_duration_grammar) {
  const CliResult r = cli_test::run_cli({{"--help"}, {}, {}, {}});
  for (const char* row : {"  0  ok", "  1  error", "  2  usage", "  3  lost a race", "  4  not found", "1h30m"})
    EXPECT_NE(r.out.find(row), std::string::npos) << row;
}

// Docs name real commands: every "agentbus <group> <verb>" in README.md and docs/ has --help.
TEST_F(cli_args, commands_named_in_the_docs_exist) {
  std::set<std::string> named;
  const std::regex use("agentbus (scratch|lease|group|status|hook) ([a-z][a-z-]*)");
  std::vector<std::filesystem::path> files{std::filesystem::path(AGENTBUS_SOURCE_DIR) / "README.md"};
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(AGENTBUS_SOURCE_DIR) / "docs"))
    if (e.path().extension() == ".md") files.push_back(e.path());
  for (const auto& file : files) {
    std::ifstream in(file);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    for (auto it = std::sregex_iterator(text.begin(), text.end(), use); it != std::sregex_iterator(); ++it)
      named.insert((*it)[1].str() + " " + (*it)[2].str());
  }
  ASSERT_TRUE(named.count("scratch ls")) << "the scan found nothing to check";
  for (const std::string& command : named) {
    std::vector<std::string> argv = words(command);
    argv.push_back("--help");
    EXPECT_EQ(cli_test::run_cli({argv, {}, {}, {}}).exit_code, 0) << "the docs name `agentbus " << command << "`";
  }
}

}  // namespace
