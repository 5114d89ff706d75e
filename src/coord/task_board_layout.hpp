// The task board's shared-memory layout, in the region "<room>#tasks".
//
//   [TaskBoardHeader][CatalogEntry × catalog_capacity][key × task_capacity][TaskEntry × task_capacity]
//
// Every task entry is driven by one owner word (shm/owner_word.hpp), [phase | token | pid | start]:
//
//   free --reserve--> reserving --> open --claim--> claiming --> claimed --complete--> completing --> done
//                                     ^                            |  ^                                   |
//                                     +-------- release -----------+  +-- renewing (renew) --+            |
//   done/free --reserve (recycle)--> reserving ... <-------------------------------------------------------+
//
// The transitional phases (reserving, claiming, completing, renewing) carry the pid and start
// time of the process making the transition; whoever meets one that is dead rolls it back. In
// `claimed` the holder is the claim's session process. The token rises by one on every claim
// and every reserve, so a (phase, token) pair never repeats: a CAS against a state read
// earlier can never succeed on a later incarnation of the entry (no ABA).
//
// Fields other than the state word are written only while the writer holds a transitional
// phase, and read seqlock style (state, copy, same state again), through ring_copy so that
// ThreadSanitizer checks the protocol.
#pragma once

#include "shm/claim_table.hpp"
#include "shm/layout.hpp"
#include "shm/owner_word.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace agentbus::coord {

inline constexpr std::uint64_t kTaskBoardMagic = 0x31534b5341544741ull;  // "AGTASKS1"
inline constexpr std::uint32_t kTaskBoardVersion = 3;  // 2: owner words (pid + start time); 3: bridged tasks
inline constexpr std::uint32_t kBucketEntries = 16;  // a task may live in one of two buckets

enum class Phase : std::uint64_t {
  free = 0, reserving = 1, open = 2, claiming = 3, claimed = 4, completing = 5, done = 6, renewing = 7
};

using TaskStateWord = shm::OwnerWord<Phase>;  // the generation is the task's fencing token
constexpr auto make_state = TaskStateWord::make;
constexpr auto phase_of = TaskStateWord::phase;
constexpr auto token_of = TaskStateWord::generation;
constexpr auto pid_of = TaskStateWord::pid;
constexpr bool transitional(Phase p) {
  return p == Phase::reserving || p == Phase::claiming || p == Phase::completing || p == Phase::renewing;
}

struct TaskBoardHeader {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t task_capacity;     // power of two, multiple of kBucketEntries
  std::uint32_t catalog_capacity;
  std::uint32_t max_payload_bytes;
  std::uint64_t entry_stride;
  std::uint64_t catalog_offset;
  std::uint64_t keys_offset;
  std::uint64_t entries_offset;
  std::uint64_t total_bytes;
  alignas(shm::kCacheLine) std::atomic<std::uint64_t> catalog_generation;
  alignas(shm::kCacheLine) std::atomic<std::uint64_t> claims;
  std::atomic<std::uint64_t> expired_reclaimed;
  std::atomic<std::uint64_t> dead_sessions_reclaimed;
  std::atomic<std::uint64_t> stale_tokens_refused;
  std::atomic<std::uint64_t> transitions_rolled_back;
  std::atomic<std::uint64_t> done_recycled;
};

// CatalogEntry::state is a claim-table owner word (shm/claim_table.hpp) whose entries are
// released and reused (an older version of a type is retired): 0 free; writing | pid | start
// time; ready | the low bits of `generation`, which orders the versions of a type.

struct CatalogFields {
  std::uint32_t type_len, description_len, produces_len, requires_len;
  char type[64];
  char description[512];
  char produces[256];
  char requires_[256];
};

struct alignas(shm::kCacheLine) CatalogEntry {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> generation;  // from catalog_generation; written while writing
  CatalogFields fields;
};

// Written by the publisher while reserving.
struct TaskFields {
  std::int64_t created_ts_ns;
  std::uint32_t payload_len;
  std::uint8_t type_len, creator_len;
  char type[64];
  char creator[128];
  // Where the task was first posted, for a task imported by the bridge; empty: posted here.
  std::uint64_t origin_id;
  std::uint8_t origin_host_len;
  char origin_host[64];
};

// Written by the claimant while claiming.
struct ClaimFields {
  std::uint64_t owner_start;  // process start time of the session (pid is in the state word)
  std::uint32_t owner_pid;
  std::uint8_t claimant_len;
  char claimant[128];
  std::uint64_t remote_token;  // in a bridged room: the claim's fencing token in Redis
};

// Written by the completer while completing.
struct DoneFields {
  std::int64_t done_ts_ns;
  std::uint32_t result_len;
};

// A task's channel to the bridge, the arbiter of claims in a bridged room (coord/task_arbiter.hpp).
// `request` is seq << 8 | state << 4 | op (state 0 pending, 1 answered, 2 withdrawn). The
// process holding the task's transitional phase writes `ask`, then raises a pending request;
// the bridge writes `answer`, then CASes pending -> answered and bumps `wake`. An asker that
// gives up CASes pending -> withdrawn instead, so exactly one of the two wins.
struct ArbiterAsk {
  std::int64_t ttl_ms;          // claim, renew: the lease asked for
  std::uint64_t remote_token;   // claim: the dead or lapsed claim of this host it replaces (0: none);
                                // renew, complete, release: the claim's
  std::uint32_t result_len;     // complete: the result, already in the entry's result bytes
};

struct ArbiterAnswer {
  std::uint64_t remote_token;   // granted: the claim's token in Redis; held, stale: the holder's
  std::int64_t lease_left_ms;   // held: what is left of the holder's lease
  std::uint8_t verdict;         // coord::ArbiterVerdict
  std::uint8_t holder_len, detail_len;
  char holder[192];             // held, stale: "<agent>@<host>"
  char detail[200];             // unavailable: why
};

struct ArbiterChannel {
  std::atomic<std::uint64_t> request;
  std::atomic<std::uint32_t> wake;  // futex word of the asker
  ArbiterAsk ask;
  ArbiterAnswer answer;
};

struct alignas(shm::kCacheLine) TaskEntry {
  std::atomic<std::uint64_t> state;
  std::atomic<std::int64_t> lease_deadline_ns;  // CLOCK_MONOTONIC, system-wide
  TaskFields task;
  ClaimFields claim;
  DoneFields done;
  ArbiterChannel arbiter;
  // followed by payload[max_payload_bytes] and result[max_payload_bytes]
};

}  // namespace agentbus::coord
