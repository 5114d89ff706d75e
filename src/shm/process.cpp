#include "shm/process.hpp"

#include <agentbus/process.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <pthread.h>
#include <fcntl.h>
#include <unistd.h>

namespace agentbus::shm {
namespace {

// The fields agentbus reads from "pid (comm) state ppid ... starttime". comm may hold spaces
// and parentheses, so it ends at the last ')'. `comm` points into the text parsed.
struct StatFields {
  std::string_view comm;
  char state = 0;
  int ppid = 0;
  std::uint64_t start = 0;  // field 22
};

bool parse_stat(const char* text, StatFields& out) noexcept {
  const char* open = std::strchr(text, '(');
  const char* p = std::strrchr(text, ')');
  if (open == nullptr || p == nullptr || p < open || p[1] != ' ' || p[2] == '\0') return false;
  out.comm = std::string_view(open + 1, static_cast<std::size_t>(p - open - 1));
  out.state = p[2];
  // After ") " come fields 3..; ppid is field 4 and starttime field 22.
  const char* q = p + 2;
  for (int field = 3; field < 22; ++field) {
    q = std::strchr(q, ' ');
    if (q == nullptr) return false;
    ++q;
    if (field == 3) out.ppid = std::atoi(q);
  }
  out.start = std::strtoull(q, nullptr, 10);
  return true;
}

// /proc/<pid>/stat into `buf`, parsed; false when it cannot be read or parsed.
bool read_stat_fields(std::uint32_t pid, char (&buf)[1024], StatFields& out) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  return parse_stat(buf, out);
}

bool read_stat(std::uint32_t pid, char& state, std::uint64_t& start) noexcept {
  char buf[1024];
  StatFields f;
  if (!read_stat_fields(pid, buf, f)) return false;
  state = f.state;
  start = f.start;
  return true;
}

ProcessId current() noexcept {
  ProcessId id;
  id.pid = static_cast<std::uint32_t>(::getpid());
  id.start_time = process_start_time(id.pid);
  return id;
}

ProcessId cached_self = current();
void refresh_after_fork() noexcept { cached_self = current(); }
[[maybe_unused]] const int fork_hook = ::pthread_atfork(nullptr, nullptr, refresh_after_fork);

}  // namespace

ProcessId self_process() noexcept { return cached_self; }

std::uint64_t process_start_time(std::uint32_t pid) noexcept {
  char state = 0;
  std::uint64_t start = 0;
  return read_stat(pid, state, start) ? start : 0;
}

bool process_alive(ProcessId id) noexcept {
  if (id.pid == 0) return false;
  char state = 0;
  std::uint64_t start = 0;
  if (!read_stat(id.pid, state, start)) {
    // No /proc entry: gone, unless /proc is unreadable, in which case ask the kernel.
    return ::kill(static_cast<pid_t>(id.pid), 0) == 0 || errno == EPERM;
  }
  if (state == 'Z' || state == 'X') return false;
  return id.start_time == 0 || id.start_time == start;
}

namespace {

// What /proc said about a pid, and when: keyed by pid alone, so that questions with and without
// a start time share one entry.
struct ProcEntry {
  std::uint32_t pid = 0;
  std::uint64_t start_time = 0;  // 0: no such process (or a zombie) when last read
  std::int64_t read_ms = 0;
};
thread_local ProcEntry proc_cache[16];

std::int64_t monotonic_ms() noexcept {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return std::int64_t(t.tv_sec) * 1000 + t.tv_nsec / 1'000'000;
}

bool pid_exists(std::uint32_t pid) noexcept {
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// The start time of `pid` as recently known (0: gone), re-reading /proc as the rules say.
std::uint64_t known_start(std::uint32_t pid) noexcept {
  ProcEntry& e = proc_cache[pid % 16];
  const std::int64_t now = monotonic_ms();
  const std::int64_t age = e.pid == pid ? now - e.read_ms : INT64_MAX;
  if (age < kLivenessTrustMs) return e.start_time;
  if (age < kLivenessCacheMs && e.start_time != 0) {
    if (pid_exists(pid)) return e.start_time;
    e = {pid, 0, now};
    return 0;
  }
  const std::uint64_t start = running_start_time(pid);
  e = {pid, start, now};
  return start;
}

}  // namespace

std::uint64_t running_start_time(std::uint32_t pid) noexcept {
  char state = 0;
  std::uint64_t start = 0;
  const bool readable = read_stat(pid, state, start);
  if (!readable) start = pid_exists(pid) ? 1 : 0;  // /proc unreadable: existence is all we know
  if (state == 'Z' || state == 'X') start = 0;
  return start;
}

bool process_alive_cached(ProcessId id) noexcept {
  if (id.pid == 0) return false;
  const std::uint64_t start = known_start(id.pid);
  return start != 0 && (id.start_time == 0 || start == 1 || id.start_time == start);
}

std::uint64_t process_start_time_cached(std::uint32_t pid) noexcept {
  if (pid == self_process().pid) return self_process().start_time;
  return known_start(pid);
}

bool owner_alive(std::uint64_t packed) noexcept {
  const auto pid = static_cast<std::uint32_t>(packed >> 32);
  if (pid == 0) return false;
  char state = 0;
  std::uint64_t start = 0;
  if (!read_stat(pid, state, start)) return false;
  if (state == 'Z' || state == 'X') return false;
  return (start & 0xffffffffu) == (packed & 0xffffffffu);
}

bool owner_alive_cached(std::uint64_t packed) noexcept {
  const auto pid = static_cast<std::uint32_t>(packed >> 32);
  if (pid == 0 || !process_alive_cached({pid, 0})) return false;
  return (process_start_time_cached(pid) & 0xffffffffu) == (packed & 0xffffffffu);
}

}  // namespace agentbus::shm

namespace agentbus {

std::optional<ProcessStat> read_process_stat(int pid) {
  if (pid <= 0) return std::nullopt;
  char buf[1024];
  shm::StatFields f;
  if (!shm::read_stat_fields(static_cast<std::uint32_t>(pid), buf, f)) return std::nullopt;
  return ProcessStat{std::string(f.comm), f.state, f.ppid, f.start};
}

bool process_running(int pid) noexcept {
  return pid > 0 && shm::process_alive({static_cast<std::uint32_t>(pid), 0});
}

}  // namespace agentbus
