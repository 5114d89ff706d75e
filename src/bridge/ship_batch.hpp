// A batch of a room's events on its way to Redis, and the one call that puts it there.
//
// Each entry is its local id and the XADD fields (entry_codec.hpp). The same batch goes to the
// spool when Redis is away (serialise / parse) and through one MULTI/EXEC when it is back;
// the room's checkpoint says what an earlier attempt already added, so shipping twice adds once.
#pragma once

#include "bridge/redis_connection.hpp"

#include <agentbus/event.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::bridge {

struct ShipEntry {
  EventId local_id = 0;
  std::vector<std::string> fields;  // name, value, name, value, ...
};

// One spool record per entry: [local id u64 | count u32 | (len u32, bytes)...].
[[nodiscard]] std::string serialise(const ShipEntry& e);
// Nothing for bytes that are not one record (a spool written by something else).
[[nodiscard]] std::optional<ShipEntry> parse_ship_entry(std::string_view bytes);

struct ShipTarget {
  std::string stream_key{};
  std::string checkpoint_key{};
  std::string incarnation{};      // the bus's: a recreated bus starts a new checkpoint
  std::uint64_t maxlen = 10000;   // MAXLEN ~
  std::uint64_t ttl_ms = 48ull * 3600 * 1000;
};

// What Redis holds of a room for this host: its checkpoint "<incarnation>:<local id>". Read
// once per connection; after that the bridge is the key's only writer (one bridge per bus),
// so it follows the key by itself, batch by batch.
struct ShipCursor {
  std::string incarnation;  // empty: no checkpoint yet
  EventId last = 0;
  // When the stream's and the checkpoint's TTL are next pushed out (PEXPIRE): with the first
  // batch on a connection, then at most once a second, not with every batch.
  std::chrono::steady_clock::time_point ttl_due{};
  // The entries of `batch` (ascending ids) that Redis does not hold yet for `incarnation`.
  [[nodiscard]] std::span<const ShipEntry> unshipped(std::span<const ShipEntry> batch, std::string_view incarnation) const;
};

// GET of the checkpoint, and TYPE of the stream, on a connection with nothing pipelined.
// Throws Error{system} when the stream key holds something else than a stream (the entries
// could not be added, and the batch would be retried for ever; better said at once), and when
// the user may not run MULTI.
[[nodiscard]] ShipCursor read_cursor(RedisConnection& conn, const ShipTarget& target);

struct ShipResult {
  std::uint64_t added = 0;     // entries new to Redis (the rest were there already)
  EventId checkpoint = 0;      // the newest local id Redis holds for this host
};

// A batch's transaction sent on the connection, its replies not read yet.
struct PendingShip {
  std::size_t replies = 0;     // 0: nothing was new, nothing was sent
  std::uint64_t added = 0;
  EventId checkpoint = 0;
  std::size_t set_at = 0;      // where the checkpoint's reply is in EXEC's
};

// Adds the batch's new entries and moves the checkpoint past them in one MULTI/EXEC: no other
// client sees half of it, Redis writes it to its AOF as one unit, and a transaction refused
// at queue time (ACL, OOM) runs none of it. The checkpoint is set by a one-line script that
// first checks the key is a stream, so an XADD failing inside EXEC leaves it where it was.
// Entries the cursor covers are dropped first: a retry after a crash or a lost reply adds
// nothing twice.
// Throws RedisDisconnected when the connection goes (nothing is known about the batch then:
// read the cursor again on the next connection and ship it again), Error{system} when Redis
// refuses the transaction.
ShipResult ship(RedisConnection& conn, ShipCursor& cursor, const ShipTarget& target, std::span<const ShipEntry> batch);

// ship() in three parts, so that Redis takes in the next batch while it runs this one:
// queue_ship() sends MULTI and the commands, which Redis only queues; exec_ship() sends EXEC;
// receive_ship() reads the replies. Queue the next batch before receiving this one, but EXEC
// it only after this one was received: a transaction run behind one Redis refused would move
// the checkpoint past the refused one's entries. Dropping the connection discards a queued
// transaction. queue_ship() moves the cursor; after an exception from receive_ship() it is
// unknown again (read it on a new connection).
PendingShip queue_ship(RedisConnection& conn, ShipCursor& cursor, const ShipTarget& target, std::span<const ShipEntry> batch);
void exec_ship(RedisConnection& conn, const PendingShip& pending);
ShipResult receive_ship(RedisConnection& conn, const PendingShip& pending, const ShipTarget& target);

}  // namespace agentbus::bridge
