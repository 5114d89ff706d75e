#include "shm/owner_word.hpp"

namespace agentbus::shm::owner_bits {
namespace {

bool start_matches(std::uint64_t w, std::uint64_t start_time) {
  return start_bits(w) == 0 || (start_time & kStartMask) == start_bits(w);
}

}  // namespace

bool holder_alive(std::uint64_t w) noexcept {
  const std::uint32_t p = pid(w);
  if (p == 0 || !process_alive({p, 0})) return false;
  return start_matches(w, process_start_time(p));
}

bool holder_alive_cached(std::uint64_t w) noexcept {
  const std::uint32_t p = pid(w);
  if (p == 0 || !process_alive_cached({p, 0})) return false;
  return start_matches(w, process_start_time_cached(p));
}

}  // namespace agentbus::shm::owner_bits
