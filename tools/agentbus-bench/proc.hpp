// agentbus-bench/proc.hpp — process plumbing: anonymous shared memory inherited across
// fork(), a start barrier, CPU pinning, forking a child that reports instead of throwing,
// and reaping children with a deadline.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace bench {

// A MAP_SHARED | MAP_ANONYMOUS mapping: created before fork(), the same pages in every child.
class SharedMapping {
 public:
  explicit SharedMapping(std::size_t bytes);
  ~SharedMapping();
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;

  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

// Start/stop signalling between the parent and its children, in shared memory.
// Children block on a (non-private) futex rather than spinning, so that up to five waiting
// children on two cores do not starve the parent that is about to release them.
struct alignas(64) Control {
  std::atomic<int> ready{0};   // children that finished their setup
  std::atomic<std::uint32_t> go{0};
  std::atomic<std::uint32_t> stop{0};
  std::int64_t go_ns = 0;      // CLOCK_MONOTONIC when go was released

  void mark_ready() noexcept;
  void wait_go() noexcept;
  void release(std::int64_t at_ns) noexcept;
};

// Pins the calling thread (and, in a fresh child, the process) to one CPU. False if it failed.
bool pin_to_cpu(int cpu) noexcept;
[[nodiscard]] int online_cpus() noexcept;

// fork()s a child that runs `body` and _exit()s: 0 when body returned, 1 when it threw
// (the message goes to `on_error`, which writes it somewhere the parent can read).
pid_t fork_child(const std::function<void()>& body,
                 const std::function<void(const char*)>& on_error);

// Waits for every pid until deadline_ns (CLOCK_MONOTONIC); SIGKILLs the rest.
// Returns how many had to be killed or exited non-zero.
int reap_children(const std::vector<pid_t>& pids, std::int64_t deadline_ns);

}  // namespace bench
