// bridge/redis_connection.hpp — one connection to Redis: connect with credentials, commands,
// pipelines and Lua scripts.
//
// Two kinds of failure, because a caller treats them differently:
//  * Redis answered with an error ("WRONGTYPE …", "NOSCRIPT …"): that is a reply, returned as a
//    RedisReply whose is_error() is true. The connection is still good.
//  * The connection is gone (refused, reset, timed out, Redis stopped): RedisDisconnected is
//    thrown, and every later call on this connection throws it again. The caller connects anew.
// connect() also throws Error{Errc::invalid_argument} for credentials Redis refused, with a
// message that says which user and what to set.
#pragma once

#include "bridge/redis_reply.hpp"

#include <agentbus/bridge/redis_target.hpp>
#include <agentbus/error.hpp>

#include <chrono>
#include <span>
#include <string>
#include <string_view>

struct redisContext;

namespace agentbus::bridge {

class RedisDisconnected : public Error {
 public:
  explicit RedisDisconnected(const std::string& message) : Error(Errc::system, message) {}
};

// A Lua script, loaded into Redis once and then run by its sha (EVALSHA).
struct RedisScript {
  explicit RedisScript(std::string source) : source(std::move(source)) {}
  std::string source;
  std::string sha;  // filled by the first eval() (SCRIPT LOAD); Redis may forget it on restart
};

class RedisConnection {
 public:
  // Connects within `timeout`, which also bounds each command's round trip; then AUTH (with
  // the ACL user when there is one), PING and SELECT.
  [[nodiscard]] static RedisConnection connect(const RedisTarget& target, std::chrono::milliseconds timeout);

  RedisConnection(RedisConnection&& other) noexcept;
  RedisConnection& operator=(RedisConnection&& other) noexcept;
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;
  ~RedisConnection();

  // One command, binary-safe (each argument is sent with its length).
  RedisReply command(std::span<const std::string_view> argv);
  RedisReply command(std::initializer_list<std::string_view> argv) {
    return command(std::span<const std::string_view>(argv.begin(), argv.size()));
  }

  // Pipelining: queue commands, then read their replies in order, one read_reply() each.
  void append(std::span<const std::string_view> argv);
  void append(std::initializer_list<std::string_view> argv) {
    append(std::span<const std::string_view>(argv.begin(), argv.size()));
  }
  RedisReply read_reply();
  [[nodiscard]] std::size_t pending() const noexcept { return pending_; }

  // EVALSHA of the script, loading it first when this process has not, and again when Redis
  // answers NOSCRIPT (it restarted, or SCRIPT FLUSH). The reply may be a script's error.
  RedisReply eval(RedisScript& script, std::span<const std::string_view> keys,
                  std::span<const std::string_view> args);

  // The EVALSHA of eval(), queued as a pipelined command (read its reply with read_reply()).
  // The script is loaded first if this process has not; a NOSCRIPT reply is the caller's.
  void append_eval(RedisScript& script, std::span<const std::string_view> keys, std::span<const std::string_view> args);

  // A longer bound for one blocking command (XREAD BLOCK ms needs more than ms).
  void set_command_timeout(std::chrono::milliseconds timeout);

  // How long command() watches the socket for the reply, yielding the CPU between looks,
  // before it sleeps in the read: a reply that comes within it costs no wake-up. 0: none.
  void set_awake(std::chrono::microseconds awake) noexcept { awake_ = awake; }

  [[nodiscard]] bool lost() const noexcept { return lost_; }
  [[nodiscard]] const RedisTarget& target() const noexcept { return target_; }

 private:
  RedisConnection(redisContext* context, RedisTarget target, std::chrono::milliseconds timeout);
  [[noreturn]] void fail(std::string_view doing);
  void check_usable();
  void load(RedisScript& script);
  void await_reply(std::string_view doing);

  redisContext* context_ = nullptr;
  RedisTarget target_;
  std::chrono::milliseconds timeout_{};
  std::size_t pending_ = 0;
  std::chrono::microseconds awake_{0};
  bool lost_ = false;
};

}  // namespace agentbus::bridge
