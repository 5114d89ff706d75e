// agentbus_testing/redis_server.hpp — a private redis-server for a test or a benchmark run.
//
// Started on 127.0.0.1 and a free port; stopped when this goes away. By default persistence is
// off (`--save '' --appendonly no`), so the bench measures the stream path, not the disk. With
// `aof_dir` it runs `--appendonly yes --appendfsync always` in that directory, so a test can
// stop or kill it and start it again on the same port and find every acknowledged write.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>

namespace agentbus::testing {

struct RedisAclUser {
  std::string name;
  std::string password;  // the user gets every command and key (`~* &* +@all`)
};

struct RedisServerOptions {
  std::string requirepass{};                   // the default user's password; empty: none
  std::optional<RedisAclUser> acl_user{};      // one more user, besides default
  std::optional<std::filesystem::path> aof_dir{};  // AOF on, in this directory
  std::optional<std::filesystem::path> unix_socket{};  // listen here too (mode 700)
};

class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {}) : options_(std::move(options)) {}
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts the server (on the port of the previous start, if any) and waits, at most 5 s,
  // until it answers PING. False (with why()) when redis-server is not installed or did not
  // come up.
  bool start();
  // SIGTERM and wait: Redis flushes its AOF on the way out.
  void stop();
  // SIGKILL and wait: a crash, as far as Redis knows.
  void kill();

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] const std::string& why() const noexcept { return why_; }
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

 private:
  void end(int signal);

  RedisServerOptions options_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string why_;
};

}  // namespace agentbus::testing
