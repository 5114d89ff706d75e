// cli_process.hpp — run the real `agentbus` binary ($AGENTBUS_CLI) the way a user would.
//
// Each child gets a clean environment (the AGENTBUS_* / REPO_ID / BRANCH_NAME variables of
// whoever runs the tests are removed, then the call's own are added), its own pipes for
// stdin/stdout/stderr, and an optional working directory. Waits are bounded by deadlines so a
// hung CLI fails a test instead of hanging ctest.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cli_test {

struct CliCall {
  std::vector<std::string> args;            // without the program name
  std::map<std::string, std::string> env;   // added to the cleaned environment
  std::string stdin_data;                   // written, then stdin is closed
  std::string cwd;                          // empty: the test's own
  std::string program{};                    // empty: $AGENTBUS_CLI (e.g. $AGENTBUS_BRIDGE instead)
};

struct CliResult {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out;
  std::string err;
};

// A running CLI process, e.g. `tail --follow`.
class CliProcess {
 public:
  explicit CliProcess(const CliCall& call);
  ~CliProcess();  // SIGKILLs and reaps a child that is still running
  CliProcess(const CliProcess&) = delete;
  CliProcess& operator=(const CliProcess&) = delete;

  // Reads output until `done()` holds or `limit` passes; returns done's verdict.
  bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit);
  // Same, for a condition on stdout so far.
  bool wait_for_output(const std::function<bool(const std::string&)>& done,
                       std::chrono::milliseconds limit) {
    return wait_until([&] { return done(out_); }, limit);
  }
  // Waits for the exit (draining output meanwhile); nullopt if it is still running at `limit`.
  std::optional<int> wait_exit(std::chrono::milliseconds limit);

  void send_signal(int sig);
  void close_stdout();  // close our end of its stdout pipe, as `| head -1` does

  pid_t pid() const { return pid_; }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  bool pump(std::chrono::milliseconds limit);  // one poll round; false when both pipes hit EOF

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
  std::optional<int> exit_code_;
};

// Runs the CLI to completion (at most `limit`; then it is killed and the test fails).
CliResult run_cli(const CliCall& call,
                  std::chrono::milliseconds limit = std::chrono::milliseconds(20'000));

// The lines of `text`, without their '\n'.
std::vector<std::string> lines(const std::string& text);

}  // namespace cli_test
