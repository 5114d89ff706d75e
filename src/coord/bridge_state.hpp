// The bridge's state in shared memory: who runs the bridge of this bus, and per mirrored room
// what it has done. Two kinds of region, both opened through coord::Region:
//
//   "#bridge"        (one per bus)  BusState: the running bridge's owner word, its heartbeat,
//                                   connection state, reconnects, the last error
//   "<room>#bridge"  (one per room) RoomState: counters, what is in Redis or the spool, and
//                                   the in-checkpoint: the last Redis entry imported
//
// Why shared memory: it survives a bridge killed with kill -9 (the in-checkpoint must), it
// is where `agentbus-bridge status`, `agentbus info` and `top` read from without asking the
// bridge, and the holder word names a live bridge's pid and lets a dead one be replaced.
#pragma once

#include "shm/segment.hpp"

#include <agentbus/bridge_status.hpp>
#include <agentbus/event.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::bridge {

inline constexpr std::size_t kMaxErrorBytes = 240;

struct alignas(64) BusState {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t header_bytes;
  // Random, written once when the region is created, i.e. once per bus segment: it tells a
  // bus destroyed and created again (by the same process, even) from the one before.
  std::uint64_t nonce;
  alignas(64) std::atomic<std::uint64_t> holder;      // shm::owner_bits::holder of the bridge; 0: none
  std::atomic<std::int64_t> started_ns;               // CLOCK_REALTIME
  std::atomic<std::uint64_t> connected;               // 1 while Redis answers
  std::atomic<std::uint64_t> reconnects;
  std::atomic<std::uint64_t> error_seq;               // seqlock over last_error (odd: writing)
  std::atomic<std::uint32_t> error_len;
  char last_error[kMaxErrorBytes];
  // Bumped (and futex-woken) by every task call that asks the bridge to arbitrate a claim.
  alignas(64) std::atomic<std::uint32_t> task_requests;
};

// One consistent in-checkpoint: written to the slot not in use, then `current` flips to it,
// so a bridge killed mid-write leaves the previous one intact.
struct InCheckpoint {
  std::atomic<std::uint64_t> stream_ms;
  std::atomic<std::uint64_t> stream_seq;
  std::atomic<std::uint64_t> local_id;   // the id the entry got here; the scan on restart starts there
  std::atomic<std::uint64_t> valid;
};

// One agent present on another host, as the bridge last read it from Redis. The bridge's in
// thread is the only writer; `seq` is odd while it writes (readers in other processes retry).
inline constexpr std::size_t kMaxRemoteAgents = 64;
struct RemoteAgentSlot {
  std::atomic<std::uint64_t> seq;
  std::atomic<std::int64_t> expires_ns;  // CLOCK_REALTIME; 0: empty
  std::atomic<std::uint64_t> lengths;    // host | handle << 8 | role << 16 | working_on << 24
  char host[64];
  char handle[128];
  char role[64];
  char working_on[255];
};

struct alignas(64) RoomState {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t header_bytes;
  alignas(64) std::atomic<std::uint64_t> out_events;     // local events put into Redis
  std::atomic<std::uint64_t> in_events;                  // remote entries published here
  std::atomic<std::uint64_t> rejected;                   // remote entries skipped as malformed
  std::atomic<std::uint64_t> echoes_skipped;             // entries of this host read back
  std::atomic<std::uint64_t> spooled_events;             // events in the spool now
  std::atomic<std::uint64_t> spool_bytes;
  std::atomic<std::uint64_t> spool_full;                 // batches refused by a full spool
  std::atomic<std::uint64_t> shipped_to;                 // every local event below is in Redis or the spool
  // The bridge that arbitrates this room's task claims through Redis (owner_bits::holder);
  // 0: the room's claims are decided here. Once set it stays, with a dead holder too, so that
  // claims wait for a bridge rather than decide alone while another host decides in Redis.
  std::atomic<std::uint64_t> task_arbiter;
  // 1 while the bridge's in thread is between publishing an import and recording it in the
  // in-checkpoint: an uncovered imported event seen while it is 0 was imported by someone
  // else (`agentbus import`), and the out reader need not wait for it.
  alignas(64) std::atomic<std::uint64_t> importing;
  std::atomic<std::uint64_t> in_current;                 // writes so far; in[in_current & 1] is in use
  InCheckpoint in[2];
  alignas(64) RemoteAgentSlot remote[kMaxRemoteAgents];
};

struct InPosition {
  StreamId stream;
  EventId local_id = 0;
};

inline constexpr std::uint64_t kBusStateMagic = 0x3153554247524241ull;   // "ABRGBUS1"
inline constexpr std::uint64_t kRoomStateMagic = 0x314d4f4f52524241ull;  // "ABRROOM1"
inline constexpr std::uint32_t kBridgeStateVersion = 6;  // 2: remote agents; 3: bus nonce; 4: importing; 5: unused words gone; 6: task arbiter

// The bus's bridge state ("#bridge"); nullptr when absent and !create.
[[nodiscard]] BusState* open_bus_state(shm::Segment& seg, bool create);
// A room's ("<room>#bridge"); nullptr when absent and !create.
[[nodiscard]] RoomState* open_room_state(shm::Segment& seg, std::string_view room, bool create);

// The bridge's claim on the bus: held from start to stop; a dead holder is replaced.
// Throws Error{conflict} "a bridge is already running for bus 'B' (pid N)" while one lives.
class BridgeHold {
 public:
  BridgeHold(BusState& state, std::string_view bus);
  ~BridgeHold();
  BridgeHold(const BridgeHold&) = delete;
  BridgeHold& operator=(const BridgeHold&) = delete;

 private:
  BusState& state_;
  std::uint64_t mine_;
};

// The pid of the bridge running for this bus, or 0.
[[nodiscard]] int running_bridge_pid(const BusState& state) noexcept;

void set_last_error(BusState& state, std::string_view error) noexcept;
[[nodiscard]] std::string last_error(BusState& state);

// The other hosts' agents in a room: replaced as a whole by the bridge, read by `who`.
void write_remote_agents(RoomState& s, const std::vector<RemoteAgent>& agents) noexcept;
[[nodiscard]] std::vector<RemoteAgent> read_remote_agents(RoomState& s, std::int64_t now_ns);

// Reads and writes of one room's state.
class RoomStateRef {
 public:
  RoomStateRef() = default;
  explicit RoomStateRef(RoomState* s) : s_(s) {}
  [[nodiscard]] RoomState& operator*() const noexcept { return *s_; }
  [[nodiscard]] RoomState* operator->() const noexcept { return s_; }
  [[nodiscard]] std::optional<InPosition> in_checkpoint() const noexcept;
  void set_in_checkpoint(const InPosition& p) noexcept;

 private:
  RoomState* s_ = nullptr;
};

}  // namespace agentbus::bridge
