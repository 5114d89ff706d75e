#include <agentbus/bridge/redis_target.hpp>

#include "bridge/decimal.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace agentbus::bridge {

namespace {

constexpr std::string_view kExpected =
    "expected redis://[user@]host[:port][/db] or unix:///path/to.sock[?db=N]";
constexpr std::size_t kMaxPasswordFileBytes = 64 * 1024;

// The URL as it may be printed: a password in it replaced by ***.
std::string redacted(std::string_view url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const std::size_t start = scheme + 3;
  const std::size_t end = std::min(url.find('/', start), url.size());
  const std::size_t at = url.substr(0, end).rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  const std::size_t colon = url.substr(0, at).find(':', start);
  if (colon == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

[[noreturn]] void bad_url(std::string_view url, std::string_view why) {
  throw Error(Errc::invalid_argument, "bad Redis URL '" + redacted(url) + "': " + std::string(why));
}

// A decimal in [lo, hi], or nothing.
std::optional<int> decimal(std::string_view text, int lo, int hi) {
  const auto value = parse_decimal<int>(text);
  if (!value || *value < lo || *value > hi) return std::nullopt;
  return value;
}

std::string percent_decoded(std::string_view url, std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    unsigned value = 0;
    if (i + 2 >= text.size()) bad_url(url, "a %-escape in the user or password is cut short");
    const auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc{} || end != text.data() + i + 3) bad_url(url, "bad %-escape in the user or password");
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

bool plain_host_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
         c == '_';
}

RedisTarget parse_unix(std::string_view url, std::string_view rest) {
  RedisTarget target;
  const std::size_t q = rest.find('?');
  const std::string_view path = rest.substr(0, q);
  if (path.empty() || path.front() != '/') bad_url(url, "no absolute socket path; " + std::string(kExpected));
  target.unix_path = std::string(path);
  if (q != std::string_view::npos) {
    const std::string_view query = rest.substr(q + 1);
    if (!query.starts_with("db=")) bad_url(url, "unknown query '" + std::string(query) + "'; only ?db=N is understood");
    const auto db = decimal(query.substr(3), 0, 1 << 30);
    if (!db) bad_url(url, "database '" + std::string(query.substr(3)) + "' is not a number");
    target.db = *db;
  }
  return target;
}

void parse_host_port(std::string_view url, std::string_view hostport, RedisTarget& target) {
  std::string_view port_text;
  bool has_port = false;
  if (hostport.starts_with('[')) {
    const std::size_t close = hostport.find(']');
    if (close == std::string_view::npos) bad_url(url, "an IPv6 host's '[' has no ']'");
    target.host = std::string(hostport.substr(1, close - 1));
    const std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad_url(url, "unexpected '" + std::string(after) + "' after the host");
      port_text = after.substr(1);
      has_port = true;
    }
    for (const char c : target.host)
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'))
        bad_url(url, "'" + target.host + "' is not an IPv6 address");
  } else {
    const std::size_t colon = hostport.find(':');
    if (colon != std::string_view::npos && hostport.find(':', colon + 1) != std::string_view::npos)
      bad_url(url, "an IPv6 host goes in brackets, e.g. redis://[::1]:6379");
    target.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = hostport.substr(colon + 1);
      has_port = true;
    }
    for (const char c : target.host)
      if (!plain_host_byte(c)) bad_url(url, "the host '" + target.host + "' has a character a host name cannot have");
  }
  if (target.host.empty()) bad_url(url, "no host; " + std::string(kExpected));
  if (has_port) {
    const auto port = decimal(port_text, 1, 65535);
    if (!port) bad_url(url, "port '" + std::string(port_text) + "' is not a number in 1..65535");
    target.port = *port;
  }
}

RedisTarget parse_tcp(std::string_view url, std::string_view rest, UrlSource source) {
  RedisTarget target;
  const std::size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  std::string_view hostport = authority;
  const std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    hostport = authority.substr(at + 1);
    const std::size_t colon = userinfo.find(':');
    target.user = percent_decoded(url, userinfo.substr(0, colon));
    if (colon != std::string_view::npos) {
      if (source == UrlSource::command_line)
        throw Error(Errc::invalid_argument,
                    "the Redis URL '" + redacted(url) +
                        "' on the command line carries a password: refused, because every user of "
                        "this host can read a process's arguments (ps, /proc/<pid>/cmdline); put the "
                        "password in $" + std::string(kRedisPasswordEnv) +
                        " or in a file (mode 600) given with --password-file F");
      target.password = percent_decoded(url, userinfo.substr(colon + 1));
    }
  }
  parse_host_port(url, hostport, target);
  if (slash != std::string_view::npos) {
    const std::string_view db_text = rest.substr(slash + 1);
    if (!db_text.empty()) {
      const auto db = decimal(db_text, 0, 1 << 30);
      if (!db) bad_url(url, "database '" + std::string(db_text) + "' is not a number (redis://host/2)");
      target.db = *db;
    }
  }
  return target;
}

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

}  // namespace

std::string RedisTarget::where() const {
  if (!unix_path.empty()) return "unix:" + unix_path;
  const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return shown + ":" + std::to_string(port);
}

RedisTarget parse_redis_url(std::string_view url, UrlSource source) {
  if (url.starts_with("unix://")) return parse_unix(url, url.substr(7));
  if (url.starts_with("rediss://"))
    bad_url(url, "TLS (rediss://) is not supported; use a unix socket or redis:// on a trusted network");
  if (!url.starts_with("redis://")) bad_url(url, kExpected);
  return parse_tcp(url, url.substr(8), source);
}

std::string read_password_file(const std::string& path, std::vector<std::string>& warnings) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error(Errc::system, "cannot read the password file '" + path + "': " + std::strerror(errno));
  struct stat st {};
  std::string contents;
  std::string problem;
  if (fstat(fd, &st) != 0) {
    problem = std::string("cannot stat it: ") + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    problem = "it is not a regular file";
  } else if (static_cast<std::size_t>(st.st_size) > kMaxPasswordFileBytes) {
    problem = "it is " + std::to_string(st.st_size) + " bytes, more than a password";
  } else {
    contents.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < contents.size()) {
      const ssize_t n = ::read(fd, contents.data() + got, contents.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    contents.resize(got);
  }
  ::close(fd);
  if (!problem.empty()) throw Error(Errc::invalid_argument, "cannot use the password file '" + path + "': " + problem);
  if (contents.ends_with('\n')) contents.pop_back();
  if (contents.ends_with('\r')) contents.pop_back();
  if (contents.empty()) throw Error(Errc::invalid_argument, "the password file '" + path + "' is empty");
  if ((st.st_mode & S_IROTH) != 0)
    warnings.push_back("the password file '" + path + "' is readable by every user of this host; chmod 600 '" +
                       path + "'");
  return contents;
}

ResolvedRedisTarget resolve_redis_target(std::optional<std::string> url_flag,
                                         std::optional<std::string> password_file) {
  ResolvedRedisTarget out;
  if (url_flag) {
    out.target = parse_redis_url(*url_flag, UrlSource::command_line);
  } else if (const char* url = env(kRedisUrlEnv)) {
    out.target = parse_redis_url(url, UrlSource::environment);
  } else {
    out.target = parse_redis_url("redis://127.0.0.1:6379", UrlSource::environment);
  }
  if (password_file) {
    out.target.password = read_password_file(*password_file, out.warnings);
    if (env(kRedisPasswordEnv) != nullptr)
      out.warnings.push_back("both --password-file and $" + std::string(kRedisPasswordEnv) +
                             " are set; using the file");
  } else if (const char* password = env(kRedisPasswordEnv)) {
    out.target.password = password;
  }
  return out;
}

}  // namespace agentbus::bridge
