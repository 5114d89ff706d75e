// cli_process.cpp — fork/exec plumbing for the CLI tests; see cli_process.hpp.
#include "cli_process.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace cli_test {
namespace {

using Clock = std::chrono::steady_clock;

std::string cli_path() {
  const char* path = std::getenv("AGENTBUS_CLI");
  if (path == nullptr || *path == '\0')
    throw std::runtime_error("AGENTBUS_CLI is not set; run the tests through ctest");
  return path;
}

bool is_scrubbed(const std::string& entry) {
  static const char* const kNames[] = {"AGENTBUS_BUS=", "AGENTBUS_ROOM=", "AGENTBUS_AGENT=",
                                       "REPO_ID=", "BRANCH_NAME="};
  for (const char* name : kNames)
    if (entry.rfind(name, 0) == 0) return true;
  return false;
}

std::vector<std::string> child_environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e)
    if (!is_scrubbed(*e)) env.emplace_back(*e);
  for (const auto& [key, value] : extra) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

void make_pipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::strerror(errno));
}

int decode_status(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

CliProcess::CliProcess(const CliCall& call) {
  std::vector<std::string> argv_strings{call.program.empty() ? cli_path() : call.program};
  argv_strings.insert(argv_strings.end(), call.args.begin(), call.args.end());
  std::vector<std::string> env_strings = child_environment(call.env);
  std::vector<char*> argv = c_strings(argv_strings);
  std::vector<char*> envp = c_strings(env_strings);

  int in[2], out[2], err[2];
  make_pipe(in);
  make_pipe(out);
  make_pipe(err);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error(std::strerror(errno));
  if (pid_ == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    if (!call.cwd.empty() && chdir(call.cwd.c_str()) != 0) _exit(126);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  out_fd_ = out[0];
  err_fd_ = err[0];
  // Small inputs only (tests post short payloads), so one blocking write cannot deadlock.
  std::size_t written = 0;
  while (written < call.stdin_data.size()) {
    const ssize_t n = write(in[1], call.stdin_data.data() + written, call.stdin_data.size() - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  close(in[1]);
}

CliProcess::~CliProcess() {
  if (!exit_code_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (out_fd_ >= 0) close(out_fd_);
  if (err_fd_ >= 0) close(err_fd_);
}

bool CliProcess::pump(std::chrono::milliseconds limit) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (out_fd_ < 0 && err_fd_ < 0) return false;
  if (poll(fds, 2, static_cast<int>(limit.count())) <= 0) return true;
  int* fd_of[2] = {&out_fd_, &err_fd_};
  std::string* sink[2] = {&out_, &err_};
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd < 0 || fds[i].revents == 0) continue;
    char buf[4096];
    const ssize_t n = read(fds[i].fd, buf, sizeof buf);
    if (n > 0) {
      sink[i]->append(buf, static_cast<std::size_t>(n));
    } else {
      close(*fd_of[i]);
      *fd_of[i] = -1;
    }
  }
  return true;
}

bool CliProcess::wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || !pump(std::min(left, std::chrono::milliseconds(50)))) return done();
  }
  return true;
}

std::optional<int> CliProcess::wait_exit(std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!exit_code_) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = decode_status(status);
      break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    // Drain the pipes so a chatty child cannot block on a full pipe; once both are at EOF
    // there is nothing to poll, so back off briefly between waitpid checks.
    if (!pump(std::min(left, std::chrono::milliseconds(20)))) usleep(1000);
  }
  // The child is gone, so both pipes reach EOF once their buffered output has been read.
  const auto drain_deadline = Clock::now() + std::chrono::seconds(2);
  while ((out_fd_ >= 0 || err_fd_ >= 0) && Clock::now() < drain_deadline)
    pump(std::chrono::milliseconds(50));
  return exit_code_;
}

void CliProcess::send_signal(int sig) {
  if (!exit_code_) kill(pid_, sig);
}

void CliProcess::close_stdout() {
  if (out_fd_ >= 0) close(out_fd_);
  out_fd_ = -1;
}

CliResult run_cli(const CliCall& call, std::chrono::milliseconds limit) {
  CliProcess process(call);
  const std::optional<int> code = process.wait_exit(limit);
  EXPECT_TRUE(code.has_value()) << "agentbus did not finish within " << limit.count() << " ms";
  return {code.value_or(-1), process.out(), process.err()};
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      out.push_back(text.substr(start));
      break;
    }
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace cli_test
