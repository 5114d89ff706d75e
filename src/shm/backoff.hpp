// Escalating pause for a wait that is expected to be short (a writer finishing a claimed entry,
// a producer finishing a record): spin with `pause` first, then yield the core, then sleep
// briefly, so a wait for a process that was descheduled or died does not burn a core.
#pragma once

#include <chrono>
#include <thread>

namespace agentbus::shm {

class Backoff {
 public:
  void pause() noexcept {
    if (round_ < kSpins) {
      __builtin_ia32_pause();
    } else if (round_ < kSpins + kYields) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    ++round_;
  }

 private:
  static constexpr unsigned kSpins = 64, kYields = 64;
  unsigned round_ = 0;
};

}  // namespace agentbus::shm
