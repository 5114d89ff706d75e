// agentbus/counter.hpp — counters as a list of name/value pairs, so `agentbus info`, `top`
// and any status page print every counter a primitive keeps without naming them one by one.
// Each primitive's header declares counter_list() for its counters struct; the names are the
// struct's field names (and the CLI's JSON keys). Recovery counters share one vocabulary:
//   expired_reclaimed        entries whose ttl or lease lapsed, reused
//   dead_sessions_reclaimed  entries held by a session (pid + start time) that died, reused
//   dead_writers_reclaimed   entries a process died while writing, taken over
#pragma once

#include <cstdint>
#include <string_view>

namespace agentbus {

struct Counter {
  std::string_view name;  // a static string: valid for the life of the program
  std::uint64_t value = 0;
};

}  // namespace agentbus
