// Redis URLs and where the password comes from.
#include <agentbus/bridge/redis_target.hpp>
#include <agentbus/error.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace agentbus::bridge {
namespace {

// Sets (or unsets) an environment variable for one test and puts the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The message of the Error that `f` throws, checked to have code `code`.
template <class F>
std::string error_of(F&& f, Errc code = Errc::invalid_argument) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error thrown";
  return {};
}

class PasswordFile {
 public:
  PasswordFile(const std::string& contents, mode_t mode)
      : path_(std::filesystem::temp_directory_path() /
              ("agentbus-pw-" + std::to_string(getpid()) + "-" + std::to_string(counter_++))) {
    std::ofstream(path_) << contents;
    chmod(path_.c_str(), mode);
  }
  ~PasswordFile() { std::filesystem::remove(path_); }
  [[nodiscard]] std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

TEST(RedisUrl, HostPortDbAndUser) {
  const RedisTarget t = parse_redis_url("redis://alice@redis.example-1.net:6380/3", UrlSource::command_line);
  EXPECT_EQ(t.host, "redis.example-1.net");
  EXPECT_EQ(t.port, 6380);
  EXPECT_EQ(t.db, 3);
  EXPECT_EQ(t.user, "alice");
  EXPECT_EQ(t.password, "");
  EXPECT_EQ(t.where(), "redis.example-1.net:6380");
}

TEST(RedisUrl, Defaults) {
  const RedisTarget t = parse_redis_url("redis://localhost", UrlSource::command_line);
  EXPECT_EQ(t.port, 6379);
  EXPECT_EQ(t.db, 0);
  EXPECT_EQ(t.user, "");
  EXPECT_EQ(t.user_or_default(), "default");
  EXPECT_EQ(parse_redis_url("redis://localhost/", UrlSource::command_line).db, 0);
}

TEST(RedisUrl, Ipv6InBrackets) {
  const RedisTarget t = parse_redis_url("redis://[::1]:7000", UrlSource::command_line);
  EXPECT_EQ(t.host, "::1");
  EXPECT_EQ(t.port, 7000);
  EXPECT_EQ(t.where(), "[::1]:7000");
  EXPECT_NE(error_of([] { (void)parse_redis_url("redis://::1:7000", UrlSource::command_line); }).find("brackets"),
            std::string::npos);
}

TEST(RedisUrl, UnixSocket) {
  const RedisTarget t = parse_redis_url("unix:///run/redis/redis.sock?db=2", UrlSource::command_line);
  EXPECT_EQ(t.unix_path, "/run/redis/redis.sock");
  EXPECT_EQ(t.db, 2);
  EXPECT_EQ(t.host, "");
  EXPECT_EQ(t.where(), "unix:/run/redis/redis.sock");
  EXPECT_EQ(parse_redis_url("unix:///tmp/r.sock", UrlSource::command_line).db, 0);
}

TEST(RedisUrl, BadUrlsNameWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {"x", "bad Redis URL 'x': expected redis://[user@]host[:port][/db]"},
      {"http://h", "expected redis://"},
      {"rediss://h", "TLS"},
      {"redis://", "no host"},
      {"redis://:6379", "no host"},
      {"redis://h:0", "port '0' is not a number in 1..65535"},
      {"redis://h:65536", "port '65536'"},
      {"redis://h:abc", "port 'abc'"},
      {"redis://h:-1", "port '-1'"},
      {"redis://h:", "port ''"},
      {"redis://h/x", "database 'x' is not a number"},
      {"redis://h/-1", "database '-1'"},
      {"redis://h/1?x=2", "database '1?x=2'"},
      {"redis://h h", "a character a host name cannot have"},
      {"redis://[::1", "no ']'"},
      {"redis://[::1]x", "after the host"},
      {"unix://", "no absolute socket path"},
      {"unix://relative.sock", "no absolute socket path"},
      {"unix:///s?db=x", "database 'x'"},
      {"unix:///s?foo=1", "only ?db=N"},
      {"redis://u%zz@h", "bad %-escape"},
      {"redis://u%2@h", "cut short"},
  };
  for (const auto& [url, expected] : cases) {
    const std::string message = error_of([&] { (void)parse_redis_url(url, UrlSource::command_line); });
    EXPECT_NE(message.find(expected), std::string::npos) << url << " -> " << message;
  }
}

TEST(RedisUrl, PasswordOnTheCommandLineIsRefusedWithoutEchoingIt) {
  const std::string message =
      error_of([] { (void)parse_redis_url("redis://alice:s3cret@h:6379", UrlSource::command_line); });
  EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
  EXPECT_NE(message.find("redis://alice:***@h:6379"), std::string::npos) << message;
  EXPECT_NE(message.find("ps"), std::string::npos) << message;
  EXPECT_NE(message.find("AGENTBUS_REDIS_PASSWORD"), std::string::npos) << message;
  EXPECT_NE(message.find("--password-file"), std::string::npos) << message;
  // Even an otherwise bad URL does not print the password.
  const std::string bad = error_of([] { (void)parse_redis_url("redis://a:s3cret@h:99999", UrlSource::environment); });
  EXPECT_EQ(bad.find("s3cret"), std::string::npos) << bad;
}

TEST(RedisUrl, PasswordFromTheEnvironmentUrlIsTakenAndDecoded) {
  const RedisTarget t = parse_redis_url("redis://alice:p%40ss%3Aword@h", UrlSource::environment);
  EXPECT_EQ(t.user, "alice");
  EXPECT_EQ(t.password, "p@ss:word");
  EXPECT_EQ(t.host, "h");
}

TEST(ResolveRedisTarget, FlagBeatsEnvironmentAndDefaultIsLocalhost) {
  ScopedEnv url(kRedisUrlEnv, "redis://envhost:7001");
  ScopedEnv password(kRedisPasswordEnv, nullptr);
  EXPECT_EQ(resolve_redis_target("redis://flaghost:7002", std::nullopt).target.host, "flaghost");
  EXPECT_EQ(resolve_redis_target(std::nullopt, std::nullopt).target.host, "envhost");
  ScopedEnv no_url(kRedisUrlEnv, nullptr);
  const RedisTarget t = resolve_redis_target(std::nullopt, std::nullopt).target;
  EXPECT_EQ(t.where(), "127.0.0.1:6379");
  EXPECT_EQ(t.password, "");
}

TEST(ResolveRedisTarget, PasswordOrder) {
  ScopedEnv url(kRedisUrlEnv, "redis://u:fromurl@h");
  ScopedEnv password(kRedisPasswordEnv, nullptr);
  EXPECT_EQ(resolve_redis_target(std::nullopt, std::nullopt).target.password, "fromurl");
  ScopedEnv env_password(kRedisPasswordEnv, "fromenv");
  EXPECT_EQ(resolve_redis_target(std::nullopt, std::nullopt).target.password, "fromenv");
  const PasswordFile file("fromfile\n", 0600);
  const ResolvedRedisTarget r = resolve_redis_target(std::nullopt, file.path());
  EXPECT_EQ(r.target.password, "fromfile");
  ASSERT_EQ(r.warnings.size(), 1u);  // the environment's password is not silently ignored
  EXPECT_NE(r.warnings[0].find("using the file"), std::string::npos) << r.warnings[0];
  EXPECT_EQ(r.target.user, "u");
  ScopedEnv no_env_password(kRedisPasswordEnv, nullptr);
  EXPECT_TRUE(resolve_redis_target(std::nullopt, file.path()).warnings.empty());
}

TEST(PasswordFile, TrailingNewlineStrippedAndOnlyOne) {
  std::vector<std::string> warnings;
  EXPECT_EQ(read_password_file(PasswordFile("pw\r\n", 0600).path(), warnings), "pw");
  EXPECT_EQ(read_password_file(PasswordFile("pw\n\n", 0600).path(), warnings), "pw\n");
  EXPECT_EQ(read_password_file(PasswordFile("p w", 0600).path(), warnings), "p w");
  EXPECT_TRUE(warnings.empty());
}

TEST(PasswordFile, WorldReadableWarns) {
  std::vector<std::string> warnings;
  const PasswordFile file("pw", 0644);
  EXPECT_EQ(read_password_file(file.path(), warnings), "pw");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(file.path()), std::string::npos);
  EXPECT_NE(warnings[0].find("chmod 600"), std::string::npos);
}

TEST(PasswordFile, MissingEmptyOrDirectoryIsAnErrorNamingIt) {
  std::vector<std::string> warnings;
  const std::string missing = "/nonexistent/agentbus-password";
  const std::string m = error_of([&] { (void)read_password_file(missing, warnings); }, Errc::system);
  EXPECT_NE(m.find(missing), std::string::npos) << m;
  EXPECT_NE(m.find("No such file"), std::string::npos) << m;
  const PasswordFile empty("\n", 0600);
  EXPECT_NE(error_of([&] { (void)read_password_file(empty.path(), warnings); }).find("is empty"), std::string::npos);
  EXPECT_NE(error_of([&] { (void)read_password_file("/tmp", warnings); }).find("not a regular file"),
            std::string::npos);
  if (geteuid() != 0) {  // root reads a mode-000 file anyway
    const PasswordFile unreadable("pw", 0000);
    EXPECT_NE(error_of([&] { (void)read_password_file(unreadable.path(), warnings); }, Errc::system)
                  .find("Permission denied"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace agentbus::bridge
