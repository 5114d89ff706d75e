#include "driver.hpp"

#include <cerrno>
#include <ctime>
#include <sys/prctl.h>
#include <unistd.h>

namespace bench {

std::int64_t process_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void sleep_until(std::int64_t monotonic_ns) {
  if (monotonic_ns <= now_ns()) return;
  const timespec ts{monotonic_ns / 1'000'000'000, monotonic_ns % 1'000'000'000};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

void precise_timers() { prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); }

bool await_ready(RunShared& shared, int children) {
  const std::int64_t deadline = now_ns() + 15'000'000'000;
  while (shared.control.ready.load(std::memory_order_acquire) < children) {
    for (int i = 0; i < children; ++i) {
      if (shared.reports[i].error[0] != '\0') {
        shared.control.stop.store(1, std::memory_order_release);
        return false;
      }
    }
    if (now_ns() > deadline) {
      shared.control.stop.store(1, std::memory_order_release);
      return false;
    }
    usleep(200);
  }
  return true;
}

namespace {

std::string first_error(const RunSpec& spec, const RunShared& shared) {
  const int children = (spec.mode == Mode::idle ? 0 : spec.producers) + spec.subscribers;
  for (int i = 0; i < children; ++i) {
    const ChildReport& r = shared.reports[i];
    if (r.error[0] != '\0') {
      const bool producer = i >= spec.subscribers;
      return std::string(producer ? "producer: " : "subscriber: ") + r.error;
    }
  }
  return {};
}

void summarize_throughput(const RunSpec& spec, const RunShared& shared, Measurement& m) {
  const std::int64_t go = shared.control.go_ns;
  std::uint64_t received = 0;
  std::int64_t last_end = go;
  double slowest = 0;
  for (int s = 0; s < spec.subscribers; ++s) {
    const ChildReport& r = shared.reports[s];
    received += r.received;
    last_end = std::max(last_end, r.end_ns);
    const double rate = r.end_ns > go ? double(r.received) / (double(r.end_ns - go) * 1e-9) : 0;
    slowest = s == 0 ? rate : std::min(slowest, rate);
  }
  // Aggregate: every event delivered to every subscriber, over the time until the last one
  // finished (includes start-up and drain, so it never flatters).
  if (last_end > go) m.msgs_per_s = double(received) / (double(last_end - go) * 1e-9);
  m.min_sub_msgs_per_s = slowest;
  const std::uint64_t expected = m.sent * std::uint64_t(spec.subscribers);
  m.lost = expected > received ? expected - received : 0;
}

void summarize_latency(const RunSpec& spec, const RunShared& shared, const std::int64_t* samples,
                       std::size_t per_sub, Measurement& m) {
  std::vector<std::int64_t> all;
  std::uint64_t received = 0;
  for (int s = 0; s < spec.subscribers; ++s) {
    const ChildReport& r = shared.reports[s];
    received += r.received;
    const std::size_t n = std::min<std::size_t>(r.nsamples, per_sub);
    all.insert(all.end(), samples + s * per_sub, samples + s * per_sub + n);
  }
  std::sort(all.begin(), all.end());
  if (!all.empty()) {
    m.p50_ns = percentile_sorted(all, 0.50);
    m.p99_ns = percentile_sorted(all, 0.99);
    m.p999_ns = percentile_sorted(all, 0.999);
  }
  const std::uint64_t expected =
      std::uint64_t(spec.producers) * (spec.warmup + spec.samples) * spec.subscribers;
  m.lost = expected > received ? expected - received : 0;
}

}  // namespace

Measurement summarize(const RunSpec& spec, const RunShared& shared, const std::int64_t* samples,
                      std::size_t samples_per_subscriber) {
  Measurement m;
  m.error = first_error(spec, shared);
  for (int s = 0; s < spec.subscribers; ++s) {
    m.overruns += shared.reports[s].overruns;
    m.order_errors += shared.reports[s].order_errors;
  }
  if (spec.mode != Mode::idle) {
    for (int p = 0; p < spec.producers; ++p) m.sent += shared.reports[spec.subscribers + p].sent;
  }
  switch (spec.mode) {
    case Mode::throughput: summarize_throughput(spec, shared, m); break;
    case Mode::latency: summarize_latency(spec, shared, samples, samples_per_subscriber, m); break;
    case Mode::idle: {
      const ChildReport& r = shared.reports[0];
      if (r.wall_ns > 0) m.idle_cpu_pct = 100.0 * double(r.cpu_ns) / double(r.wall_ns);
      break;
    }
  }
  return m;
}

}  // namespace bench
