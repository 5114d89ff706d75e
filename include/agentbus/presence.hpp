// agentbus/presence.hpp — who is in a room: a table of agents with a role, what they are
// working on, and proof of life.
//
// An agent joins under a short handle ("fixer-1"); the table stores it qualified with a token
// of its *session* ("fixer-1-3f9a0c12"), agentroom style, so two agents that pick the same
// handle stay distinct, and joining again from the same session refreshes the same entry.
// The session is a process (pid + start time): the agent's shell or hook runner when joined
// through the CLI, the calling process by default.
//
// Guarantees:
//  * An agent is *live* while it was seen within its TTL (join, refresh, set_working_on) AND
//    its session process is alive. who() lists live agents only, so a crashed agent drops out
//    as soon as its session process is gone (judged by pid and start time, so a recycled pid
//    cannot keep it alive), and a hung one after its TTL, with no explicit leave.
//  * Entries of departed agents are reclaimed by whoever next joins; who() is a pure observer
//    and never writes (and does not count as activity).
//  * At most one entry per qualified handle once join() returns (concurrent joins of one
//    handle from one session converge on a single entry).
//  * No lock anywhere. Each entry has a state word changed only by CAS (free -> writing|pid ->
//    live); a process killed while writing an entry leaves it in "writing", and the next joiner
//    that finds that pid dead takes the entry over. A reader never blocks a writer; it retries
//    (bounded) when an entry changes under it.
//  * Presence changes are published into the room as events, so tailers see them:
//    AGENT_JOINED (payload {"role","working_on","pid","ttl_ms"}) when an entry is created, and
//    AGENT_LEFT (payload {"reason":"left"|"expired"|"session_ended"}) when one is removed;
//    agent = the qualified handle. Refreshes and re-joins publish nothing. A departed agent's
//    AGENT_LEFT is published when its entry is reclaimed (lazily), not at the moment it died.
//  * Every length and count read from shared memory is bounds-checked; a table that fails
//    validation is Error{corrupt}.
//
// Thread and process safety: a Presence may be shared by threads; every call is safe
// concurrently with any call from any thread of any process on the bus.
#pragma once

#include <agentbus/counter.hpp>
#include <agentbus/room.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus {

// Limits (bytes). A handle is 1..64 of [A-Za-z0-9._-] (not "." or ".."); role and
// working_on are single-line UTF-8 text without control characters.
inline constexpr std::size_t kMaxHandleBytes = 64;
inline constexpr std::size_t kMaxQualifiedHandleBytes = 128;
inline constexpr std::size_t kMaxRoleBytes = 64;
inline constexpr std::size_t kMaxWorkingOnBytes = 256;
inline constexpr std::chrono::hours kMaxPresenceTtl{24};

struct PresenceOptions {
  std::uint32_t capacity = 256;  // agents at once; used only by whoever creates the table
  bool create = true;            // false: Error{not_found} if the room has no presence table
};

struct JoinOptions {
  int session_pid = 0;  // process whose death removes the entry; 0: the calling process
  std::chrono::milliseconds ttl{std::chrono::minutes(15)};  // 1 ms .. 24 h
};

struct AgentInfo {
  std::string handle;      // qualified
  std::string role;
  std::string working_on;
  int pid = 0;             // session process
  std::chrono::system_clock::time_point joined;
  std::chrono::system_clock::time_point last_seen;
  std::chrono::milliseconds ttl{0};
  std::chrono::milliseconds ttl_left{0};
  // Live claims this agent holds on the room's task board. Presence itself does not know
  // claims: who() leaves this 0; `agentbus who` fills it from the task board.
  std::size_t claims = 0;
};

struct PresenceCounters {
  std::uint64_t joins = 0;                    // entries created
  std::uint64_t leaves = 0;                   // entries removed by leave()
  std::uint64_t expired_reclaimed = 0;        // entries past their TTL, reused by a joiner
  std::uint64_t dead_sessions_reclaimed = 0;  // entries whose session died, reused
  std::uint64_t dead_writers_reclaimed = 0;   // entries a writer died writing, reused
};
[[nodiscard]] std::vector<Counter> counter_list(const PresenceCounters& c);

class Presence {
 public:
  // The presence table of `room`, created on first use with `options.capacity` (later
  // openers get the creator's capacity). Throws Error{corrupt} if the table fails validation.
  explicit Presence(Room room, const PresenceOptions& options = {});
  ~Presence();
  Presence(Presence&&) noexcept;
  Presence& operator=(Presence&&) noexcept;

  // Joins (or, from the same session, re-joins: refreshes the entry and replaces role,
  // working_on and ttl) and returns the qualified handle. A handle that already carries this
  // session's token is not qualified again. Throws Error{bad_name} for a bad handle,
  // Error{too_large} / Error{invalid_argument} for bad text or ttl, Error{invalid_argument}
  // when session_pid is not a running process, Error{no_space} when every entry is held by a
  // live agent.
  std::string join(std::string_view handle, std::string_view role, std::string_view working_on,
                   const JoinOptions& options = {});

  // Marks the agent seen now (call on any activity). False when it is not live any more
  // (left, expired, session ended): join again.
  bool refresh(std::string_view qualified_handle);

  // Replaces what the agent is working on; also a refresh. False when it is not live.
  bool set_working_on(std::string_view qualified_handle, std::string_view working_on);

  // Removes the agent and publishes AGENT_LEFT. False when there is no such entry. Anyone may
  // remove any entry: presence is a courtesy, not an access control.
  bool leave(std::string_view qualified_handle);

  // Live agents, in table order.
  [[nodiscard]] std::vector<AgentInfo> who() const;
  // One live agent, if present.
  [[nodiscard]] std::optional<AgentInfo> find(std::string_view qualified_handle) const;

  [[nodiscard]] std::uint32_t capacity() const noexcept;
  [[nodiscard]] PresenceCounters counters() const;

  // `handle` qualified with the token of session `session_pid` (0: this process), as join()
  // would store it. Throws like join() for a bad handle or pid.
  [[nodiscard]] static std::string qualify(std::string_view handle, int session_pid = 0);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentbus
