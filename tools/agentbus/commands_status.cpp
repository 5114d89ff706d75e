// commands_status.cpp — placeholder.
#include "common.hpp"

namespace agentbus::cli {
void add_status_commands(CLI::App&, const Globals&, Commands&) {}
}  // namespace agentbus::cli
