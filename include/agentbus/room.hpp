// agentbus/room.hpp — a room: a multi-producer log of events in shared memory.
//
// Guarantees (see docs/architecture.md for the layout and ordering rules):
//  * publish() is lock-free, safe from any thread of any process, and returns the event's id.
//    Events from one thread appear in the order published; events of all producers appear in
//    one total order that every reader sees.
//  * A producer killed at any instant never blocks readers or other producers for longer than
//    the stall timeout once it is dead: its half-written record is turned into padding. A
//    producer that is merely slow is never mistaken for a dead one.
//  * Nothing accepted is lost silently: a producer gated by a durable reader waits up to
//    `publish_timeout`, then gets PublishStatus::bus_full; a lapped tailer gets an overrun.
//  * Every length or offset read from the segment is bounds-checked.
#pragma once

#include <agentbus/counter.hpp>
#include <agentbus/event.hpp>
#include <agentbus/exclusive_publisher.hpp>
#include <agentbus/subscription.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus {

class RoomAccess;

struct RoomOptions {
  // Used only when this call creates the room; an existing room keeps its own.
  std::size_t ring_bytes = 1 << 20;          // power of two, 64 KiB .. 1 GiB
  std::size_t max_record_bytes = 0;  // payload + fields + 32 (+8 with reply_to); 0: 64 KiB, or ring_bytes/4 if less
  // Process-local behaviour of this handle.
  std::chrono::milliseconds stall_timeout{100};    // wait before checking a stuck claimer
  std::chrono::milliseconds publish_timeout{1000}; // wait on a full, gated ring before BusFull
  bool create = true;                              // false: throw not_found if absent
  // Timestamps of events this handle publishes from CLOCK_REALTIME_COARSE: ~16 ns cheaper per
  // publish, but only as fine as the kernel tick (4 ms here). Order is the id's, not ts's.
  bool coarse_timestamps = false;
};

struct ReaderInfo {
  std::string name;      // durable name, or "tailer"
  bool durable = false;
  int pid = 0;           // attached process (0: a durable reader nobody holds)
  bool alive = false;
  EventId cursor = 0;
  std::uint64_t lag_bytes = 0;  // tail - cursor
};

struct RoomCounters {
  std::uint64_t wrap_paddings = 0;     // padding records written at the end of the buffer
  std::uint64_t dead_claims_padded = 0;// claims of dead producers turned into padding
  std::uint64_t gaps_padded = 0;       // unstamped claims repaired by scanning forward
  std::uint64_t aborted_claims = 0;    // claims of live producers aborted (then retried)
  std::uint64_t overruns = 0;          // times a tailer was lapped
  std::uint64_t bus_full = 0;          // publishes that gave up with BusFull
  std::uint64_t dead_sessions_reclaimed = 0; // reader slots taken back from dead processes
  std::uint64_t wakeups = 0;           // futex wake calls issued by publishers
  std::uint64_t exclusive_revokes = 0; // times a shared writer took the fast path from an exclusive one
  std::uint64_t dead_writer_leases = 0;// exclusive-writer leases taken back from dead holders
};
[[nodiscard]] std::vector<Counter> counter_list(const RoomCounters& c);

struct RoomInfo {
  std::string name;
  std::size_t ring_bytes = 0;
  std::size_t max_record_bytes = 0;
  EventId tail = 0;      // id the next event will get
  EventId oldest = 0;    // oldest event still in the ring (a record boundary)
  RoomCounters counters;
  std::vector<ReaderInfo> readers;
  std::string corrupt;   // non-empty: what is wrong with this room (the rest is unset)
};

// recent_events(): the events, and how many records in that stretch could not be read
// (a corrupt stamp or header, or a claim whose producer never stamped it) and were skipped.
struct RecentEvents {
  std::vector<Event> events;
  std::uint64_t unreadable = 0;
};

class Room {
 public:
  // Publishes one event. Throws Error{too_large} when type > 64 B, agent or `to` > 128 B,
  // or the whole record exceeds the room's max_record_bytes; Error{invalid_argument} when
  // type is empty.
  PublishResult publish(std::string_view type, std::string_view agent, std::string_view payload,
                        const PublishOptions& options = {});

  // Publishes all of `events` with one claim and one commit: readers see none of them or all,
  // in order, and a producer killed midway leaves nothing (the claim is padded once it is
  // confirmed dead). Returns the first event's id; the ids of all go to `ids` if it is not
  // empty (it must hold events.size()). All events share one timestamp. Throws as publish()
  // does for a bad event (nothing is published then), and Error{too_large} for a batch whose
  // records take more than half the ring (a batch that meets the buffer end pads the rest and
  // starts over at the beginning: both must fit past a caught-up reader). BusFull, as for publish(), means none was published.
  PublishResult publish_batch(std::span<const EventIn> events, std::span<EventId> ids = {});

  // This room's exclusive writer (agentbus/exclusive_publisher.hpp): publishes without a
  // locked instruction while nobody else writes. Throws Error{conflict} while another live
  // one exists (in any process).
  [[nodiscard]] ExclusivePublisher exclusive_publisher();

  [[nodiscard]] Subscription subscribe(const SubscribeOptions& options = {});

  // The newest `n` events still in the ring, oldest first. Unreadable records are skipped.
  [[nodiscard]] std::vector<Event> recent(std::size_t n);
  // The same, counting the unreadable records skipped.
  [[nodiscard]] RecentEvents recent_events(std::size_t n);

  // Removes a durable reader so it no longer gates producers. Returns false if absent.
  bool drop_reader(std::string_view durable_name);

  [[nodiscard]] RoomInfo info() const;
  [[nodiscard]] const std::string& name() const noexcept;

  // True once the bus this room lives on was destroyed (Bus::destroy, or its /dev/shm object
  // removed or replaced): this handle still works on its mapping, but no other process will
  // publish here again. A follower checks it now and then instead of waiting forever.
  [[nodiscard]] bool bus_destroyed() const noexcept;

  struct Impl;
  explicit Room(std::shared_ptr<Impl> impl);

 private:
  // agentbus's own components built on a room (task board, presence, status bus) reach its
  // ring and segment through src/bus/room_access.hpp; users of this header cannot.
  friend class RoomAccess;
  std::shared_ptr<Impl> impl_;
};

}  // namespace agentbus
