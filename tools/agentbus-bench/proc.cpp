#include "proc.hpp"

#include "common.hpp"

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <algorithm>
#include <exception>
#include <linux/futex.h>
#include <sched.h>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace bench {

SharedMapping::SharedMapping(std::size_t bytes) : size_(bytes) {
  data_ = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (data_ == MAP_FAILED) {
    data_ = nullptr;
    throw std::runtime_error("mmap of a shared anonymous mapping failed");
  }
}

SharedMapping::~SharedMapping() {
  if (data_ != nullptr) munmap(data_, size_);
}

namespace {
long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value) {
  // Not FUTEX_PRIVATE_FLAG: the word is shared between processes.
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, nullptr, nullptr, 0);
}
}  // namespace

void Control::mark_ready() noexcept { ready.fetch_add(1, std::memory_order_acq_rel); }

void Control::wait_go() noexcept {
  while (go.load(std::memory_order_acquire) == 0) futex(&go, FUTEX_WAIT, 0);
}

void Control::release(std::int64_t at_ns) noexcept {
  go_ns = at_ns;
  go.store(1, std::memory_order_release);
  futex(&go, FUTEX_WAKE, INT_MAX);
}

bool pin_to_cpu(int cpu) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

int online_cpus() noexcept { return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)); }

pid_t fork_child(const std::function<void()>& body,
                 const std::function<void(const char*)>& on_error) {
  std::fflush(nullptr);  // do not let the child re-flush the parent's buffered output
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid > 0) return pid;
  int code = 0;
  try {
    body();
  } catch (const std::exception& e) {
    on_error(e.what());
    code = 1;
  } catch (...) {
    on_error("unknown exception");
    code = 1;
  }
  // _exit: the child must not run the parent's atexit handlers or static destructors.
  _exit(code);
}

int reap_children(const std::vector<pid_t>& pids, std::int64_t deadline_ns) {
  // Sleep until a child exits (SIGCHLD, blocked and collected with sigtimedwait) rather than
  // polling: a parent waking every few ms would preempt a pinned spinner and show up in p99.
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  int bad = 0;
  std::vector<bool> done(pids.size(), false);
  std::size_t remaining = pids.size();
  while (remaining > 0) {
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (done[i]) continue;
      int status = 0;
      const pid_t r = waitpid(pids[i], &status, WNOHANG);
      if (r == pids[i] || (r < 0 && errno == ECHILD)) {
        done[i] = true;
        --remaining;
        if (r == pids[i] && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) ++bad;
      }
    }
    if (remaining == 0) break;
    const std::int64_t left = deadline_ns - now_ns();
    if (left <= 0) {
      for (std::size_t i = 0; i < pids.size(); ++i) {
        if (done[i]) continue;
        kill(pids[i], SIGKILL);
        waitpid(pids[i], nullptr, 0);
        ++bad;
      }
      break;
    }
    // A SIGCHLD raised before the block above was discarded, hence the 100 ms cap.
    const std::int64_t wait = std::min<std::int64_t>(left, 100'000'000);
    const timespec ts{wait / 1'000'000'000, wait % 1'000'000'000};
    sigtimedwait(&chld, nullptr, &ts);
  }
  sigprocmask(SIG_SETMASK, &old, nullptr);
  return bad;
}

}  // namespace bench
