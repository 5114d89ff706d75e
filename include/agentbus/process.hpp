// agentbus/process.hpp — what agentbus knows about other processes, from /proc: the one
// /proc/<pid>/stat parser (src/shm/process.cpp) that the library's liveness checks also use,
// for tools that show or follow sessions (the CLI's session rule, its hook, `group` output).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace agentbus {

struct ProcessStat {
  std::string comm;             // the command name (at most 15 bytes on Linux)
  char state = 0;               // 'R', 'S', ... 'Z' for a zombie
  int ppid = 0;
  std::uint64_t start_time = 0; // clock ticks since boot: with the pid, a process's identity
};

// /proc/<pid>/stat, or nullopt when there is no such process or it cannot be read.
[[nodiscard]] std::optional<ProcessStat> read_process_stat(int pid);

// True unless the process is confirmed gone (a zombie counts as gone).
[[nodiscard]] bool process_running(int pid) noexcept;

}  // namespace agentbus
