// The archiver against a real redis-server: thresholds, several streams, a late append during
// the sweep, a directory that cannot be written, undecodable entries, and the archive loaded
// back into a fresh room with the real `agentbus import`; the real agentbus-bridge's exit codes.
#include "bridge_test_support.hpp"
#include "bridge/archiver.hpp"
#include "bridge/entry_codec.hpp"
#include "../cli/cli_process.hpp"
#include "../support/test_bus.hpp"

#include <agentbus/agentbus.hpp>
#include <agentbus_testing/redis_server.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace {

using namespace agentbus;
using namespace agentbus::bridge;
using namespace std::chrono_literals;
using agentbus::test::TestBus;
using agentbus::testing::RedisServer;
namespace fs = std::filesystem;

using bridge_test::bridge_path;

std::vector<std::string> file_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

StreamEvent chat(const std::string& payload, EventId id) {
  StreamEvent e;
  e.type = "chat";
  e.agent = "alice";
  e.payload = payload;
  e.ts_ns = 1'795'428'930'000'000'000 + static_cast<std::int64_t>(id);
  e.origin = {"host-a", id};
  return e;
}

class Archiver : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.start()) << redis_.why();
    dir_ = fs::temp_directory_path() / ("agentbus-archive-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    conn_.emplace(connect());
  }
  void TearDown() override { fs::remove_all(dir_); }

  RedisConnection connect() {
    RedisTarget t;
    t.host = "127.0.0.1";
    t.port = redis_.port();
    return RedisConnection::connect(t, 2000ms);
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(redis_.port()); }

  // XADD of one event; returns its stream id.
  std::string add(const std::string& key, const StreamEvent& e) {
    std::vector<std::string> argv{"XADD", key, "*"};
    for (std::string& f : encode_entry(e)) argv.push_back(std::move(f));
    const std::vector<std::string_view> views(argv.begin(), argv.end());
    const RedisReply r = conn_->command(views);
    EXPECT_TRUE(r.string().has_value()) << r.describe();
    return std::string(r.string().value_or(""));
  }
  std::vector<std::string> add_many(const std::string& key, int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(add(key, chat(key + " #" + std::to_string(i), 64 * (i + 1))));
    return ids;
  }
  long long xlen(const std::string& key) { return conn_->command({"XLEN", key}).integer().value_or(-1); }
  std::vector<std::string> ids_in(const std::string& key) {
    std::vector<std::string> out;
    const RedisReply r = conn_->command({"XRANGE", key, "-", "+"});
    for (std::size_t i = 0; i < r.size(); ++i) out.emplace_back(r.at(i).at(0).string().value_or(""));
    return out;
  }
  ArchiveOptions options(std::uint64_t threshold) {
    ArchiveOptions o;
    o.threshold = threshold;
    o.dir = dir_.string();
    return o;
  }
  static const StreamArchive& of(const ArchiveReport& r, const std::string& key) {
    for (const StreamArchive& s : r.streams)
      if (s.key == key) return s;
    static const StreamArchive none{};
    ADD_FAILURE() << key << " is not in the report";
    return none;
  }
  std::size_t files_in_dir() const {
    if (!fs::exists(dir_)) return 0;
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()));
  }

  RedisServer redis_;
  std::optional<RedisConnection> conn_;  // the test's own, beside the archiver's
  fs::path dir_;
};

TEST_F(Archiver, StreamsAtTheThresholdAreArchivedAndShorterOnesLeftAlone) {
  add_many("agentbus:room:big:events", 5);
  add_many("repo:api:main:events", 7);
  const std::vector<std::string> small = add_many("agentbus:room:small:events", 4);
  ASSERT_TRUE(conn_->command({"SET", "agentbus:room:notastream:events", "x"}).status());
  RedisConnection c = connect();
  const ArchiveReport r = archive(c, options(5));
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.streams.size(), 3u) << "a key of another type is not scanned";
  EXPECT_EQ(of(r, "agentbus:room:big:events").archived, 5u);
  EXPECT_EQ(of(r, "repo:api:main:events").archived, 7u);
  EXPECT_TRUE(of(r, "agentbus:room:small:events").below_threshold);
  EXPECT_TRUE(of(r, "agentbus:room:small:events").file.empty());
  EXPECT_EQ(xlen("agentbus:room:big:events"), 0);
  EXPECT_EQ(xlen("repo:api:main:events"), 0);
  EXPECT_EQ(ids_in("agentbus:room:small:events"), small);
  EXPECT_EQ(files_in_dir(), 2u);
  const std::vector<std::string> lines = file_lines(of(r, "repo:api:main:events").file);
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_NE(lines[0].find("\"room\":\"api/main\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[6].find("repo:api:main:events #6"), std::string::npos) << lines[6];
  EXPECT_EQ(fs::path(of(r, "repo:api:main:events").file).filename().string().rfind("repo_api_main_events-", 0), 0u);
}

TEST_F(Archiver, AnEntryAddedDuringTheSweepSurvivesAndExactlyTheArchivedIdsAreGone) {
  const std::string key = "agentbus:room:r:events";
  const std::vector<std::string> before = add_many(key, 10);
  ArchiveOptions o = options(1);
  o.page = 3;  // several XRANGE pages and XDEL batches
  std::string late;
  o.before_delete = [&](std::string_view k) {
    EXPECT_EQ(k, key);
    late = add(key, chat("late", 9999));
  };
  RedisConnection c = connect();
  const ArchiveReport r = archive(c, o);
  ASSERT_TRUE(r.ok()) << of(r, key).error;
  EXPECT_EQ(of(r, key).archived, 10u);
  ASSERT_FALSE(late.empty());
  EXPECT_EQ(ids_in(key), std::vector<std::string>{late});
  const std::vector<std::string> lines = file_lines(of(r, key).file);
  ASSERT_EQ(lines.size(), 10u);
  for (std::size_t i = 0; i < lines.size(); ++i)
    EXPECT_NE(lines[i].find("\"stream_id\":\"" + before[i] + "\""), std::string::npos) << lines[i];
  for (const std::string& line : lines) EXPECT_EQ(line.find("late"), std::string::npos) << line;
}

TEST_F(Archiver, ADirectoryThatCannotBeWrittenDeletesNothingAndEveryStreamIsTried) {
  add_many("agentbus:room:a:events", 3);
  add_many("agentbus:room:b:events", 3);
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "a regular file";
  ArchiveOptions o = options(1);
  o.dir = (dir_ / "file" / "archive").string();  // under a file: no user can create it
  RedisConnection c = connect();
  const ArchiveReport r = archive(c, o);
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.streams.size(), 2u);
  for (const StreamArchive& s : r.streams) {
    EXPECT_NE(s.error.find("cannot create the archive directory"), std::string::npos) << s.error;
    EXPECT_EQ(s.archived, 0u);
  }
  EXPECT_EQ(xlen("agentbus:room:a:events"), 3);
  EXPECT_EQ(xlen("agentbus:room:b:events"), 3);
}

TEST_F(Archiver, UndecodableEntriesAreArchivedRawNotLost) {
  const std::string key = "repo:api:main:events";
  add(key, chat("fine", 64));
  // agentroom's own entry: no origin_host, so not one of ours.
  ASSERT_TRUE(conn_->command({"XADD", key, "*", "type", "chat", "agent_id", "go", "payload", "hi \x1b[31m"}).string());
  RedisConnection c = connect();
  const ArchiveReport r = archive(c, options(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(of(r, key).archived, 2u);
  EXPECT_EQ(of(r, key).raw, 1u);
  EXPECT_EQ(xlen(key), 0);
  const std::vector<std::string> lines = file_lines(of(r, key).file);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[1].find(R"("raw":{"type":"chat","agent_id":"go","payload":"hi \u001b[31m"})"), std::string::npos)
      << lines[1];
  EXPECT_NE(lines[1].find("origin_host"), std::string::npos) << "says why: " << lines[1];

  // Import takes the event and names the raw line; --strict stops at it.
  TestBus bus("arcraw");
  const cli_test::CliResult imp =
      cli_test::run_cli({{"--bus", bus.name(), "--room", "api/main", "import", of(r, key).file}, {}, "", "", ""});
  EXPECT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_NE(imp.out.find("1 archived events"), std::string::npos) << imp.out;
  EXPECT_NE(imp.err.find("line 2"), std::string::npos) << imp.err;
  const cli_test::CliResult strict = cli_test::run_cli(
      {{"--bus", bus.name(), "--room", "other", "import", "--strict", of(r, key).file}, {}, "", "", ""});
  EXPECT_EQ(strict.exit_code, 1) << strict.err;
  EXPECT_NE(strict.err.find("line 2"), std::string::npos) << strict.err;
}

TEST_F(Archiver, AnArchiveRoundTripsThroughImportIntoAFreshRoom) {
  const std::string key = "agentbus:room:r:events";
  std::vector<StreamEvent> sent = {chat("plain text", 64), chat("{\"n\": [1, 2]}", 128), chat("\"quoted\"", 192),
                                   chat("", 256)};
  sent[1].to = "bob";
  sent[2].agent = "carol";
  sent[2].reply_to_origin = EntryOrigin{"host-a", 64};
  sent[3].type = "done";
  std::vector<std::string> ids;
  for (const StreamEvent& e : sent) ids.push_back(add(key, e));
  RedisConnection c = connect();
  const ArchiveReport r = archive(c, options(1));
  ASSERT_TRUE(r.ok());

  TestBus bus("arcimp", BusOptions{.host_id = "host-z"});
  const cli_test::CliResult imp =
      cli_test::run_cli({{"--bus", bus.name(), "--room", "restored", "import", of(r, key).file}, {}, "", "", ""});
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_EQ(imp.err, "");
  Room room = bus->room("restored");
  Subscription s = room.subscribe({.from = StartFrom::earliest});
  std::vector<Event> got;
  for (ReadResult e = s.next(0ns); e.status != ReadStatus::timeout; e = s.next(0ns))
    if (e.has_event()) got.push_back(e.event.to_owned());
  ASSERT_EQ(got.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(got[i].imported);
    EXPECT_EQ(got[i].type, sent[i].type);
    EXPECT_EQ(got[i].agent, sent[i].agent);
    EXPECT_EQ(got[i].to, sent[i].to);
    EXPECT_EQ(got[i].payload, sent[i].payload);
    EXPECT_EQ(got[i].origin.host, "host-a");
    EXPECT_EQ(got[i].origin.id, sent[i].origin.id);
    EXPECT_EQ(got[i].origin.stream.to_string(), ids[i]);
  }
  ASSERT_TRUE(got[2].reply_to_origin.has_value());
  EXPECT_EQ(got[2].reply_to_origin->host, "host-a");
  EXPECT_EQ(got[2].reply_to_origin->id, 64u);
}

TEST_F(Archiver, TheCliPrintsWhatItArchivedAndFailsClearlyWithoutRedis) {
  add_many("agentbus:room:r:events", 3);
  const cli_test::CliResult ok = cli_test::run_cli(
      {{"archive", "--redis", url(), "--threshold", "2", "--dir", dir_.string()}, {}, "", "", bridge_path()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("\"agentbus:room:r:events\": archived 3 entries to " + dir_.string() + "/agentbus_room_r_events-"),
            std::string::npos)
      << ok.out;
  EXPECT_EQ(xlen("agentbus:room:r:events"), 0);

  const int port = redis_.port();
  redis_.stop();  // nothing listens on its port now
  const cli_test::CliResult away = cli_test::run_cli(
      {{"archive", "--redis", "redis://127.0.0.1:" + std::to_string(port), "--dir", dir_.string()}, {}, "", "",
       bridge_path()});
  EXPECT_EQ(away.exit_code, 1);
  EXPECT_NE(away.err.find("cannot reach Redis"), std::string::npos) << away.err;

  const cli_test::CliResult no_dir = cli_test::run_cli({{"archive", "--redis", url()}, {}, "", "", bridge_path()});
  EXPECT_EQ(no_dir.exit_code, 2) << no_dir.err;
  EXPECT_NE(no_dir.err.find("--dir"), std::string::npos) << no_dir.err;
  const cli_test::CliResult zero = cli_test::run_cli(
      {{"archive", "--redis", url(), "--threshold", "0", "--dir", dir_.string()}, {}, "", "", bridge_path()});
  EXPECT_EQ(zero.exit_code, 2) << zero.err;
}

}  // namespace
