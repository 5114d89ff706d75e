#include "agentbus_testing/redis_server.hpp"

#include <agentbus/clock.hpp>

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
#include <vector>

namespace agentbus::testing {

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

// Up and serving: PONG, or NOAUTH from a server with a password. Not LOADING (an AOF replay).
bool answers_ping(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  bool ok = false;
  if (c != nullptr && c->err == 0) {
    auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
    ok = reply != nullptr &&
         (reply->type == REDIS_REPLY_STATUS ||
          (reply->type == REDIS_REPLY_ERROR && std::string_view(reply->str, reply->len).starts_with("NOAUTH")));
    if (reply != nullptr) freeReplyObject(reply);
  }
  if (c != nullptr) redisFree(c);
  return ok;
}

std::vector<std::string> server_args(const RedisServerOptions& options, int port) {
  std::vector<std::string> args = {"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1",
                                   "--save", "", "--daemonize", "no"};
  if (options.aof_dir) {
    args.insert(args.end(), {"--appendonly", "yes", "--appendfsync", "always", "--dir", options.aof_dir->string()});
  } else {
    args.insert(args.end(), {"--appendonly", "no", "--dir", "/tmp"});
  }
  if (options.unix_socket)
    args.insert(args.end(), {"--unixsocket", options.unix_socket->string(), "--unixsocketperm", "700"});
  if (!options.requirepass.empty()) args.insert(args.end(), {"--requirepass", options.requirepass});
  if (options.acl_user)
    args.insert(args.end(), {"--user", options.acl_user->name, "on", ">" + options.acl_user->password, "~*",
                             "&*", "+@all"});
  return args;
}

}  // namespace

bool RedisServer::start() {
  if (running()) return true;
  if (port_ == 0) port_ = free_loopback_port();
  if (port_ == 0) {
    why_ = "no free loopback port";
    return false;
  }
  const std::vector<std::string> args = server_args(options_, port_);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
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
    execvp("redis-server", argv.data());
    _exit(127);  // not installed
  }
  const std::int64_t deadline = agentbus::monotonic_ns() + 5'000'000'000;
  while (agentbus::monotonic_ns() < deadline) {
    if (answers_ping(port_)) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      why_ = WIFEXITED(status) && WEXITSTATUS(status) == 127
                 ? "redis-server is not installed (apt-get install redis-server)"
                 : "redis-server exited at start-up (port " + std::to_string(port_) + " taken?)";
      return false;
    }
    usleep(10'000);
  }
  stop();
  why_ = "redis-server did not answer PING within 5 s";
  return false;
}

void RedisServer::stop() { end(SIGTERM); }
void RedisServer::kill() { end(SIGKILL); }

void RedisServer::end(int signal) {
  if (pid_ <= 0) return;
  ::kill(pid_, signal);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace agentbus::testing
