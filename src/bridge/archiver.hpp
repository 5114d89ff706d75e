// bridge/archiver.hpp — the archiver's sweep over a connection the caller holds (tests hand
// it theirs); agentbus/bridge/archiver.hpp has the options, the report and the contract.
#pragma once

#include "bridge/redis_connection.hpp"

#include <agentbus/bridge/archiver.hpp>

namespace agentbus::bridge {

// Throws RedisDisconnected when the connection is lost mid-sweep, Error{invalid_argument}
// for options that cannot work (no dir, page 0).
[[nodiscard]] ArchiveReport archive(RedisConnection& redis, const ArchiveOptions& options);

}  // namespace agentbus::bridge
