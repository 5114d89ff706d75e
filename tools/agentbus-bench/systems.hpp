// agentbus-bench/systems.hpp — the systems compared side by side.
//
// Each system lives in systems/<name>.cpp, implements the shape driver.hpp describes, and
// exposes one SystemEntry: its name, which runs it can do, and run_once<ThatSystem>.
#pragma once

#include "common.hpp"

#include <string>
#include <vector>

namespace bench {

struct SystemEntry {
  std::string name;
  std::string description;
  bool (*supports)(const RunSpec&) = nullptr;
  Measurement (*run)(const RunSpec&) = nullptr;
  bool needs_redis = false;
};

// The room every agentbus run uses, and its ring: the --bridge figures create it first on a
// bus with a bridge attached, then run the usual 1to1 on it.
inline constexpr const char* kAgentbusRoom = "bench";
inline constexpr std::size_t kAgentbusRingBytes = 1 << 22;

SystemEntry agentbus_system();
SystemEntry agentbus_exclusive_system();  // 1 producer: an ExclusivePublisher
SystemEntry agentbus_batch_system();      // 1 producer, throughput: publish_batch of 32
SystemEntry naive_ring_system();
SystemEntry boost_mq_system();
SystemEntry redis_system();            // XADD one at a time; XREAD BLOCK subscribers
SystemEntry redis_pipelined_system();  // XADD in pipelined batches; throughput only

[[nodiscard]] inline std::vector<SystemEntry> all_systems() {
  return {agentbus_system(), agentbus_exclusive_system(), agentbus_batch_system(), naive_ring_system(), boost_mq_system(), redis_system(),
          redis_pipelined_system()};
}

}  // namespace bench
