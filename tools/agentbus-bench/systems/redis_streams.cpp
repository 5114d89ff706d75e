// redis / redis-pipelined: Redis Streams on loopback through hiredis, the usual way agents
// coordinate today. Producers XADD (one round trip per event, or pipelined in batches);
// subscribers XREAD BLOCK from the last id they saw (each subscriber sees every entry, like
// a room). The server is the private one RedisServer started; it runs unpinned, so on two
// cores it competes with the producer and subscriber for CPU, as it would in real use.
// Subscribers always block in XREAD, so Redis has block rows only.
#include "../driver.hpp"
#include "../systems.hpp"

#include <hiredis/hiredis.h>

#include <stdexcept>
#include <string>

namespace bench {
namespace {

constexpr int kPipelineBatch = 128;  // XADDs in flight before the producer reads the replies
constexpr int kReadCount = 1024;     // entries per XREAD

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

class Connection {
 public:
  explicit Connection(int port) : c_(redisConnect("127.0.0.1", port)) {
    if (c_ == nullptr || c_->err != 0)
      throw std::runtime_error(std::string("redis connect: ") + (c_ ? c_->errstr : "out of memory"));
  }
  ~Connection() { redisFree(c_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  [[nodiscard]] redisContext* get() const { return c_; }

  Reply command(const char* fmt, auto... args) {
    Reply r(static_cast<redisReply*>(redisCommand(c_, fmt, args...)));
    check(r);
    return r;
  }
  Reply next_reply() {
    void* raw = nullptr;
    if (redisGetReply(c_, &raw) != REDIS_OK) throw std::runtime_error(std::string("redis: ") + c_->errstr);
    Reply r(static_cast<redisReply*>(raw));
    check(r);
    return r;
  }

 private:
  void check(const Reply& r) const {
    if (!r) throw std::runtime_error(std::string("redis: ") + c_->errstr);
    if (r->type == REDIS_REPLY_ERROR) throw std::runtime_error(std::string("redis: ") + r->str);
  }
  redisContext* c_;
};

template <bool Pipelined>
class RedisStreams {
 public:
  explicit RedisStreams(const RunSpec& spec) : key_("bench:" + spec.tag), port_(spec.redis_port) {
    if (port_ == 0) throw std::runtime_error("redis-server is not running");
    Connection(port_).command("DEL %s", key_.c_str());
  }
  ~RedisStreams() {
    try {
      Connection(port_).command("DEL %s", key_.c_str());
    } catch (...) {
    }
  }

  class Producer {
   public:
    Producer(RedisStreams& sys, int /*index*/) : key_(sys.key_), conn_(sys.port_) {}

    bool send(std::span<const std::byte> payload) {
      if constexpr (Pipelined) {
        redisAppendCommand(conn_.get(), "XADD %s * p %b", key_.c_str(), payload.data(),
                           payload.size());
        if (++pending_ == kPipelineBatch) flush();
      } else {
        conn_.command("XADD %s * p %b", key_.c_str(), payload.data(), payload.size());
      }
      return true;
    }
    void flush() {
      for (; pending_ > 0; --pending_) conn_.next_reply();
    }

   private:
    std::string key_;
    Connection conn_;
    int pending_ = 0;
  };

  class Consumer {
   public:
    Consumer(RedisStreams& sys, int /*index*/) : key_(sys.key_), conn_(sys.port_) {}

    template <class F>
    std::size_t receive(std::int64_t timeout_ns, F&& on_message) {
      const long long block_ms = std::max<long long>(1, timeout_ns / 1'000'000);
      Reply r = conn_.command("XREAD COUNT %d BLOCK %lld STREAMS %s %s", kReadCount, block_ms,
                              key_.c_str(), last_id_.c_str());
      if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return 0;  // nil: timed out
      const redisReply* entries = r->element[0]->element[1];
      for (std::size_t i = 0; i < entries->elements; ++i) {
        const redisReply* entry = entries->element[i];
        const redisReply* fields = entry->element[1];
        if (fields->elements >= 2) {
          const redisReply* value = fields->element[1];
          on_message(std::span<const std::byte>(reinterpret_cast<const std::byte*>(value->str),
                                                value->len));
        }
        if (i + 1 == entries->elements) last_id_.assign(entry->element[0]->str, entry->element[0]->len);
      }
      return entries->elements;
    }
    [[nodiscard]] std::uint64_t overruns() const { return 0; }

   private:
    std::string key_;
    Connection conn_;
    std::string last_id_ = "0-0";
  };

  void after_run(Measurement&) {}

 private:
  std::string key_;
  int port_;
};

bool supports_unpipelined(const RunSpec& spec) { return spec.wait == Wait::block; }
bool supports_pipelined(const RunSpec& spec) {
  return spec.wait == Wait::block && spec.mode == Mode::throughput;
}

}  // namespace

SystemEntry redis_system() {
  return {"redis", "Redis Streams on loopback: XADD per event, XREAD BLOCK", &supports_unpipelined,
          &run_once<RedisStreams<false>>, true};
}

SystemEntry redis_pipelined_system() {
  return {"redis-pipelined", "Redis Streams on loopback: XADD pipelined x128, XREAD BLOCK",
          &supports_pipelined, &run_once<RedisStreams<true>>, true};
}

}  // namespace bench
