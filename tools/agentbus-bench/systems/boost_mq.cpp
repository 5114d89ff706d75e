// boost-mq: boost::interprocess::message_queue, the ready-made answer most C++ users reach
// for. A mutex + two condition variables around a priority queue of fixed-size messages in
// shared memory. Point-to-point (each message goes to one receiver), so it has no 1 -> 4
// broadcast row. spin = try_send/try_receive in a loop; block = send/timed_receive.
#include "../driver.hpp"
#include "../systems.hpp"

#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/ipc/message_queue.hpp>

#include <memory>
#include <optional>
#include <vector>

namespace bench {
namespace {

namespace bip = boost::interprocess;
constexpr std::size_t kQueueMessages = 4096;

class BoostMq {
 public:
  explicit BoostMq(const RunSpec& spec)
      : name_("agentbus-bench-mq-" + spec.tag), payload_bytes_(spec.payload_bytes),
        wait_(spec.wait) {
    bip::message_queue::remove(name_.c_str());
    // Created here and closed again at once: every child opens its own handle after fork.
    bip::message_queue(bip::create_only, name_.c_str(), kQueueMessages, payload_bytes_);
  }
  ~BoostMq() { bip::message_queue::remove(name_.c_str()); }

  class Producer {
   public:
    Producer(BoostMq& sys, int /*index*/)
        : mq_(bip::open_only, sys.name_.c_str()), wait_(sys.wait_) {}

    bool send(std::span<const std::byte> payload) {
      if (wait_ == Wait::block) {
        mq_.send(payload.data(), payload.size(), 0);
        return true;
      }
      while (!mq_.try_send(payload.data(), payload.size(), 0)) cpu_relax();
      return true;
    }
    void flush() {}

   private:
    bip::message_queue mq_;
    Wait wait_;
  };

  class Consumer {
   public:
    Consumer(BoostMq& sys, int /*index*/)
        : mq_(bip::open_only, sys.name_.c_str()), wait_(sys.wait_), buf_(sys.payload_bytes_) {}

    template <class F>
    std::size_t receive(std::int64_t timeout_ns, F&& on_message) {
      bip::message_queue::size_type got = 0;
      unsigned int priority = 0;
      bool ok = false;
      if (wait_ == Wait::block) {
        const auto until = boost::posix_time::microsec_clock::universal_time() +
                           boost::posix_time::microseconds(timeout_ns / 1000);
        ok = mq_.timed_receive(buf_.data(), buf_.size(), got, priority, until);
      } else {
        const std::int64_t deadline = now_ns() + timeout_ns;
        for (std::uint32_t spins = 0; !(ok = mq_.try_receive(buf_.data(), buf_.size(), got, priority));
             ++spins) {
          cpu_relax();
          if ((spins & 1023) == 1023 && now_ns() > deadline) break;
        }
      }
      if (!ok) return 0;
      on_message(std::span<const std::byte>(buf_.data(), got));
      return 1;
    }
    [[nodiscard]] std::uint64_t overruns() const { return 0; }

   private:
    bip::message_queue mq_;
    Wait wait_;
    std::vector<std::byte> buf_;
  };

  void after_run(Measurement&) {}

 private:
  std::string name_;
  std::size_t payload_bytes_;
  Wait wait_;
};

bool supports(const RunSpec& spec) { return spec.subscribers == 1; }

}  // namespace

SystemEntry boost_mq_system() {
  return {"boost-mq", "boost::interprocess::message_queue (mutex + condvars)", &supports,
          &run_once<BoostMq>, false};
}

}  // namespace bench
