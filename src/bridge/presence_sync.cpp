#include "bridge/presence_sync.hpp"

#include "coord/bridge_state.hpp"

#include <agentbus/clock.hpp>
#include <agentbus/error.hpp>
#include <agentbus/json_text.hpp>
#include <agentbus/names.hpp>
#include <agentbus/presence.hpp>

#include <simdjson.h>

namespace agentbus::bridge {

namespace {

std::int64_t now_ms() { return realtime_ns() / 1'000'000; }

std::optional<std::string> field(simdjson::dom::object& o, const char* name, std::size_t max) {
  std::string_view v;
  if (o[name].get(v) != simdjson::SUCCESS || v.size() > max) return std::nullopt;
  return std::string(v);
}

}  // namespace

void push_presence(RedisConnection& conn, Room& room, std::string_view key_prefix, std::string_view host) {
  std::vector<AgentInfo> agents;
  try {
    agents = Presence(room, {.create = false}).who();
  } catch (const Error& e) {
    if (e.code() != Errc::not_found) throw;  // nobody ever joined here: nothing to push
  }
  if (agents.empty()) return;
  const std::string index = std::string(key_prefix) + ":presence:index";
  const std::string ttl = std::to_string(kRemotePresenceTtl.count());
  const std::string expiry = std::to_string(now_ms() + kRemotePresenceTtl.count());
  for (const AgentInfo& a : agents) {
    const std::string value = "{\"schema_version\":1,\"identity\":{\"handle\":" + util::json_string(a.handle) +
                              ",\"agent_id\":" + util::json_string(a.handle) + "},\"description\":" +
                              util::json_string(a.role) + ",\"role\":" + util::json_string(a.role) +
                              ",\"working_on\":" + util::json_string(a.working_on) + ",\"host\":" +
                              util::json_string(host) + "}";
    const std::string key = std::string(key_prefix) + ":presence:" + a.handle;
    conn.append({"SET", key, value, "PX", ttl});
    conn.append({"ZADD", index, expiry, a.handle});
  }
  while (conn.pending() > 0) (void)conn.read_reply();
}

std::vector<RemoteAgent> pull_presence(RedisConnection& conn, std::string_view key_prefix, std::string_view host) {
  const std::string index = std::string(key_prefix) + ":presence:index";
  const std::string now = std::to_string(now_ms());
  (void)conn.command({"ZREMRANGEBYSCORE", index, "-inf", "(" + now});  // agentroom trims on read
  const RedisReply handles =
      conn.command({"ZRANGEBYSCORE", index, now, "+inf", "LIMIT", "0", std::to_string(4 * kMaxRemoteAgents)});
  std::vector<std::string> names;
  for (std::size_t i = 0; i < handles.size(); ++i)
    if (const std::optional<std::string_view> h = handles.at(i).string(); h && h->size() <= kMaxQualifiedHandleBytes)
      names.emplace_back(*h);
  for (const std::string& n : names) conn.append({"GET", std::string(key_prefix) + ":presence:" + n});
  std::vector<RemoteAgent> out;
  simdjson::dom::parser parser;
  for (const std::string& n : names) {
    const RedisReply r = conn.read_reply();
    const std::optional<std::string_view> json = r.string();
    if (!json || out.size() >= kMaxRemoteAgents) continue;  // expired meanwhile, or not ours
    simdjson::dom::object o;
    if (parser.parse(simdjson::padded_string(*json)).get(o) != simdjson::SUCCESS) continue;
    const std::optional<std::string> from = field(o, "host", 64);
    if (!from || *from == host || host_id_problem(*from)) continue;  // our own, or not a bridge's
    RemoteAgent a;
    a.host = *from;
    a.handle = n;
    a.role = field(o, "role", kMaxRoleBytes).value_or(field(o, "description", kMaxRoleBytes).value_or(""));
    a.working_on = field(o, "working_on", kMaxWorkingOnBytes).value_or("");
    a.expires_ns = realtime_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(kRemotePresenceTtl).count();
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace agentbus::bridge
