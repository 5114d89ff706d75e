// agentbus-bench/common.hpp — vocabulary shared by the probe, the systems, the driver and
// the report: what one run is asked to do (RunSpec), what a child process writes back
// (ChildReport), and what a run produced (Measurement).
#pragma once

#include <agentbus/clock.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace bench {

enum class Wait { spin, block };
enum class Mode { throughput, latency, idle };

[[nodiscard]] inline std::string_view to_string(Wait w) { return w == Wait::spin ? "spin" : "block"; }

// What the --groups and --status modes are asked for.
struct ModeSettings {
  int runs = 5;        // median of this many
  bool quick = false;  // short runs (CI smoke test)
};

// One cross-process run of one system.
struct RunSpec {
  std::string scenario;          // "1to1", "2to1", "1to4", "idle"
  Mode mode = Mode::throughput;
  std::size_t payload_bytes = 64;
  int producers = 1;
  int subscribers = 1;
  Wait wait = Wait::spin;
  double seconds = 0.5;          // throughput: producer run time; idle: observation window
  int samples = 5000;            // latency: measured sends per producer
  int warmup = 500;              // latency: sends per producer not measured (page faults, caches)
  std::int64_t pace_ns = 20'000; // latency: gap between two sends of one producer
  bool pin = false;              // producers on CPU 0, subscribers on CPU 1
  std::string tag;               // unique per run: names shm objects, queues, streams
  int redis_port = 0;
  std::string bus_name;          // agentbus: run on this existing bus (kept) instead of a fresh one
};

// Written by each child into shared memory; read by the parent after the child exits.
struct ChildReport {
  std::uint64_t sent = 0;          // producer: data messages sent
  std::uint64_t received = 0;      // subscriber: data messages received
  std::uint64_t order_errors = 0;  // subscriber: a producer's sequence went backwards or skipped
  std::uint64_t overruns = 0;      // subscriber: times the transport reported loss
  std::int64_t end_ns = 0;         // subscriber: when the last end marker arrived
  std::int64_t cpu_ns = 0;         // idle subscriber: CPU time used in the window
  std::int64_t wall_ns = 0;        // idle subscriber: length of the window
  std::uint64_t nsamples = 0;      // latency subscriber: samples written
  int done = 0;
  char error[240] = {};

  void fail(std::string_view what) {
    const std::size_t n = std::min(what.size(), sizeof error - 1);
    std::memcpy(error, what.data(), n);
    error[n] = '\0';
  }
};

// What one run (or the median of several) produced. Absent fields do not apply.
struct Measurement {
  std::optional<double> msgs_per_s;          // throughput: aggregate delivered events/s
  std::optional<double> min_sub_msgs_per_s;  // throughput: slowest subscriber
  std::optional<double> p50_ns, p99_ns, p999_ns;
  std::optional<double> idle_cpu_pct;
  std::optional<std::uint64_t> wakeups;      // agentbus: room counters.wakeups after the run
  std::uint64_t sent = 0;
  std::uint64_t lost = 0;          // sent x subscribers - received
  std::uint64_t overruns = 0;
  std::uint64_t order_errors = 0;
  std::string error;               // non-empty: the run failed

  [[nodiscard]] static Measurement failure(std::string why) {
    Measurement m;
    m.error = std::move(why);
    return m;
  }
};

// The first bytes of every payload the bench sends. The rest is filler.
struct MessageHeader {
  std::int64_t ts_ns;     // latency: CLOCK_MONOTONIC at send
  std::uint64_t seq;      // per-producer sequence number
  std::uint32_t producer;
  std::uint32_t kind;     // kData or kEnd
};
inline constexpr std::uint32_t kData = 0;
inline constexpr std::uint32_t kEnd = 1;
inline constexpr std::size_t kMinPayload = sizeof(MessageHeader);

inline MessageHeader read_header(std::span<const std::byte> payload) {
  MessageHeader h{};
  std::memcpy(&h, payload.data(), std::min(payload.size(), sizeof h));
  return h;
}

inline void write_header(std::span<std::byte> payload, const MessageHeader& h) {
  std::memcpy(payload.data(), &h, sizeof h);
}

// CLOCK_MONOTONIC is one clock for every process on the machine, so a timestamp taken by a
// producer can be subtracted from one taken by a subscriber. It is a vDSO call (~20 ns).
inline std::int64_t now_ns() { return agentbus::monotonic_ns(); }

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace bench
