// agentbus/scratchpad.hpp — a room's scratchpad: key -> bytes with a time to live, for
// payloads too big for the event stream (diffs, reports, JSON blobs), agentroom's
// WriteScratchpad / ReadScratchpad.
//
// The scratchpad lives in the bus's shared memory beside the room (region "<room>#scratch"):
// a fixed-capacity key table plus a fixed-size value heap cut into blocks, sized once by the
// process that creates it (ScratchpadOptions). docs/coordination.md draws the layout.
//
// Guarantees:
//  * read() returns a whole value: the one most recently published, or (while a write is in
//    flight) the one before it, never a mix of two values and never a half-written one.
//    Readers take no lock and never wait for a writer, not even one that is stopped or dead;
//    a read whose copy overlaps a publication of that key simply copies again.
//  * An absent key and an expired one are distinct results (ScratchStatus), not errors.
//    Expiry uses the monotonic clock: a read that starts after a value's TTL has run out
//    never returns it. The key of an expired value reports `expired` until it is removed or
//    rewritten, or its entry is reused for another key; after that it is `absent`.
//  * Memory is bounded: at most key_capacity keys and heap_bytes of values. Space held by
//    expired, removed and overwritten values is reclaimed (expired ones when space is
//    needed). Full means Error{no_space}; an overwrite briefly needs room for both values.
//  * No lock a crash can leave held. A writer owns a key's entry while it writes (identified
//    by pid + process start time); a writer that dies at any instant leaves the previous value
//    readable, and the next process that needs the entry or the space takes it over and frees
//    the dead writer's blocks. A writer that is alive but stuck makes other *writers* of that
//    key wait at most busy_timeout (then Error{timeout}); it never blocks readers.
//  * Everything read from shared memory is bounds-checked; a damaged scratchpad is
//    Error{corrupt}, with a message saying how to remove the bus.
//
// Keys: 1..128 bytes of UTF-8 without control characters (C0, DEL, C1); anything else is
// Error{bad_name}. Values: any bytes, at most max_value_bytes (else Error{too_large}).
//
// Thread and process safety: every call is safe from any thread of any process. A Scratchpad
// is a cheap handle; copies share the mapping, which stays valid while any copy lives.
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

struct ScratchpadOptions {
  // Used only when this call creates the room's scratchpad; an existing one keeps its own.
  std::uint32_t key_capacity = 256;          // keys held at once, 1 .. 65536
  std::size_t heap_bytes = 16ull << 20;      // value memory, committed when created
  std::size_t max_value_bytes = 1ull << 20;  // largest value, at most heap_bytes
  // Process-local behaviour of this handle.
  std::chrono::milliseconds busy_timeout{2000};  // wait for another live writer of a key
  bool create = true;  // false: Error{not_found} if the room has no scratchpad yet
};

enum class ScratchStatus {
  found,    // the value is in ScratchValue::value
  absent,   // no such key (never written, removed, or its entry was reused)
  expired,  // the key was written with a TTL that has run out
};

struct ScratchValue {
  ScratchStatus status = ScratchStatus::absent;
  std::string value;  // found: the bytes, exactly as written
  // found: time left until it expires, nullopt when it never does;
  // expired: how long ago it expired, as a negative duration.
  std::optional<std::chrono::milliseconds> ttl_left;
  std::int64_t written_ts_ns = 0;  // found/expired: when it was written (Unix time, ns)
  [[nodiscard]] bool found() const noexcept { return status == ScratchStatus::found; }
};

struct ScratchKey {
  std::string key;
  std::size_t bytes = 0;
  std::optional<std::chrono::milliseconds> ttl_left;  // nullopt: never expires
  std::int64_t written_ts_ns = 0;
};

struct ScratchpadInfo {
  std::uint32_t key_capacity = 0;
  std::uint32_t keys_live = 0;        // keys with an unexpired value
  std::uint32_t entries_in_use = 0;   // live + expired-but-not-reclaimed + being written
  std::size_t heap_bytes = 0;
  std::size_t heap_used = 0;          // bytes in allocated blocks (values round up to blocks)
  std::size_t block_bytes = 0;
  std::size_t max_value_bytes = 0;
  std::uint64_t dead_writers_reclaimed = 0;  // entries taken over from dead writers
  std::uint64_t expired_reclaimed = 0;       // expired values whose memory was reused
};
// The occupancy and recovery figures: keys_live, heap_used, heap_bytes and the counters.
[[nodiscard]] std::vector<Counter> counter_list(const ScratchpadInfo& c);

class Scratchpad {
 public:
  // Opens the room's scratchpad, creating it on first use (unless !options.create).
  // Throws Error{corrupt} when the region does not hold a valid scratchpad, and
  // Error{invalid_argument} for options out of range.
  explicit Scratchpad(const Room& room, const ScratchpadOptions& options = {});

  // Sets `key` to `value`, replacing any earlier value atomically. ttl 0: never expires.
  // Throws Error{bad_name} (key grammar), Error{too_large}, Error{no_space} (key table or heap
  // full of live values), Error{timeout} (another live writer held the key for busy_timeout),
  // Error{invalid_argument} (negative ttl).
  void write(std::string_view key, std::string_view value,
             std::chrono::milliseconds ttl = std::chrono::milliseconds::zero());

  // The value of `key`, or why there is none. Throws only for a bad key, corruption, or a
  // value rewritten so often that no consistent copy could be taken within busy_timeout.
  [[nodiscard]] ScratchValue read(std::string_view key) const;

  // Removes `key`. Returns found if a live value was removed, expired if only an expired one
  // was there (now gone too), absent if there was nothing.
  ScratchStatus remove(std::string_view key);

  // Keys with a live value, sorted by key.
  [[nodiscard]] std::vector<ScratchKey> keys() const;

  [[nodiscard]] ScratchpadInfo info() const;
  [[nodiscard]] const std::string& room_name() const noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace agentbus
