// Outbound: one mirrored room's events into Redis, exactly once (docs/bridge.md).
//
// A durable reader with explicit commit reads the room; each batch of this host's events is
// shipped by the ship script, or, while Redis is away, appended to the room's spool and
// fsynced; only then does the reader commit past it. On restart everything after the cursor
// is read again, and the script drops what Redis already has: nothing lost, nothing twice.
// Imported events are not shipped back; the reader also waits, before committing past one,
// until the inbound side has recorded it (its in-checkpoint), so that a restart can find it.
#pragma once

#include "coord/bridge_state.hpp"
#include "bridge/entry_codec.hpp"
#include "bridge/link.hpp"
#include "bridge/ship_batch.hpp"
#include "bridge/spool.hpp"

#include <agentbus/bus.hpp>

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
  std::size_t batch_events = 256;  // per ship script call
  // Per batch read while Redis is away: each spooled batch costs an fdatasync, and the local
  // publishers wait on this reader, so fewer, larger batches keep them going.
  std::size_t spool_batch_events = 8192;
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
  };
  void read_batch(Batch& b, std::chrono::milliseconds wait, std::size_t limit);
  std::optional<ShipEntry> entry_for(const EventView& e);
  EntryOrigin origin_of_reply(EventId reply_to);
  bool recorded_by_inbound(EventId id) const;
  EventId commit_limit(EventId wanted);
  bool ship_or_spool(const std::vector<ShipEntry>& entries);
  bool drain_spool();
  void ship_all(const std::vector<ShipEntry>& entries);

  Room room_;
  RoomStateRef state_;
  ShipTarget target_;
  OutboundSettings settings_;
  Link& link_;
  Subscription reader_;
  Spool spool_;
  RedisScript script_;
  std::optional<RedisConnection> conn_;
  // Imported events the reader has passed, by local id: what a local reply to one names.
  std::unordered_map<EventId, EntryOrigin> imported_;
  std::deque<EventId> unrecorded_;  // imported events read but not yet in the in-checkpoint
  EventId committed_ = 0;
};

}  // namespace agentbus::bridge
