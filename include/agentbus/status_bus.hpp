// agentbus/status_bus.hpp — RoomKit's StatusBus across processes (issue 4). Placeholder.
#pragma once
