// The Lua scripts with which the bridge decides a bridged room's task claims in Redis
// (docs/bridge.md, "Tasks across hosts"). Every host's bridge runs the same scripts on the same
// keys, so Redis, which runs one script at a time, is where the hosts' claims are ordered.
//
// Keys of task <origin host>:<origin id> under the room's prefix P (agentroom's, with the
// origin in the id because local ids repeat across hosts):
//   KEYS[1] P:task:<h>:<id>:owner  "<agent>@<host>", PX the lease
//   KEYS[2] P:task:<h>:<id>:token  the fencing token, INCR on every claim granted
//   KEYS[3] P:task:<h>:<id>:done   the result, once completed
// Tokens are compared as the decimal strings Redis keeps.
#pragma once

#include <string_view>

namespace agentbus::bridge {

// ARGV[1] owner "<agent>@<host>", ARGV[2] lease ms, ARGV[3] the token of a lapsed or dead claim
// of this host that may be replaced ('0': none), ARGV[4] this host, ARGV[5] keep ms (0: forever).
// Returns {'done'} | {'held', owner, pttl, token} | {'granted', token}.
inline constexpr std::string_view kClaimScript = R"lua(
if redis.call('EXISTS', KEYS[3]) == 1 then return {'done'} end
local cur = redis.call('GET', KEYS[1])
local tok = redis.call('GET', KEYS[2]) or '0'
if cur then
  local host = string.match(cur, '@([^@]*)$')
  if not (ARGV[3] ~= '0' and tok == ARGV[3] and host == ARGV[4]) then
    return {'held', cur, redis.call('PTTL', KEYS[1]), tok}
  end
end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
return {'granted', tostring(t)}
)lua";

// Renew, complete or release the claim with token ARGV[2]: refused ('stale') when a newer claim
// was granted, or another claimant holds the key; a claim that lapsed with nobody after it may
// still act. ARGV[1] owner, ARGV[3] 'renew' | 'complete' | 'release', ARGV[4] lease ms (renew),
// ARGV[5] the result (complete), ARGV[6] keep ms for the result (0: forever).
// Returns {'ok'} | {'done'} | {'stale', owner or '', token}.
inline constexpr std::string_view kSettleScript = R"lua(
local tok = redis.call('GET', KEYS[2]) or '0'
if redis.call('EXISTS', KEYS[3]) == 1 then
  if ARGV[3] == 'complete' and tok == ARGV[2] then return {'ok'} end
  return {'done'}
end
local cur = redis.call('GET', KEYS[1])
if tok ~= ARGV[2] or (cur and cur ~= ARGV[1]) then return {'stale', cur or '', tok} end
if ARGV[3] == 'renew' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
elseif ARGV[3] == 'complete' then
  redis.call('DEL', KEYS[1])
  if tonumber(ARGV[6]) > 0 then redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
  else redis.call('SET', KEYS[3], ARGV[5]) end
else
  redis.call('DEL', KEYS[1])
end
return {'ok'}
)lua";

}  // namespace agentbus::bridge
