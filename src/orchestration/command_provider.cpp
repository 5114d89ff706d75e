// command_provider.cpp — one child process per call: JSON request in, JSON reply out.
//
// posix_spawn rather than fork: the driver is multi-threaded (parallel fan-out), and after a
// fork only async-signal-safe calls are allowed. The child gets its own process group so a
// timeout kills whatever it started too (a shell pipeline, an interpreter's helpers).
#include <agentbus/error.hpp>
#include <agentbus/orchestration/command_provider.hpp>
#include <agentbus/orchestration/protocol.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

extern char** environ;

namespace agentbus::orchestration {

namespace {

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    reset();
    fd = std::exchange(o.fd, -1);
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

struct Pipe {
  Fd read, write;
};

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error(Errc::system, std::string("pipe2: ") + std::strerror(errno));
  return {Fd(fds[0]), Fd(fds[1])};
}

// Writes to a pipe whose reader may be gone without raising SIGPIPE in this process: the
// signal is blocked for this thread and a pending one consumed.
ssize_t write_no_sigpipe(int fd, const char* data, std::size_t n) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const ssize_t w = ::write(fd, data, n);
  const int saved = errno;
  if (w < 0 && errno == EPIPE) {
    timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return w;
}

std::string quoted(std::string_view s) {
  std::string out = "'";
  out.append(s.size() > 200 ? std::string(s.substr(0, 200)) + "..." : std::string(s));
  out.push_back('\'');
  return out;
}

void keep_tail(std::string& buffer, std::size_t limit) {
  if (buffer.size() > limit) buffer.erase(0, buffer.size() - limit);
}

std::string trimmed_for_message(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.size() > 300) text = text.substr(text.size() - 300);
  return std::string(text);
}

}  // namespace

CommandProvider::CommandProvider(CommandOptions options) : options_(std::move(options)) {
  if (options_.command.empty()) throw Error(Errc::invalid_argument, "a command provider needs a command");
  if (options_.max_stdout_bytes == 0) throw Error(Errc::invalid_argument, "max_stdout_bytes must be positive");
}

CommandProvider::CommandProvider(std::string command) : CommandProvider(CommandOptions{std::move(command)}) {}

CallResult CommandProvider::call(const ProviderRequest& request, std::chrono::milliseconds timeout) {
  const std::string who = "agent '" + request.agent.id + "': command " + quoted(options_.command);
  const std::string input = request_to_json(request) + "\n";

  Pipe in = make_pipe(), out = make_pipe(), err = make_pipe();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read.fd, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.write.fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.write.fd, STDERR_FILENO);
  if (!options_.working_directory.empty())
    posix_spawn_file_actions_addchdir_np(&actions, options_.working_directory.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> env_store;
  for (char** e = environ; e && *e; ++e) env_store.emplace_back(*e);
  for (const auto& e : options_.environment) env_store.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string shell = "/bin/sh", dash_c = "-c", command = options_.command;
  char* argv[] = {shell.data(), dash_c.data(), command.data(), nullptr};

  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return CallResult::failure(who + " could not be started: " + std::strerror(rc));
  in.read.reset();
  out.write.reset();
  err.write.reset();
  ::fcntl(in.write.fd, F_SETFL, O_NONBLOCK);
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::uint64_t generation = cancel_generation_.load();
  std::string stdout_text, stderr_text;
  std::size_t written = 0;
  bool exited = false, too_much = false, timed_out = false, cancelled = false;
  int status = 0;
  auto reap = [&](int flags) {
    if (exited) return;
    const pid_t r = ::waitpid(pid, &status, flags);
    if (r == pid) exited = true;
  };
  char buf[16384];
  while (true) {
    std::vector<pollfd> fds;
    if (in.write.fd >= 0 && written < input.size()) fds.push_back({in.write.fd, POLLOUT, 0});
    if (out.read.fd >= 0) fds.push_back({out.read.fd, POLLIN, 0});
    if (err.read.fd >= 0) fds.push_back({err.read.fd, POLLIN, 0});
    if (pidfd.fd >= 0 && !exited) fds.push_back({pidfd.fd, POLLIN, 0});
    if (out.read.fd < 0 && err.read.fd < 0) {
      // Both streams closed: only the exit is left to wait for.
      if (exited) break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    if (cancel_generation_.load() != generation || (request.cancel != nullptr && request.cancel->load())) {
      cancelled = true;
      break;
    }
    // Poll in slices: a cancel_calls() or request.cancel is noticed within 20 ms (and, without a pidfd on an old
    // kernel, an exit with inherited pipes too).
    const int wait_ms = std::min<int>(20, static_cast<int>(left.count()));
    const int n = ::poll(fds.data(), fds.size(), wait_ms);
    if (n < 0 && errno != EINTR) break;
    for (const auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == in.write.fd) {
        const ssize_t w = write_no_sigpipe(in.write.fd, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if (w < 0 && errno != EAGAIN) written = input.size();  // the child does not read its stdin
        if (written >= input.size()) in.write.reset();
      } else if (p.fd == out.read.fd) {
        const ssize_t r = ::read(out.read.fd, buf, sizeof buf);
        if (r <= 0) out.read.reset();
        else {
          stdout_text.append(buf, static_cast<std::size_t>(r));
          if (stdout_text.size() > options_.max_stdout_bytes) too_much = true;
        }
      } else if (p.fd == err.read.fd) {
        const ssize_t r = ::read(err.read.fd, buf, sizeof buf);
        if (r <= 0) err.read.reset();
        else {
          stderr_text.append(buf, static_cast<std::size_t>(r));
          keep_tail(stderr_text, options_.max_stderr_bytes);
        }
      } else if (p.fd == pidfd.fd) {
        reap(WNOHANG);
      }
    }
    if (too_much) break;
    if (pidfd.fd < 0) reap(WNOHANG);
    if (exited) {
      // The child is gone; what it wrote is in the pipes unless a grandchild still holds them.
      for (Fd* f : {&out.read, &err.read}) {
        while (f->fd >= 0) {
          pollfd p{f->fd, POLLIN, 0};
          if (::poll(&p, 1, 0) <= 0) break;
          const ssize_t r = ::read(f->fd, buf, sizeof buf);
          if (r <= 0) {
            f->reset();
            break;
          }
          if (f == &out.read) stdout_text.append(buf, static_cast<std::size_t>(r));
          else {
            stderr_text.append(buf, static_cast<std::size_t>(r));
            keep_tail(stderr_text, options_.max_stderr_bytes);
          }
        }
      }
      if (stdout_text.size() > options_.max_stdout_bytes) too_much = true;
      break;
    }
  }
  // Whatever is left of the process group goes (a timed-out child, a grandchild on our pipes).
  ::kill(-pid, SIGKILL);
  reap(0);

  CallResult result;
  result.stderr_text = stderr_text;
  const std::string err_hint = stderr_text.empty() ? "" : " (stderr: " + trimmed_for_message(stderr_text) + ")";
  if (cancelled) {
    result = CallResult::failure(who + " was cancelled");
  } else if (timed_out) {
    result = CallResult::failure(who + " timed out after " + std::to_string(timeout.count()) + " ms and was killed", CallStatus::timeout);
  } else if (too_much) {
    result = CallResult::failure(who + " printed more than " + std::to_string(options_.max_stdout_bytes) +
                                 " bytes on stdout; the reply was refused");
  } else if (WIFSIGNALED(status)) {
    result = CallResult::failure(who + " was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
                                 strsignal(WTERMSIG(status)) + ")" + err_hint);
  } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    result = CallResult::failure(who + " exited with status " + std::to_string(WEXITSTATUS(status)) + err_hint);
  } else {
    std::string why;
    if (auto reply = reply_from_json(stdout_text, why)) result = CallResult::success(std::move(*reply));
    else {
      const std::string shown = trimmed_for_message(stdout_text.substr(0, 200));
      result = CallResult::failure(who + " printed a malformed reply: " + why +
                                   (shown.empty() ? " (stdout was empty)" : " (stdout began: " + shown + ")"));
    }
  }
  result.stderr_text = std::move(stderr_text);
  return result;
}

}  // namespace agentbus::orchestration
