// DispatchQueue: one subscriber's queue of entries, fed by the StatusBus reader thread and
// drained by that subscriber's dispatcher thread. It is moodycamel's BlockingConcurrentQueue
// (lock-free enqueue, so a slow subscriber never slows the reader or the others).
// ThreadSanitizer does not model the standalone fences moodycamel synchronises with (GCC
// refuses them under -fsanitize=thread), so TSan builds use a mutex + condition variable queue
// with the same interface instead: TSan then checks the status bus's own protocol.
#pragma once

#include <chrono>
#include <cstdint>

#if defined(__SANITIZE_THREAD__)
#include <condition_variable>
#include <deque>
#include <mutex>
#else
#include <concurrentqueue/blockingconcurrentqueue.h>
#endif

namespace agentbus::status {

template <class T>
class DispatchQueue {
 public:
#if defined(__SANITIZE_THREAD__)
  void enqueue(T item) {
    {
      std::lock_guard lock(mu_);
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
  }
  bool wait_dequeue_timed(T& out, std::chrono::microseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !items_.empty(); })) return false;
    out = std::move(items_.front());
    items_.pop_front();
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;
#else
  void enqueue(T item) { queue_.enqueue(std::move(item)); }
  bool wait_dequeue_timed(T& out, std::chrono::microseconds timeout) {
    return queue_.wait_dequeue_timed(out, static_cast<std::int64_t>(timeout.count()));
  }

 private:
  moodycamel::BlockingConcurrentQueue<T> queue_;
#endif
};

}  // namespace agentbus::status
