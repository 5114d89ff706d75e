// commands_top.cpp — placeholder.
#include "common.hpp"

namespace agentbus::cli {
void add_top_commands(CLI::App&, const Globals&, Commands&) {}
}  // namespace agentbus::cli
