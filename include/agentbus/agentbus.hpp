// agentbus/agentbus.hpp — everything public, in one include.
#pragma once
#include <agentbus/bus.hpp>
#include <agentbus/consumer_group.hpp>
#include <agentbus/counter.hpp>
#include <agentbus/error.hpp>
#include <agentbus/event.hpp>
#include <agentbus/event_json.hpp>
#include <agentbus/inbox.hpp>
#include <agentbus/lease_paths.hpp>
#include <agentbus/leases.hpp>
#include <agentbus/names.hpp>
#include <agentbus/presence.hpp>
#include <agentbus/room.hpp>
#include <agentbus/scratchpad.hpp>
#include <agentbus/status_bus.hpp>
#include <agentbus/subscription.hpp>
#include <agentbus/tasks.hpp>
