// Placeholder: the inbox commands (issue 3).
#include "common.hpp"

namespace agentbus::cli {

void add_inbox_commands(CLI::App& /*app*/, const Globals& /*g*/, Commands& /*commands*/) {}

}  // namespace agentbus::cli
