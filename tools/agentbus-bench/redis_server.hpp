// agentbus-bench/redis_server.hpp — a private redis-server for the run.
//
// Started on 127.0.0.1 and a free port with persistence off (`--save '' --appendonly no`),
// so the Redis figures measure the stream path, not the disk; stopped when this goes away.
#pragma once

#include <string>
#include <sys/types.h>

namespace bench {

class RedisServer {
 public:
  RedisServer() = default;
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts the server and waits until it answers PING. False (with why()) when redis-server
  // is not installed or did not come up.
  bool start();
  void stop();

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] const std::string& why() const noexcept { return why_; }
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string why_;
};

}  // namespace bench
