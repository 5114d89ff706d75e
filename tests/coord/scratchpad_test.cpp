// Tests of the scratchpad: the library in one process and across threads, and the real CLI
// ($AGENTBUS_CLI) as another process, including writers stopped or killed mid-write.
#include <agentbus/agentbus.hpp>

#include "bus/room_access.hpp"
#include "coord/scratchpad_layout.hpp"
#include "shm/slot_table.hpp"
#include "support/test_bus.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace agentbus {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::TestBus;

constexpr const char* kRoom = "scratch/main";

// Polls `done` until it holds or `limit` passes (no bare sleeps standing in for a condition).
bool await(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

template <class F>
Errc error_code_of(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (message != nullptr) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "expected agentbus::Error";
  return Errc::invalid_argument;
}

// Every byte value, repeated, with a per-value salt, so a mix of two values shows.
std::string binary_value(std::size_t n, unsigned salt) {
  std::string v(n, '\0');
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<char>((i * 131 + salt) & 0xff);
  return v;
}

ScratchpadOptions small(std::size_t heap, std::size_t max_value, std::uint32_t keys = 256) {
  ScratchpadOptions o;
  o.heap_bytes = heap;
  o.max_value_bytes = max_value;
  o.key_capacity = keys;
  return o;
}

// ---- the real CLI as a child process -------------------------------------------------------

// Runs $AGENTBUS_CLI with a clean environment plus `env`, feeding `input` on stdin and
// collecting stdout and stderr; every wait is bounded.
class Cli {
 public:
  Cli(const std::vector<std::string>& args, const std::vector<std::string>& env, std::string input = {})
      : input_(std::move(input)) {
    std::signal(SIGPIPE, SIG_IGN);  // the child may exit without reading all of stdin
    const char* path = std::getenv("AGENTBUS_CLI");
    if (path == nullptr) throw std::runtime_error("AGENTBUS_CLI is not set; run through ctest");
    std::vector<std::string> argv{path};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> envv;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      if (entry.rfind("AGENTBUS_", 0) != 0 && entry.rfind("REPO_ID=", 0) != 0 &&
          entry.rfind("BRANCH_NAME=", 0) != 0)
        envv.push_back(entry);
    }
    envv.insert(envv.end(), env.begin(), env.end());
    std::vector<char*> a, ev;
    for (auto& s : argv) a.push_back(s.data());
    for (auto& s : envv) ev.push_back(s.data());
    a.push_back(nullptr);
    ev.push_back(nullptr);
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
      throw std::runtime_error(std::strerror(errno));
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], STDIN_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      ::execve(a[0], a.data(), ev.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    in_ = in[1];
    out_ = out[0];
    err_ = err[0];
    ::fcntl(in_, F_SETFL, O_NONBLOCK);
    if (input_.empty()) close_fd(in_);
  }
  ~Cli() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    close_fd(in_);
    close_fd(out_);
    close_fd(err_);
  }
  Cli(const Cli&) = delete;
  Cli& operator=(const Cli&) = delete;

  // Exit code (128 + signal when killed), or -1 if still running after `limit`.
  int finish(std::chrono::milliseconds limit = 20s) {
    const auto deadline = Clock::now() + limit;
    while (!reaped_) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (Clock::now() > deadline) return -1;
      pump(5);
    }
    const auto drain = Clock::now() + 2s;
    while ((out_ >= 0 || err_ >= 0) && Clock::now() < drain) pump(20);
    return code_;
  }

  // True once the child has stopped itself (SIGSTOP at a failpoint).
  bool wait_stopped(std::chrono::milliseconds limit = 10s) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG | WUNTRACED) == pid_) {
        if (WIFSTOPPED(status)) return true;
        reaped_ = true;  // it exited instead
        return false;
      }
      if (Clock::now() > deadline) return false;
      pump(5);
    }
  }

  void kill9() {
    ::kill(pid_, SIGKILL);
    finish();
  }

  pid_t pid() const { return pid_; }
  const std::string& out() const { return out_text_; }
  const std::string& err() const { return err_text_; }

 private:
  static void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  void pump(int timeout_ms) {
    pollfd fds[3] = {{in_, POLLOUT, 0}, {out_, POLLIN, 0}, {err_, POLLIN, 0}};
    if (::poll(fds, 3, timeout_ms) <= 0) return;
    if (in_ >= 0 && fds[0].revents != 0) {
      const ssize_t n = ::write(in_, input_.data() + written_, input_.size() - written_);
      if (n > 0) written_ += static_cast<std::size_t>(n);
      if ((n < 0 && errno != EAGAIN) || written_ == input_.size()) close_fd(in_);
    }
    int* fd[2] = {&out_, &err_};
    std::string* sink[2] = {&out_text_, &err_text_};
    for (int i = 0; i < 2; ++i) {
      if (*fd[i] < 0 || fds[i + 1].revents == 0) continue;
      char buf[65536];
      const ssize_t n = ::read(*fd[i], buf, sizeof buf);
      if (n > 0) sink[i]->append(buf, static_cast<std::size_t>(n));
      else close_fd(*fd[i]);
    }
  }

  std::string input_;
  std::size_t written_ = 0;
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  bool reaped_ = false;
  int code_ = -1;
  std::string out_text_, err_text_;
};

struct CliResult {
  int code;
  std::string out;
  std::string err;
};

CliResult run_cli(const TestBus& bus, const std::vector<std::string>& args, std::string input = {},
                  std::vector<std::string> env = {}) {
  env.push_back("AGENTBUS_BUS=" + bus.name());
  env.push_back(std::string("AGENTBUS_ROOM=") + kRoom);
  Cli cli(args, env, std::move(input));
  const int code = cli.finish();
  EXPECT_NE(code, -1) << "the CLI did not finish";
  return {code, cli.out(), cli.err()};
}

// ---- the library ---------------------------------------------------------------------------

TEST(Scratchpad, RoundTripsTextBinaryEmptyAndOneMiBValues) {
  TestBus bus("scr-rt");
  Scratchpad pad(bus->room(kRoom), small(4 << 20, 1 << 20));
  const std::string binary = binary_value(5000, 7);  // NULs, escapes, invalid UTF-8
  const std::string big = binary_value(1 << 20, 3);
  pad.write("text", "hello, scratchpad");
  pad.write("binary", binary);
  pad.write("empty", "");
  pad.write("big", big);
  pad.write("ключ: ünïcode key", "ok");

  EXPECT_EQ(pad.read("text").value, "hello, scratchpad");
  const ScratchValue b = pad.read("binary");
  ASSERT_EQ(b.status, ScratchStatus::found);
  EXPECT_EQ(b.value, binary);
  EXPECT_FALSE(b.ttl_left.has_value());
  const ScratchValue e = pad.read("empty");
  EXPECT_EQ(e.status, ScratchStatus::found);
  EXPECT_TRUE(e.value.empty());
  const ScratchValue g = pad.read("big");
  ASSERT_EQ(g.status, ScratchStatus::found);
  EXPECT_EQ(g.value.size(), big.size());
  EXPECT_TRUE(g.value == big);
  EXPECT_EQ(pad.read("ключ: ünïcode key").value, "ok");

  // Another handle (as another process would) sees the same values and the creator's limits.
  Scratchpad other(bus->room(kRoom), small(64 << 10, 100));
  EXPECT_TRUE(other.read("big").value == big);
  EXPECT_EQ(other.info().max_value_bytes, 1u << 20);
  EXPECT_EQ(other.info().heap_bytes, 4u << 20);
  EXPECT_EQ(other.info().keys_live, 5u);
}

TEST(Scratchpad, KeysOutsideTheGrammarAreBadNames) {
  TestBus bus("scr-key");
  Scratchpad pad(bus->room(kRoom), small(64 << 10, 4096));
  const std::string bad[] = {"", std::string(129, 'k'), "tab\there", "nl\n", std::string("nul\0x", 5),
                             "esc\x1b[31m", "del\x7f", "c1\xc2\x9b", "bad utf8 \xff", "overlong \xc0\xaf",
                             "truncated \xe2\x82"};
  for (const std::string& key : bad) {
    EXPECT_EQ(error_code_of([&] { pad.write(key, "v"); }), Errc::bad_name) << key;
    EXPECT_EQ(error_code_of([&] { (void)pad.read(key); }), Errc::bad_name) << key;
    EXPECT_EQ(error_code_of([&] { pad.remove(key); }), Errc::bad_name) << key;
  }
  pad.write(std::string(128, 'k'), "longest");
  pad.write("diff:123 / with spaces & {json}", "ok");
  EXPECT_EQ(pad.read(std::string(128, 'k')).value, "longest");
  EXPECT_EQ(pad.read("diff:123 / with spaces & {json}").value, "ok");
}

TEST(Scratchpad, TooLargeValueIsRefusedWithTheLimit) {
  TestBus bus("scr-big");
  Scratchpad pad(bus->room(kRoom), small(1 << 20, 1000));
  std::string message;
  EXPECT_EQ(error_code_of([&] { pad.write("k", std::string(1001, 'x')); }, &message), Errc::too_large);
  EXPECT_NE(message.find("1001 bytes"), std::string::npos) << message;
  EXPECT_NE(message.find("at most 1000"), std::string::npos) << message;
  pad.write("k", std::string(1000, 'x'));
  EXPECT_EQ(pad.read("k").value.size(), 1000u);
  EXPECT_EQ(error_code_of([&] { pad.write("k", "v", -1ms); }), Errc::invalid_argument);
  EXPECT_EQ(error_code_of([&] { Scratchpad bad(bus->room("other/main"), small(1 << 20, 2 << 20)); }),
            Errc::invalid_argument);
}

TEST(Scratchpad, AbsentAndExpiredAreDistinct) {
  TestBus bus("scr-ttl");
  Scratchpad pad(bus->room(kRoom), small(1 << 20, 64 << 10));
  EXPECT_EQ(pad.read("never").status, ScratchStatus::absent);

  pad.write("long", "stays", std::chrono::hours(1));
  pad.write("short", "goes", 50ms);
  const ScratchValue l = pad.read("long");
  ASSERT_EQ(l.status, ScratchStatus::found);
  ASSERT_TRUE(l.ttl_left.has_value());
  EXPECT_GT(*l.ttl_left, 59min);
  EXPECT_LE(*l.ttl_left, 60min);

  ASSERT_TRUE(await([&] { return pad.read("short").status == ScratchStatus::expired; }));
  const ScratchValue s = pad.read("short");
  EXPECT_EQ(s.status, ScratchStatus::expired);
  EXPECT_TRUE(s.value.empty());
  ASSERT_TRUE(s.ttl_left.has_value());
  EXPECT_LE(s.ttl_left->count(), 0);
  EXPECT_EQ(pad.read("never").status, ScratchStatus::absent);

  // An expired key is not listed, and rewriting it brings it back.
  std::vector<ScratchKey> keys = pad.keys();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].key, "long");
  pad.write("short", "back");
  EXPECT_EQ(pad.read("short").value, "back");
}

TEST(Scratchpad, RemoveSaysWhatWasThere) {
  TestBus bus("scr-rm");
  Scratchpad pad(bus->room(kRoom), small(1 << 20, 64 << 10));
  pad.write("live", "v");
  pad.write("dies", "v", 20ms);
  EXPECT_EQ(pad.remove("live"), ScratchStatus::found);
  EXPECT_EQ(pad.read("live").status, ScratchStatus::absent);
  EXPECT_EQ(pad.remove("live"), ScratchStatus::absent);
  ASSERT_TRUE(await([&] { return pad.read("dies").status == ScratchStatus::expired; }));
  EXPECT_EQ(pad.remove("dies"), ScratchStatus::expired);
  EXPECT_EQ(pad.read("dies").status, ScratchStatus::absent);
  EXPECT_EQ(pad.info().entries_in_use, 0u);
  EXPECT_EQ(pad.info().heap_used, 0u);
}

TEST(Scratchpad, KeysListsLiveKeysSortedWithSizeAndTtl) {
  TestBus bus("scr-ls");
  Scratchpad pad(bus->room(kRoom), small(1 << 20, 64 << 10));
  pad.write("b", std::string(10000, 'b'), 10min);
  pad.write("a", "xyz");
  pad.write("c", "gone");
  pad.remove("c");
  const std::vector<ScratchKey> keys = pad.keys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].key, "a");
  EXPECT_EQ(keys[0].bytes, 3u);
  EXPECT_FALSE(keys[0].ttl_left.has_value());
  EXPECT_GT(keys[0].written_ts_ns, 0);
  EXPECT_EQ(keys[1].key, "b");
  EXPECT_EQ(keys[1].bytes, 10000u);
  ASSERT_TRUE(keys[1].ttl_left.has_value());
  EXPECT_GT(*keys[1].ttl_left, 9min);
}

TEST(Scratchpad, OverwriteIsAtomicForAConcurrentReader) {
  TestBus bus("scr-atomic");
  Scratchpad pad(bus->room(kRoom), small(4 << 20, 1 << 20));
  // Two values of different sizes and contents; any mix of them is detectable.
  const std::string a(300 << 10, 'a');
  const std::string b((700 << 10) + 123, 'b');
  pad.write("k", a);
  std::atomic<bool> stop{false};
  std::atomic<int> reads_done{0};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      pad.write("k", i % 2 == 0 ? b : a);
      // Let one whole read start after this value's publication, so that the reader cannot
      // be starved by back-to-back rewrites (a read retries while a write overlaps it; under
      // TSan a copy is slow enough for that to last forever). The next read overlaps the
      // next write.
      const int target = reads_done.load() + 2;
      while (!stop.load() && reads_done.load() < target) std::this_thread::yield();
    }
  });
  int seen_a = 0, seen_b = 0, torn = 0;
  const auto deadline = Clock::now() + 20s;
  while ((seen_a < 20 || seen_b < 20) && Clock::now() < deadline) {
    try {
      const ScratchValue v = pad.read("k");
      if (v.value == a && v.found()) ++seen_a;
      else if (v.value == b && v.found()) ++seen_b;
      else ++torn;
    } catch (const Error& e) {  // e.g. corrupt: a chain read half old, half new
      ADD_FAILURE() << e.what();
      ++torn;
    }
    ++reads_done;
  }
  stop = true;
  writer.join();
  EXPECT_EQ(torn, 0);
  EXPECT_GE(seen_a, 20);
  EXPECT_GE(seen_b, 20);
  // Every overwrite freed the value it replaced.
  EXPECT_LE(pad.info().heap_used, b.size() + 4096);
}

TEST(Scratchpad, ConcurrentWritersOfOneNewKeyShareOneEntry) {
  TestBus bus("scr-race");
  Scratchpad pad(bus->room(kRoom), small(1 << 20, 4096));
  for (int round = 0; round < 20; ++round) {
    const std::string key = "race-" + std::to_string(round);
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t)
      threads.emplace_back([&, t] { pad.write(key, "writer-" + std::to_string(t)); });
    for (auto& th : threads) th.join();
    const ScratchValue v = pad.read(key);
    ASSERT_EQ(v.status, ScratchStatus::found);
    EXPECT_EQ(v.value.rfind("writer-", 0), 0u) << v.value;
  }
  // One entry per key, however many writers raced to add it.
  EXPECT_EQ(pad.info().entries_in_use, 20u);
  EXPECT_EQ(pad.keys().size(), 20u);
}

TEST(Scratchpad, RemovedAndExpiredValuesGiveTheirMemoryBack) {
  TestBus bus("scr-reclaim");
  // 1 MiB of heap holds two 400 KiB values at most.
  Scratchpad pad(bus->room(kRoom), small(1 << 20, 512 << 10));
  for (int i = 0; i < 12; ++i) {
    pad.write("removed-" + std::to_string(i), binary_value(400 << 10, i));
    if (i > 0) {
      EXPECT_EQ(pad.remove("removed-" + std::to_string(i - 1)), ScratchStatus::found);
    }
  }
  EXPECT_TRUE(pad.read("removed-11").value == binary_value(400 << 10, 11));
  ASSERT_EQ(pad.remove("removed-11"), ScratchStatus::found);
  EXPECT_EQ(pad.info().heap_used, 0u);

  for (int i = 0; i < 8; ++i) {
    const std::string key = "expiring-" + std::to_string(i);
    pad.write(key, binary_value(400 << 10, 100 + i), 30ms);
    ASSERT_TRUE(await([&] { return pad.read(key).status == ScratchStatus::expired; }));
  }
  // The writes after the second had to reclaim expired values; their keys still say so.
  EXPECT_GE(pad.info().expired_reclaimed, 6u);
  EXPECT_EQ(pad.read("expiring-0").status, ScratchStatus::expired);
  EXPECT_LE(pad.info().heap_used, 2u * (400u << 10));
}

TEST(Scratchpad, FullHeapOrKeyTableIsNoSpaceWithAClearMessage) {
  TestBus bus("scr-full");
  Scratchpad pad(bus->room(kRoom), small(1 << 20, 1 << 20, 4));
  const std::string old = binary_value(600 << 10, 1);
  pad.write("x", old);
  std::string message;
  EXPECT_EQ(error_code_of([&] { pad.write("y", std::string(600 << 10, 'y')); }, &message), Errc::no_space);
  EXPECT_NE(message.find("no memory"), std::string::npos) << message;
  EXPECT_NE(message.find("scratch rm"), std::string::npos) << message;
  // An overwrite needs room for both values; failing, it leaves the old one whole.
  EXPECT_EQ(error_code_of([&] { pad.write("x", std::string(600 << 10, 'z')); }), Errc::no_space);
  EXPECT_TRUE(pad.read("x").value == old);
  EXPECT_EQ(pad.read("y").status, ScratchStatus::absent);
  EXPECT_EQ(pad.info().heap_used, 150u * 4096);  // nothing leaked by the failed writes
  pad.remove("x");

  for (int i = 0; i < 4; ++i) pad.write("key-" + std::to_string(i), "v");
  EXPECT_EQ(error_code_of([&] { pad.write("key-4", "v"); }, &message), Errc::no_space);
  EXPECT_NE(message.find("all 4 keys"), std::string::npos) << message;
  pad.write("key-0", "overwriting an existing key still works");
  EXPECT_EQ(pad.read("key-0").value, "overwriting an existing key still works");
  pad.remove("key-1");
  pad.write("key-4", "fits now");
  EXPECT_EQ(pad.read("key-4").value, "fits now");
  pad.write("key-2", "v", 10ms);  // an expired key's entry is reused for a new key
  ASSERT_TRUE(await([&] { return pad.read("key-2").status == ScratchStatus::expired; }));
  pad.write("key-5", "takes key-2's entry");
  EXPECT_EQ(pad.read("key-5").value, "takes key-2's entry");
  EXPECT_EQ(pad.read("key-2").status, ScratchStatus::absent);
}

TEST(Scratchpad, OpeningWithoutCreateDoesNotCreate) {
  TestBus bus("scr-open");
  ScratchpadOptions o;
  o.create = false;
  EXPECT_EQ(error_code_of([&] { Scratchpad pad(bus->room(kRoom), o); }), Errc::not_found);
  Scratchpad created(bus->room(kRoom), small(64 << 10, 4096));
  created.write("k", "v");
  Scratchpad opened(bus->room(kRoom), o);
  EXPECT_EQ(opened.read("k").value, "v");
}

// The region is created by hand with a header that is not a scratchpad's.
TEST(Scratchpad, CorruptHeaderIsRefused) {
  TestBus bus("scr-corrupt");
  Room room = bus->room(kRoom);
  shm::Segment& seg = *RoomAccess::segment(room);
  shm::open_region(seg, std::string(kRoom) + "#scratch", 64 << 10, true, [](std::span<std::byte> r) {
    std::memcpy(r.data(), "NOTSCRCH", 8);
  });
  std::string message;
  EXPECT_EQ(error_code_of([&] { Scratchpad pad(room); }, &message), Errc::corrupt);
  EXPECT_NE(message.find("agentbus --bus " + bus.name() + " destroy"), std::string::npos) << message;

  // A valid header whose capacities do not fit its region.
  Room other = bus->room("other/main");
  { Scratchpad pad(other, small(64 << 10, 4096)); }
  const std::span<std::byte> region = shm::open_region(seg, "other/main#scratch", 0, false, {});
  ASSERT_FALSE(region.empty());
  auto* header = reinterpret_cast<coord::ScratchHeader*>(region.data());
  header->block_count = 1u << 20;
  EXPECT_EQ(error_code_of([&] { Scratchpad pad(other); }), Errc::corrupt);
  header->block_count = 16;
  header->key_capacity = 0;
  EXPECT_EQ(error_code_of([&] { Scratchpad pad(other); }), Errc::corrupt);
}

TEST(Scratchpad, CorruptEntryIsRefused) {
  TestBus bus("scr-entry");
  Room room = bus->room(kRoom);
  Scratchpad pad(room, small(64 << 10, 4096, 8));
  pad.write("k", "value");
  const std::span<std::byte> region =
      shm::open_region(*RoomAccess::segment(room), std::string(kRoom) + "#scratch", 0, false, {});
  auto* header = reinterpret_cast<coord::ScratchHeader*>(region.data());
  auto* entries = reinterpret_cast<coord::ScratchEntry*>(region.data() + header->entries_offset);
  coord::ScratchEntry* entry = nullptr;
  for (std::uint32_t i = 0; i < 8; ++i)
    if (entries[i].desc[entries[i].current.load() & 1].state != 0) entry = &entries[i];
  ASSERT_NE(entry, nullptr);
  coord::ScratchDescriptor& d = entry->desc[entry->current.load() & 1];
  d.block_count = 1000;  // does not match the length, and points past the heap
  EXPECT_EQ(error_code_of([&] { (void)pad.read("k"); }), Errc::corrupt);
  EXPECT_EQ(error_code_of([&] { (void)pad.keys(); }), Errc::corrupt);
}

// ---- across processes: the CLI -------------------------------------------------------------

TEST(ScratchCli, ValuesCrossBetweenTheCliAndTheLibrary) {
  TestBus bus("scr-cli");
  Scratchpad pad(bus->room(kRoom), small(8 << 20, 2 << 20));

  CliResult r = run_cli(bus, {"scratch", "set", "from-cli", "hello world"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(pad.read("from-cli").value, "hello world");

  const std::string big = binary_value((1 << 20) + 17, 9);  // binary, through stdin
  r = run_cli(bus, {"scratch", "set", "piped", "--ttl", "10m"}, big);
  ASSERT_EQ(r.code, 0) << r.err;
  const ScratchValue piped = pad.read("piped");
  ASSERT_EQ(piped.status, ScratchStatus::found);
  EXPECT_TRUE(piped.value == big);
  ASSERT_TRUE(piped.ttl_left.has_value());
  EXPECT_GT(*piped.ttl_left, 9min);

  r = run_cli(bus, {"scratch", "set", "dash", "-"}, "from stdin\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(pad.read("dash").value, "from stdin\n");

  const std::string binary = binary_value(70000, 5);  // NULs and escapes, exact bytes to a pipe
  pad.write("from-lib", binary);
  r = run_cli(bus, {"scratch", "get", "from-lib"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out == binary);

  pad.write("doc", R"({"files": ["a.cpp"]})", 1h);
  r = run_cli(bus, {"scratch", "get", "doc", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(R"("key":"doc")"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("value":{"files":["a.cpp"]})"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("bytes":20)"), std::string::npos) << r.out;

  r = run_cli(bus, {"scratch", "ls"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("from-cli\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  -  from-lib\n"), std::string::npos) << r.out;
  r = run_cli(bus, {"scratch", "ls", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(R"("key":"piped","bytes":1048593,"ttl_ms":)"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 5);

  r = run_cli(bus, {"scratch", "rm", "from-lib"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(pad.read("from-lib").status, ScratchStatus::absent);
}

TEST(ScratchCli, ExitCodesSayAbsentExpiredOrBadKey) {
  TestBus bus("scr-exit");
  // Nothing created yet: reading creates nothing and reports the key absent.
  CliResult r = run_cli(bus, {"scratch", "get", "nothing"});
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.err.find("error: key 'nothing' is absent"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  EXPECT_TRUE(r.out.empty());
  r = run_cli(bus, {"scratch", "ls"});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(r.out.empty());

  Scratchpad pad(bus->room(kRoom), small(1 << 20, 1000));
  r = run_cli(bus, {"scratch", "set", "brief", "soon gone", "--ttl", "100ms"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(await([&] { return pad.read("brief").status == ScratchStatus::expired; }));
  r = run_cli(bus, {"scratch", "get", "brief"});
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.err.find("error: key 'brief' in room scratch/main expired"), std::string::npos) << r.err;
  r = run_cli(bus, {"scratch", "rm", "brief"});
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.err.find("already expired"), std::string::npos) << r.err;
  r = run_cli(bus, {"scratch", "get", "brief"});
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.err.find("absent"), std::string::npos) << r.err;
  r = run_cli(bus, {"scratch", "rm", "never-set"});
  EXPECT_EQ(r.code, 4);

  r = run_cli(bus, {"scratch", "set", "bad\x1bkey", "v"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("control character"), std::string::npos) << r.err;
  r = run_cli(bus, {"scratch", "get", std::string(129, 'k')});
  EXPECT_EQ(r.code, 2);
  r = run_cli(bus, {"scratch", "set", "k", "v", "--ttl", "soon"});
  EXPECT_EQ(r.code, 2);

  r = run_cli(bus, {"scratch", "set", "huge"}, std::string(5000, 'h'));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("more than 1000 bytes"), std::string::npos) << r.err;
  EXPECT_EQ(pad.read("huge").status, ScratchStatus::absent);
}

// A CLI writer stops itself half-way through a value (claim held, blocks taken, nothing
// published), then is killed. Readers never wait for it; writers of that key wait boundedly
// while it lives and take the key over once it is dead, freeing its blocks.
TEST(ScratchCli, WriterStoppedThenKilledMidWriteWedgesNothing) {
  TestBus bus("scr-kill");
  Room room = bus->room(kRoom);
  Scratchpad pad(room, small(2 << 20, 1 << 20));
  const std::string old = binary_value(200 << 10, 1);
  pad.write("k", old);
  const std::size_t old_used = pad.info().heap_used;

  Cli writer({"scratch", "set", "k"},
             {"AGENTBUS_BUS=" + bus.name(), std::string("AGENTBUS_ROOM=") + kRoom,
              "AGENTBUS_FAILPOINTS=scratch_mid_write=stop"},
             std::string(400 << 10, 'n'));
  ASSERT_TRUE(writer.wait_stopped()) << writer.err();

  const ScratchValue during = pad.read("k");  // readers are not blocked by the stuck writer
  ASSERT_EQ(during.status, ScratchStatus::found);
  EXPECT_TRUE(during.value == old);
  EXPECT_EQ(pad.info().heap_used, old_used + (400u << 10));  // the stuck writer's blocks

  ScratchpadOptions impatient;
  impatient.busy_timeout = 200ms;
  Scratchpad other(room, impatient);
  std::string message;
  EXPECT_EQ(error_code_of([&] { other.write("k", "x"); }, &message), Errc::timeout);
  EXPECT_NE(message.find("pid " + std::to_string(writer.pid())), std::string::npos) << message;
  other.write("unrelated", "other keys are not affected");
  EXPECT_EQ(other.read("unrelated").status, ScratchStatus::found);

  writer.kill9();
  const std::uint64_t recovered = pad.info().dead_writers_reclaimed;
  pad.write("k", "fresh");
  EXPECT_EQ(pad.read("k").value, "fresh");
  EXPECT_EQ(pad.info().dead_writers_reclaimed, recovered + 1);
  EXPECT_EQ(pad.info().heap_used, 2u * 4096);  // "fresh" and "unrelated": nothing leaked
}

// A CLI writer dies half-way through adding a new key. The key stays absent, and when the
// heap runs short the dead writer's blocks are reclaimed for others without anyone touching
// its key.
TEST(ScratchCli, WriterDyingWhileAddingAKeyLeaksNothing) {
  TestBus bus("scr-die");
  Scratchpad pad(bus->room(kRoom), small(1 << 20, 1 << 20));
  Cli writer({"scratch", "set", "new-key"},
             {"AGENTBUS_BUS=" + bus.name(), std::string("AGENTBUS_ROOM=") + kRoom,
              "AGENTBUS_FAILPOINTS=scratch_mid_write=exit"},
             std::string(800 << 10, 'd'));
  EXPECT_EQ(writer.finish(), 137) << writer.err();
  EXPECT_EQ(pad.read("new-key").status, ScratchStatus::absent);
  EXPECT_EQ(pad.info().heap_used, 800u << 10);  // held by the dead writer, until needed

  pad.write("needs-space", std::string(600 << 10, 's'));  // only fits once they are freed
  EXPECT_EQ(pad.read("needs-space").value.size(), 600u << 10);
  EXPECT_GE(pad.info().dead_writers_reclaimed, 1u);
  EXPECT_EQ(pad.info().heap_used, 600u << 10);
  pad.write("new-key", "written after all");
  EXPECT_EQ(pad.read("new-key").value, "written after all");
}

}  // namespace
}  // namespace agentbus
