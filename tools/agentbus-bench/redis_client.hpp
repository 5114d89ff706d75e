// agentbus-bench/redis_client.hpp — the bench's side of Redis Streams, shared by the redis
// systems (systems/redis_streams.cpp) and the bridge figures (bridge.cpp), so that both
// baselines are the same client code: a hiredis connection that throws on errors, pipelined
// XADD, and an XREAD BLOCK reader that follows a stream from the last id it saw.
#pragma once

#include <hiredis/hiredis.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace bench {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// One connection to 127.0.0.1:port. Every failure, an error reply included, throws.
class RedisClient {
 public:
  explicit RedisClient(int port);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  [[nodiscard]] redisContext* get() const { return c_; }

  template <class... Args>
  Reply command(const char* fmt, Args... args) {
    Reply r(static_cast<redisReply*>(redisCommand(c_, fmt, args...)));
    check(r);
    return r;
  }
  Reply next_reply();  // the reply to the oldest command appended and not yet read

 private:
  void check(const Reply& r) const;
  redisContext* c_;
};

// XADD <key> * p <payload>, `depth` commands in flight before the replies are read.
class PipelinedXadd {
 public:
  PipelinedXadd(RedisClient& client, std::string key, int depth) : client_(client), key_(std::move(key)), depth_(depth) {}
  void add(std::span<const std::byte> payload);
  // XADD <key> MAXLEN ~ <maxlen> * followed by `fields` (name, value, name, value...).
  void add_entry(std::uint64_t maxlen, std::span<const std::string_view> fields);
  void flush();  // reads every outstanding reply

 private:
  RedisClient& client_;
  std::string key_;
  int depth_;
  int pending_ = 0;
};

// XREAD COUNT n BLOCK ms from the last id seen ("0-0" at first); calls `on_value` with the
// first field's value of each entry.
class StreamReader {
 public:
  StreamReader(RedisClient& client, std::string key, int count = 1024)
      : client_(client), key_(std::move(key)), count_(count) {}
  std::size_t read(std::int64_t block_ms, const std::function<void(std::span<const std::byte>)>& on_value);

 private:
  RedisClient& client_;
  std::string key_;
  int count_;
  std::string last_id_ = "0-0";
};

}  // namespace bench
