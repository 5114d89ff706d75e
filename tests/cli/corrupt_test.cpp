// corrupt_test.cpp — the CLI on a damaged segment (issue 9, defects 4, 5 and 6): reads never
// remove or change it, say what is wrong and how to remove it, other rooms keep working, and
// `tail` steps over a damaged record to the intact ones after it.
#include "cli_process.hpp"
#include "support/test_bus.hpp"
#include "shm/layout.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

namespace {

using cli_test::CliResult;

// The whole segment mapped read-write, as a foreign writer would.
class Mapping {
 public:
  explicit Mapping(const std::string& bus) {
    const std::string name = "/" + agentbus::segment_object_name(bus);
    const int fd = ::shm_open(name.c_str(), O_RDWR, 0);
    EXPECT_GE(fd, 0) << name;
    struct stat st{};
    ::fstat(fd, &st);
    size_ = static_cast<std::size_t>(st.st_size);
    base_ = static_cast<std::byte*>(::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    ::close(fd);
  }
  ~Mapping() { ::munmap(base_, size_); }
  std::byte* base() const { return base_; }

  // The ring control block of `room` (found through the room table, as the library does).
  agentbus::shm::RingControl& control(const std::string& room) const {
    const auto& h = *reinterpret_cast<const agentbus::shm::SegmentHeader*>(base_);
    auto* table = reinterpret_cast<agentbus::shm::RoomSlot*>(base_ + h.room_table_offset);
    for (std::uint32_t i = 0; i < h.max_rooms; ++i)
      if (std::string(table[i].name, table[i].name_len) == room)
        return *reinterpret_cast<agentbus::shm::RingControl*>(base_ + table[i].region_offset);
    ADD_FAILURE() << "no room " << room;
    return *reinterpret_cast<agentbus::shm::RingControl*>(base_);
  }
  std::byte* ring_data(const std::string& room) const {
    return reinterpret_cast<std::byte*>(&control(room)) + agentbus::shm::kControlBytes;
  }

 private:
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
};

ino_t inode_of(const std::string& bus) {
  struct stat st{};
  return ::stat(("/dev/shm/" + agentbus::segment_object_name(bus)).c_str(), &st) == 0 ? st.st_ino : 0;
}

class cli_corrupt : public ::testing::Test {
 protected:
  void SetUp() override { bus_ = agentbus::test::fresh_bus_name("clicorrupt"); }
  void TearDown() override { agentbus::Bus::destroy(bus_); }

  CliResult run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--bus", bus_});
    return cli_test::run_cli({std::move(args), {}, {}, {}});
  }
  CliResult in_room(const std::string& room, std::vector<std::string> args) {
    args.insert(args.begin(), {"--room", room});
    return run(std::move(args));
  }
  void post(const std::string& room, const std::string& payload) {
    const CliResult r = in_room(room, {"post", "note", payload});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::string destroy_hint() const { return "agentbus --bus " + bus_ + " destroy"; }

  std::string bus_;
};

void expect_one_error_line(const CliResult& r, const std::string& text) {
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const auto lines = cli_test::lines(r.err);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back().rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(text), std::string::npos) << r.err;
}

}  // namespace

TEST_F(cli_corrupt, reads_of_a_garbage_header_word_report_it_and_never_remove_the_bus) {
  post("r", "hello");
  const ino_t inode = inode_of(bus_);
  const unsigned char garbage[8] = {0x5a, 0x11, 0xc3, 0x07, 0x9e, 0x42, 0xf0, 0x3d};
  {
    Mapping m(bus_);
    std::memcpy(m.base() + 64, garbage, 8);
  }
  for (const std::vector<std::string>& read : std::vector<std::vector<std::string>>{
           {"info"}, {"info", "--json"}, {"tail"}, {"tail", "--from", "earliest"}, {"who"},
           {"status", "recent"}, {"top", "--once"}}) {
    const CliResult r = in_room("r", read);
    SCOPED_TRACE(read.front());
    expect_one_error_line(r, "is corrupt: header word 'initialised' at offset 64 is 0x7c3115a");
    EXPECT_NE(r.err.find(destroy_hint()), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("no bus named"), std::string::npos) << r.err;
  }
  // A write refuses it too, and replaces nothing.
  expect_one_error_line(in_room("r", {"post", "note", "x"}), "is corrupt");
  EXPECT_EQ(inode_of(bus_), inode) << "the segment was removed or replaced";
  Mapping m(bus_);
  EXPECT_EQ(std::memcmp(m.base() + 64, garbage, 8), 0) << "a read changed the segment";
}

TEST_F(cli_corrupt, a_garbage_tail_word_is_reported_with_its_range_and_other_rooms_keep_working) {
  post("a", "in a");
  post("b", "in b");
  {
    Mapping m(bus_);
    m.control("a").tail.store(0x7fffffffffffff00ull);
  }
  const CliResult info = run({"info"});
  expect_one_error_line(info, "room 'a' of bus '" + bus_ + "' is corrupt: tail is 9223372036854775552, expected");
  EXPECT_NE(info.err.find(destroy_hint()), std::string::npos) << info.err;
  EXPECT_EQ(info.out.find("EiB"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("room b"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("CORRUPT: room 'a'"), std::string::npos) << info.out;

  const CliResult json = run({"info", "--json"});
  EXPECT_EQ(json.exit_code, 1);
  EXPECT_NE(json.out.find("\"corrupt\":\"room 'a'"), std::string::npos) << json.out;

  expect_one_error_line(in_room("a", {"post", "note", "x"}), "room 'a' of bus '" + bus_ + "' is corrupt: tail");
  expect_one_error_line(in_room("a", {"tail"}), "is corrupt: tail");
  // Room b is untouched by a's damage.
  const CliResult b = in_room("b", {"tail"});
  EXPECT_EQ(b.exit_code, 0) << b.err;
  EXPECT_NE(b.out.find("in b"), std::string::npos) << b.out;
  post("b", "still works");
}

TEST_F(cli_corrupt, tail_steps_over_a_garbage_first_record_and_says_how_many_it_skipped) {
  for (const char* p : {"first", "second", "third"}) post("r", p);
  {
    Mapping m(bus_);
    const unsigned char garbage[16] = {0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67,
                                       0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98};
    std::memcpy(m.ring_data("r"), garbage, sizeof garbage);  // the first record's stamp and owner
  }
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"tail"}, {"tail", "--from", "earliest"}}) {
    SCOPED_TRACE(args.size());
    const CliResult r = in_room("r", args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find("first"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("second"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("third"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("warning: room r: skipped 1 unreadable record"), std::string::npos) << r.err;
  }
}

TEST_F(cli_corrupt, a_record_with_an_impossible_header_is_skipped_too) {
  for (const char* p : {"first", "second", "third"}) post("r", p);
  {
    // Keep the first record's stamp, break its lengths: the payload runs past the record.
    Mapping m(bus_);
    auto* h = reinterpret_cast<agentbus::shm::RecordHeader*>(m.ring_data("r"));
    h->meta.payload_len = 0x7fffffff;
  }
  const CliResult r = in_room("r", {"tail", "--from", "earliest"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("first"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("second"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("third"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("skipped 1 unreadable record"), std::string::npos) << r.err;
  const CliResult recent = in_room("r", {"tail", "-n", "5"});
  EXPECT_NE(recent.out.find("third"), std::string::npos) << recent.out;
  EXPECT_NE(recent.err.find("skipped 1 unreadable record"), std::string::npos) << recent.err;
}

TEST_F(cli_corrupt, group_access_creates_the_bus_for_a_group) {
  const gid_t gid = ::geteuid() == 0 ? 65534 : ::getegid();
  const CliResult r = run({"--group-access", std::to_string(gid), "--room", "r", "post", "note", "x"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  struct stat st{};
  ASSERT_EQ(::stat(("/dev/shm/" + agentbus::segment_object_name(bus_)).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, gid);
  agentbus::Bus::destroy(bus_);
  expect_one_error_line(run({"--group-access", "no-such-group-xyz", "post", "note", "x"}),
                        "no group named 'no-such-group-xyz'");
}

TEST_F(cli_corrupt, destroy_without_permission_exits_1_with_a_clear_message) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root to own a segment another uid may not remove (sticky /dev/shm)";
  post("r", "x");
  int err_pipe[2];
  ASSERT_EQ(::pipe(err_pipe), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::dup2(err_pipe[1], 2);
    ::close(err_pipe[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(99);
    const char* cli = std::getenv("AGENTBUS_CLI");
    ::execl(cli, cli, "--bus", bus_.c_str(), "destroy", static_cast<char*>(nullptr));
    ::_exit(98);
  }
  ::close(err_pipe[1]);
  std::string err;
  char buf[512];
  for (ssize_t n; (n = ::read(err_pipe[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<std::size_t>(n));
  ::close(err_pipe[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << err;
  EXPECT_NE(err.find("error: cannot destroy bus '" + bus_ + "'"), std::string::npos) << err;
  EXPECT_NE(err.find("only its owner (or root) may remove it"), std::string::npos) << err;
  EXPECT_NE(inode_of(bus_), 0u);
}
