// commands_hook.cpp — placeholder.
#include "common.hpp"

namespace agentbus::cli {
void add_hook_commands(CLI::App&, const Globals&, Commands&) {}
}  // namespace agentbus::cli
