// agentbus-bench/status.cpp — the status bus (issue 4), each figure beside a same-run baseline:
//  * post, fire and forget, one process, one subscriber attached  vs  Room::publish of the
//    same payload bytes (what post adds: validation, timestamp, JSON formatting);
//  * post -> callback in another process, block mode, p50/p99  vs  a plain block-mode tailer
//    of the same ring (what the reader thread + dispatcher queue hop adds);
//  * JSONL persistence: entries/s from the first post until the last line is in the file
//    (page cache, no fdatasync)  vs  post without persistence.
// Every figure carries a placement probe taken before and after it (see probe.hpp).
#include "status.hpp"

#include "common.hpp"
#include "figure.hpp"
#include "probe.hpp"
#include "proc.hpp"
#include "stats.hpp"

#include <agentbus/agentbus.hpp>

#include <atomic>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

namespace bench {
namespace {

constexpr std::string_view kDetail = "Found 7 results";
constexpr std::string_view kMetadata = R"({"results":7,"engine":"google"})";

agentbus::Bus open_bus(const std::string& name) {
  agentbus::BusOptions o;
  o.name = name;
  o.segment_bytes = 512ull << 20;
  return agentbus::Bus::open(o);
}

agentbus::RoomOptions big_ring() {
  agentbus::RoomOptions ro;
  ro.ring_bytes = 64 << 20;
  return ro;
}

// ---- post throughput --------------------------------------------------------------------

double post_rate(const std::string& bus_name, int n, std::uint64_t& delivered, std::uint64_t& overruns) {
  agentbus::Bus::destroy(bus_name);
  agentbus::Bus bus = open_bus(bus_name);
  agentbus::StatusBus sb(bus.room("status", big_ring()));
  std::atomic<std::uint64_t> seen{0};
  agentbus::StatusSubscription sub = sb.subscribe([&](const agentbus::StatusEntry&) {
    seen.fetch_add(1, std::memory_order_relaxed);
  });
  const std::int64_t t0 = now_ns();
  for (int i = 0; i < n; ++i)
    if (!sb.post("exec", "search_google", agentbus::StatusLevel::ok, kDetail, kMetadata).ok())
      throw std::runtime_error("post: bus full");
  const double rate = double(n) / (double(now_ns() - t0) * 1e-9);
  sb.close();
  delivered = seen.load();
  overruns = sb.stats().overruns;
  agentbus::Bus::destroy(bus_name);
  return rate;
}

double publish_rate(const std::string& bus_name, int n) {
  agentbus::Bus::destroy(bus_name);
  agentbus::Bus bus = open_bus(bus_name);
  agentbus::Room room = bus.room("status", big_ring());
  agentbus::StatusEntry e;
  e.ts = "2026-05-01T19:05:15.123456Z";
  e.agent_id = "exec";
  e.action = "search_google";
  e.status = agentbus::StatusLevel::ok;
  e.detail = std::string(kDetail);
  e.metadata = std::string(kMetadata);
  const std::string payload = e.to_json();
  // A plain tailer attached, as the status bus's reader thread is.
  agentbus::Subscription tail = room.subscribe();
  const std::int64_t t0 = now_ns();
  for (int i = 0; i < n; ++i) room.publish("STATUS", "exec", payload);
  const double rate = double(n) / (double(now_ns() - t0) * 1e-9);
  agentbus::Bus::destroy(bus_name);
  return rate;
}

// ---- post -> callback across processes ------------------------------------------------

struct LatencyShared {
  Control control;
  std::atomic<std::uint64_t> received;
  std::int64_t samples[1];  // sized at mapping time
};

// The subscriber child: `status` uses a StatusBus callback, else a plain block-mode tailer.
void latency_child(const std::string& bus_name, LatencyShared* shared, int total, bool status) {
  agentbus::Bus bus = open_bus(bus_name);
  agentbus::Room room = bus.room("status", big_ring());
  const auto record = [&](std::string_view text) {
    const std::uint64_t i = shared->received.load(std::memory_order_relaxed);
    if (i < std::uint64_t(total)) shared->samples[i] = now_ns() - std::stoll(std::string(text));
    shared->received.store(i + 1, std::memory_order_release);
  };
  if (status) {
    agentbus::StatusBus sb(room);
    agentbus::StatusSubscription sub = sb.subscribe([&](const agentbus::StatusEntry& e) { record(e.detail); });
    shared->control.mark_ready();
    shared->control.wait_go();
    while (shared->received.load(std::memory_order_acquire) < std::uint64_t(total) &&
           shared->control.stop.load() == 0)
      usleep(1000);  // the callbacks run on the bus's threads; this thread only waits for the end
    return;
  }
  agentbus::Subscription sub = room.subscribe({.wait = agentbus::WaitStrategy::block});
  shared->control.mark_ready();
  shared->control.wait_go();
  while (shared->received.load(std::memory_order_relaxed) < std::uint64_t(total) && shared->control.stop.load() == 0) {
    const agentbus::ReadResult r = sub.next(std::chrono::milliseconds(100));
    if (r.has_event()) record(r.event.payload);
  }
}

struct Latency {
  double p50 = 0, p99 = 0;
};

Latency post_to_callback(const std::string& bus_name, int samples, int warmup, std::int64_t pace_ns, bool status) {
  agentbus::Bus::destroy(bus_name);
  agentbus::Bus bus = open_bus(bus_name);
  agentbus::Room room = bus.room("status", big_ring());
  const int total = samples + warmup;
  SharedMapping mapping(sizeof(LatencyShared) + sizeof(std::int64_t) * std::size_t(total));
  auto* shared = new (mapping.data()) LatencyShared{};
  const pid_t child = fork_child([&] { latency_child(bus_name, shared, total, status); },
                                 [](const char* what) { std::fprintf(stderr, "subscriber failed: %s\n", what); });
  while (shared->control.ready.load() < 1) usleep(100);
  shared->control.release(now_ns());
  agentbus::StatusBus sb(room);
  for (int i = 0; i < total; ++i) {
    const std::int64_t start = now_ns();
    const std::string stamp = std::to_string(start);
    if (status) sb.post("exec", "ping", agentbus::StatusLevel::info, stamp);
    else room.publish("STATUS", "exec", stamp);
    while (now_ns() - start < pace_ns) cpu_relax();
  }
  const std::int64_t deadline = now_ns() + 10'000'000'000;
  while (shared->received.load() < std::uint64_t(total) && now_ns() < deadline) usleep(1000);
  shared->control.stop.store(1);
  reap_children({child}, now_ns() + 5'000'000'000);
  std::vector<std::int64_t> lat(shared->samples + warmup,
                                shared->samples + std::min<std::uint64_t>(shared->received.load(), std::uint64_t(total)));
  std::sort(lat.begin(), lat.end());
  agentbus::Bus::destroy(bus_name);
  if (lat.empty()) throw std::runtime_error("no latency samples");
  return {percentile_sorted(lat, 0.5), percentile_sorted(lat, 0.99)};
}

// ---- JSONL persistence ------------------------------------------------------------------

double persist_rate(const std::string& bus_name, int n, bool persist) {
  agentbus::Bus::destroy(bus_name);
  agentbus::Bus bus = open_bus(bus_name);
  agentbus::RoomOptions ro;
  ro.ring_bytes = 8 << 20;  // smaller than the run: the writer must keep up, or posts wait
  const std::string path = "/tmp/agentbus-bench-status-" + std::to_string(::getpid()) + ".jsonl";
  std::filesystem::remove(path);
  agentbus::StatusBusOptions so;
  if (persist) so.persist_path = path;
  agentbus::StatusBus sb(bus.room("status", ro), so);
  const std::int64_t t0 = now_ns();
  for (int i = 0; i < n; ++i)
    if (!sb.post("exec", "search_google", agentbus::StatusLevel::ok, kDetail, kMetadata).ok())
      throw std::runtime_error("post: bus full (the JSONL writer fell behind by more than the publish timeout)");
  while (persist && sb.stats().persisted < std::uint64_t(n)) {
    if (now_ns() - t0 > 60'000'000'000) throw std::runtime_error("persistence did not finish");
    usleep(100);
  }
  const double rate = double(n) / (double(now_ns() - t0) * 1e-9);
  sb.close();
  if (persist && std::filesystem::file_size(path) == 0) throw std::runtime_error("nothing persisted");
  std::filesystem::remove(path);
  agentbus::Bus::destroy(bus_name);
  return rate;
}

}  // namespace

int run_status_bench(const ModeSettings& s, bool json, std::FILE* out) {
  const std::string bus_name = "bench-status-" + std::to_string(::getpid());
  const int n = s.quick ? 100'000 : 1'000'000;
  const int samples = s.quick ? 2'000 : 20'000;
  const int warmup = s.quick ? 200 : 1'000;
  const std::int64_t pace_ns = 50'000;
  if (!json)
    std::fprintf(out, "== status bus: median of %d runs; %d posts per throughput run, %d latency samples (pace %lld us)\n",
                 s.runs, n, samples, static_cast<long long>(pace_ns / 1000));
  try {
    Figure post;
    post.before = probe_round_trip_ns();
    std::vector<double> rates, base;
    std::uint64_t delivered = 0, overruns = 0;
    for (int run = 0; run < s.runs; ++run) {
      std::uint64_t d = 0, o = 0;
      rates.push_back(post_rate(bus_name, n, d, o));
      base.push_back(publish_rate(bus_name, n));
      delivered += d;
      overruns += o;
    }
    post.after = probe_round_trip_ns();
    post.value = median(rates) / 1e6;
    post.baseline = median(base) / 1e6;
    post.note = "subscriber got " + std::to_string(delivered) + "/" + std::to_string(std::uint64_t(n) * s.runs) +
                ", overruns " + std::to_string(overruns);
    print_figure(out, json, "post, 1 subscriber attached", "M/s", post, "Room::publish same payload");

    Figure p50, p99;
    p50.before = p99.before = probe_round_trip_ns();
    std::vector<double> s50, s99, b50, b99;
    for (int run = 0; run < s.runs; ++run) {
      const Latency a = post_to_callback(bus_name, samples, warmup, pace_ns, true);
      const Latency b = post_to_callback(bus_name, samples, warmup, pace_ns, false);
      s50.push_back(a.p50), s99.push_back(a.p99), b50.push_back(b.p50), b99.push_back(b.p99);
    }
    p50.after = p99.after = probe_round_trip_ns();
    p50.value = median(s50) / 1000, p50.baseline = median(b50) / 1000;
    p99.value = median(s99) / 1000, p99.baseline = median(b99) / 1000;
    print_figure(out, json, "post->callback other process p50", "us", p50, "ring block-mode tailer p50");
    print_figure(out, json, "post->callback other process p99", "us", p99, "ring block-mode tailer p99");

    Figure persist;
    persist.before = probe_round_trip_ns();
    std::vector<double> pr, nr;
    for (int run = 0; run < s.runs; ++run) {
      pr.push_back(persist_rate(bus_name, n, true));
      nr.push_back(persist_rate(bus_name, n, false));
    }
    persist.after = probe_round_trip_ns();
    persist.value = median(pr) / 1e3;
    persist.baseline = median(nr) / 1e3;
    persist.note = "until the last line is written (no fdatasync), 8 MiB ring";
    print_figure(out, json, "JSONL persistence", "k/s", persist, "post without persistence");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "status bench failed: %s\n", e.what());
    agentbus::Bus::destroy(bus_name);
    return 1;
  }
  return 0;
}

}  // namespace bench
