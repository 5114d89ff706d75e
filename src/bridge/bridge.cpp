#include <agentbus/bridge/bridge.hpp>

#include "coord/bridge_state.hpp"
#include "bridge/claim_arbiter.hpp"
#include "bridge/inbound.hpp"
#include "bridge/link.hpp"
#include "bridge/outbound.hpp"
#include "bridge/stream_keys.hpp"
#include "bus/room_access.hpp"

#include <agentbus/clock.hpp>
#include <agentbus/error.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fnmatch.h>
#include <map>
#include <memory>
#include <set>
#include <thread>

namespace agentbus::bridge {

namespace {

using namespace std::chrono_literals;

void log_to_stderr(std::string_view line) {
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", std::localtime(&now));
  std::fprintf(stderr, "agentbus-bridge %s: %.*s\n", when, static_cast<int>(line.size()), line.data());
}

std::string default_spool_dir(std::string_view bus) {
  std::filesystem::path base;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x)
    base = x;
  else if (const char* home = std::getenv("HOME"); home && *home)
    base = std::filesystem::path(home) / ".local" / "state";
  else
    base = std::filesystem::temp_directory_path();
  return (base / "agentbus" / "spool" / std::string(bus)).string();
}

// '#' never appears in a room name, so "a/b" and "a#b" cannot collide.
std::string spool_file(const std::string& dir, std::string room) {
  for (char& c : room)
    if (c == '/') c = '#';
  return dir + "/" + room + ".spool";
}

bool mirrored(const std::vector<std::string>& globs, const std::string& room) {
  for (const std::string& g : globs)
    if (::fnmatch(g.c_str(), room.c_str(), FNM_PATHNAME) == 0) return true;
  return false;
}

// A bus destroyed and created again starts its ids from 0: its checkpoints must not match
// the old bus's. The creator's pid and start time, and the nonce of the bus's bridge region
// (new with every segment, so also when one process recreates the bus), name one incarnation.
std::string incarnation_of(const shm::Segment& seg, const BusState& state) {
  const shm::SegmentHeader& h = seg.header();
  return std::to_string(h.creator_pid) + "." + std::to_string(h.creator_start_time) + "." +
         std::to_string(state.nonce);
}

struct RunningRoom {
  std::unique_ptr<Outbound> out;
  std::thread thread;
};

// Rooms other hosts publish to that match the globs and are not here yet: created, so that
// their events arrive before anyone here has opened the room. SCAN, never KEYS.
// A room the bus cannot hold (it is full, or the name is refused) is logged once and skipped:
// what Redis holds never ends the bridge.
void create_remote_rooms(Bus& bus, RedisConnection& conn, const std::vector<std::string>& globs,
                         std::set<std::string>& refused, const LogLine& log) {
  for (const char* pattern : {"agentbus:room:*:events", "repo:*:events"}) {
    std::string cursor = "0";
    do {
      const RedisReply r = conn.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000", "TYPE", "stream"});
      const std::optional<std::string_view> next = r.at(0).string();
      if (!next) return;
      cursor = std::string(*next);
      const ReplyView keys = r.at(1);
      for (std::size_t i = 0; i < keys.size(); ++i) {
        const std::optional<std::string_view> key = keys.at(i).string();
        const std::optional<std::string> room = key ? room_of_stream_key(*key) : std::nullopt;
        if (!room || !mirrored(globs, *room) || refused.count(*room)) continue;
        try {
          (void)bus.room(*room);
        } catch (const Error& e) {
          refused.insert(*room);
          log("not mirroring room '" + *room + "' found in Redis: " + e.what());
        }
      }
    } while (cursor != "0");
  }
}

}  // namespace

void run_bridge(const BridgeOptions& o, const std::atomic<bool>& stop) {
  const LogLine log = o.log ? LogLine(o.log) : LogLine(log_to_stderr);
  Bus bus = Bus::open({.name = o.bus});
  const std::string host(bus.host_id());
  if (!o.host_id.empty() && o.host_id != host)
    throw Error(Errc::invalid_argument, "bus '" + o.bus + "' has host id '" + host +
                                            "' (fixed when the bus was created); --host-id says '" + o.host_id +
                                            "'. Leave --host-id out, or create the bus with AGENTBUS_HOST_ID=" +
                                            o.host_id);
  shm::Segment& seg = *RoomAccess::segment(bus);
  BusState& bus_state = *open_bus_state(seg, true);
  const BridgeHold hold(bus_state, o.bus);
  // Fail at startup, with Redis's own words, rather than retry forever on a typo.
  std::optional<RedisConnection> discovery = RedisConnection::connect(o.redis, o.connect_timeout);
  Retry discovery_retry;
  bus_state.connected.store(1, std::memory_order_relaxed);
  bus_state.started_ns.store(realtime_ns(), std::memory_order_relaxed);
  set_last_error(bus_state, "");
  const std::string spool_dir = o.spool_dir.empty() ? default_spool_dir(o.bus) : o.spool_dir;
  std::filesystem::create_directories(spool_dir);
  log("bridging bus '" + o.bus + "' (host id " + host + ") to Redis at " + o.redis.where() + "; spool in " +
      spool_dir);

  Link link(o.redis, o.connect_timeout, bus_state, log);
  Inbound inbound(host, link, o.awake);
  ClaimArbiter arbiter(host, link, static_cast<std::uint64_t>(o.stream_ttl.count()));
  std::map<std::string, RunningRoom> rooms;
  std::thread in_thread, arbiter_thread;
  // The threads stop on `halt`: set when the caller says stop, and when this call ends
  // any other way, so that no thread outlives what it uses.
  std::atomic<bool> halt{false};
  struct JoinAll {
    std::atomic<bool>& halt;
    std::map<std::string, RunningRoom>& rooms;
    std::thread& in_thread;
    std::thread& arbiter_thread;
    ~JoinAll() {
      halt.store(true);
      for (auto& [name, r] : rooms)
        if (r.thread.joinable()) r.thread.join();
      if (in_thread.joinable()) in_thread.join();
      if (arbiter_thread.joinable()) arbiter_thread.join();
    }
  } join_all{halt, rooms, in_thread, arbiter_thread};
  const ShipTarget defaults{.maxlen = o.stream_maxlen, .ttl_ms = static_cast<std::uint64_t>(o.stream_ttl.count())};
  const std::string incarnation = incarnation_of(seg, bus_state);
  std::set<std::string> refused_rooms;
  for (int round = 0; !stop.load(std::memory_order_relaxed); ++round) {
    if (round % 4 == 0) {  // about every 2 s
      try {
        if (!discovery) discovery = link.connect(discovery_retry);
        if (discovery) create_remote_rooms(bus, *discovery, o.rooms, refused_rooms, log);
      } catch (const RedisDisconnected& e) {
        discovery.reset();
        link.lost(e.what());
      }
    }
    for (const std::string& name : bus.room_names()) {
      if (rooms.count(name) || refused_rooms.count(name) || !mirrored(o.rooms, name)) continue;
      // A room that cannot be set up (the bus is full, the spool cannot be opened) is logged
      // and left alone; the others go on. Its Outbound exists before the inbound side imports
      // into it, so that a half-set-up room is never imported into twice.
      try {
        // A full room (a durable reader there not draining) refuses an import within 10 ms, so
        // that the in thread sets it aside and goes on with the other rooms.
        Room room = bus.room(name, {.publish_timeout = 10ms, .create = false});
        RoomStateRef state(open_room_state(seg, name, true));
        ShipTarget target = defaults;
        target.stream_key = stream_key(name);
        target.checkpoint_key = checkpoint_key(name, host);
        target.incarnation = incarnation;
        const std::string key = target.stream_key;
        OutboundSettings settings{.host_id = host, .spool_path = spool_file(spool_dir, name),
                                  .spool_max_bytes = o.spool_max_bytes, .key_prefix = room_key_prefix(name), .awake = o.awake};
        auto out = std::make_unique<Outbound>(room, state, std::move(target), std::move(settings), link);
        inbound.add_room(room, state, key);
        arbiter.add_room(room, state, room_key_prefix(name));
        RunningRoom& r = rooms[name];
        r.out = std::move(out);
        r.thread = std::thread([&halt, out = r.out.get()] { out->run(halt); });
        log("mirroring room '" + name + "' as " + key);
      } catch (const Error& e) {
        refused_rooms.insert(name);
        log("not mirroring room '" + name + "' (until the bridge restarts): " + e.what());
      }
    }
    if (!in_thread.joinable()) in_thread = std::thread([&] { inbound.run(halt); });
    if (!arbiter_thread.joinable()) arbiter_thread = std::thread([&] { arbiter.run(halt); });
    for (int i = 0; i < 10 && !stop.load(std::memory_order_relaxed); ++i) std::this_thread::sleep_for(50ms);
  }
  log("stopping");
}

}  // namespace agentbus::bridge
