// agentbus-bench/driver.hpp — one cross-process run of one system, written once for all.
//
// A system `Sys` is a class template argument with this shape (see systems/*.cpp):
//
//   explicit Sys(const RunSpec&);              // in the parent, before fork: create objects
//   struct Producer { Producer(Sys&, int index);         // in a producer child
//                     bool send(std::span<const std::byte>);   // false: gave up (e.g. full)
//                     void flush(); };                          // push anything batched
//   struct Consumer { Consumer(Sys&, int index);         // in a subscriber child
//                     template <class F> std::size_t receive(std::int64_t timeout_ns, F&& f);
//                     std::uint64_t overruns() const; };
//   void after_run(Measurement&);              // in the parent, after every child exited
//   ~Sys();                                    // in the parent: remove what it created
//
// `receive` calls f(std::span<const std::byte>) for each message it gets (valid only during
// the call) and returns how many it delivered, 0 on timeout. Templates rather than virtual
// calls, so the hot loops of every system compile to the same shape.
//
// Children never share a library object with the parent: each opens its own transport after
// fork(). They meet at a futex barrier in a shared anonymous mapping, run, write a
// ChildReport into that mapping and _exit().
#pragma once

#include "common.hpp"
#include "proc.hpp"
#include "stats.hpp"

#include <algorithm>
#include <chrono>
#include <new>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace bench {

inline constexpr int kMaxChildren = 8;
inline constexpr std::int64_t kPollNs = 100'000'000;  // receive timeout: lets loops see `stop`
inline constexpr int kSendsPerClockRead = 256;        // throughput producers read the clock rarely
inline constexpr std::int64_t kSleepSlackNs = 15'000; // wake early, spin the rest (timer slack 1 ns)

struct RunShared {
  Control control;
  ChildReport reports[kMaxChildren];
};

std::int64_t process_cpu_ns();  // CLOCK_PROCESS_CPUTIME_ID of the calling process
void sleep_until(std::int64_t monotonic_ns);
void precise_timers();  // PR_SET_TIMERSLACK to 1 ns for the calling thread

// Summarises the children's reports (driver.cpp).
Measurement summarize(const RunSpec& spec, const RunShared& shared, const std::int64_t* samples,
                      std::size_t samples_per_subscriber);

// How long a subscriber keeps waiting before it gives up on the run.
inline std::int64_t subscriber_deadline(const RunSpec& spec, std::int64_t go_ns) {
  const double expected_s =
      spec.mode == Mode::latency
          ? double(spec.warmup + spec.samples) * double(spec.pace_ns) * 1e-9 * 2.0
          : spec.seconds;
  return go_ns + std::int64_t((expected_s + 10.0) * 1e9);
}

// ---- subscriber side ----------------------------------------------------------------------

template <class Consumer>
void consume_throughput(Consumer& c, const RunSpec& spec, Control& ctl, ChildReport& rep) {
  std::vector<std::uint64_t> next_seq(std::size_t(spec.producers), 0);
  int ends = 0;
  const std::int64_t deadline = subscriber_deadline(spec, ctl.go_ns);
  while (ends < spec.producers) {
    const std::size_t n = c.receive(kPollNs, [&](std::span<const std::byte> payload) {
      const MessageHeader h = read_header(payload);
      if (h.kind == kEnd) {
        ++ends;
        return;
      }
      // Each producer's events must arrive in order and without gaps.
      if (h.producer >= next_seq.size() || h.seq != next_seq[h.producer]) ++rep.order_errors;
      if (h.producer < next_seq.size()) next_seq[h.producer] = h.seq + 1;
      ++rep.received;
    });
    if (n == 0 && (ctl.stop.load(std::memory_order_relaxed) != 0 || now_ns() > deadline)) {
      rep.fail("subscriber timed out before every producer's end marker arrived");
      break;
    }
  }
  rep.end_ns = now_ns();
}

template <class Consumer>
void consume_latency(Consumer& c, const RunSpec& spec, Control& ctl, ChildReport& rep,
                     std::int64_t* samples, std::size_t capacity) {
  const std::uint64_t expected = std::uint64_t(spec.producers) * (spec.warmup + spec.samples);
  const std::int64_t deadline = subscriber_deadline(spec, ctl.go_ns);
  std::size_t n = 0;
  while (rep.received < expected) {
    const std::size_t got = c.receive(kPollNs, [&](std::span<const std::byte> payload) {
      const std::int64_t t = now_ns();  // first thing: the receive instant
      const MessageHeader h = read_header(payload);
      ++rep.received;
      if (h.kind == kData && h.seq >= std::uint64_t(spec.warmup) && n < capacity)
        samples[n++] = t - h.ts_ns;
    });
    if (got == 0 && (ctl.stop.load(std::memory_order_relaxed) != 0 || now_ns() > deadline)) {
      rep.fail("subscriber timed out before every latency sample arrived");
      break;
    }
  }
  rep.nsamples = n;
}

template <class Consumer>
void consume_idle(Consumer& c, Control& ctl, ChildReport& rep) {
  const std::int64_t cpu0 = process_cpu_ns();
  const std::int64_t wall0 = now_ns();
  while (ctl.stop.load(std::memory_order_acquire) == 0) {
    rep.received += c.receive(2 * kPollNs, [](std::span<const std::byte>) {});
  }
  rep.cpu_ns = process_cpu_ns() - cpu0;
  rep.wall_ns = now_ns() - wall0;
}

template <class Sys>
void subscriber_main(Sys& sys, const RunSpec& spec, Control& ctl, ChildReport& rep,
                     std::int64_t* samples, std::size_t capacity, int index) {
  if (spec.pin) pin_to_cpu(1);
  typename Sys::Consumer c(sys, index);
  ctl.mark_ready();
  ctl.wait_go();
  switch (spec.mode) {
    case Mode::throughput: consume_throughput(c, spec, ctl, rep); break;
    case Mode::latency: consume_latency(c, spec, ctl, rep, samples, capacity); break;
    case Mode::idle: consume_idle(c, ctl, rep); break;
  }
  rep.overruns = c.overruns();
  rep.done = 1;
}

// ---- producer side ------------------------------------------------------------------------

template <class Producer>
void produce_throughput(Producer& p, const RunSpec& spec, Control& ctl, ChildReport& rep,
                        int index) {
  std::vector<std::byte> buf(spec.payload_bytes, std::byte{0x5a});
  const std::int64_t end = ctl.go_ns + std::int64_t(spec.seconds * 1e9);
  MessageHeader h{0, 0, std::uint32_t(index), kData};
  bool ok = true;
  while (ok) {
    for (int k = 0; k < kSendsPerClockRead; ++k) {
      write_header(buf, h);
      if (!p.send(buf)) {
        ok = false;
        rep.fail("send gave up (transport full or failed)");
        break;
      }
      ++h.seq;
    }
    if (now_ns() >= end || ctl.stop.load(std::memory_order_relaxed) != 0) break;
  }
  rep.sent = h.seq;
  h.kind = kEnd;
  write_header(buf, h);
  p.send(buf);
  p.flush();
}

template <class Producer>
void produce_latency(Producer& p, const RunSpec& spec, Control& ctl, ChildReport& rep,
                     int index) {
  std::vector<std::byte> buf(spec.payload_bytes, std::byte{0x5a});
  // Producers start half a pace apart so that two of them do not send at the same instant.
  std::int64_t next = ctl.go_ns + 1'000'000 + index * spec.pace_ns / std::max(1, spec.producers);
  const int total = spec.warmup + spec.samples;
  for (int i = 0; i < total; ++i) {
    // A pinned producer owns its core and spins to the send instant (precise pacing). An
    // unpinned one sleeps, so that it does not steal the core a subscriber needs.
    if (!spec.pin) sleep_until(next - kSleepSlackNs);
    std::int64_t t = now_ns();
    while (t < next) {
      cpu_relax();
      t = now_ns();
    }
    write_header(buf, MessageHeader{t, std::uint64_t(i), std::uint32_t(index), kData});
    if (!p.send(buf)) {
      rep.fail("send gave up (transport full or failed)");
      break;
    }
    p.flush();
    ++rep.sent;
    // Paced, not back-to-back: a late send does not cause a burst that would measure queueing.
    next = std::max(next + spec.pace_ns, t + spec.pace_ns / 2);
    if (ctl.stop.load(std::memory_order_relaxed) != 0) break;
  }
}

template <class Sys>
void producer_main(Sys& sys, const RunSpec& spec, Control& ctl, ChildReport& rep, int index) {
  if (spec.pin) pin_to_cpu(0);
  else precise_timers();  // latency pacing sleeps; the default 50 us slack would blur it
  typename Sys::Producer p(sys, index);
  ctl.mark_ready();
  ctl.wait_go();
  if (spec.mode == Mode::throughput) produce_throughput(p, spec, ctl, rep, index);
  if (spec.mode == Mode::latency) produce_latency(p, spec, ctl, rep, index);
  rep.done = 1;
}

// ---- the parent ---------------------------------------------------------------------------

// Waits until every child is ready, or one failed during setup (then tells the rest to stop).
bool await_ready(RunShared& shared, int children);

template <class Sys>
Measurement run_once(const RunSpec& spec) {
  const int children = (spec.mode == Mode::idle ? 0 : spec.producers) + spec.subscribers;
  if (children > kMaxChildren) return Measurement::failure("too many processes");

  SharedMapping shared_map(sizeof(RunShared));
  auto* shared = new (shared_map.data()) RunShared{};
  const std::size_t per_sub =
      spec.mode == Mode::latency ? std::size_t(spec.producers) * spec.samples : 0;
  SharedMapping sample_map(std::max<std::size_t>(1, spec.subscribers * per_sub) *
                           sizeof(std::int64_t));
  auto* samples = static_cast<std::int64_t*>(sample_map.data());

  Sys sys(spec);
  std::vector<pid_t> pids;
  for (int s = 0; s < spec.subscribers; ++s) {
    ChildReport& rep = shared->reports[s];
    pids.push_back(fork_child(
        [&] { subscriber_main(sys, spec, shared->control, rep, samples + s * per_sub, per_sub, s); },
        [&](const char* msg) { rep.fail(msg); }));
  }
  if (spec.mode != Mode::idle) {
    for (int p = 0; p < spec.producers; ++p) {
      ChildReport& rep = shared->reports[spec.subscribers + p];
      pids.push_back(fork_child([&] { producer_main(sys, spec, shared->control, rep, p); },
                                [&](const char* msg) { rep.fail(msg); }));
    }
  }

  const bool ready = await_ready(*shared, children);
  shared->control.release(now_ns());
  if (ready && spec.mode == Mode::idle) {
    std::this_thread::sleep_for(std::chrono::duration<double>(spec.seconds));
    shared->control.stop.store(1, std::memory_order_release);
  }
  const int bad =
      reap_children(pids, subscriber_deadline(spec, shared->control.go_ns) + 5'000'000'000);

  Measurement m = summarize(spec, *shared, samples, per_sub);
  if (m.error.empty() && bad > 0) m.error = "a child process crashed or was killed at the deadline";
  sys.after_run(m);
  return m;
}

}  // namespace bench
