// agentbus/status_bus.hpp — RoomKit's StatusBus across processes (issue 4).
//
// A status entry {ts, agent_id, action, status, detail, metadata} is an ordinary room event:
// type "STATUS", agent = agent_id, payload = one JSON object with exactly RoomKit's fields in
// this order, e.g.
//   {"ts":"2026-05-01T19:05:15.123456Z","agent_id":"exec","action":"search_google",
//    "status":"ok","detail":"Found 7 results","metadata":{}}
// which is also, byte for byte, its line in a JSONL file. Any process reading the room sees it
// (`agentbus tail`, `agentbus top`, hooks); parse_status_entry() decodes one.
//
// Guarantees:
//  * post() validates (status one of ok/failed/pending/info/completed, metadata a JSON object,
//    checked with simdjson) and publishes; it is lock-free and safe from any thread. It never
//    waits for subscribers ("fire and forget"). post_sync() additionally waits (bounded) until
//    every callback subscribed through this StatusBus has run for the entry.
//  * Subscribers see every entry posted to the room by any process after subscribe() returned,
//    in room order. One reader thread per StatusBus tails the room (block wait: ~0 CPU when
//    idle) and hands each entry to every subscriber's own queue (moodycamel); each subscriber
//    has its own dispatcher thread, so a slow or throwing callback delays nobody else. A
//    callback that throws is reported as a `system` entry with status `failed` (never for an
//    entry that is itself such a report, so a callback that always throws cannot loop). If
//    the room laps the reader, the loss is counted (stats()) and reported as a `system` entry.
//  * recent() reads the room's ring: what is still in it, from every process. n = 0 gives an
//    empty list (RoomKit's Python gives everything).
//  * With persist_path, a durable reader (default name "status-jsonl") appends every entry to
//    the file as one line. Its cursor moves only after the lines are written (and fdatasync'ed
//    with persist_fsync), so a lagging or killed writer loses nothing: producers wait for it
//    (RoomOptions::publish_timeout, then PostStatus::bus_full) and a restarted writer resumes
//    where the file ends, without duplicating lines. A killed writer leaves at most one torn
//    last line; the next writer truncates it away and import_jsonl() skips it with a warning.
//    One process at a time may hold a given durable reader name.
// Thread safety: every member function may be called from any thread, except that a callback
// must not destroy the StatusBus that called it.
#pragma once

#include <agentbus/event.hpp>
#include <agentbus/room.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus {

inline constexpr std::string_view kStatusEventType = "STATUS";

enum class StatusLevel { ok, failed, pending, info, completed };

[[nodiscard]] std::string_view to_string(StatusLevel level) noexcept;
// "ok", "failed", "pending", "info", "completed"; anything else: nullopt.
[[nodiscard]] std::optional<StatusLevel> parse_status_level(std::string_view text) noexcept;

struct StatusEntry {
  EventId id = 0;          // the room event's id (0 when not read from a room)
  std::string ts;          // ISO-8601 UTC, microseconds, "Z": "2026-05-01T19:05:15.123456Z"
  std::string agent_id;
  std::string action;
  StatusLevel status = StatusLevel::info;
  std::string detail;
  std::string metadata = "{}";  // a JSON object, minified
  std::string origin_host;      // the host an imported entry was posted on; empty: this bus


  // The canonical JSON object (no newline): the event payload and the JSONL line; it has an
  // "origin_host" field only when origin_host is set.
  [[nodiscard]] std::string to_json() const;
  // ts as nanoseconds since the Unix epoch; nullopt if it does not parse.
  [[nodiscard]] std::optional<std::int64_t> ts_ns() const;
};

// The entry a STATUS event carries, with the event's id and, when it was imported from another
// host, that host; nullopt when the payload is not an entry.
[[nodiscard]] std::optional<StatusEntry> status_entry_from(const EventView& event);

// Decodes a STATUS payload or JSONL line (validated with simdjson). Needs ts (ISO-8601; any
// UTC offset, normalised to UTC with microseconds), agent_id, action and status (a known
// level); detail (string) and metadata (object) may be absent. Unknown fields are ignored.
[[nodiscard]] std::optional<StatusEntry> parse_status_entry(std::string_view json);
// As above; on failure `why` says what was wrong.
[[nodiscard]] std::optional<StatusEntry> parse_status_entry(std::string_view json, std::string& why);

// "[19:05:15] exec: search_google → ok | Found 7 results" (UTC time from ts, RoomKit's format);
// an entry from another host names its agent "agent@host".
[[nodiscard]] std::string status_line(const StatusEntry& entry);
// recent_text(): one status_line per entry, '\n'-separated; "No activity yet." when empty.
[[nodiscard]] std::string status_text(const std::vector<StatusEntry>& entries);
// print_summary()'s text: "Status Log", numbered entries with icons (+ ok, x failed, ~ info,
// * completed, ? pending), details cut to 100 bytes, and
// "  Total: 3 entries (2 ok, 0 failed, 1 completed)". "No status entries." when empty.
[[nodiscard]] std::string status_summary(const std::vector<StatusEntry>& entries);

struct StatusFilter {
  std::string agent_id{};                // empty: any agent
  std::optional<StatusLevel> status{};   // nullopt: any status
};

struct StatusBusOptions {
  std::string persist_path{};                 // non-empty: append every entry to this JSONL file
  std::string persist_reader = "status-jsonl";  // the durable reader's name in the room
  bool persist_fsync = false;                 // fdatasync each batch before it counts as persisted
  bool persist_drop_on_close = false;         // close() removes the durable reader (stops gating)
  std::chrono::milliseconds sync_timeout{5000};  // post_sync's bound
  std::size_t summary_entries = 500;          // summary() covers at most this many entries
};

enum class PostStatus {
  ok,
  bus_full,  // a durable reader (e.g. a JSONL writer) is behind; nothing was published
  timeout,   // post_sync: published, but not every subscriber ran within sync_timeout
};

struct PostResult {
  PostStatus status = PostStatus::ok;
  EventId id = 0;  // the entry's event id (0 with bus_full)
  [[nodiscard]] bool ok() const noexcept { return status == PostStatus::ok; }
};

using StatusCallback = std::function<void(const StatusEntry&)>;

struct StatusBusStats {
  std::uint64_t delivered = 0;        // callback invocations
  std::uint64_t callback_errors = 0;  // callbacks that threw
  std::uint64_t overruns = 0;         // times the room lapped the reader thread
  std::uint64_t missed = 0;           // events lost to those overruns (estimated)
  std::uint64_t persisted = 0;        // entries written to persist_path
  std::uint64_t persist_errors = 0;   // failed writes (retried; the cursor does not move)
};

class StatusBus;

// Returned by subscribe(): unsubscribes when dropped or on unsubscribe(). After unsubscribe()
// returns the callback is not running and will not run again (unless called from inside the
// callback itself, which is allowed: it then stops after the current call).
class StatusSubscription {
 public:
  StatusSubscription() = default;
  StatusSubscription(StatusSubscription&&) noexcept;
  StatusSubscription& operator=(StatusSubscription&&) noexcept;
  ~StatusSubscription();
  void unsubscribe() noexcept;
  [[nodiscard]] bool active() const noexcept;

  struct State;
  explicit StatusSubscription(std::shared_ptr<State> state);

 private:
  std::shared_ptr<State> state_;
};

class StatusBus {
 public:
  // Throws Error if the persist file cannot be opened or the durable reader is held by
  // another live process.
  explicit StatusBus(Room room, StatusBusOptions options = {});
  StatusBus(StatusBus&&) noexcept;
  StatusBus& operator=(StatusBus&&) noexcept;
  ~StatusBus();  // close()

  // Throws Error{invalid_argument} for an unknown status, metadata that is not a JSON
  // object, or an empty agent_id/action; Error{too_large} past the room's limits.
  PostResult post(std::string_view agent_id, std::string_view action, std::string_view status,
                  std::string_view detail = {}, std::string_view metadata = {});
  PostResult post(std::string_view agent_id, std::string_view action, StatusLevel status,
                  std::string_view detail = {}, std::string_view metadata = {});
  // post(), then wait until every subscriber of this StatusBus has run for the entry
  // (PostStatus::timeout after options.sync_timeout). Called from a callback, it does not
  // wait for that callback's own subscriber.
  PostResult post_sync(std::string_view agent_id, std::string_view action, std::string_view status,
                       std::string_view detail = {}, std::string_view metadata = {});

  // The last n matching entries still in the room, oldest first (filters combine with AND).
  [[nodiscard]] std::vector<StatusEntry> recent(std::size_t n = 10, const StatusFilter& filter = {}) const;
  [[nodiscard]] std::string recent_text(std::size_t n = 10) const;
  [[nodiscard]] std::string summary() const;
  void print_summary(std::FILE* out = stdout) const;

  // The delegation guard: whether / how long ago `agent_id` (empty: anyone) posted `completed`.
  [[nodiscard]] bool has_completed(std::string_view agent_id = {}) const;
  [[nodiscard]] std::optional<std::chrono::nanoseconds> last_completed_age(std::string_view agent_id = {}) const;

  [[nodiscard]] StatusSubscription subscribe(StatusCallback callback);

  // Stops the subscribers (after their queued entries) and the persistence writer (after it
  // has written everything already in the room). Idempotent; post() after close() throws.
  void close();

  [[nodiscard]] StatusBusStats stats() const;
  [[nodiscard]] Room& room();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// ---- JSONL export and import ----------------------------------------------------------------

struct ExportOptions {
  std::optional<EventId> from{};  // first event id to consider; nullopt: the oldest in the ring
};
struct ExportResult {
  std::size_t exported = 0;     // lines written
  std::size_t skipped = 0;      // STATUS events whose payload is not a valid entry
  std::uint64_t missed = 0;     // events overwritten while exporting (estimate)
};
// Writes every STATUS entry in the room (up to the tail when called) to `fd`, one line each.
// Throws Error{system} when writing fails.
ExportResult export_jsonl(Room& room, int fd, const ExportOptions& options = {});

struct ImportOptions {
  bool strict = false;  // a malformed line aborts (Error{invalid_argument}) instead of skipping
  // Told about each skipped line: "line N: what is wrong". Default: stderr.
  std::function<void(const std::string&)> warn{};
};
struct ImportResult {
  std::size_t imported = 0;       // status entries
  std::size_t events = 0;         // event lines (a bridge archive's), published with their origin
  std::size_t skipped = 0;        // malformed lines (the torn last line included)
  bool torn_last_line = false;    // the file ended in an unterminated, unparsable line
};
// Replays a JSONL file into the room, in file order: a status entry becomes a STATUS event
// keeping its ts; an event line (one with "stream_id" and "origin", as `agentbus-bridge archive`
// writes them) is published as an imported event with that origin, under a new local ts. A last line without '\n' that does not parse is a writer killed mid-line:
// skipped with a warning, even with strict. Throws Error{not_found} when the file is absent.
ImportResult import_jsonl(Room& room, const std::string& path, const ImportOptions& options = {});

}  // namespace agentbus
