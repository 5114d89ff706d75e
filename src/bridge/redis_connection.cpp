#include "bridge/redis_connection.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <thread>
#include <utility>
#include <vector>

namespace agentbus::bridge {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  const auto count = std::max<std::chrono::milliseconds::rep>(ms.count(), 1);
  return timeval{static_cast<time_t>(count / 1000), static_cast<suseconds_t>(count % 1000 * 1000)};
}

// hiredis wants parallel arrays of pointers and lengths. Their storage is kept per thread:
// the bridge appends one command per shipped entry, and two allocations each were a cost.
struct Argv {
  explicit Argv(std::span<const std::string_view> args) : data(storage().data), lengths(storage().lengths) {
    data.clear();
    lengths.clear();
    for (const std::string_view a : args) {
      data.push_back(a.data());
      lengths.push_back(a.size());
    }
  }
  [[nodiscard]] int count() const { return static_cast<int>(data.size()); }
  std::vector<const char*>& data;
  std::vector<std::size_t>& lengths;

 private:
  struct Storage {
    std::vector<const char*> data;
    std::vector<std::size_t> lengths;
  };
  static Storage& storage() {
    thread_local Storage s;
    return s;
  }
};

const std::string kPasswordHint = "set $" + std::string(kRedisPasswordEnv) + " or pass --password-file F";

}  // namespace

RedisConnection::RedisConnection(redisContext* context, RedisTarget target, std::chrono::milliseconds timeout)
    : context_(context), target_(std::move(target)), timeout_(timeout) {}

RedisConnection::RedisConnection(RedisConnection&& other) noexcept
    : context_(std::exchange(other.context_, nullptr)),
      target_(std::move(other.target_)),
      timeout_(other.timeout_),
      pending_(std::exchange(other.pending_, 0)),
      awake_(other.awake_),
      lost_(std::exchange(other.lost_, true)) {}

RedisConnection& RedisConnection::operator=(RedisConnection&& other) noexcept {
  if (this != &other) {
    if (context_ != nullptr) redisFree(context_);
    context_ = std::exchange(other.context_, nullptr);
    target_ = std::move(other.target_);
    timeout_ = other.timeout_;
    pending_ = std::exchange(other.pending_, 0);
    awake_ = other.awake_;
    lost_ = std::exchange(other.lost_, true);
  }
  return *this;
}

RedisConnection::~RedisConnection() {
  if (context_ != nullptr) redisFree(context_);
}

RedisConnection RedisConnection::connect(const RedisTarget& target, std::chrono::milliseconds timeout) {
  const std::string where = target.where();
  if (!target.user.empty() && target.password.empty())
    throw Error(Errc::invalid_argument,
                "the Redis URL names user '" + target.user + "' but no password was given: " + kPasswordHint);
  const timeval tv = to_timeval(timeout);
  redisContext* context = target.unix_path.empty() ? redisConnectWithTimeout(target.host.c_str(), target.port, tv)
                                                   : redisConnectUnixWithTimeout(target.unix_path.c_str(), tv);
  if (context == nullptr) throw Error(Errc::system, "cannot reach Redis at " + where + ": out of memory");
  if (context->err != 0) {
    const std::string why = context->errstr;
    redisFree(context);
    throw RedisDisconnected("cannot reach Redis at " + where + ": " + why);
  }
  RedisConnection connection(context, target, timeout);
  connection.set_command_timeout(timeout);

  if (!target.password.empty()) {
    const RedisReply auth = target.user.empty() ? connection.command({"AUTH", target.password})
                                                : connection.command({"AUTH", target.user, target.password});
    if (auto refused = auth.error())
      throw Error(Errc::invalid_argument, "Redis at " + where + " refused the credentials for user '" +
                                              target.user_or_default() + "': " + std::string(*refused));
  }
  const RedisReply pong = connection.command({"PING"});
  if (auto refused = pong.error()) {
    if (refused->starts_with("NOAUTH"))
      throw Error(Errc::invalid_argument, "Redis at " + where + " needs a password (" + std::string(*refused) +
                                              "): " + kPasswordHint + " (and redis://user@host for an ACL user)");
    throw Error(Errc::invalid_argument, "Redis at " + where + " refused PING: " + std::string(*refused));
  }
  if (target.db != 0) {
    const std::string db = std::to_string(target.db);
    const RedisReply selected = connection.command({"SELECT", db});
    if (auto refused = selected.error())
      throw Error(Errc::invalid_argument,
                  "Redis at " + where + " refused database " + db + ": " + std::string(*refused));
  }
  return connection;
}

void RedisConnection::fail(std::string_view doing) {
  lost_ = true;
  std::string why = context_ != nullptr ? context_->errstr : "no connection";
  if (context_ != nullptr && context_->err == REDIS_ERR_IO && why.find("temporarily unavailable") != std::string::npos)
    why = "no answer within " + std::to_string(timeout_.count()) + " ms";
  if (why.empty()) why = "connection closed";
  throw RedisDisconnected("connection to Redis at " + target_.where() + " lost (" + std::string(doing) + "): " + why);
}

void RedisConnection::check_usable() {
  if (lost_ || context_ == nullptr)
    throw RedisDisconnected("connection to Redis at " + target_.where() + " was lost earlier; connect again");
}

RedisReply RedisConnection::command(std::span<const std::string_view> argv) {
  check_usable();
  if (pending_ != 0)
    throw Error(Errc::invalid_argument,
                "a Redis command while " + std::to_string(pending_) + " pipelined replies are unread");
  if (argv.empty()) throw Error(Errc::invalid_argument, "an empty Redis command");
  Argv a(argv);
  if (awake_.count() == 0) {
    void* raw = redisCommandArgv(context_, a.count(), a.data.data(), a.lengths.data());
    if (raw == nullptr) fail(argv.front());
    return RedisReply(static_cast<redisReply*>(raw));
  }
  if (redisAppendCommandArgv(context_, a.count(), a.data.data(), a.lengths.data()) != REDIS_OK) fail(argv.front());
  for (int done = 0; !done;)
    if (redisBufferWrite(context_, &done) != REDIS_OK) fail(argv.front());
  await_reply(argv.front());
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) fail(argv.front());
  return RedisReply(static_cast<redisReply*>(raw));
}

void RedisConnection::await_reply(std::string_view doing) {
  const auto until = std::chrono::steady_clock::now() + awake_;
  pollfd p{context_->fd, POLLIN, 0};
  for (;;) {
    const int n = ::poll(&p, 1, 0);
    if (n < 0 && errno != EINTR) {
      lost_ = true;
      throw RedisDisconnected("connection to Redis at " + target_.where() + " lost (" + std::string(doing) +
                              "): poll: " + std::strerror(errno));
    }
    if (n > 0 || std::chrono::steady_clock::now() >= until) return;  // readable, or sleep in the read
    std::this_thread::yield();
  }
}

void RedisConnection::append(std::span<const std::string_view> argv) {
  check_usable();
  if (argv.empty()) throw Error(Errc::invalid_argument, "an empty Redis command");
  Argv a(argv);
  if (redisAppendCommandArgv(context_, a.count(), a.data.data(), a.lengths.data()) != REDIS_OK) fail("append");
  ++pending_;
}

RedisReply RedisConnection::read_reply() {
  check_usable();
  if (pending_ == 0) throw Error(Errc::invalid_argument, "read_reply() with no pipelined command");
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) fail("reading a pipelined reply");
  --pending_;
  return RedisReply(static_cast<redisReply*>(raw));
}

void RedisConnection::load(RedisScript& script) {
  const RedisReply loaded = command({"SCRIPT", "LOAD", script.source});
  if (auto sha = loaded.string()) {
    script.sha = std::string(*sha);
    return;
  }
  throw Error(Errc::invalid_argument,
              "Redis at " + target_.where() + " did not load a script: " + loaded.describe());
}

RedisReply RedisConnection::eval(RedisScript& script, std::span<const std::string_view> keys,
                                 std::span<const std::string_view> args) {
  if (script.sha.empty()) load(script);
  const std::string key_count = std::to_string(keys.size());
  std::vector<std::string_view> argv = {"EVALSHA", script.sha, key_count};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  RedisReply reply = command(argv);
  if (auto error = reply.error(); error && error->starts_with("NOSCRIPT")) {
    load(script);
    argv[1] = script.sha;
    reply = command(argv);
  }
  return reply;
}

void RedisConnection::append_eval(RedisScript& script, std::span<const std::string_view> keys,
                                  std::span<const std::string_view> args) {
  if (script.sha.empty()) {
    if (pending_ != 0) throw Error(Errc::invalid_argument, "loading a script behind pipelined commands");
    load(script);
  }
  const std::string key_count = std::to_string(keys.size());
  std::vector<std::string_view> argv = {"EVALSHA", script.sha, key_count};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  append(argv);
}

void RedisConnection::set_command_timeout(std::chrono::milliseconds timeout) {
  check_usable();
  timeout_ = timeout;
  if (redisSetTimeout(context_, to_timeval(timeout)) != REDIS_OK) fail("setting the command timeout");
}

}  // namespace agentbus::bridge
