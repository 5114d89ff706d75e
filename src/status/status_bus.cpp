// Placeholder for the StatusBus implementation (issue 4).
#include <agentbus/status_bus.hpp>
