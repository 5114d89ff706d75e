#include "groups.hpp"

#include "common.hpp"
#include "probe.hpp"
#include "proc.hpp"
#include "stats.hpp"

#include <agentbus/agentbus.hpp>

#include <cinttypes>
#include <string>
#include <unistd.h>
#include <vector>

namespace bench {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kPayloadBytes = 64;

struct Shared {
  Control control;
  std::atomic<std::uint64_t> consumed{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::int64_t> done_ns{0};
  std::atomic<std::uint64_t> overrun{0};  // a tailer's events lost to overruns (counted consumed)
  std::atomic<std::uint8_t> seen[1];  // one per event, sized at mapping time
};

agentbus::Room open_room(agentbus::Bus& bus) {
  agentbus::RoomOptions o;
  o.ring_bytes = 4 << 20;
  o.publish_timeout = std::chrono::seconds(30);
  return bus.room("work", o);
}

agentbus::Bus open_bus(const std::string& name) {
  agentbus::BusOptions o;
  o.name = name;
  o.segment_bytes = 64ull << 20;
  return agentbus::Bus::open(o);
}

// Each payload starts with the event's sequence number, so consumers can tell a duplicate.
std::string payload_for(std::uint64_t seq) {
  std::string p = std::to_string(seq);
  p.resize(kPayloadBytes, '.');
  return p;
}

// Marks one event consumed; the consumer that takes the last one stamps the end time.
void consumed(Shared& s, std::string_view payload, std::uint64_t events) {
  const std::uint64_t seq = std::stoull(std::string(payload.substr(0, payload.find('.'))));
  if (seq >= events || s.seen[seq].exchange(1) != 0) s.duplicates.fetch_add(1);
  if (s.consumed.fetch_add(1) + 1 == events) s.done_ns.store(now_ns());
}

enum class Kind { tailer, durable_reader, group };

// One producer process publishes `events` 64-byte events; `consumers` processes take them
// (a durable reader, or members of one consumer group that ack each event). Returns events
// per second from the start signal to the last event consumed.
double run_once(Kind kind, int consumers, std::uint64_t events, const std::string& bus_name, std::uint64_t& duplicates,
                std::uint64_t& lost, std::uint64_t& overrun) {
  agentbus::Bus::destroy(bus_name);
  agentbus::Bus bus = open_bus(bus_name);
  agentbus::Room room = open_room(bus);
  // Create the reader or group before anything is published: it gates the producer from here.
  if (kind == Kind::group) agentbus::ConsumerGroup(room, "bench", "");
  else if (kind == Kind::durable_reader) room.subscribe({.durable_name = "bench"}).close();

  SharedMapping mapping(sizeof(Shared) + events);
  auto* shared = new (mapping.data()) Shared{};
  std::vector<pid_t> pids;
  const auto fail = [](const char* what) { std::fprintf(stderr, "groups bench child failed: %s\n", what); };
  pids.push_back(fork_child(
      [&] {
        agentbus::Bus b = open_bus(bus_name);
        agentbus::Room r = open_room(b);
        std::vector<std::string> payloads(1024);
        for (std::uint64_t i = 0; i < payloads.size(); ++i) payloads[i] = payload_for(i);
        shared->control.mark_ready();
        shared->control.wait_go();
        for (std::uint64_t i = 0; i < events; ++i) {
          std::string& p = payloads[i % payloads.size()];
          const std::string seq = std::to_string(i);
          std::copy(seq.begin(), seq.end(), p.begin());
          p[seq.size()] = '.';
          if (!r.publish("job", "producer", p).ok()) throw std::runtime_error("bus full for 30 s");
        }
      },
      fail));
  for (int c = 0; c < consumers; ++c) {
    pids.push_back(fork_child(
        [&, c] {
          agentbus::Bus b = open_bus(bus_name);
          agentbus::Room r = open_room(b);
          if (kind == Kind::group) {
            agentbus::ConsumerGroup g(r, "bench", "member-" + std::to_string(c), {.create = false});
            shared->control.mark_ready();
            shared->control.wait_go();
            while (shared->consumed.load(std::memory_order_relaxed) < events) {
              const std::optional<agentbus::Delivery> d = g.read(10ms);
              if (!d) continue;
              consumed(*shared, d->event.payload, events);
              g.ack(*d);
            }
          } else if (kind == Kind::tailer) {
            agentbus::Subscription sub = r.subscribe({.from = agentbus::StartFrom::latest});
            shared->control.mark_ready();
            shared->control.wait_go();
            while (shared->consumed.load(std::memory_order_relaxed) < events) {
              const agentbus::ReadResult res = sub.next(10ms);
              if (res.has_event()) consumed(*shared, res.event.payload, events);
              if (res.status == agentbus::ReadStatus::overrun) {  // lost by design: a tailer never gates
                shared->overrun.fetch_add(res.missed);
                if (shared->consumed.fetch_add(res.missed) + res.missed >= events) shared->done_ns.store(now_ns());
              }
            }
          } else {
            agentbus::Subscription sub = r.subscribe({.durable_name = "bench"});
            shared->control.mark_ready();
            shared->control.wait_go();
            while (shared->consumed.load(std::memory_order_relaxed) < events) {
              const agentbus::ReadResult res = sub.next(10ms);
              if (res.has_event()) consumed(*shared, res.event.payload, events);
            }
          }
        },
        fail));
  }
  while (shared->control.ready.load() < consumers + 1) usleep(100);
  const std::int64_t go = now_ns();
  shared->control.release(go);
  const int failed = reap_children(pids, now_ns() + 300'000'000'000);
  duplicates += shared->duplicates.load();
  overrun += shared->overrun.load();
  if (kind != Kind::tailer)
    lost += events - std::min<std::uint64_t>(events, shared->consumed.load() - shared->duplicates.load());
  agentbus::Bus::destroy(bus_name);
  if (failed != 0) throw std::runtime_error("a child failed");
  return double(events) / (double(shared->done_ns.load() - go) * 1e-9);
}

}  // namespace

int run_group_bench(const ModeSettings& s, bool json, std::FILE* out) {
  const std::string bus_name = "bench-groups-" + std::to_string(::getpid());
  const std::uint64_t events = s.quick ? 100'000 : 1'000'000;
  struct Row {
    const char* name;
    Kind kind;
    int consumers;
    std::vector<double> rates;
  };
  std::vector<Row> rows{{"plain ring, 1 producer -> 1 tailer (lossy)", Kind::tailer, 1, {}},
                        {"plain ring, 1 producer -> 1 durable reader", Kind::durable_reader, 1, {}},
                        {"group, 1 producer -> 1 member (read+ack)", Kind::group, 1, {}},
                        {"group, 1 producer -> 2 members (read+ack)", Kind::group, 2, {}}};
  std::uint64_t duplicates = 0, lost = 0, overrun = 0;
  const double before = probe_round_trip_ns();
  for (int run = 0; run < s.runs; ++run)  // interleaved, so drift hits every row alike
    for (Row& r : rows) r.rates.push_back(run_once(r.kind, r.consumers, events, bus_name, duplicates, lost, overrun));
  const double after = probe_round_trip_ns();
  const std::string placement = classify_placement(before, after);
  const double base = median(rows[0].rates);
  if (!json)
    std::fprintf(out, "== consumer groups: %" PRIu64 " events of 64 B, median of %d runs; placement %s (probe %.0f/%.0f ns)\n",
                 events, s.runs, placement.c_str(), before, after);
  for (const Row& r : rows) {
    const double rate = median(r.rates);
    if (json)
      std::fprintf(out,
                   "{\"system\":\"agentbus\",\"scenario\":\"group\",\"consumers\":%d,\"kind\":\"%s\","
                   "\"events_per_s\":%.0f,\"vs_tailer\":%.3f,\"placement\":\"%s\"}\n",
                   r.consumers, r.kind == Kind::group ? "group" : r.kind == Kind::tailer ? "tailer" : "durable", rate,
                   rate / base, placement.c_str());
    else
      std::fprintf(out, "%-46s %8.2f M/s  %5.2fx plain tailer\n", r.name, rate / 1e6, rate / base);
  }
  if (!json)
    std::fprintf(out, "durable reader and groups: duplicates %" PRIu64 ", lost %" PRIu64
                      " (both must be 0); the tailer lost %" PRIu64 " events to overruns\n",
                 duplicates, lost, overrun);
  return duplicates == 0 && lost == 0 ? 0 : 1;
}

}  // namespace bench
