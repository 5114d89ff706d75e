// naive-ring: the practical floor. A single-producer single-consumer ring of fixed slots in
// shared memory, written the way one would write it first:
//  * head (producer) and tail (consumer) each on its own cache line;
//  * each side re-reads the *other* side's index for every message (no cached copy) and
//    publishes its own index after every message (no batching);
//  * a slot is an 8-byte length followed by the payload; no header, no types, no ids.
// For 2 producers -> 1 it is one ring per producer, polled round-robin by the consumer.
// It has no blocking mode and no broadcast, so it appears only in spin rows with one
// subscriber.
#include "../driver.hpp"
#include "../systems.hpp"

#include <atomic>
#include <bit>
#include <cstring>
#include <memory>

namespace bench {
namespace {

constexpr std::size_t kRingBytes = 1 << 22;  // the same 4 MiB agentbus gets

struct alignas(64) RingIndices {
  alignas(64) std::atomic<std::uint64_t> head{0};  // next slot the producer writes
  alignas(64) std::atomic<std::uint64_t> tail{0};  // next slot the consumer reads
};

class NaiveRing {
 public:
  explicit NaiveRing(const RunSpec& spec)
      : slot_bytes_((sizeof(std::uint64_t) + spec.payload_bytes + 7) & ~std::size_t{7}),
        slots_(std::bit_floor(kRingBytes / slot_bytes_)),
        rings_(spec.producers),
        ring_stride_(sizeof(RingIndices) + slots_ * slot_bytes_),
        memory_(std::size_t(rings_) * ring_stride_) {
    for (int r = 0; r < rings_; ++r) new (indices(r)) RingIndices{};
  }

  class Producer {
   public:
    Producer(NaiveRing& ring, int index) : ring_(ring), r_(index) {}

    bool send(std::span<const std::byte> payload) {
      RingIndices* ix = ring_.indices(r_);
      const std::uint64_t h = ix->head.load(std::memory_order_relaxed);
      while (h - ix->tail.load(std::memory_order_acquire) >= ring_.slots_) cpu_relax();
      std::byte* slot = ring_.slot(r_, h);
      const std::uint64_t len = payload.size();
      std::memcpy(slot, &len, sizeof len);
      std::memcpy(slot + sizeof len, payload.data(), payload.size());
      ix->head.store(h + 1, std::memory_order_release);
      return true;
    }
    void flush() {}

   private:
    NaiveRing& ring_;
    int r_;
  };

  class Consumer {
   public:
    Consumer(NaiveRing& ring, int /*index*/) : ring_(ring) {}

    template <class F>
    std::size_t receive(std::int64_t timeout_ns, F&& on_message) {
      std::int64_t deadline = 0;
      for (std::uint32_t spins = 0;; ++spins) {
        for (int k = 0; k < ring_.rings_; ++k) {
          const int r = next_ring_;
          next_ring_ = next_ring_ + 1 == ring_.rings_ ? 0 : next_ring_ + 1;
          if (take_one(r, on_message)) return 1;
        }
        cpu_relax();
        if ((spins & 1023) == 1023) {  // the clock only now and then
          const std::int64_t t = now_ns();
          if (deadline == 0) deadline = t + timeout_ns;
          else if (t > deadline) return 0;
        }
      }
    }
    [[nodiscard]] std::uint64_t overruns() const { return 0; }

   private:
    template <class F>
    bool take_one(int r, F& on_message) {
      RingIndices* ix = ring_.indices(r);
      const std::uint64_t t = ix->tail.load(std::memory_order_relaxed);
      if (ix->head.load(std::memory_order_acquire) == t) return false;
      const std::byte* slot = ring_.slot(r, t);
      std::uint64_t len = 0;
      std::memcpy(&len, slot, sizeof len);
      on_message(std::span<const std::byte>(slot + sizeof len, len));
      ix->tail.store(t + 1, std::memory_order_release);
      return true;
    }

    NaiveRing& ring_;
    int next_ring_ = 0;
  };

  void after_run(Measurement&) {}

 private:
  RingIndices* indices(int r) {
    return static_cast<RingIndices*>(static_cast<void*>(base() + std::size_t(r) * ring_stride_));
  }
  std::byte* slot(int r, std::uint64_t i) {
    return base() + std::size_t(r) * ring_stride_ + sizeof(RingIndices) +
           (i & (slots_ - 1)) * slot_bytes_;
  }
  std::byte* base() { return static_cast<std::byte*>(memory_.data()); }

  std::size_t slot_bytes_;
  std::size_t slots_;
  int rings_;
  std::size_t ring_stride_;
  SharedMapping memory_;
};

bool supports(const RunSpec& spec) {
  return spec.wait == Wait::spin && spec.subscribers == 1 && spec.mode != Mode::idle;
}

}  // namespace

SystemEntry naive_ring_system() {
  return {"naive-ring", "SPSC fixed-slot shm ring, indices re-read per message (the floor)",
          &supports, &run_once<NaiveRing>, false};
}

}  // namespace bench
