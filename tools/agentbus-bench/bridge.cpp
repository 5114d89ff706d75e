// agentbus-bench/bridge.cpp — the Redis bridge (issue 11), each figure beside a same-run
// baseline, with one private redis-server, two buses standing for hosts A and B (their own
// host ids) and real agentbus-bridge processes:
//  * mirror rate, 64 B and 1 KiB: N events published on A, timed from the first publish until
//    A's bridge has all N in the Redis stream (its out counter, which moves when the ship
//    script has returned; XLEN is checked after)  vs  the bench's own XADD pipelined x64 of
//    the same payloads into a fresh stream. Only A's bridge runs.
//  * cross-host one-way latency, paced: publish on A -> a block-mode tailer on B sees it,
//    through both bridges  vs  XADD -> XREAD BLOCK between two hiredis connections.
//  * local 1->1 publishing (the bench's usual 1to1, block-mode durable subscriber) on A with
//    the bridge attached and Redis killed, so the bridge spools  vs  a fresh bus, no bridge.
// Every figure carries a placement probe taken before and after it (see probe.hpp).
#include "bridge.hpp"
#include "bridge_claims.hpp"

#include "driver.hpp"
#include "figure.hpp"
#include "probe.hpp"
#include "proc.hpp"
#include "redis_client.hpp"
#include "stats.hpp"
#include "systems.hpp"

#include <agentbus/agentbus.hpp>
#include <agentbus/bridge_status.hpp>
#include <agentbus_testing/redis_server.hpp>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace bench {
namespace {

using agentbus::testing::RedisServer;
namespace fs = std::filesystem;

constexpr const char* kHostA = "bench-host-a";
constexpr const char* kHostB = "bench-host-b";
constexpr int kXaddDepth = 64;                       // the baseline: XADD -P64
constexpr std::int64_t kPaceNs = 200'000;            // latency: one event every 200 us
constexpr std::uint64_t kStreamMaxlen = 100'000'000;  // the bridge must not trim what we count

std::string bridge_binary() {
  const char* p = std::getenv("AGENTBUS_BRIDGE");
  return p && *p ? p : AGENTBUS_BRIDGE_PATH;
}

// Polls `done` until it holds or `limit_ns` passed; the poll is short, because the mirror
// rate's end is the instant this sees the last event.
bool await(const std::function<bool()>& done, std::int64_t limit_ns) {
  const std::int64_t deadline = now_ns() + limit_ns;
  while (!done()) {
    if (now_ns() > deadline) return false;
    usleep(200);
  }
  return true;
}
constexpr std::int64_t kSeconds = 1'000'000'000;

// A bus standing for one host, created fresh with its host id.
agentbus::Bus open_host(const std::string& name, const std::string& host_id) {
  agentbus::Bus::destroy(name);
  agentbus::BusOptions o;
  o.name = name;
  o.segment_bytes = 512ull << 20;
  o.host_id = host_id;
  return agentbus::Bus::open(o);
}

agentbus::Room open_room(agentbus::Bus& bus, const std::string& name, std::size_t ring_bytes) {
  agentbus::RoomOptions o;
  o.ring_bytes = ring_bytes;
  return bus.room(name, o);
}

const agentbus::bridge::BridgeRoomStatus* room_status(const agentbus::bridge::BridgeStatus& s,
                                                      const std::string& room) {
  for (const auto& r : s.rooms)
    if (r.room == room) return &r;
  return nullptr;
}

std::uint64_t out_events(const agentbus::Bus& bus, const std::string& room) {
  const agentbus::bridge::BridgeStatus s = agentbus::bridge::bridge_status(bus);
  const auto* r = room_status(s, room);
  return r ? r->out_events : 0;
}

// A real agentbus-bridge process for one bus; SIGTERM and reaped when this goes away. Its
// output goes to a log file, quoted when it fails.
class BridgeProcess {
 public:
  BridgeProcess(const agentbus::Bus& bus, const std::string& bus_name, int redis_port, const fs::path& dir)
      : log_(dir / (bus_name + ".log")) {
    const std::string binary = bridge_binary();
    if (access(binary.c_str(), X_OK) != 0) throw std::runtime_error("agentbus-bridge not found at " + binary + " (set AGENTBUS_BRIDGE)");
    const std::vector<std::string> args = {binary, "run", "--bus", bus_name, "--redis",
                                           "redis://127.0.0.1:" + std::to_string(redis_port),
                                           "--spool-dir", (dir / ("spool-" + bus_name)).string(),
                                           "--spool-max", "16384", "--maxlen", std::to_string(kStreamMaxlen)};
    const std::string log = log_.string();
    pid_ = fork_child(
        [&] {
          const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
          if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
          }
          std::vector<char*> argv;
          for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
          argv.push_back(nullptr);
          execv(binary.c_str(), argv.data());
          throw std::runtime_error("exec " + binary + " failed");
        },
        [](const char* what) { std::fprintf(stderr, "agentbus-bridge: %s\n", what); });
    if (!await([&] { return agentbus::bridge::bridge_status(bus).pid == pid_ || exited(); }, 10 * kSeconds) ||
        exited())
      fail("did not start");
  }
  ~BridgeProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGTERM);
      reap_children({pid_}, now_ns() + 10 * kSeconds);
    }
  }
  BridgeProcess(const BridgeProcess&) = delete;
  BridgeProcess& operator=(const BridgeProcess&) = delete;

  [[noreturn]] void fail(const std::string& what) const {
    std::ifstream in(log_);
    std::stringstream text;
    text << in.rdbuf();
    throw std::runtime_error("agentbus-bridge " + what + "; its log (" + log_.string() + "):\n" + text.str());
  }

 private:
  bool exited() {
    if (reaped_) return true;
    int status = 0;
    reaped_ = waitpid(pid_, &status, WNOHANG) == pid_;
    return reaped_;
  }

  fs::path log_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

std::vector<std::byte> payload_of(std::size_t bytes, std::uint64_t seq, std::int64_t ts_ns, std::uint32_t kind) {
  std::vector<std::byte> buf(std::max(bytes, kMinPayload), std::byte{0x5a});
  write_header(buf, MessageHeader{ts_ns, seq, 0, kind});
  return buf;
}

std::string_view text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// ---- mirror rate ------------------------------------------------------------------------

struct Mirror {
  std::size_t payload;
  int events;
};

// Events/s from the first publish on A until all of them are in Redis; the stream is
// checked and emptied afterwards, so every run starts from an empty stream as the baseline does.
double mirror_rate(agentbus::Bus& a, const std::string& room_name, const Mirror& m, RedisClient& redis,
                   const BridgeProcess& bridge) {
  agentbus::Room room = a.room(room_name);
  const std::string key = "agentbus:room:" + room_name + ":events";
  redis.command("DEL %s", key.c_str());
  const std::uint64_t before = out_events(a, room_name);
  std::vector<std::byte> buf = payload_of(m.payload, 0, 0, kData);
  const std::int64_t t0 = now_ns();
  for (int i = 0; i < m.events; ++i) {
    write_header(buf, MessageHeader{0, std::uint64_t(i), 0, kData});
    if (!room.publish("b", "p0", text(buf)).ok()) throw std::runtime_error("publish on A: bus full");
  }
  if (!await([&] { return out_events(a, room_name) >= before + std::uint64_t(m.events); }, 120 * kSeconds))
    bridge.fail("did not mirror " + std::to_string(m.events) + " events within 120 s");
  const double rate = double(m.events) / (double(now_ns() - t0) * 1e-9);
  const long long len = redis.command("XLEN %s", key.c_str())->integer;
  if (len != m.events)
    throw std::runtime_error("the stream holds " + std::to_string(len) + " entries, not " + std::to_string(m.events));
  redis.command("DEL %s", key.c_str());
  return rate;
}

// Events/s of pipelined XADDs of the same payloads into a fresh stream: `add` queues one,
// given the payload and the event's number.
double pipelined_rate(const Mirror& m, RedisClient& redis, const std::string& key,
                      const std::function<void(PipelinedXadd&, std::span<const std::byte>, int)>& add) {
  redis.command("DEL %s", key.c_str());
  PipelinedXadd xadd(redis, key, kXaddDepth);
  std::vector<std::byte> buf = payload_of(m.payload, 0, 0, kData);
  const std::int64_t t0 = now_ns();
  for (int i = 0; i < m.events; ++i) {
    write_header(buf, MessageHeader{0, std::uint64_t(i), 0, kData});
    add(xadd, buf, i);
  }
  xadd.flush();
  const double rate = double(m.events) / (double(now_ns() - t0) * 1e-9);
  const long long len = redis.command("XLEN %s", key.c_str())->integer;
  redis.command("DEL %s", key.c_str());
  if (len != m.events) throw std::runtime_error("pipelined XADD: " + key + " holds " + std::to_string(len) + " entries");
  return rate;
}

// The baseline: one field, the payload.
double xadd_rate(const Mirror& m, RedisClient& redis, int run) {
  return pipelined_rate(m, redis, "bench:bridge-xadd-" + std::to_string(m.payload) + "-" + std::to_string(run),
                        [](PipelinedXadd& x, std::span<const std::byte> payload, int) { x.add(payload); });
}

// Each XADD carries the entry the bridge writes for the event (agentroom's field names plus
// the origin, docs/bridge.md): what a user mirroring these events by hand sends.
double xadd_entry_rate(const Mirror& m, RedisClient& redis, int run) {
  return pipelined_rate(m, redis, "bench:bridge-entry-" + std::to_string(m.payload) + "-" + std::to_string(run),
                        [](PipelinedXadd& x, std::span<const std::byte> payload, int i) {
                          const std::string ts = std::to_string(now_ns()), id = std::to_string(i + 1);
                          const std::string_view fields[] = {"type", "b", "agent_id", "p0", "payload", text(payload),
                                                             "timestamp", ts, "origin_host", kHostA, "origin_id", id};
                          x.add_entry(kStreamMaxlen, fields);
                        });
}

// ---- latency ----------------------------------------------------------------------------

struct Latency {
  double p50 = 0, p99 = 0;
};

// `receive(timeout_ms, on_payload)` runs on a tailer thread and returns how many payloads it
// delivered; `send(payload)` is called on this thread, paced. Only kData payloads are samples.
Latency paced_latency(int samples, int warmup, const std::function<void(std::span<const std::byte>)>& send,
                      const std::function<std::size_t(std::int64_t, const std::function<void(std::span<const std::byte>)>&)>& receive) {
  const int total = samples + warmup;
  std::vector<std::int64_t> lat(std::size_t(total), -1);
  std::atomic<int> received{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> tailer_failed{false};
  std::string tailer_error;  // read only after the join
  std::thread tailer([&] {
    precise_timers();
    try {
      while (received.load() < total && !stop.load()) {
        receive(100, [&](std::span<const std::byte> p) {
          const std::int64_t t = now_ns();  // first thing: the receive instant
          const MessageHeader h = read_header(p);
          if (h.kind != kData || h.seq >= std::uint64_t(total) || lat[h.seq] >= 0) return;
          lat[h.seq] = t - h.ts_ns;
          received.fetch_add(1);
        });
      }
    } catch (const std::exception& e) {
      tailer_error = e.what();
      tailer_failed.store(true);
    }
  });
  precise_timers();
  std::vector<std::byte> buf = payload_of(64, 0, 0, kData);
  std::int64_t next = now_ns() + 1'000'000;
  for (int i = 0; i < total; ++i) {
    sleep_until(next - kSleepSlackNs);
    std::int64_t t = now_ns();
    while (t < next) {
      cpu_relax();
      t = now_ns();
    }
    write_header(buf, MessageHeader{t, std::uint64_t(i), 0, kData});
    send(buf);
    // Paced, not back-to-back: a late send does not cause a burst that would measure queueing.
    next = std::max(next + kPaceNs, t + kPaceNs / 2);
  }
  const bool all = await([&] { return received.load() >= total || tailer_failed.load(); }, 30 * kSeconds);
  stop.store(true);
  tailer.join();
  if (!tailer_error.empty()) throw std::runtime_error("tailer: " + tailer_error);
  if (!all) throw std::runtime_error("only " + std::to_string(received.load()) + " of " + std::to_string(total) + " latency samples arrived");
  std::vector<std::int64_t> measured(lat.begin() + warmup, lat.end());
  std::sort(measured.begin(), measured.end());
  return {percentile_sorted(measured, 0.5), percentile_sorted(measured, 0.99)};
}

std::function<std::size_t(std::int64_t, const std::function<void(std::span<const std::byte>)>&)> tail(
    agentbus::Subscription& sub) {
  return [&sub](std::int64_t timeout_ms, const std::function<void(std::span<const std::byte>)>& f) -> std::size_t {
    const agentbus::ReadResult r = sub.next(std::chrono::milliseconds(timeout_ms));
    if (!r.has_event()) return 0;
    f(std::span<const std::byte>(reinterpret_cast<const std::byte*>(r.event.payload.data()), r.event.payload.size()));
    return 1;
  };
}

// A -> Redis -> B through both bridges. B's tailer attaches once a ping from A reaches B, so
// the samples measure the running path, not the bridges discovering the room.
Latency bridge_latency(agentbus::Bus& a, agentbus::Bus& b, int samples, int warmup) {
  agentbus::Room ra = open_room(a, "latency", 1 << 22);
  agentbus::Room rb = open_room(b, "latency", 1 << 22);
  {
    agentbus::Subscription probe = rb.subscribe({.wait = agentbus::WaitStrategy::block});
    const std::vector<std::byte> ping = payload_of(64, 0, 0, kEnd);
    bool linked = false;
    const std::int64_t deadline = now_ns() + 20 * kSeconds;
    while (!linked && now_ns() < deadline) {
      ra.publish("ping", "p0", text(ping));
      linked = probe.next(std::chrono::milliseconds(50)).has_event();
    }
    if (!linked) throw std::runtime_error("nothing published on A reached B within 20 s");
  }
  agentbus::Subscription sub = rb.subscribe({.wait = agentbus::WaitStrategy::block});
  return paced_latency(
      samples, warmup,
      [&](std::span<const std::byte> p) {
        if (!ra.publish("b", "p0", text(p)).ok()) throw std::runtime_error("publish on A: bus full");
      },
      tail(sub));
}

Latency xread_latency(int port, int samples, int warmup) {
  const std::string key = "bench:bridge-latency";
  RedisClient writer(port), reader_conn(port);
  writer.command("DEL %s", key.c_str());
  StreamReader reader(reader_conn, key);
  const Latency l = paced_latency(
      samples, warmup,
      [&](std::span<const std::byte> p) { writer.command("XADD %s * p %b", key.c_str(), p.data(), p.size()); },
      [&](std::int64_t timeout_ms, const std::function<void(std::span<const std::byte>)>& f) {
        return reader.read(timeout_ms, f);
      });
  writer.command("DEL %s", key.c_str());
  return l;
}

// ---- local publishing while Redis is away -------------------------------------------------

RunSpec local_spec(const ModeSettings& s) {
  RunSpec spec;
  spec.scenario = "1to1";
  spec.mode = Mode::throughput;
  spec.payload_bytes = 64;
  spec.wait = Wait::block;
  spec.pin = true;
  spec.seconds = s.quick ? 0.1 : 0.5;
  return spec;
}

double one_local_run(RunSpec spec, const std::string& bus_name, int run) {
  spec.tag = std::to_string(getpid()) + "-bridge-" + std::to_string(run) + (bus_name.empty() ? "-plain" : "-bridged");
  spec.bus_name = bus_name;
  const Measurement m = agentbus_system().run(spec);
  if (!m.error.empty()) throw std::runtime_error("1to1" + std::string(bus_name.empty() ? "" : " with the bridge") + ": " + m.error);
  if (m.lost > 0) throw std::runtime_error("1to1 lost " + std::to_string(m.lost) + " events");
  return m.msgs_per_s.value_or(0);
}

// ---- the run ------------------------------------------------------------------------------

struct Names {
  std::string a, b;
  fs::path dir;
};

int run(const ModeSettings& s, bool json, std::FILE* out, const Names& names) {
  RedisServer redis_server;
  if (!redis_server.start()) throw std::runtime_error("redis-server: " + redis_server.why());
  const int port = redis_server.port();
  RedisClient redis(port);
  agentbus::Bus a = open_host(names.a, kHostA);
  agentbus::Bus b = open_host(names.b, kHostB);
  const std::vector<Mirror> mirrors = {{64, s.quick ? 20'000 : 200'000}, {1024, s.quick ? 5'000 : 50'000}};
  const int samples = s.quick ? 2'000 : 20'000;
  const int warmup = s.quick ? 200 : 1'000;
  if (!json)
    std::fprintf(out,
                 "== bridge: median of %d runs; mirror %d x 64 B and %d x 1 KiB per run; %d latency samples "
                 "(pace %lld us), one run; local 1to1 block, %.1f s per run\n",
                 s.runs, mirrors[0].events, mirrors[1].events, samples, static_cast<long long>(kPaceNs / 1000),
                 local_spec(s).seconds);

  // The mirror rooms exist, with rings that hold a whole run, before the bridge starts, so it
  // attaches to them at once; one event each proves the path before the clock runs.
  for (const Mirror& m : mirrors) {
    agentbus::Room r = open_room(a, "mirror-" + std::to_string(m.payload), m.payload > 64 ? 128u << 20 : 64u << 20);
    r.publish("b", "p0", text(payload_of(m.payload, 0, 0, kEnd)));
  }
  auto bridge_a = std::make_unique<BridgeProcess>(a, names.a, port, names.dir);
  for (const Mirror& m : mirrors) {
    const std::string room = "mirror-" + std::to_string(m.payload);
    if (!await([&] { return out_events(a, room) >= 1; }, 20 * kSeconds)) bridge_a->fail("did not ship " + room);
  }
  for (const Mirror& m : mirrors) {
    Figure f;
    f.before = probe_round_trip_ns();
    std::vector<double> rates, base, entries;
    for (int run = 0; run < s.runs; ++run) {
      rates.push_back(mirror_rate(a, "mirror-" + std::to_string(m.payload), m, redis, *bridge_a));
      base.push_back(xadd_rate(m, redis, run));
      entries.push_back(xadd_entry_rate(m, redis, run));
    }
    f.after = probe_round_trip_ns();
    f.value = median(rates) / 1e3;
    f.baseline = median(base) / 1e3;
    f.note = "until all " + std::to_string(m.events) + " are in Redis (target >= 0.8)";
    const std::string name = "mirror A->Redis, " + std::to_string(m.payload) + " B";
    print_figure(out, json, name.c_str(), "k/s", f, "XADD pipelined x64 same payload");
    f.baseline = median(entries) / 1e3;
    f.note = "the baseline XADDs the bridge's entry (6 fields) instead of 1";
    print_figure(out, json, name.c_str(), "k/s", f, "XADD pipelined x64 same entries");
  }

  {
    BridgeProcess bridge_b(b, names.b, port, names.dir);
    Figure p50, p99;
    p50.before = p99.before = probe_round_trip_ns();
    const Latency bridged = bridge_latency(a, b, samples, warmup);
    const Latency raw = xread_latency(port, samples, warmup);
    p50.after = p99.after = probe_round_trip_ns();
    p50.value = bridged.p50 / 1000, p50.baseline = raw.p50 / 1000;
    p99.value = bridged.p99 / 1000, p99.baseline = raw.p99 / 1000;
    p50.note = "target <= 1.5";
    print_figure(out, json, "A->B one-way p50", "us", p50, "XADD->XREAD BLOCK p50");
    print_figure(out, json, "A->B one-way p99", "us", p99, "XADD->XREAD BLOCK p99");
  }

  claim_cost_figure(a, names.a + "-unbridged", s.quick ? 200 : 2'000, json, out);

  // The usual 1to1 room on A, attached to the bridge while Redis still answers; then Redis is
  // killed and the bridge spools everything published.
  {
    agentbus::Room r = open_room(a, kAgentbusRoom, kAgentbusRingBytes);
    r.publish("b", "p0", text(payload_of(64, 0, 0, kEnd)));
  }
  if (!await([&] { return out_events(a, kAgentbusRoom) >= 1; }, 20 * kSeconds))
    bridge_a->fail(std::string("did not ship ") + kAgentbusRoom);
  redis_server.kill();
  if (!await([&] { return !agentbus::bridge::bridge_status(a).connected; }, 20 * kSeconds))
    bridge_a->fail("did not notice that Redis was killed");
  Figure local;
  local.before = probe_round_trip_ns();
  std::vector<double> bridged, plain;
  std::string failed;  // a publisher that got bus_full: the spool fell behind by publish_timeout
  int failures = 0;
  for (int run = 0; run < s.runs; ++run) {
    plain.push_back(one_local_run(local_spec(s), "", run));
    try {
      bridged.push_back(one_local_run(local_spec(s), names.a, run));
    } catch (const std::exception& e) {
      if (failures++ == 0) failed = e.what();
    }
  }
  local.after = probe_round_trip_ns();
  local.value = bridged.empty() ? 0 : median(bridged) / 1e6;
  local.baseline = median(plain) / 1e6;
  const auto* st = room_status(agentbus::bridge::bridge_status(a), kAgentbusRoom);
  local.note = "bridge spooled " + std::to_string(st ? st->spooled_events : 0) + ", lag " +
               std::to_string(st ? st->lag_events : 0) + " (target >= 0.9)";
  if (failures > 0)
    local.note += "; " + std::to_string(failures) + " of " + std::to_string(s.runs) + " runs failed: " + failed;
  print_figure(out, json, "1to1 64 B, Redis killed, bridge on", "M/s", local, "1to1 64 B, no bridge");
  bridge_a.reset();
  return 0;
}

}  // namespace

int run_bridge_bench(const ModeSettings& s, bool json, std::FILE* out) {
  const std::string id = std::to_string(::getpid());
  const Names names{"bench-bridge-a-" + id, "bench-bridge-b-" + id, fs::temp_directory_path() / ("agentbus-bench-bridge-" + id)};
  fs::remove_all(names.dir);
  fs::create_directories(names.dir);
  int rc = 0;
  try {
    rc = run(s, json, out, names);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bridge bench failed: %s\n", e.what());
    rc = 1;
  }
  agentbus::Bus::destroy(names.a);
  agentbus::Bus::destroy(names.b);
  if (rc == 0 || fs::is_empty(names.dir)) fs::remove_all(names.dir);
  else std::fprintf(stderr, "bridge logs and spools kept in %s\n", names.dir.string().c_str());
  return rc;
}

}  // namespace bench
