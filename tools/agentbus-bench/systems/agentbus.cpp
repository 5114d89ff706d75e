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
#include <string>

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
        : bus_(open_bus(sys.bus_name_)), room_(open_room(bus_)), agent_("p" + std::to_string(index)) {}

    bool send(std::span<const std::byte> payload) {
      const std::string_view bytes(reinterpret_cast<const char*>(payload.data()), payload.size());
      return room_.publish("b", agent_, bytes).ok();
    }
    void flush() {}

   private:
    agentbus::Bus bus_;
    agentbus::Room room_;
    std::string agent_;
  };

  class Consumer {
   public:
    Consumer(Agentbus& sys, int index)
        : bus_(open_bus(sys.bus_name_)), room_(open_room(bus_)),
          sub_(room_.subscribe(subscribe_options(sys.wait_, sys.durable_, index))) {}

    template <class F>
    std::size_t receive(std::int64_t timeout_ns, F&& on_message) {
      const agentbus::ReadResult r = sub_.next(std::chrono::nanoseconds(timeout_ns));
      if (r.status == agentbus::ReadStatus::overrun) {
        ++overruns_;
        return 0;
      }
      if (!r.has_event()) return 0;
      on_message(std::span<const std::byte>(reinterpret_cast<const std::byte*>(r.event.payload.data()),
                                            r.event.payload.size()));
      return 1;
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

}  // namespace

SystemEntry agentbus_system() {
  return {"agentbus", "agentbus room (MPMC log ring in POSIX shm)", &supports,
          &run_once<Agentbus>, false};
}

}  // namespace bench
