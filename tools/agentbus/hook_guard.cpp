// hook_guard.cpp — see hook_guard.hpp.
#include "hook_guard.hpp"

#include "output.hpp"

#include <poll.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>

namespace agentbus::cli {
namespace {

extern "C" void hook_watchdog(int) { ::_exit(0); }

}  // namespace

using std::chrono::milliseconds;

void hook_debug(std::string_view what) {
  if (std::getenv("AGENTBUS_HOOK_DEBUG") != nullptr)
    std::fprintf(stderr, "agentbus hook: %s\n", sanitize_for_terminal(what).c_str());
}

void arm_watchdog(milliseconds limit) {
  struct sigaction action {};
  action.sa_handler = hook_watchdog;
  sigemptyset(&action.sa_mask);
  sigaction(SIGALRM, &action, nullptr);
  itimerval timer{};
  timer.it_value.tv_sec = static_cast<time_t>(limit.count() / 1000);
  timer.it_value.tv_usec = static_cast<suseconds_t>(limit.count() % 1000 * 1000);
  setitimer(ITIMER_REAL, &timer, nullptr);
}

std::optional<std::string> read_stdin(milliseconds limit) {
  if (::isatty(STDIN_FILENO) == 1) return std::string();
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::string data;
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{STDIN_FILENO, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return std::nullopt;
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return data;
    data.append(buf, static_cast<std::size_t>(n));
    if (data.size() > (1u << 20)) return std::nullopt;
  }
}

}  // namespace agentbus::cli
