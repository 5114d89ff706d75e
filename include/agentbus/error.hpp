// agentbus/error.hpp — the errors agentbus reports.
//
// Two channels, as in Aeron and iceoryx:
//  * Hot-path calls (publish, next) return a small status (`PublishStatus`, `ReadStatus`) and
//    never throw for conditions a healthy system meets (ring full, timeout, overrun).
//  * Setup errors and misuse (bad name, oversized payload, foreign or corrupt segment) throw
//    `agentbus::Error`, whose message says what happened and what to do about it.
#pragma once

#include <stdexcept>
#include <string>

namespace agentbus {

enum class Errc {
  bad_name,         // a bus, room or reader name outside the documented grammar
  too_large,        // payload or field longer than the room's limit
  incompatible,     // segment exists but has another magic, layout version or size
  corrupt,          // a length or offset read from shared memory is out of bounds
  no_space,         // the segment or /dev/shm has no room for another room or reader
  not_found,        // the bus or room does not exist (when asked not to create it)
  timeout,          // a bounded wait for another process ran out (e.g. segment initialisation)
  system,           // an OS call failed; the message carries errno's text
  invalid_argument, // any other misuse of the API
  conflict,         // lost a race, or a stale fencing token: someone else holds it now
  expired,          // it existed, but its time to live has passed
  unavailable,      // a process this call needs (the bridge, Redis through it) is not answering
};

class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

}  // namespace agentbus
