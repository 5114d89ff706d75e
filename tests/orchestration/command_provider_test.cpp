// CommandProvider with real children: a good reply, and each way a child can go wrong (times
// out, crashes, exits non-zero, prints garbage, prints too much, never reads its stdin).
#include <agentbus/error.hpp>
#include <agentbus/orchestration/command_provider.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>

using namespace agentbus::orchestration;
using namespace std::chrono_literals;

namespace {

ProviderRequest request_for(const std::string& agent, std::string role = {}) {
  ProviderRequest r;
  r.run_id = "run-t";
  r.step = 2;
  r.agent = {agent, std::move(role), ""};
  r.messages = {{"user", "", "draft the intro"}};
  return r;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0; }

}  // namespace

TEST(orch_command, python_example_answers_the_request) {
  CommandProvider p(std::string("python3 ") + AGENTBUS_EXAMPLES_DIR + "/providers/echo_agent.py");
  auto r = p.call(request_for("writer", "Writer"), 10s);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.reply.text, "[writer] draft the intro");
  EXPECT_EQ(r.reply.usage.input_tokens, std::string("draft the intro").size());
}

TEST(orch_command, shell_example_reads_agent_and_step) {
  CommandProvider p(std::string(AGENTBUS_EXAMPLES_DIR) + "/providers/shell_agent.sh");
  auto r = p.call(request_for("bob"), 10s);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.reply.text, "bob handled step 2");
}

TEST(orch_command, tool_calls_and_stderr_are_kept) {
  CommandProvider p(R"(cat >/dev/null; echo 'thinking...' >&2; echo '{"version":1,"text":"go","tool_calls":[{"name":"handoff","arguments":{"target":"b"}}]}')");
  auto r = p.call(request_for("a"), 10s);
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.reply.tool_calls.size(), 1u);
  EXPECT_EQ(r.reply.tool_calls[0].arguments, R"({"target":"b"})");
  EXPECT_EQ(r.stderr_text, "thinking...\n");
}

TEST(orch_command, a_child_that_times_out_is_killed_with_its_process_group) {
  // The child starts a grandchild that records its pid and then hangs: both must die.
  const std::string pidfile = "/tmp/agentbus-orch-timeout-" + std::to_string(::getpid());
  CommandProvider p("sleep 30 & echo $! > " + pidfile + "; wait");
  const auto t0 = std::chrono::steady_clock::now();
  auto r = p.call(request_for("slowpoke"), 300ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.status, CallStatus::timeout);
  EXPECT_TRUE(contains(r.error, "agent 'slowpoke': command 'sleep 30 &")) << r.error;
  EXPECT_TRUE(contains(r.error, "timed out after 300 ms and was killed")) << r.error;
  EXPECT_LT(took, 20s);  // a bound on the wait, not a speed claim: without the kill it is 30 s
  std::ifstream in(pidfile);
  pid_t grandchild = 0;
  in >> grandchild;
  ::unlink(pidfile.c_str());
  ASSERT_GT(grandchild, 0);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (process_exists(grandchild) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(process_exists(grandchild)) << "the grandchild survived the timeout";
}

TEST(orch_command, a_child_that_crashes_names_the_signal_and_keeps_stderr) {
  CommandProvider p("echo 'about to crash' >&2; kill -SEGV $$");
  auto r = p.call(request_for("crasher"), 10s);
  EXPECT_EQ(r.status, CallStatus::failed);
  EXPECT_TRUE(contains(r.error, "agent 'crasher': command")) << r.error;
  EXPECT_TRUE(contains(r.error, "was killed by signal 11")) << r.error;
  EXPECT_TRUE(contains(r.error, "about to crash")) << r.error;
  EXPECT_EQ(r.stderr_text, "about to crash\n");
}

TEST(orch_command, non_zero_exit_is_failed_with_the_status) {
  CommandProvider p("cat >/dev/null; echo 'no API key' >&2; exit 3");
  auto r = p.call(request_for("llm"), 10s);
  EXPECT_EQ(r.status, CallStatus::failed);
  EXPECT_TRUE(contains(r.error, "agent 'llm': command 'cat >/dev/null; echo 'no API key' >&2; exit 3' exited with status 3 (stderr: no API key)")) << r.error;
}

TEST(orch_command, garbage_on_stdout_is_a_malformed_reply) {
  CommandProvider p("echo 'Sure! Here is your answer:'");
  auto r = p.call(request_for("chatty"), 10s);
  EXPECT_EQ(r.status, CallStatus::failed);
  EXPECT_TRUE(contains(r.error, "agent 'chatty': command")) << r.error;
  EXPECT_TRUE(contains(r.error, "printed a malformed reply: not valid JSON")) << r.error;
  EXPECT_TRUE(contains(r.error, "stdout began: Sure! Here is your answer:")) << r.error;
}

TEST(orch_command, empty_stdout_is_a_malformed_reply) {
  CommandProvider p("true");
  auto r = p.call(request_for("mute"), 10s);
  EXPECT_EQ(r.status, CallStatus::failed);
  EXPECT_TRUE(contains(r.error, "(stdout was empty)")) << r.error;
}

TEST(orch_command, a_reply_over_the_limit_is_refused) {
  CommandOptions o;
  o.command = "yes '{\"version\":1,\"text\":\"x\"}'";  // never stops printing
  o.max_stdout_bytes = 64 << 10;
  CommandProvider p(o);
  auto r = p.call(request_for("flood"), 20s);
  EXPECT_EQ(r.status, CallStatus::failed);
  EXPECT_TRUE(contains(r.error, "printed more than 65536 bytes on stdout; the reply was refused")) << r.error;
}

TEST(orch_command, a_child_that_never_reads_a_big_request_still_answers) {
  CommandProvider p(R"(echo '{"version":1,"text":"ignored you"}')");
  auto req = request_for("deaf");
  req.messages.push_back({"user", "", std::string(1 << 20, 'x')});  // far more than a pipe holds
  auto r = p.call(req, 10s);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.reply.text, "ignored you");
}

TEST(orch_command, the_child_gets_the_request_on_stdin) {
  CommandProvider p(R"(python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"version":1,"text":r["run"]+"/"+str(r["step"])+"/"+r["messages"][0]["content"]}))')");
  auto r = p.call(request_for("py"), 10s);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.reply.text, "run-t/2/draft the intro");
}

TEST(orch_command, empty_command_is_refused) {
  EXPECT_THROW(CommandProvider(std::string()), agentbus::Error);
}

TEST(orch_command, a_missing_working_directory_is_a_clear_failure) {
  CommandOptions o;
  o.command = "true";
  o.working_directory = "/nonexistent/agentbus-dir";
  CommandProvider p(o);
  auto r = p.call(request_for("lost"), 10s);
  EXPECT_EQ(r.status, CallStatus::failed);
  EXPECT_TRUE(contains(r.error, "agent 'lost': command 'true' could not be started: No such file or directory")) << r.error;
}
