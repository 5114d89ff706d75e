// ClaimArbiter: the bridge's side of tasks across hosts (docs/bridge.md, "Tasks across
// hosts"). One thread and one Redis connection for the bus: it attaches the board of every
// mirrored room that has one (from then on the room's claims ask it), answers each claim,
// renew, complete and release with one Lua script (bridge/claim_scripts.hpp), and mirrors each
// room's catalog of task types as agentroom's `<prefix>:catalog` hash.
//
// While Redis is away every request is answered `unavailable` at once: a claim then fails with
// a clear error rather than wait, or win alone.
#pragma once

#include "bridge/link.hpp"
#include "bridge/redis_connection.hpp"
#include "coord/bridge_state.hpp"
#include "coord/task_arbiter.hpp"

#include <agentbus/room.hpp>
#include <agentbus/tasks.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace agentbus::bridge {

class ClaimArbiter {
 public:
  // keep_ms: how long Redis keeps a task's token and result (the streams' TTL; 0: forever).
  ClaimArbiter(std::string host_id, Link& link, std::uint64_t keep_ms);

  void add_room(Room room, RoomStateRef state, std::string key_prefix);
  // Serves until `stop`.
  void run(const std::atomic<bool>& stop);

 private:
  struct Arbitrated {
    Room room;
    RoomStateRef state;
    std::string prefix;
    std::optional<TaskBoard> board;
    std::vector<TaskType> catalog_pushed;
  };

  void attach_boards();
  void serve(Arbitrated& a);
  coord::ArbiterReply decide(Arbitrated& a, const coord::ArbiterRequest& r);
  void undo_grant(Arbitrated& a, const coord::ArbiterRequest& r, const coord::ArbiterReply& granted);
  void sync_catalog(Arbitrated& a);
  std::string task_key(const Arbitrated& a, const coord::ArbiterRequest& r, std::string_view which) const;
  void drop_connection(const std::exception& why);

  std::string host_;
  Link& link_;
  std::uint64_t keep_ms_;
  RedisScript claim_script_, settle_script_;
  std::optional<RedisConnection> conn_;
  Retry retry_;
  std::string down_because_ = "Redis has not answered yet";
  std::mutex mutex_;  // guards rooms_ against add_room from the bridge's main thread
  std::vector<std::unique_ptr<Arbitrated>> rooms_;
};

// A room's catalog entry as agentroom's TaskDef JSON, and back (nothing for malformed JSON).
[[nodiscard]] std::string task_def_json(const TaskType& t);
[[nodiscard]] std::optional<TaskType> parse_task_def(std::string_view json);

}  // namespace agentbus::bridge
