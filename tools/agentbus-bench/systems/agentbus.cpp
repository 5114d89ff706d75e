// agentbus: the library under test, used exactly as an application would.
//
// Each run gets a fresh bus (`bench-<tag>`), destroyed afterwards, so counters and durable
// cursors never leak between runs; unless RunSpec::bus_name names a bus the caller set up (the
// --bridge figures run the usual 1to1 on a bus with a bridge attached), which is kept. Every child opens its own Bus and Room after fork().
// Throughput runs use durable readers, which gate producers, so nothing may be lost; latency
// and idle runs use plain tailers (what `subscribe()` gives by default). After the run the
// parent reads the room's counters: `wakeups` after a spin run must be 0, because a publisher
// issues a futex wake only when a reader is registered as waiting.
#include "../driver.hpp"
#include "../systems.hpp"

#include <agentbus/agentbus.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace bench {
namespace {

// Options built field by field: partial designated initialisers trip
// -Wmissing-field-initializers under -Werror.
agentbus::Bus open_bus(const std::string& name, bool create = true) {
  agentbus::BusOptions o;
  o.name = name;
  o.create = create;
  return agentbus::Bus::open(o);
}

agentbus::Room open_room(agentbus::Bus& bus, bool create = true) {
  agentbus::RoomOptions o;
  o.ring_bytes = kAgentbusRingBytes;
  o.create = create;
  return bus.room(kAgentbusRoom, o);
}

std::string durable_name(int index) { return "bench-reader-" + std::to_string(index); }

agentbus::SubscribeOptions subscribe_options(Wait wait, bool durable, int index) {
  agentbus::SubscribeOptions o;
  o.from = agentbus::StartFrom::latest;
  o.wait = wait == Wait::spin ? agentbus::WaitStrategy::spin : agentbus::WaitStrategy::block;
  if (durable) o.durable_name = durable_name(index);
  return o;
}

// How the producer publishes: Room::publish (the shared MPMC path), an ExclusivePublisher
// (no locked instruction while alone), or Room::publish_batch of kBatch events.
enum class Publish { shared, exclusive, batch };
constexpr std::size_t kBatch = 32;

template <Publish kPublish>
class Agentbus {
 public:
  explicit Agentbus(const RunSpec& spec)
      : bus_name_(spec.bus_name.empty() ? "bench-" + spec.tag : spec.bus_name), owns_bus_(spec.bus_name.empty()),
        subscribers_(spec.subscribers), wait_(spec.wait), durable_(spec.mode == Mode::throughput) {
    if (owns_bus_) agentbus::Bus::destroy(bus_name_);  // a leftover from a killed run would skew counters
  }
  ~Agentbus() {
    if (owns_bus_) {
      agentbus::Bus::destroy(bus_name_);
      return;
    }
    // A kept bus is left as found: this run's durable readers would gate the next run's producers.
    try {
      auto bus = open_bus(bus_name_, /*create=*/false);
      auto room = open_room(bus, /*create=*/false);
      for (int i = 0; i < subscribers_; ++i) room.drop_reader(durable_name(i));
    } catch (const agentbus::Error&) {
    }
  }

  class Producer {
   public:
    Producer(Agentbus& sys, int index)
        : bus_(open_bus(sys.bus_name_)), room_(open_room(bus_)), agent_("p" + std::to_string(index)) {
      if constexpr (kPublish == Publish::exclusive) exclusive_.emplace(room_.exclusive_publisher());
      if constexpr (kPublish == Publish::batch) payloads_.reserve(kBatch);
    }

    bool send(std::span<const std::byte> payload) {
      const std::string_view bytes(reinterpret_cast<const char*>(payload.data()), payload.size());
      if constexpr (kPublish == Publish::exclusive) return exclusive_->publish("b", agent_, bytes).ok();
      if constexpr (kPublish == Publish::batch) {
        payloads_.emplace_back(bytes);
        return payloads_.size() < kBatch || flush_batch();
      }
      return room_.publish("b", agent_, bytes).ok();
    }
    void flush() {
      if constexpr (kPublish == Publish::batch) flush_batch();
    }

   private:
    bool flush_batch() {
      if (payloads_.empty()) return true;
      events_.clear();
      for (const std::string& p : payloads_) events_.push_back({"b", agent_, p});
      const bool ok = room_.publish_batch(events_).ok();
      payloads_.clear();  // after: the events view these strings
      return ok;
    }

    agentbus::Bus bus_;
    agentbus::Room room_;
    std::string agent_;
    std::optional<agentbus::ExclusivePublisher> exclusive_;
    std::vector<std::string> payloads_;
    std::vector<agentbus::EventIn> events_;
  };

  class Consumer {
   public:
    Consumer(Agentbus& sys, int index)
        : bus_(open_bus(sys.bus_name_)), room_(open_room(bus_)),
          sub_(room_.subscribe(subscribe_options(sys.wait_, sys.durable_, index))) {}

    // Everything available now (up to 64 events), with one cursor store per call.
    template <class F>
    std::size_t receive(std::int64_t timeout_ns, F&& on_message) {
      const agentbus::PollResult r = sub_.poll(
          [&](const agentbus::EventView& e) {
            on_message(std::span<const std::byte>(reinterpret_cast<const std::byte*>(e.payload.data()),
                                                  e.payload.size()));
          },
          64, std::chrono::nanoseconds(timeout_ns));
      if (r.overrun) ++overruns_;
      return r.events;
    }
    [[nodiscard]] std::uint64_t overruns() const { return overruns_; }

   private:
    agentbus::Bus bus_;
    agentbus::Room room_;
    agentbus::Subscription sub_;
    std::uint64_t overruns_ = 0;
  };

  // In the parent, after every child has exited: read the room's counters.
  void after_run(Measurement& m) {
    try {
      auto bus = open_bus(bus_name_, /*create=*/false);
      auto room = open_room(bus, /*create=*/false);
      const agentbus::RoomCounters c = room.info().counters;
      m.wakeups = c.wakeups;
      if (c.bus_full > 0 && m.error.empty())
        m.error = "publish returned BusFull " + std::to_string(c.bus_full) + " times";
    } catch (const agentbus::Error& e) {
      if (m.error.empty()) m.error = std::string("reading room counters: ") + e.what();
    }
  }

 private:
  std::string bus_name_;
  bool owns_bus_;
  int subscribers_;
  Wait wait_;
  bool durable_;
};

bool supports(const RunSpec&) { return true; }
// One exclusive writer per room; a batch only helps throughput (latency rows send one at a time).
bool supports_exclusive(const RunSpec& spec) { return spec.producers == 1; }
bool supports_batch(const RunSpec& spec) { return spec.producers == 1 && spec.mode == Mode::throughput; }

}  // namespace

SystemEntry agentbus_system() {
  return {"agentbus", "agentbus room (MPMC log ring in POSIX shm)", &supports,
          &run_once<Agentbus<Publish::shared>>, false};
}

SystemEntry agentbus_exclusive_system() {
  return {"agentbus-excl", "agentbus room, one ExclusivePublisher (no locked instruction)", &supports_exclusive,
          &run_once<Agentbus<Publish::exclusive>>, false};
}

SystemEntry agentbus_batch_system() {
  return {"agentbus-batch", "agentbus room, publish_batch of 32 events", &supports_batch,
          &run_once<Agentbus<Publish::batch>>, false};
}

}  // namespace bench
