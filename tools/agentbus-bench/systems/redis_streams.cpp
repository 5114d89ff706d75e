// redis / redis-pipelined: Redis Streams on loopback through hiredis, the usual way agents
// coordinate today. Producers XADD (one round trip per event, or pipelined in batches);
// subscribers XREAD BLOCK from the last id they saw (each subscriber sees every entry, like
// a room). The server is the private one RedisServer started; it runs unpinned, so on two
// cores it competes with the producer and subscriber for CPU, as it would in real use.
// Subscribers always block in XREAD, so Redis has block rows only.
#include "../driver.hpp"
#include "../redis_client.hpp"
#include "../systems.hpp"

#include <stdexcept>
#include <string>

namespace bench {
namespace {

constexpr int kPipelineBatch = 128;  // XADDs in flight before the producer reads the replies

template <bool Pipelined>
class RedisStreams {
 public:
  explicit RedisStreams(const RunSpec& spec) : key_("bench:" + spec.tag), port_(spec.redis_port) {
    if (port_ == 0) throw std::runtime_error("redis-server is not running");
    RedisClient(port_).command("DEL %s", key_.c_str());
  }
  ~RedisStreams() {
    try {
      RedisClient(port_).command("DEL %s", key_.c_str());
    } catch (...) {
    }
  }

  class Producer {
   public:
    Producer(RedisStreams& sys, int /*index*/) : key_(sys.key_), conn_(sys.port_), pipeline_(conn_, key_, kPipelineBatch) {}

    bool send(std::span<const std::byte> payload) {
      if constexpr (Pipelined) pipeline_.add(payload);
      else conn_.command("XADD %s * p %b", key_.c_str(), payload.data(), payload.size());
      return true;
    }
    void flush() { pipeline_.flush(); }

   private:
    std::string key_;
    RedisClient conn_;
    PipelinedXadd pipeline_;
  };

  class Consumer {
   public:
    Consumer(RedisStreams& sys, int /*index*/) : conn_(sys.port_), reader_(conn_, sys.key_) {}

    template <class F>
    std::size_t receive(std::int64_t timeout_ns, F&& on_message) {
      return reader_.read(std::max<std::int64_t>(1, timeout_ns / 1'000'000), on_message);
    }
    [[nodiscard]] std::uint64_t overruns() const { return 0; }

   private:
    RedisClient conn_;
    StreamReader reader_;
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
