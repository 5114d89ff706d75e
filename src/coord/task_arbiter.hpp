// Tasks in a bridged room (docs/bridge.md, "Tasks across hosts"): the board's side of asking
// the bridge to confirm a claim through Redis, the bridge's side of answering, and the calls
// with which the bridge puts another host's tasks and completions on the local board.
//
// A room is bridged for tasks once a bridge has attached its board (RoomState::task_arbiter).
// From then on every claim, renew, complete and release of the room's tasks is decided in two
// steps: the local CAS among this host's callers (the entry's transitional phase), then the
// bridge's answer from Redis (the entry's ArbiterChannel, task_board_layout.hpp), so that
// exactly one claimant wins across all hosts and a stale claimant of any host is refused.
#pragma once

#include "coord/task_table.hpp"

#include <agentbus/tasks.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace agentbus::bridge {
struct BusState;
struct RoomState;
}  // namespace agentbus::bridge

namespace agentbus::coord {

enum class ArbiterOp : std::uint8_t { claim = 1, renew = 2, complete = 3, release = 4 };
enum class ArbiterVerdict : std::uint8_t {
  granted = 1,      // claim: won, with a token; renew, complete, release: done
  held = 2,         // claim: another claimant holds it (holder, lease_left_ms)
  done = 3,         // the task was completed (on some host)
  stale = 4,        // renew, complete, release: the token is no longer the current claim's
  unavailable = 5,  // Redis could not be asked (detail says why)
};

// What the bridge is asked, as read from the entry.
struct ArbiterRequest {
  EventId task = 0;           // the id here
  ArbiterOp op = ArbiterOp::claim;
  std::string origin_host;    // where the task was posted (this host for a local task)
  EventId origin_id = 0;      // its id there
  std::string claimant;
  std::int64_t ttl_ms = 0;
  std::uint64_t remote_token = 0;
  std::string result;         // complete
};

struct ArbiterReply {
  ArbiterVerdict verdict = ArbiterVerdict::unavailable;
  std::uint64_t remote_token = 0;
  std::int64_t lease_left_ms = 0;
  std::string holder;
  std::string detail;
};

// ---- the board's side -------------------------------------------------------------------

// The room's arbiter as the board sees it.
struct ArbiterLink {
  bridge::BusState* bus = nullptr;
  bridge::RoomState* room = nullptr;
};

// How long a call waits for the bridge's answer before giving up (Error{unavailable}).
inline constexpr std::chrono::seconds kArbiterWait{10};

// The room's arbiter, or nothing when its claims are decided here. Throws Error{unavailable}
// when the room's bridge has died (claims wait for it; see task_arbiter above).
[[nodiscard]] std::optional<ArbiterLink> arbiter_of(TaskBoard::Impl& m);

// Asks the arbiter about entry `e`, whose transitional phase the caller holds, and waits for
// the answer; gives up (verdict unavailable) after kArbiterWait or when the bridge dies.
[[nodiscard]] ArbiterReply ask_arbiter(TaskEntry& e, ArbiterOp op, const ArbiterAsk& ask, const ArbiterLink& link);

// ---- the bridge's side ------------------------------------------------------------------

// Marks the board's room as arbitrated by the calling process (the bridge).
void attach_arbiter(bridge::RoomState& room);

// Answers every pending request on the board with `decide`; returns how many. A granted
// claim whose asker gave up meanwhile is passed to `withdrawn`, to be undone in Redis.
using ArbiterDecision = std::function<ArbiterReply(const ArbiterRequest&)>;
using WithdrawnGrant = std::function<void(const ArbiterRequest&, const ArbiterReply&)>;
std::size_t serve_arbiter_requests(TaskBoard& board, const ArbiterDecision& decide, const WithdrawnGrant& withdrawn);

// Whether the room has a task board (without creating one, and without an exception).
[[nodiscard]] bool has_task_board(const Room& room);

// Whether `id` is a task on the board (the bridge marks such events when it ships them).
[[nodiscard]] bool is_task(const TaskBoard& board, EventId id);

// Puts a task of another host on the board: `local_id` is the imported event here, `origin`
// where it was posted. Registers a bare type when the catalog lacks it. Idempotent.
void import_task(TaskBoard& board, EventId local_id, std::string_view type, std::string_view creator,
                 std::string_view payload, std::int64_t created_ts_ns, std::string_view origin_host,
                 EventId origin_id);

// Marks task `id` done with another host's result (its TASK_DONE was imported); `claimant` is
// "<agent>@<host>". Returns false
// when the board has no such task. Idempotent.
bool complete_imported(TaskBoard& board, EventId id, std::string_view claimant, std::string_view result);

}  // namespace agentbus::coord
