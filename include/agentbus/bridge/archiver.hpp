// agentbus/bridge/archiver.hpp — cold storage for the rooms' Redis streams (agentroom's
// archiver): `agentbus-bridge archive`.
//
// A sweep SCANs (never KEYS) the event streams. Each with XLEN >= threshold is read in pages
// up to the entry that was its last when the sweep reached it, written to one JSONL file
// (fsynced, renamed into place, the directory fsynced), and only then are exactly the ids
// written XDELeted, so entries added meanwhile stay. A stream whose file cannot be written
// loses nothing, and the sweep goes on with the others. Lines are event lines
// (agentbus/event_json.hpp), which `agentbus import` publishes back into a room; an entry that
// does not decode is kept as {"stream_id","room","raw":{field: value...}}.
#pragma once

#include <agentbus/bridge/redis_target.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::bridge {

inline constexpr std::uint64_t kDefaultArchiveThreshold = 10000;  // agentroom's

struct ArchiveOptions {
  std::uint64_t threshold = kDefaultArchiveThreshold;  // archive streams at least this long
  std::string dir;                                     // where the files go; created if absent
  // SCAN MATCH patterns: every room's stream, agentroom's and ours.
  std::vector<std::string> match{"agentbus:room:*:events", "repo:*:events"};
  std::size_t page = 1000;  // entries per XRANGE and per XDEL
  // Called with the stream's key once its file is in place and before its XDEL: where a test
  // appends "during the sweep".
  std::function<void(std::string_view key)> before_delete{};
};

struct StreamArchive {
  std::string key;
  std::uint64_t length = 0;    // XLEN when the sweep reached it
  bool below_threshold = false;
  std::uint64_t archived = 0;  // entries written and deleted
  std::uint64_t raw = 0;       // of them, entries that did not decode, written raw
  std::string file;            // empty when nothing was written
  std::string error;           // non-empty: this stream was left as it was (or, past the file, partly deleted)
};

struct ArchiveReport {
  std::vector<StreamArchive> streams;  // in SCAN order
  [[nodiscard]] bool ok() const;
};

// Connects (within connect_timeout) and sweeps. Throws as RedisConnection::connect does when
// Redis cannot be reached or refuses the credentials, and Error{system} when the connection
// is lost mid-sweep (what was deleted by then is in its file).
[[nodiscard]] ArchiveReport archive_streams(const RedisTarget& target, const ArchiveOptions& options,
                                            std::chrono::milliseconds connect_timeout = std::chrono::seconds(2));

}  // namespace agentbus::bridge
