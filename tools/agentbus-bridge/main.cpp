// agentbus-bridge: mirrors a bus's rooms to Redis Streams and back (docs/bridge.md).
#include <agentbus/bridge/archiver.hpp>
#include <agentbus/bridge/bridge.hpp>
#include <agentbus/bridge/redis_target.hpp>
#include <agentbus/bus.hpp>
#include <agentbus/error.hpp>
#include <agentbus/json_text.hpp>

#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

namespace {

using namespace agentbus;
using namespace agentbus::bridge;
using agentbus::util::json_string;

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

struct RunArgs {
  std::string bus = Bus::default_name();
  std::optional<std::string> redis;
  std::optional<std::string> password_file;
  std::string host_id;
  std::vector<std::string> rooms{"*"};
  std::string spool_dir;
  std::uint64_t spool_max_mib = 256;
  std::uint64_t maxlen = 10000;
  std::uint64_t ttl_hours = 48;
  std::uint64_t awake_us = 200;
};

int run(const RunArgs& a) {
  const ResolvedRedisTarget target = resolve_redis_target(a.redis, a.password_file);
  for (const std::string& w : target.warnings) std::fprintf(stderr, "agentbus-bridge: warning: %s\n", w.c_str());
  BridgeOptions o;
  o.bus = a.bus;
  o.host_id = a.host_id;
  o.redis = target.target;
  o.rooms = a.rooms;
  o.spool_dir = a.spool_dir;
  o.spool_max_bytes = a.spool_max_mib << 20;
  o.stream_maxlen = a.maxlen;
  o.stream_ttl = std::chrono::hours(a.ttl_hours);
  o.awake = std::chrono::microseconds(a.awake_us);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  run_bridge(o, g_stop);
  return 0;
}

struct ArchiveArgs {
  std::optional<std::string> redis;
  std::optional<std::string> password_file;
  std::uint64_t threshold = kDefaultArchiveThreshold;
  std::string dir;
};

// One line per stream that was archived or failed; streams below the threshold are counted.
int archive(const ArchiveArgs& a) {
  const ResolvedRedisTarget target = resolve_redis_target(a.redis, a.password_file);
  for (const std::string& w : target.warnings) std::fprintf(stderr, "agentbus-bridge: warning: %s\n", w.c_str());
  ArchiveOptions o;
  o.threshold = a.threshold;
  o.dir = a.dir;
  const ArchiveReport report = archive_streams(target.target, o);
  std::size_t below = 0;
  for (const StreamArchive& s : report.streams) {
    if (!s.error.empty()) {
      std::fprintf(stderr, "agentbus-bridge: %s: %s\n", json_string(s.key).c_str(), s.error.c_str());
    } else if (s.below_threshold) {
      ++below;
    } else {
      // A key is whatever some client named it: quoted, so it cannot drive the terminal.
      std::printf("%s: archived %llu entries%s to %s\n", json_string(s.key).c_str(), (unsigned long long)s.archived,
                  s.raw ? (" (" + std::to_string(s.raw) + " undecodable, kept raw)").c_str() : "", s.file.c_str());
    }
  }
  std::printf("%zu stream(s) below %llu entries left alone\n", below, (unsigned long long)a.threshold);
  return report.ok() ? 0 : 1;
}

std::string status_text(const BridgeStatus& s) {
  std::string out = s.pid ? "bridge: running, pid " + std::to_string(s.pid) + ", Redis " +
                                (s.connected ? "connected" : "unreachable (spooling)")
                          : std::string("bridge: not running");
  out += "\nreconnects: " + std::to_string(s.reconnects) + "\n";
  if (!s.last_error.empty()) out += "last error: " + s.last_error + "\n";
  if (s.rooms.empty()) return out + "rooms: none mirrored\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-28s %10s %10s %9s %9s %10s %10s %9s %6s\n", "ROOM", "OUT", "IN", "LAG", "LAG AGE",
                "SPOOLED", "REJECTED", "ECHOES", "TASKS");
  out += line;
  for (const BridgeRoomStatus& r : s.rooms) {
    std::snprintf(line, sizeof line, "%-28s %10llu %10llu %9llu %8.1fs %10llu %10llu %9llu %6s\n", r.room.c_str(),
                  (unsigned long long)r.out_events, (unsigned long long)r.in_events, (unsigned long long)r.lag_events,
                  double(r.oldest_lag_ns) / 1e9, (unsigned long long)r.spooled_events,
                  (unsigned long long)r.rejected, (unsigned long long)r.echoes_skipped,
                  r.tasks_through_redis ? "redis" : "local");
    out += line;
  }
  return out;
}

std::string status_json(const BridgeStatus& s) {
  std::string out = "{\"pid\":" + std::to_string(s.pid) + ",\"connected\":" + (s.connected ? "true" : "false") +
                    ",\"reconnects\":" + std::to_string(s.reconnects) + ",\"last_error\":" + json_string(s.last_error) +
                    ",\"rooms\":[";
  for (std::size_t i = 0; i < s.rooms.size(); ++i) {
    const BridgeRoomStatus& r = s.rooms[i];
    out += (i ? ",{" : "{");
    out += "\"room\":" + json_string(r.room) + ",\"out\":" + std::to_string(r.out_events) +
           ",\"in\":" + std::to_string(r.in_events) + ",\"lag_events\":" + std::to_string(r.lag_events) +
           ",\"oldest_lag_ns\":" + std::to_string(r.oldest_lag_ns) + ",\"spooled\":" + std::to_string(r.spooled_events) +
           ",\"spool_bytes\":" + std::to_string(r.spool_bytes) + ",\"spool_full\":" + std::to_string(r.spool_full) +
           ",\"rejected\":" + std::to_string(r.rejected) + ",\"echoes_skipped\":" + std::to_string(r.echoes_skipped) +
           ",\"tasks_through_redis\":" + (r.tasks_through_redis ? "true" : "false") + "}";
  }
  return out + "]}";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"agentbus-bridge: mirrors a bus's rooms to Redis Streams and back, exactly once"};
  app.require_subcommand(1);
  app.footer(
      "Each host runs one bus and one bridge; the bridges meet in Redis. See docs/bridge.md.\n"
      "Environment: AGENTBUS_BUS (default bus), AGENTBUS_REDIS_URL (default --redis),\n"
      "AGENTBUS_REDIS_PASSWORD (the password; never give it in argv, which every user can read).\n"
      "Exit codes: run: 0 stopped by SIGINT/SIGTERM; 1 an error at startup (message on stderr);\n"
      "archive: 0 done, 1 an error; 2 bad arguments.");
  RunArgs a;
  CLI::App* run_cmd = app.add_subcommand("run", "Mirror the bus's rooms until SIGINT or SIGTERM.");
  run_cmd->add_option("--bus", a.bus, "The bus to bridge")->envname("AGENTBUS_BUS")->capture_default_str();
  run_cmd->add_option("--redis", a.redis,
                      "redis://[user@]host[:port][/db] or unix:///path[?db=N] (env AGENTBUS_REDIS_URL; default "
                      "redis://127.0.0.1:6379)");
  run_cmd->add_option("--password-file", a.password_file, "Read the Redis password from this file");
  run_cmd->add_option("--host-id", a.host_id,
                      "This host's id in Redis; must be the bus's (`agentbus info` shows it; set it when the bus is "
                      "created with AGENTBUS_HOST_ID)");
  run_cmd->add_option("--rooms", a.rooms, "Shell globs of the rooms to mirror ('*' does not match '/')")
      ->capture_default_str();
  run_cmd->add_option("--spool-dir", a.spool_dir,
                      "Where outgoing events wait while Redis is away (default "
                      "$XDG_STATE_HOME/agentbus/spool/<bus>)");
  run_cmd->add_option("--spool-max", a.spool_max_mib, "Spool limit per room, MiB")->capture_default_str();
  run_cmd->add_option("--maxlen", a.maxlen, "Stream length kept (XADD MAXLEN ~)")->capture_default_str();
  run_cmd->add_option("--ttl-hours", a.ttl_hours, "Stream expiry after its last event, hours")->capture_default_str();
  run_cmd->add_option("--awake-us", a.awake_us,
                      "After an event, how long to keep looking for the next one before sleeping, us "
                      "(lower latency for a little CPU; 0: sleep at once)")
      ->capture_default_str();

  std::string status_bus = Bus::default_name();
  bool json = false;
  CLI::App* status_cmd = app.add_subcommand("status", "What the bridge of a bus has done: per room out, in, lag, spool.");
  status_cmd->add_option("--bus", status_bus, "The bus")->envname("AGENTBUS_BUS")->capture_default_str();
  status_cmd->add_flag("--json", json, "One JSON object");

  ArchiveArgs ar;
  CLI::App* archive_cmd = app.add_subcommand(
      "archive", "Move long streams to JSONL files: SCAN, write, fsync, then XDEL exactly what was written.");
  archive_cmd->add_option("--redis", ar.redis, "As for run (env AGENTBUS_REDIS_URL)");
  archive_cmd->add_option("--password-file", ar.password_file, "Read the Redis password from this file");
  archive_cmd->add_option("--threshold", ar.threshold, "Archive the streams with at least this many entries")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  archive_cmd->add_option("--dir", ar.dir, "Where the files go (created if absent)")->required();
  archive_cmd->footer(
      "Each stream (agentbus:room:*:events, repo:*:events) with XLEN >= --threshold is written to\n"
      "DIR/<key, ':' as '_'>-<unix ms>.jsonl, one event per line as `agentbus tail --json` prints it,\n"
      "and then exactly those entries are deleted; entries added meanwhile stay. A stream whose\n"
      "file cannot be written is left whole. `agentbus --room R import FILE` loads a file back.\n"
      "Exit 0 when every stream went well; 1 with the errors on stderr otherwise.\n\n"
      "Example:\n"
      "  agentbus-bridge archive --redis redis://127.0.0.1:6379 --threshold 10000 --dir /var/lib/agentbus/archive");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (run_cmd->parsed()) return run(a);
    if (archive_cmd->parsed()) return archive(ar);
    Bus bus = Bus::open({.name = status_bus, .create = false});
    const BridgeStatus s = bridge_status(bus);
    std::cout << (json ? status_json(s) + "\n" : status_text(s));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "agentbus-bridge: %s\n", e.what());
    return 1;
  }
}
