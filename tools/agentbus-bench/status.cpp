// agentbus-bench/status.cpp — placeholder.
#include "status.hpp"

namespace bench {
int run_status_bench(const StatusBenchSettings&, bool, std::FILE*) { return 0; }
}  // namespace bench
