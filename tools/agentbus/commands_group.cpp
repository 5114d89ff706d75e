// commands_group.cpp — placeholder.
#include "common.hpp"

namespace agentbus::cli {
void add_group_commands(CLI::App&, const Globals&, Commands&) {}
}  // namespace agentbus::cli
