// Inbound: every mirrored room's Redis stream into the local room, exactly once.
//
// One thread, one connection, one XREAD BLOCK over all the streams from the last entry each
// has imported. Entries this host shipped are skipped (no echo); malformed ones are skipped and
// counted, and never stop the entries after them; the rest are published locally with their
// origin, which carries the Redis stream id. Right after each publish the room's in-checkpoint
// (bridge_state.hpp) is written. A bridge killed between the two leaves an imported event the
// checkpoint does not name; on restart the room is scanned from the checkpoint's local id for
// imported events newer than it, and the outbound reader never commits past an import the
// checkpoint does not cover yet, so that scan always finds it.
// A directed entry (`to` set) is also stored in the recipient's inbox here, before the
// checkpoint; the restart scan stores those it finds past the checkpoint unless the inbox
// already holds them. So too for tasks: an entry marked `task` becomes a task of the local
// board (with its origin) and an imported TASK_DONE marks the task it answers done.
#pragma once

#include "coord/bridge_state.hpp"
#include "bridge/entry_codec.hpp"
#include "bridge/link.hpp"

#include <agentbus/inbox.hpp>
#include <agentbus/room.hpp>
#include <agentbus/tasks.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace agentbus::bridge {

class Inbound {
 public:
  // `awake`: how long each XREAD watches for its reply before sleeping (BridgeOptions::awake).
  Inbound(std::string host_id, Link& link, std::chrono::microseconds awake);

  // Starts importing `stream_key` into `room`, after the last entry it holds (see above).
  void add_room(Room room, RoomStateRef state, std::string stream_key);

  // Reads and imports until `stop`.
  void run(const std::atomic<bool>& stop);

 private:
  struct Mirror {
    Room room;
    RoomStateRef state;
    std::string key;
    StreamId last;
    std::size_t payload_limit = 0;
    std::map<std::pair<std::string, EventId>, EventId> local_of;  // imported origin -> local id
    std::uint64_t rejected_logged = 0;
    std::optional<Inbox> inbox;  // opened on the first directed entry
    std::optional<TaskBoard> board;  // opened on the first task or completion
    std::string key_prefix;      // presence keys
    // Set while the room's key in Redis is not a stream (someone else wrote it): the room is
    // left out of the shared XREAD, which would otherwise fail for every room, and looked at
    // again at this time.
    std::optional<std::chrono::steady_clock::time_point> wrong_type_until;
    // Set while the local room is full (a durable reader there does not drain): its entries
    // wait in Redis, and the other rooms go on importing.
    std::optional<std::chrono::steady_clock::time_point> full_until;
    bool full_said = false;  // logged once per time it fills
  };

  void read_once(RedisConnection& conn);
  void set_aside_wrong_types(RedisConnection& conn, const std::vector<Mirror*>& order);
  // An entry to publish. Its PublishOptions are made only once it has stopped moving
  // (options_of): they hold views into `event`, and a moved short string moves its bytes.
  struct Pending {
    StreamId id;
    StreamEvent event;
    std::optional<EventId> reply_to;  // the answered event's id here, when known
  };
  static PublishOptions options_of(const Pending& p);
  std::optional<Pending> classify(Mirror& m, StreamId id, ReplyView fields);
  bool publish(Mirror& m, std::vector<Pending>& batch, StreamId before);
  void record(Mirror& m, std::span<const Pending> batch, std::span<const EventId> ids);
  std::optional<EventId> local_id_of(Mirror& m, const EntryOrigin& o) const;
  void deliver(Mirror& m, const EventView& published, bool unless_held);
  void remember(Mirror& m, const EntryOrigin& o, EventId local);
  void apply_to_board(Mirror& m, const EventView& published, bool task, const EntryOrigin& origin);

  std::string host_;
  Link& link_;
  std::chrono::microseconds awake_;
  std::mutex mutex_;  // guards mirrors_ against add_room from the bridge's main thread
  std::vector<std::unique_ptr<Mirror>> mirrors_;
  const std::atomic<bool>* stop_ = nullptr;
  std::chrono::steady_clock::time_point presence_due_{};
  void pull_all_presence(RedisConnection& conn);
};

}  // namespace agentbus::bridge
