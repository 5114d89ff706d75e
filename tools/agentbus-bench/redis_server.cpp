#include "redis_server.hpp"

#include "common.hpp"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace bench {

namespace {

// Asks the kernel for a free port by binding port 0, then releases it for redis-server.
int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

bool answers_ping(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  bool ok = false;
  if (c != nullptr && c->err == 0) {
    auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
    ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
    if (reply != nullptr) freeReplyObject(reply);
  }
  if (c != nullptr) redisFree(c);
  return ok;
}

}  // namespace

bool RedisServer::start() {
  port_ = free_loopback_port();
  if (port_ == 0) {
    why_ = "no free loopback port";
    return false;
  }
  const std::string port = std::to_string(port_);
  std::fflush(nullptr);
  pid_ = fork();
  if (pid_ < 0) {
    why_ = "fork failed";
    return false;
  }
  if (pid_ == 0) {
    const int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, STDOUT_FILENO);
      dup2(devnull, STDERR_FILENO);
    }
    execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
           "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", "/tmp",
           static_cast<char*>(nullptr));
    _exit(127);  // not installed
  }
  const std::int64_t deadline = now_ns() + 5'000'000'000;
  while (now_ns() < deadline) {
    if (answers_ping(port_)) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      why_ = WIFEXITED(status) && WEXITSTATUS(status) == 127
                 ? "redis-server is not installed (apt-get install redis-server)"
                 : "redis-server exited at start-up";
      return false;
    }
    usleep(10'000);
  }
  stop();
  why_ = "redis-server did not answer PING within 5 s";
  return false;
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace bench
