// A table of named entries in shared memory, claimed by CAS on each entry's owner word:
//
//   probe from hash % n --> free: CAS free -> writing|me --> fill --> publish ready
//                       --> ready with our key: found; another key: probe on
//                       --> writing by a live process: wait for it (bounded)
//                       --> writing by a dead process: take it over (only when creating)
//
// The writer is always identified by pid and start time (shm/owner_word.hpp). Entries are
// never freed and a creator never probes past an entry being written, so the first free
// entry, or one whose writer died, on a key's probe path proves the key absent; a lookup
// (create = false) never changes the table. The ready word carries no holder, so
// "state == kClaimReady" is the whole readiness check for a reader.
//
// Tables whose entries are released and reused (presence, reader slots, the task catalog)
// are not probed by key: the first free entry proves nothing there, so their owners scan.
// They share the rest of the protocol through claim(), publish() and abandoned(): take an
// entry from the word seen to "writing by me", write, publish, and take over a writer that
// died (pid + start time). Their published words may carry a phase of their own and a
// generation (a seqlock's sequence), as long as phase 1 means "being written".
//
// Failpoints (shm/failpoint.hpp): claim_after_cas right after winning the CAS, before any
// field is written; claim_before_ready with every field written, not yet published. Fill
// functions that write in several steps hit claim_mid_write between them.
#pragma once

#include "shm/backoff.hpp"
#include "shm/failpoint.hpp"
#include "shm/owner_word.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>

namespace agentbus::shm {

enum class ClaimPhase : std::uint64_t { free = 0, writing = 1, ready = 2 };
using ClaimWord = OwnerWord<ClaimPhase>;
inline constexpr std::uint64_t kClaimReady = ClaimWord::make(ClaimPhase::ready, 0);

// What find_or_claim() found. `index` is valid for found and created; `word` is the state
// met for stuck and foreign.
struct ClaimLookup {
  enum class Outcome {
    found,    // a ready entry with the key
    created,  // a new entry with the key, claimed, filled and published by us
    absent,   // create was false and the key is not in the table
    full,     // create was true and no entry was left
    stuck,    // a live writer held an entry on the path for longer than the settle wait
    foreign,  // an entry on the path holds a word no claim table wrote
  };
  Outcome outcome;
  std::uint32_t index = 0;
  std::uint64_t word = 0;
  bool took_over = false;  // created over an entry a dead writer left
};

// How a table differs from the others.
struct ClaimRules {
  std::chrono::milliseconds settle_wait{1000};  // how long a live writer is waited for
  bool probe_past_foreign = false;  // a foreign word: probe on (true) or report it (false)
  bool probe_past_stuck_reads = false;  // a lookup that outwaits a writer probes on, or reports stuck
};

// `Entry` has a `std::atomic<std::uint64_t> state` member and lives in shared memory.
template <class Entry>
class ClaimTable {
 public:
  ClaimTable(std::span<Entry> entries, ClaimRules rules) : entries_(entries), rules_(rules) {}

  // The ready entry whose key `matches`, or (create) a new one `fill` writes the key and
  // fields of while we hold it. `matches(const Entry&)` is asked of ready entries only.
  template <class Matches, class Fill>
  ClaimLookup find_or_claim(std::uint64_t hash, bool create, Matches&& matches, Fill&& fill) {
    using Outcome = ClaimLookup::Outcome;
    const auto n = static_cast<std::uint32_t>(entries_.size());
    if (n == 0) return {create ? Outcome::full : Outcome::absent};
    for (std::uint32_t probe = 0; probe < n; ++probe) {
      const auto i = static_cast<std::uint32_t>((hash + probe) % n);
      Entry& e = entries_[i];
      const auto deadline = std::chrono::steady_clock::now() + rules_.settle_wait;
      for (Backoff backoff;;) {
        std::uint64_t s = e.state.load(std::memory_order_acquire);
        if (s == kClaimReady) {
          if (matches(static_cast<const Entry&>(e))) return {Outcome::found, i};
          break;  // another key: probe on
        }
        if (s != 0 && ClaimWord::phase(s) != ClaimPhase::writing) {
          if (rules_.probe_past_foreign) break;
          return {Outcome::foreign, i, s};
        }
        const bool dead_writer = s != 0 && !ClaimWord::holder_alive(s);
        if (s != 0 && !dead_writer) {  // a live writer: wait for it
          if (std::chrono::steady_clock::now() <= deadline) {
            backoff.pause();
            continue;
          }
          if (!create && rules_.probe_past_stuck_reads) break;
          return {Outcome::stuck, i, s};
        }
        if (!create) return {Outcome::absent};
        if (!claim(e, s)) continue;
        // A dead writer may have been writing another key: the entry is ours to name now.
        fill(e);
        publish(e, kClaimReady, std::memory_order_seq_cst);
        return {Outcome::created, i, 0, dead_writer};
      }
    }
    return {create ? Outcome::full : Outcome::absent};
  }

  // Takes `e` from the word `seen` (free, abandoned(), or a published word the caller judged
  // reusable) to "being written by this process". False when the word moved meanwhile.
  static bool claim(Entry& e, std::uint64_t seen, std::memory_order order = std::memory_order_acq_rel) {
    if (!e.state.compare_exchange_strong(seen, ClaimWord::make(ClaimPhase::writing, 0, self_process()), order))
      return false;
    failpoint(Failpoint::claim_after_cas);
    return true;
  }

  // Ends a write begun by claim(): `word` is what readers see from now on.
  static void publish(Entry& e, std::uint64_t word, std::memory_order order = std::memory_order_release) {
    failpoint(Failpoint::claim_before_ready);
    e.state.store(word, order);
  }

  // `w` is a write whose writer is gone: the entry may be taken over.
  static bool abandoned(std::uint64_t w) {
    return ClaimWord::phase(w) == ClaimPhase::writing && !ClaimWord::holder_alive(w);
  }
  // `w` is a write by a process that is still running.
  static bool being_written(std::uint64_t w) {
    return ClaimWord::phase(w) == ClaimPhase::writing && ClaimWord::holder_alive(w);
  }

 private:
  std::span<Entry> entries_;
  ClaimRules rules_;
};

}  // namespace agentbus::shm
