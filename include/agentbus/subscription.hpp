// agentbus/subscription.hpp — reading a room.
//
// Two kinds of reader (design brief §4):
//  * A tailer (SubscribeOptions::durable_name empty) never slows producers. If producers lap
//    it, next() returns ReadStatus::overrun with an estimate of the events it missed, and the
//    following next() resumes a sixteenth of the ring past the oldest intact record (headroom
//    against being lapped again at once). Tailers copy each batch out of the
//    ring and re-validate it (seqlock rule), so a view is never torn.
//  * A durable reader (durable_name set) gates producers: nothing at or after its cursor is
//    overwritten. Its cursor lives in shared memory under its name, survives the process, and
//    moves past an event when next() is called again (the view is zero-copy into the ring).
//    A durable reader nobody drains eventually makes publish() return BusFull; remove it
//    with Room::drop_reader() or `agentbus destroy`.
//
// Thread safety: a Subscription is used by one thread at a time. Any number of subscriptions,
// in any number of processes, may read one room concurrently.
// Waiting: `spin` burns a core for the lowest latency; `yield` spins then sched_yield()s;
// `block` (default) spins briefly, then sleeps on a shared futex that publishers wake only
// when a waiter is registered, so an idle blocked reader costs no CPU.
#pragma once

#include <agentbus/event.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace agentbus {

enum class WaitStrategy { spin, yield, block };
enum class StartFrom { earliest, latest, id };

struct SubscribeOptions {
  StartFrom from = StartFrom::latest;
  EventId from_id = 0;            // with StartFrom::id: the first event to deliver
  WaitStrategy wait = WaitStrategy::block;
  std::string durable_name{};     // empty: a tailer; else a durable reader of that name
  // Durable readers only. false: the cursor moves past an event when next() is called again.
  // true: it moves only on commit(), so a reader can hold a batch it has not finished with
  // (the bridge ships a batch to Redis first) and, killed, get it again from its cursor.
  bool explicit_commit = false;
  // `block` only: how long a reader that found nothing yields the CPU before it sleeps on the
  // futex. A reader expecting an answer soon (a delegation's result) stays awake for it and
  // pays no wake-up, at the price of a core yielded for that long each time it waits.
  std::chrono::microseconds yield_before_block{20};
};

enum class ReadStatus {
  event,    // `event` holds the next event
  timeout,  // nothing arrived within the timeout
  overrun,  // a tailer was lapped; `missed` events (estimated) are gone
  skipped,  // `missed` unreadable records (`missed_bytes` bytes) were skipped; reading goes on
};

struct ReadResult {
  ReadStatus status = ReadStatus::timeout;
  EventView event;
  std::uint64_t missed = 0;        // overrun: estimated events lost; skipped: records skipped
  std::uint64_t missed_bytes = 0;  // overrun, skipped: exact number of log bytes skipped

  [[nodiscard]] bool has_event() const noexcept { return status == ReadStatus::event; }
};

// What one poll() or next_batch() call did.
struct PollResult {
  std::size_t events = 0;          // events handed to the handler / put in the batch
  bool overrun = false;            // a tailer was lapped meanwhile (see ReadStatus::overrun)
  std::uint64_t missed = 0;        // events lost to overruns plus unreadable records skipped
  std::uint64_t missed_bytes = 0;
};

class Subscription {
 public:
  Subscription(Subscription&&) noexcept;
  Subscription& operator=(Subscription&&) noexcept;
  ~Subscription();

  // Next event, waiting up to `timeout` with the subscription's wait strategy.
  // A zero timeout polls. Never throws for timeouts or overruns. A record whose stamp or
  // header is impossible (a foreign writer scribbled on the segment) is stepped over to the
  // next plausible record and reported as ReadStatus::skipped.
  [[nodiscard]] ReadResult next(std::chrono::nanoseconds timeout);

  // Hands every event available now, up to `limit`, to `handler(const EventView&)`, waiting
  // up to `timeout` for the first. A durable reader publishes its cursor once, after the
  // last handler call (explicit_commit readers still move it only on commit()), instead of
  // once per event: that is what makes draining a burst cheap. A view is valid only during
  // its handler call. Overruns and skipped records are counted in the result, not returned.
  template <class Handler>
  PollResult poll(Handler&& handler, std::size_t limit, std::chrono::nanoseconds timeout = {}) {
    return poll_with(
        [](void* h, const EventView& e) { (*static_cast<std::remove_reference_t<Handler>*>(h))(e); },
        &handler, limit, timeout, true);
  }
  // The events available now (up to `limit`, and at most one internal batch of 64 events /
  // 64 KiB), waiting up to `timeout` for the first, into `out` (cleared first). The views
  // are valid until the next call on this subscription; a durable reader acknowledges them
  // on that call, as next() does.
  PollResult next_batch(std::vector<EventView>& out, std::size_t limit, std::chrono::nanoseconds timeout = {});

  // Position of the next event this subscription will deliver.
  [[nodiscard]] EventId position() const noexcept;

  // Durable readers: moves the cursor to `up_to` (an event's id, or position()): everything
  // before it is consumed and may be overwritten. Throws Error{invalid_argument} for a
  // tailer, or for a position behind the cursor or past the end of what was handed out.
  void commit(EventId up_to);

  // Releases the reader slot (a durable reader's cursor stays, at position()).
  void close() noexcept;

  struct Impl;
  explicit Subscription(std::unique_ptr<Impl> impl);

 private:
  using EventSink = void (*)(void*, const EventView&);
  PollResult poll_with(EventSink sink, void* context, std::size_t limit, std::chrono::nanoseconds timeout,
                       bool acknowledge);
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentbus
