// Placeholder: the leases commands (issue 3).
#include "common.hpp"

namespace agentbus::cli {

void add_leases_commands(CLI::App& /*app*/, const Globals& /*g*/, Commands& /*commands*/) {}

}  // namespace agentbus::cli
