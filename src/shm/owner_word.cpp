#include "shm/owner_word.hpp"

namespace agentbus::shm::owner_bits {
namespace {

// `start_time` as running_start_time() gives it: 0 gone, 1 unknown (the pid exists).
bool holder_is(std::uint64_t w, std::uint64_t start_time) {
  if (start_time == 0) return false;
  return start_bits(w) == 0 || start_time == 1 || (start_time & kStartMask) == start_bits(w);
}

}  // namespace

bool holder_alive(std::uint64_t w) noexcept {
  const std::uint32_t p = pid(w);
  return p != 0 && holder_is(w, running_start_time(p));
}

bool holder_alive_cached(std::uint64_t w) noexcept {
  const std::uint32_t p = pid(w);
  return p != 0 && holder_is(w, process_start_time_cached(p));
}

}  // namespace agentbus::shm::owner_bits
