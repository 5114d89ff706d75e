// RedisConnection against a real redis-server on a free loopback port.
#include "bridge/redis_connection.hpp"

#include <agentbus_testing/redis_server.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <thread>
#include <unistd.h>

namespace agentbus::bridge {
namespace {

using agentbus::testing::RedisAclUser;
using agentbus::testing::RedisServer;
using agentbus::testing::RedisServerOptions;
using namespace std::chrono_literals;

constexpr auto kTimeout = 2000ms;

RedisTarget local(int port, std::string password = {}, std::string user = {}) {
  RedisTarget t;
  t.host = "127.0.0.1";
  t.port = port;
  t.password = std::move(password);
  t.user = std::move(user);
  return t;
}

RedisServerOptions with_password(std::string password) {
  RedisServerOptions options;
  options.requirepass = std::move(password);
  return options;
}

// The message of what `f` throws as E.
template <class E, class F>
std::string thrown(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "nothing thrown";
  return {};
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "agentbus-redis-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(RedisConnection, CommandsAreBinarySafeAndRepliesTyped) {
  RedisServer server;
  ASSERT_TRUE(server.start()) << server.why();
  RedisConnection c = RedisConnection::connect(local(server.port()), kTimeout);
  const std::string value("a\0b\r\n", 5);
  EXPECT_EQ(c.command({"SET", "k", value}).status(), "OK");
  const RedisReply got = c.command({"GET", "k"});
  EXPECT_EQ(got.string(), value);
  EXPECT_FALSE(got.integer());  // a wrong-type accessor gives nothing
  EXPECT_EQ(got.size(), 0u);
  EXPECT_TRUE(got.at(3).is_nil());
  EXPECT_TRUE(c.command({"GET", "missing"}).is_nil());
  EXPECT_EQ(c.command({"INCR", "n"}).integer(), 1);
}

TEST(RedisConnection, AnErrorReplyIsNotALostConnection) {
  RedisServer server;
  ASSERT_TRUE(server.start()) << server.why();
  RedisConnection c = RedisConnection::connect(local(server.port()), kTimeout);
  c.command({"SET", "s", "text"});
  const RedisReply wrong = c.command({"INCR", "s"});
  ASSERT_TRUE(wrong.is_error());
  EXPECT_TRUE(wrong.error()->starts_with("ERR")) << *wrong.error();
  EXPECT_FALSE(c.lost());
  EXPECT_EQ(c.command({"PING"}).status(), "PONG");
}

TEST(RedisConnection, Pipelining) {
  RedisServer server;
  ASSERT_TRUE(server.start()) << server.why();
  RedisConnection c = RedisConnection::connect(local(server.port()), kTimeout);
  for (int i = 0; i < 100; ++i) c.append({"INCR", "p"});
  EXPECT_EQ(c.pending(), 100u);
  EXPECT_THROW(c.command({"PING"}), Error);  // its reply would be taken for a pipelined one
  for (long long i = 1; i <= 100; ++i) EXPECT_EQ(c.read_reply().integer(), i);
  EXPECT_EQ(c.pending(), 0u);
  EXPECT_THROW(c.read_reply(), Error);
}

TEST(RedisConnection, SelectsTheDatabase) {
  RedisServer server;
  ASSERT_TRUE(server.start()) << server.why();
  RedisTarget two = local(server.port());
  two.db = 2;
  RedisConnection c2 = RedisConnection::connect(two, kTimeout);
  RedisConnection c0 = RedisConnection::connect(local(server.port()), kTimeout);
  c2.command({"SET", "only-in-2", "x"});
  EXPECT_TRUE(c0.command({"GET", "only-in-2"}).is_nil());
  EXPECT_EQ(c2.command({"GET", "only-in-2"}).string(), "x");
  two.db = 100000;  // more than Redis's 16 databases
  EXPECT_NE(thrown<Error>([&] { (void)RedisConnection::connect(two, kTimeout); }).find("refused database 100000"),
            std::string::npos);
}

TEST(RedisConnection, UnixSocket) {
  TempDir dir;
  RedisServerOptions options;
  options.unix_socket = dir.path() / "redis.sock";
  RedisServer server(options);
  ASSERT_TRUE(server.start()) << server.why();
  const RedisTarget target = parse_redis_url("unix://" + options.unix_socket->string() + "?db=1", UrlSource::command_line);
  RedisConnection c = RedisConnection::connect(target, kTimeout);
  const RedisReply reply = c.command({"CLIENT", "INFO"});  // the view below points into it
  const auto info = reply.string();
  ASSERT_TRUE(info);
  EXPECT_NE(info->find("db=1"), std::string_view::npos) << *info;
  EXPECT_NE(info->find("laddr=" + options.unix_socket->string()), std::string_view::npos) << *info;
  const std::string missing = (dir.path() / "nobody.sock").string();
  EXPECT_EQ(thrown<RedisDisconnected>([&] {
              (void)RedisConnection::connect(parse_redis_url("unix://" + missing, UrlSource::command_line), kTimeout);
            }),
            "cannot reach Redis at unix:" + missing + ": No such file or directory");
}

TEST(RedisConnection, UnreachableSaysWhere) {
  int port = 0;
  {
    RedisServer server;  // a port that was free a moment ago and has nobody listening now
    ASSERT_TRUE(server.start()) << server.why();
    port = server.port();
  }
  const std::string message =
      thrown<RedisDisconnected>([&] { (void)RedisConnection::connect(local(port), kTimeout); });
  EXPECT_EQ(message, "cannot reach Redis at 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST(RedisConnection, WrongPasswordNamesTheUser) {
  RedisServer server(with_password("right"));
  ASSERT_TRUE(server.start()) << server.why();
  const std::string message =
      thrown<Error>([&] { (void)RedisConnection::connect(local(server.port(), "wrong"), kTimeout); });
  EXPECT_NE(message.find("Redis at 127.0.0.1:" + std::to_string(server.port()) +
                         " refused the credentials for user 'default': WRONGPASS"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("'wrong'"), std::string::npos) << message;
  RedisConnection ok = RedisConnection::connect(local(server.port(), "right"), kTimeout);
  EXPECT_EQ(ok.command({"PING"}).status(), "PONG");
}

TEST(RedisConnection, NoAuthSaysWhatToSet) {
  RedisServer server(with_password("right"));
  ASSERT_TRUE(server.start()) << server.why();
  const std::string message = thrown<Error>([&] { (void)RedisConnection::connect(local(server.port()), kTimeout); });
  EXPECT_NE(message.find("needs a password (NOAUTH"), std::string::npos) << message;
  EXPECT_NE(message.find("$AGENTBUS_REDIS_PASSWORD"), std::string::npos) << message;
  EXPECT_NE(message.find("--password-file"), std::string::npos) << message;
}

TEST(RedisConnection, AclUser) {
  RedisServerOptions options = with_password("admin");
  options.acl_user = RedisAclUser{"bridge", "bpw"};
  RedisServer server(options);
  ASSERT_TRUE(server.start()) << server.why();
  RedisConnection c = RedisConnection::connect(local(server.port(), "bpw", "bridge"), kTimeout);
  EXPECT_EQ(c.command({"ACL", "WHOAMI"}).string(), "bridge");
  const std::string wrong =
      thrown<Error>([&] { (void)RedisConnection::connect(local(server.port(), "admin", "bridge"), kTimeout); });
  EXPECT_NE(wrong.find("refused the credentials for user 'bridge': WRONGPASS"), std::string::npos) << wrong;
  const std::string no_password =
      thrown<Error>([&] { (void)RedisConnection::connect(local(server.port(), "", "bridge"), kTimeout); });
  EXPECT_NE(no_password.find("names user 'bridge' but no password"), std::string::npos) << no_password;
}

TEST(RedisConnection, ScriptSurvivesARedisRestart) {
  TempDir dir;
  RedisServerOptions options;
  options.aof_dir = dir.path();
  RedisServer server(options);
  ASSERT_TRUE(server.start()) << server.why();
  RedisScript incr("return redis.call('INCR', KEYS[1])");
  const std::string_view keys[] = {"counter"};
  {
    RedisConnection c = RedisConnection::connect(local(server.port()), kTimeout);
    EXPECT_EQ(c.eval(incr, keys, {}).integer(), 1);
    EXPECT_EQ(incr.sha.size(), 40u);
    EXPECT_EQ(c.eval(incr, keys, {}).integer(), 2);
    server.stop();
    EXPECT_THROW(c.command({"PING"}), RedisDisconnected);
  }
  ASSERT_TRUE(server.start()) << server.why();  // same port, same AOF
  RedisConnection c = RedisConnection::connect(local(server.port()), kTimeout);
  const std::string sha = incr.sha;
  const RedisReply exists = c.command({"SCRIPT", "EXISTS", sha});
  ASSERT_EQ(exists.size(), 1u);
  EXPECT_EQ(exists.at(0).integer(), 0);  // Redis forgot it: eval must take the NOSCRIPT path
  EXPECT_EQ(c.eval(incr, keys, {}).integer(), 3);  // and the AOF kept the counter
  EXPECT_EQ(incr.sha, sha);
  const RedisReply failing = [&] {
    RedisScript bad("return redis.call('INCR')");
    return c.eval(bad, {}, {});
  }();
  EXPECT_TRUE(failing.is_error());  // a script's own error is a reply
  EXPECT_FALSE(c.lost());
}

TEST(RedisConnection, KilledConnectionIsReportedLost) {
  RedisServer server;
  ASSERT_TRUE(server.start()) << server.why();
  RedisConnection victim = RedisConnection::connect(local(server.port()), kTimeout);
  RedisConnection killer = RedisConnection::connect(local(server.port()), kTimeout);
  const auto id = victim.command({"CLIENT", "ID"}).integer();
  ASSERT_TRUE(id);
  EXPECT_EQ(killer.command({"CLIENT", "KILL", "ID", std::to_string(*id)}).integer(), 1);
  const std::string message = thrown<RedisDisconnected>([&] { (void)victim.command({"PING"}); });
  EXPECT_NE(message.find("connection to Redis at 127.0.0.1:" + std::to_string(server.port()) + " lost"),
            std::string::npos)
      << message;
  EXPECT_TRUE(victim.lost());
  EXPECT_NE(thrown<RedisDisconnected>([&] { (void)victim.command({"PING"}); }).find("lost earlier"),
            std::string::npos);
  EXPECT_FALSE(killer.lost());
}

TEST(RedisConnection, ServerGoneMidPipelineIsLost) {
  RedisServer server;
  ASSERT_TRUE(server.start()) << server.why();
  RedisConnection c = RedisConnection::connect(local(server.port()), kTimeout);
  server.kill();
  c.append({"PING"});
  EXPECT_THROW(c.read_reply(), RedisDisconnected);
  EXPECT_TRUE(c.lost());
}

TEST(RedisConnection, NoAnswerWithinTheTimeoutIsLost) {
  RedisServer server;
  ASSERT_TRUE(server.start()) << server.why();
  RedisConnection c = RedisConnection::connect(local(server.port()), kTimeout);
  c.set_command_timeout(100ms);
  const std::string message =
      thrown<RedisDisconnected>([&] { (void)c.command({"BLPOP", "nothing", "5"}); });
  EXPECT_NE(message.find("no answer within 100 ms"), std::string::npos) << message;
}

TEST(RedisConnection, AnAwakeConnectionTakesQuickAndLateRepliesAlike) {
  RedisServer server;
  ASSERT_TRUE(server.start()) << server.why();
  RedisConnection c = RedisConnection::connect(local(server.port()), kTimeout);
  c.set_awake(200us);
  EXPECT_EQ(c.command({"SET", "k", "v"}).status(), "OK");  // within the window
  EXPECT_EQ(c.command({"GET", "k"}).string(), "v");
  // A reply that comes after the window is read by the sleeping read, not lost.
  std::thread writer([port = server.port()] {
    RedisConnection w = RedisConnection::connect(local(port), kTimeout);
    std::this_thread::sleep_for(50ms);
    (void)w.command({"RPUSH", "q", "late"});
  });
  const RedisReply r = c.command({"BLPOP", "q", "5"});
  writer.join();
  ASSERT_EQ(r.size(), 2u) << r.describe();
  EXPECT_EQ(r.at(1).string(), "late");
  // The command timeout still holds.
  c.set_command_timeout(100ms);
  const std::string message = thrown<RedisDisconnected>([&] { (void)c.command({"BLPOP", "nothing", "5"}); });
  EXPECT_NE(message.find("no answer within 100 ms"), std::string::npos) << message;
}

}  // namespace
}  // namespace agentbus::bridge
