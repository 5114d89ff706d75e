// agentbus/exclusive_publisher.hpp — a room's single fast writer (Room::exclusive_publisher).
//
// Guarantees:
//  * While it holds the room's writer lease and nobody else publishes, publish() uses no
//    locked instruction: plain stores of the record, a release store of its commit word and
//    of the tail. Other writers (Room::publish, publish_batch, other processes) stay correct
//    beside it: the first of them takes the fast path away (a membarrier system call, a few
//    microseconds), and this publisher goes on through the shared path, arming the fast path
//    again after 64 publishes in a row that nobody interleaved with.
//  * The lease names this process (pid + start time). It is released by close() or the
//    destructor; a holder killed at any instruction is detected by the next writer (after the
//    room's stall timeout, and only once the holder is confirmed dead), which takes over, so
//    readers never stall and no committed event is lost.
//  * One per room at a time: a second one, in any process, throws Error{conflict}.
//  * Not thread-safe: one thread publishes through it (that is what makes it exclusive), and
//    never a child after fork() (the lease names the process that took it).
// Caveat: a holder stopped (SIGSTOP, a debugger) inside publish() holds off other writers of
// the room until their publish_timeout (BusFull), as a stopped shared writer holds its claim.
#pragma once

#include <agentbus/event.hpp>

#include <memory>
#include <string_view>

namespace agentbus {

class ExclusivePublisher {
 public:
  ExclusivePublisher(ExclusivePublisher&&) noexcept;
  ExclusivePublisher& operator=(ExclusivePublisher&&) noexcept;
  ~ExclusivePublisher();

  // As Room::publish (same errors and BusFull).
  PublishResult publish(std::string_view type, std::string_view agent, std::string_view payload,
                        const PublishOptions& options = {});

  // True while the fast path is armed: no other writer has published since it was armed.
  [[nodiscard]] bool armed() const noexcept;

  // Releases the lease; publish() afterwards throws Error{invalid_argument}.
  void close() noexcept;

  struct Impl;
  explicit ExclusivePublisher(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentbus
