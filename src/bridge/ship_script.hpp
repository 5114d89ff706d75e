// The one Lua script that puts a batch of a room's events into Redis: the XADDs and the room's
// checkpoint in one atomic step, so that a bridge killed at any instant neither loses nor
// duplicates an entry (docs/bridge.md, "Exactly once, out").
//
// KEYS[1] the room's stream, KEYS[2] its checkpoint "<incarnation>:<local id, 20 digits>".
// ARGV[1] the bus incarnation, ARGV[2] MAXLEN (approximate), ARGV[3] stream TTL in ms (0: none),
// ARGV[4] the number of entries, then per entry: its local id (20 digits), its field count n,
// and n field/value pairs. Entries at or below the checkpoint were shipped before (a retry
// after a crash or a lost reply) and are skipped. Ids are compared as fixed-width decimal
// strings: Lua 5.1 numbers are doubles and would round ids past 2^53.
// Returns {entries added, the checkpoint id after the batch}.
#pragma once

#include <string_view>

namespace agentbus::bridge {

inline constexpr std::string_view kShipScript = R"lua(
local last = nil
local cp = redis.call('GET', KEYS[2])
if cp then
  local inc, id = string.match(cp, '^(.*):(%d+)$')
  if inc == ARGV[1] then last = id end
end
local i = 5
local added = 0
for _ = 1, tonumber(ARGV[4]) do
  local id = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  i = i + 2
  if last == nil or id > last then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, i, i + 2 * n - 1))
    last = id
    added = added + 1
  end
  i = i + 2 * n
end
if added > 0 then
  redis.call('SET', KEYS[2], ARGV[1] .. ':' .. last)
  if tonumber(ARGV[3]) > 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
  end
end
return {added, last or ''}
)lua";

}  // namespace agentbus::bridge
