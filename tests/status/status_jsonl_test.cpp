// JSONL: persistence through a durable reader, export/import round trip, a writer killed with
// kill -9 (a real process), a torn last line, duplicate-free restart, malformed import lines.
#include "support/child_process.hpp"
#include "support/expect.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::ChildProcess;
using agentbus::test::TestBus;
using agentbus::test::eventually;
using agentbus::test::expect_error;

namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/agentbus-status-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& data, bool append = false) {
  std::ofstream out(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
  out << data;
}

std::size_t count_lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

// Every STATUS entry in the room, as JSONL.
std::string exported(Room& room) {
  char tmpl[] = "/tmp/agentbus-export-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  export_jsonl(room, fd);
  ::close(fd);
  std::string out = slurp(tmpl);
  ::unlink(tmpl);
  return out;
}

}  // namespace

TEST(status_jsonl, PersistPathAppendsEveryEntryAsOneLineOfRoomKitsFields) {
  TestBus bus("st-persist");
  TempDir dir;
  const std::string path = dir.file("sub/dir/status.jsonl");  // directories are created
  Room room = bus->room("r");
  {
    StatusBusOptions o;
    o.persist_path = path;
    StatusBus sb(room, o);
    sb.post("exec", "search_google", "ok", "Found 7 results", R"({"n":7})");
    room.publish("chatter", "x", "not persisted");
    sb.post("plan", "step", "pending", "line\nbreak");
    sb.post("exec", "task", "completed");
    ASSERT_TRUE(eventually([&] { return sb.stats().persisted == 3; }));
    // Flushed before counted: the lines are in the file now.
    EXPECT_EQ(count_lines(slurp(path)), 3u);
  }
  const std::string file = slurp(path);
  EXPECT_EQ(file, exported(room));
  std::istringstream lines(file);
  std::string first;
  std::getline(lines, first);
  EXPECT_EQ(first.rfind("{\"ts\":\"", 0), 0u);
  EXPECT_NE(first.find(R"(,"agent_id":"exec","action":"search_google","status":"ok","detail":"Found 7 results","metadata":{"n":7}})"),
            std::string::npos)
      << first;

  // A second writer resumes where the first stopped: nothing twice, nothing missing.
  StatusBus poster(room);
  poster.post("exec", "while-nobody-writes", "info");  // the durable reader keeps it for us
  {
    StatusBusOptions o;
    o.persist_path = path;
    StatusBus sb(room, o);
    sb.post("exec", "after-restart", "ok");
  }
  EXPECT_EQ(slurp(path), exported(room));
  EXPECT_EQ(count_lines(slurp(path)), 5u);
  EXPECT_TRUE(room.drop_reader("status-jsonl"));
}

TEST(status_jsonl, ExportThenImportEqualsTheOriginal) {
  TestBus bus("st-roundtrip");
  TempDir dir;
  Room src = bus->room("src");
  StatusBus sb(src);
  sb.post("exec", "search_google", "ok", "Found 7 results", R"({"q":"weather","hits":[1,2.5,-3e-2],"ok":true,"n":null})");
  sb.post("exec", "quote\"d", "failed", "tab\there \x1b[31mred\x1b[0m \xe2\x80\xa8 ünïcode");
  sb.post("plan", "p", "pending");
  sb.post("plan", "p", "info", std::string(3000, 'x'));
  sb.post("exec", "done", "completed", "", R"({"nested":{"a":{"b":[]}}})");
  src.publish("chatter", "x", "not a status entry");

  const std::string original = dir.file("a.jsonl");
  {
    const int fd = ::open(original.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const ExportResult r = export_jsonl(src, fd);
    ::close(fd);
    EXPECT_EQ(r.exported, 5u);
    EXPECT_EQ(r.skipped, 0u);
  }
  Room dst = bus->room("dst");
  const ImportResult ir = import_jsonl(dst, original);
  EXPECT_EQ(ir.imported, 5u);
  EXPECT_EQ(ir.skipped, 0u);
  EXPECT_EQ(exported(dst), slurp(original)) << "export -> import -> export is byte-identical";

  StatusBus copy(dst);
  const auto a = sb.recent(10), b = copy.recent(10);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].to_json(), b[i].to_json());
    EXPECT_EQ(a[i].ts, b[i].ts) << "import keeps each line's ts";
  }

  // --from: only entries at or after that id.
  const std::string tail = dir.file("tail.jsonl");
  const int fd = ::open(tail.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  export_jsonl(src, fd, {.from = a[3].id});
  ::close(fd);
  EXPECT_EQ(count_lines(slurp(tail)), 2u);
}

TEST(status_jsonl, MalformedImportLinesAreReportedWithLineNumbersAndSkippedOrAbortWithStrict) {
  TestBus bus("st-malformed");
  TempDir dir;
  const std::string path = dir.file("in.jsonl");
  const std::string good = R"({"ts":"2026-05-01T19:05:15.000001Z","agent_id":"a","action":"x","status":"ok","detail":"","metadata":{}})";
  spit(path, good + "\n" +                                                                           // 1
                 "{not json\n" +                                                                     // 2
                 R"({"ts":"2026-05-01T19:05:15Z","agent_id":"a","action":"x","status":"done"})" "\n"  // 3
                 "\n" +                                                                              // 4 blank
                 R"({"ts":"2026-05-01T19:05:15Z","agent_id":"a","action":"x","status":"ok","metadata":[1]})" "\n"  // 5
                 R"(["an","array"])" "\n" +                                                          // 6
                 good + "\n");                                                                       // 7
  Room room = bus->room("r");
  std::vector<std::string> warnings;
  ImportOptions o;
  o.warn = [&](const std::string& w) { warnings.push_back(w); };
  const ImportResult r = import_jsonl(room, path, o);
  EXPECT_EQ(r.imported, 2u);
  EXPECT_EQ(r.skipped, 4u);
  EXPECT_FALSE(r.torn_last_line);
  ASSERT_EQ(warnings.size(), 4u);
  EXPECT_NE(warnings[0].find("line 2:"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("line 3:"), std::string::npos) << warnings[1];
  EXPECT_NE(warnings[1].find("status"), std::string::npos) << warnings[1];
  EXPECT_NE(warnings[2].find("line 5:"), std::string::npos) << warnings[2];
  EXPECT_NE(warnings[2].find("metadata"), std::string::npos) << warnings[2];
  EXPECT_NE(warnings[3].find("line 6:"), std::string::npos) << warnings[3];
  EXPECT_EQ(StatusBus(room).recent(10).size(), 2u);

  Room strict_room = bus->room("strict");
  expect_error([&] { import_jsonl(strict_room, path, {.strict = true}); }, Errc::invalid_argument, "line 2:");
  EXPECT_EQ(StatusBus(strict_room).recent(10).size(), 1u) << "lines before the bad one were imported";

  expect_error([&] { import_jsonl(room, dir.file("absent.jsonl")); }, Errc::not_found, "absent.jsonl");
}

TEST(status_jsonl, TornLastLineIsSkippedWithAWarningEvenWhenStrict) {
  TestBus bus("st-torn");
  TempDir dir;
  const std::string path = dir.file("torn.jsonl");
  const std::string good = R"({"ts":"2026-05-01T19:05:15.000001Z","agent_id":"a","action":"x","status":"ok","detail":"","metadata":{}})";
  spit(path, good + "\n" + good.substr(0, 40));
  Room room = bus->room("r");
  std::vector<std::string> warnings;
  const ImportResult r =
      import_jsonl(room, path, {.strict = true, .warn = [&](const std::string& w) { warnings.push_back(w); }});
  EXPECT_EQ(r.imported, 1u);
  EXPECT_TRUE(r.torn_last_line);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("line 2: torn last line"), std::string::npos) << warnings[0];
}

TEST(status_jsonl, RestartedWriterDropsLinesAKilledWriterWroteAndTruncatesItsTornLine) {
  // The states a writer killed between write(2) and moving its cursor leaves behind, made
  // exactly: the durable reader's cursor before entries whose lines are already in the file.
  TestBus bus("st-dedup");
  TempDir dir;
  Room room = bus->room("r");
  room.subscribe({.from = StartFrom::latest, .durable_name = "status-jsonl"}).close();
  StatusBus poster(room);
  for (int i = 0; i < 5; ++i) poster.post("exec", "e" + std::to_string(i), "ok", "detail " + std::to_string(i));
  const std::string all = exported(room);
  ASSERT_EQ(count_lines(all), 5u);
  std::vector<std::size_t> ends;
  for (std::size_t p = all.find('\n'); p != std::string::npos; p = all.find('\n', p + 1)) ends.push_back(p + 1);

  for (const std::string& prefix : {all.substr(0, ends[2]),                       // 3 whole lines written
                                    all.substr(0, ends[1]) + all.substr(ends[1], 30),  // 2 lines + a torn one
                                    std::string()}) {
    const std::string path = dir.file("f" + std::to_string(prefix.size()) + ".jsonl");
    spit(path, prefix);
    {
      StatusBusOptions o;
      o.persist_path = path;
      o.persist_drop_on_close = false;
      StatusBus writer(room, o);
    }
    EXPECT_EQ(slurp(path), all) << "prefix of " << prefix.size() << " bytes";
    // Put the cursor back for the next case.
    room.drop_reader("status-jsonl");
    room.subscribe({.from = StartFrom::earliest, .durable_name = "status-jsonl"}).close();
  }
}

TEST(status_jsonl, WriterKilledWithKill9LosesNothingAndTheNextWriterResumes) {
  TestBus bus("st-kill9");
  TempDir dir;
  RoomOptions ro;
  ro.ring_bytes = 16 << 20;  // holds every entry, so the export below sees them all
  Room room = bus->room("r", ro);
  const std::string path = dir.file("status.jsonl");
  {
    ChildProcess writer({STATUS_TEST_WRITER, bus.name(), "r", path, "40000"});
    ASSERT_EQ(writer.read_line(10s), "ready");
    // Kill it while it is posting and persisting.
    ASSERT_TRUE(eventually([&] { return count_lines(slurp(path)) >= 100; }, 10s));
    ::kill(writer.pid(), SIGKILL);
    EXPECT_EQ(writer.wait(10s), 128 + SIGKILL);
  }
  std::string file = slurp(path);
  // The killed writer left whole lines, possibly followed by one torn line; make sure the torn
  // case is exercised whatever instant the kill hit.
  if (!file.empty() && file.back() == '\n') {
    const std::size_t cut = file.rfind('\n', file.size() - 2);
    const std::string last = file.substr(cut == std::string::npos ? 0 : cut + 1);
    ASSERT_GT(last.size(), 20u);
    spit(path, last.substr(0, last.size() / 2), true);
  }
  // Replay now: the torn line is skipped with a warning, everything else is imported.
  Room replay = bus->room("replay", ro);
  std::vector<std::string> warnings;
  const ImportResult ir = import_jsonl(replay, path, {.warn = [&](const std::string& w) { warnings.push_back(w); }});
  EXPECT_TRUE(ir.torn_last_line);
  EXPECT_EQ(ir.skipped, 1u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("torn last line"), std::string::npos);
  EXPECT_GE(ir.imported, 100u);

  // A new writer (another process) resumes from the durable cursor: the file ends up holding
  // every entry the killed process posted, each exactly once, in order, with no torn line.
  {
    ChildProcess writer({STATUS_TEST_WRITER, bus.name(), "r", path, "0"});
    ASSERT_EQ(writer.read_line(10s), "ready");
    ASSERT_EQ(writer.read_line(30s), "posted");
    ASSERT_EQ(writer.wait(30s), 0);
  }
  file = slurp(path);
  const std::string expected = exported(room);
  EXPECT_EQ(count_lines(file), count_lines(expected));
  EXPECT_TRUE(file == expected) << "file and room differ";
  EXPECT_EQ(StatusBus(room).recent(1).at(0).detail.rfind("entry number ", 0), 0u);
  room.drop_reader("status-jsonl");
}
