// agentbus/consumer_group.hpp — Redis consumer-group semantics over a room, in shared memory.
//
// A group is a named, durable position in a room plus a pending-entries list (PEL). Members
// (named consumers, each owned by a process) read from it:
//  * Each event of an interesting type goes to exactly one member: a read hands out the next
//    undelivered event with one CAS, so no two members ever get the same new event. Events
//    of other types are acknowledged unseen.
//  * At least once: a delivered event stays pending — with its owner, delivery time and
//    delivery count — until someone acks it. A member that dies (pid + start time) or leaves
//    has its pending events handed to the next member that reads; autoclaim(min_idle) takes
//    over events idle for too long (Redis XAUTOCLAIM). A redelivered event has count > 1.
//  * Poison events: an event that would be delivered more than max_deliveries times is acked
//    instead, and an ENGINE_RUNTIME_ERROR event (agentroom's dead letter) describing it is
//    published to the room.
//  * Receipts: record_receipt() notes that the work for an event is done; if the member then
//    dies before its ack, the event is acked on reclaim instead of being delivered again, so a
//    crash between doing the work and acking never runs it twice.
//  * Backpressure: the group's acknowledged floor gates producers (a durable reader named
//    "group.<name>"), so no unacked event is ever overwritten. The group and its position
//    live in shared memory and survive all members exiting. A group nobody reads eventually
//    stops producers (BusFull), as any durable reader does: Room::drop_reader("group.<name>")
//    releases them and retires the group.
//  * No lock: a member killed inside any call leaves a transitional entry that the next member
//    that meets it completes or rolls back once the killed process is confirmed dead.
//
// Thread safety: a ConsumerGroup handle is one member and is used by one thread at a time.
// Any number of members, in any number of processes, may share a group.
#pragma once

#include <agentbus/event.hpp>
#include <agentbus/room.hpp>
#include <agentbus/subscription.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus {

struct GroupOptions {
  // Used only when this call creates the group; an existing group keeps its own.
  std::vector<std::string> interests{"*"};  // event types delivered; "*" for all
  std::uint32_t max_deliveries = 5;          // 1 .. 1000
  std::uint32_t pending_capacity = 4096;     // events between the floor and the newest
                                             // delivery (rounded up to a power of two)
  StartFrom from = StartFrom::latest;        // latest: only events published after creation
  EventId from_id = 0;                       // with StartFrom::id
  // Process-local behaviour of this handle.
  std::uint32_t max_members = 64;            // members a new group has room for (≤ 256)
  bool create = true;                        // false: Error{not_found} if the group is absent
  // The process whose death releases this member's pending events; 0: this process. The CLI
  // passes the agent's session so that a member outlives each short-lived CLI call.
  int owner_pid = 0;
  // How long read() yields the CPU, looking for an event, before it sleeps (as
  // SubscribeOptions::yield_before_block): an event inside the window costs no wake-up.
  std::chrono::microseconds yield_before_block{20};
};

// One event delivered to this member, and how to ack it.
struct Delivery {
  std::uint64_t seq = 0;          // the group's delivery sequence number (for ack)
  std::uint32_t deliveries = 0;   // 1 the first time; more when redelivered
  Event event;
};

struct PendingEntry {
  EventId id = 0;
  std::uint64_t seq = 0;
  std::string type;
  std::string owner;              // member name
  bool owner_alive = false;
  bool receipt = false;           // work done, ack still missing
  std::int64_t delivered_ns = 0;  // CLOCK_REALTIME of the latest delivery
  std::uint32_t deliveries = 0;
};

struct GroupMemberInfo {
  std::string name;
  int pid = 0;
  bool alive = false;
  std::uint64_t pending = 0;
};

struct GroupCounters {
  std::uint64_t redelivered = 0;       // taken from a dead, departed or idle member
  std::uint64_t filtered = 0;          // events not of an interesting type, acked unseen
  std::uint64_t dead_lettered = 0;     // acked after max_deliveries, ENGINE_RUNTIME_ERROR posted
  std::uint64_t receipts_honoured = 0; // redeliveries acked because a receipt existed
};

struct GroupInfo {
  std::string name;
  std::vector<std::string> interests;
  std::uint32_t max_deliveries = 0;
  std::uint32_t pending_capacity = 0;
  std::uint64_t dispatched = 0;  // events the group has handed out or filtered, ever
  EventId next_id = 0;          // where the next new delivery starts
  EventId floor_id = 0;         // producers may not overwrite from here on
  std::uint64_t pending = 0;    // delivered and not acked
  GroupCounters counters;
  std::vector<GroupMemberInfo> members;
};

enum class AckResult { acked, not_pending };

class ConsumerGroup {
 public:
  // Joins `group` on `room` as `member`, creating the group if needed. Names follow the bus
  // name grammar, at most 64 bytes. A member name is held by one live process at a time
  // (Error{conflict} otherwise); rejoining a name whose process died inherits its pending
  // events, delivered again on the next read(). An empty member name opens an observer: it
  // may look (pending, info) and ack, but not read.
  ConsumerGroup(Room room, std::string_view group, std::string_view member, const GroupOptions& options = {});
  ConsumerGroup(ConsumerGroup&&) noexcept;
  ConsumerGroup& operator=(ConsumerGroup&&) noexcept;
  ~ConsumerGroup();

  // The next event for this member: first a pending event of a dead or departed member
  // (redelivery), then a new one. Waits up to `timeout` for one. nullopt on timeout, or when
  // the pending list is full (events unacked behind the floor; ack or autoclaim them).
  [[nodiscard]] std::optional<Delivery> read(std::chrono::nanoseconds timeout);

  // Acknowledges a delivery (or an event id) for the whole group; any member may ack.
  AckResult ack(const Delivery& delivery);
  AckResult ack(EventId id);

  // Notes that this delivery's work is done; see the receipts rule above. Throws
  // Error{conflict} if the event is no longer pending for this member.
  void record_receipt(const Delivery& delivery);
  void record_receipt(EventId id);

  // agentroom's worker step: waits up to `timeout` for a delivery and runs `work` on it. On
  // success the receipt is recorded, then the ack sent, so a crash between the two never runs
  // the work again. If `work` throws, an ENGINE_RUNTIME_ERROR event {"error": what()} is
  // published (reply_to = the event) and the event acked: the error is its dead letter.
  // Returns false when nothing arrived in time.
  bool process(std::chrono::nanoseconds timeout, const std::function<void(const Event&)>& work);

  // Pending events, oldest first, at most n.
  [[nodiscard]] std::vector<PendingEntry> pending(std::size_t n = 100) const;

  // Takes over up to `count` pending events idle for at least `min_idle` (or whose owner is
  // dead), delivering them to this member; poison events are dead-lettered instead.
  [[nodiscard]] std::vector<Delivery> autoclaim(std::chrono::milliseconds min_idle, std::size_t count);

  // Leaves the group: this member's pending events become claimable by others at once.
  void leave();

  [[nodiscard]] GroupInfo info() const;
  [[nodiscard]] const std::string& member() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentbus
