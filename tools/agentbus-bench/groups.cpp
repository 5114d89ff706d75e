// agentbus-bench/groups.cpp — placeholder.
#include "groups.hpp"

namespace bench {
int run_group_bench(const GroupBenchSettings&, bool, std::FILE*) { return 0; }
}  // namespace bench
