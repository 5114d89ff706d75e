// agentbus-bench/tasks.hpp — the task board's figures (issue 3 targets): uncontended
// claim+complete in one process, and two processes racing to claim the same tasks.
#pragma once

#include <cstdio>

namespace bench {

struct TaskBenchSettings {
  int runs = 5;            // median of this many
  int tasks = 100'000;     // tasks per run
};

// Prints one line per figure (JSON objects with --json). Returns non-zero if a run saw a
// double claim or failed.
int run_task_bench(const TaskBenchSettings& settings, bool json, std::FILE* out);

}  // namespace bench
