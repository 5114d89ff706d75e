// Outbound: one mirrored room's events into Redis, exactly once (docs/bridge.md).
//
// A durable reader with explicit commit reads the room; each batch of this host's events is
// shipped in one MULTI/EXEC with the room's checkpoint, or, while Redis is away, appended to the room's spool and
// fsynced; only then does the reader commit past it. On restart everything after the cursor
// is read again, and the checkpoint says what Redis already has: nothing lost, nothing twice.
// Imported events are not shipped back; the reader also waits, before committing past one,
// until the inbound side has recorded it (its in-checkpoint), so that a restart can find it.
#pragma once

#include "coord/bridge_state.hpp"
#include "bridge/entry_codec.hpp"
#include "bridge/link.hpp"
#include "bridge/ship_batch.hpp"
#include "bridge/spool.hpp"

#include <agentbus/bus.hpp>
#include <agentbus/tasks.hpp>

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace agentbus::bridge {

struct OutboundSettings {
  std::string host_id{};
  std::string spool_path{};
  std::uint64_t spool_max_bytes = 256ull << 20;
  std::size_t batch_events = 256;         // per transaction into Redis
  std::size_t spool_batch_events = 8192;  // per fdatasync into the spool, while Redis is away
  std::string key_prefix{};  // the room's Redis prefix (presence keys)
  std::chrono::microseconds awake{20};  // the reader's wait before it sleeps (BridgeOptions::awake)
};

class Outbound {
 public:
  Outbound(Room room, RoomStateRef state, ShipTarget target, OutboundSettings settings, Link& link);

  // Reads, ships or spools, commits, until `stop`.
  void run(const std::atomic<bool>& stop);

 private:
  struct Batch {
    std::vector<ShipEntry> entries;
    EventId commit_to = 0;  // the reader may commit up to here once the entries are safe
    bool complete = false;  // read_batch() finished it (an exception did not cut it short)
    PendingShip pending{};  // once sent: the replies to read
  };
  [[nodiscard]] SubscribeOptions reader_options() const;
  void step(Retry& retry, Batch& b, bool& holding);
  bool connected(Retry& retry);
  void read_batch(Batch& b, std::chrono::milliseconds wait, std::size_t max);
  std::optional<ShipEntry> entry_for(const EventView& e);
  EntryOrigin origin_of_reply(EventId reply_to);
  bool recorded_by_inbound(EventId id) const;
  EventId commit_limit(EventId wanted);
  std::size_t ship_or_spool(std::span<const ShipEntry> entries);
  bool spool_entries(std::span<const ShipEntry> entries);
  bool settle(std::vector<ShipEntry>& entries, EventId commit_to);
  bool send_after_in_flight(Batch& b);
  void unconfirm(Batch& b);
  bool confirm_in_flight();
  void commit(EventId to);
  bool drain_spool();
  void drop_connection(const std::exception& why);
  void note_spool();

  Room room_;
  RoomStateRef state_;
  ShipTarget target_;
  OutboundSettings settings_;
  Link& link_;
  Subscription reader_;
  Spool spool_;
  // The bus incarnation the spool's entries belong to (its first record names it): a spool
  // left by a bus destroyed and created again ships with the old incarnation, and before
  // anything of the new one, so that its ids do not set the new incarnation's checkpoint.
  std::string spool_incarnation_;
  bool spool_marked_ = false;  // the first record is the incarnation, not an entry
  std::optional<RedisConnection> conn_;
  std::optional<ShipCursor> cursor_;  // known on a connection once read_cursor() ran
  // Imported events the reader has passed, by local id: what a local reply to one names.
  std::unordered_map<EventId, EntryOrigin> imported_;
  std::deque<EventId> unrecorded_;  // imported events read but not yet in the in-checkpoint
  EventId committed_ = 0;
  // The batch whose transaction was sent and whose replies are not read yet: the next batch is
  // read (not sent) before it is confirmed, so that Redis runs one batch while the bridge
  // encodes the next. After a lost connection neither is known to be in Redis: `unconfirmed_`
  // holds them (in order) until they are shipped again or spooled.
  std::optional<Batch> in_flight_;
  std::vector<ShipEntry> unconfirmed_;
  EventId unconfirmed_to_ = 0;
  // The room's board, once it has one: an event whose type is in its catalog is a task
  // (agentroom's rule), and ships marked as one.
  std::optional<TaskBoard> board_;
  std::chrono::steady_clock::time_point presence_due_{};
};

}  // namespace agentbus::bridge
