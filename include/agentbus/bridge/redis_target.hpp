// agentbus/bridge/redis_target.hpp — where the bridge's Redis is, and its credentials.
//
// URLs: `redis://[user@]host[:port][/db]` (port 6379, db 0 by default; an IPv6 host in
// brackets) and `unix:///path/to.sock[?db=N]`. A password never comes from the command line,
// because every user of the host can read a process's arguments (ps, /proc/<pid>/cmdline): it
// comes from `--password-file F`, else `$AGENTBUS_REDIS_PASSWORD`, else the `user:password@`
// of a URL in `$AGENTBUS_REDIS_URL` (the environment is private to the process's user).
// Errors are Error{Errc::invalid_argument} (Errc::system for a password file that cannot be
// read) and never repeat a password.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::bridge {

inline constexpr int kDefaultRedisPort = 6379;
inline constexpr const char* kRedisUrlEnv = "AGENTBUS_REDIS_URL";
inline constexpr const char* kRedisPasswordEnv = "AGENTBUS_REDIS_PASSWORD";

struct RedisTarget {
  std::string host;        // TCP host; empty for a unix socket
  int port = kDefaultRedisPort;
  std::string unix_path;   // the socket's path; empty for TCP
  int db = 0;
  std::string user;        // the ACL user; empty: `default`
  std::string password;    // empty: no AUTH

  // "127.0.0.1:6379" or "unix:/run/redis.sock": where, for messages (never the password).
  [[nodiscard]] std::string where() const;
  [[nodiscard]] std::string user_or_default() const { return user.empty() ? "default" : user; }
};

// Where a URL came from: a password is refused in one from the command line.
enum class UrlSource { command_line, environment };

[[nodiscard]] RedisTarget parse_redis_url(std::string_view url, UrlSource source);

struct ResolvedRedisTarget {
  RedisTarget target;
  std::vector<std::string> warnings;  // e.g. a password file every user can read: print them
};

// The target from `--redis URL` (url_flag), else $AGENTBUS_REDIS_URL, else
// redis://127.0.0.1:6379; the password as above.
[[nodiscard]] ResolvedRedisTarget resolve_redis_target(std::optional<std::string> url_flag,
                                                       std::optional<std::string> password_file);

// The password in a file: its contents without one trailing newline. A file other users may
// read adds a warning; a missing, unreadable or empty one is an error naming it.
[[nodiscard]] std::string read_password_file(const std::string& path, std::vector<std::string>& warnings);

}  // namespace agentbus::bridge
