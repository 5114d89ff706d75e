#include <agentbus/bridge_status.hpp>

#include "bus/room_access.hpp"
#include "coord/bridge_state.hpp"

#include <agentbus/error.hpp>

#include <agentbus/clock.hpp>

#include <algorithm>

namespace agentbus::bridge {

using namespace std::chrono_literals;

BridgeStatus bridge_status(const Bus& bus) {
  BridgeStatus out;
  shm::Segment& seg = *RoomAccess::segment(bus);
  BusState* state = open_bus_state(seg, false);
  if (!state) return out;  // no bridge ever ran here
  BusState& bs = *state;
  out.pid = running_bridge_pid(bs);
  out.connected = out.pid != 0 && bs.connected.load(std::memory_order_relaxed) != 0;
  out.reconnects = bs.reconnects.load(std::memory_order_relaxed);
  out.last_error = last_error(bs);
  for (const std::string& name : bus.room_names()) {
    RoomState* s = open_room_state(seg, name, false);
    if (!s) continue;
    BridgeRoomStatus r;
    r.room = name;
    r.out_events = s->out_events.load(std::memory_order_relaxed);
    r.in_events = s->in_events.load(std::memory_order_relaxed);
    r.rejected = s->rejected.load(std::memory_order_relaxed);
    r.echoes_skipped = s->echoes_skipped.load(std::memory_order_relaxed);
    r.spooled_events = s->spooled_events.load(std::memory_order_relaxed);
    r.spool_bytes = s->spool_bytes.load(std::memory_order_relaxed);
    r.spool_full = s->spool_full.load(std::memory_order_relaxed);
    r.tasks_through_redis = s->task_arbiter.load(std::memory_order_relaxed) != 0;
    // Lag: the local events the bridge has not put anywhere yet, and the spooled ones.
    Room room = const_cast<Bus&>(bus).room(name, {.create = false});
    const EventId shipped = s->shipped_to.load(std::memory_order_relaxed);
    const RoomInfo info = room.info();
    if (shipped < info.tail) {
      // The ring moves meanwhile: a position gone by the time we look means start at the oldest.
      Subscription scan = [&] {
        try {
          return room.subscribe({.from = StartFrom::id, .from_id = std::max(shipped, info.oldest)});
        } catch (const Error&) {
          return room.subscribe({.from = StartFrom::earliest});
        }
      }();
      for (ReadResult e = scan.next(0ns); e.status != ReadStatus::timeout; e = scan.next(0ns)) {
        if (!e.has_event() || e.event.imported) continue;
        if (r.lag_events++ == 0) r.oldest_lag_ns = std::max<std::int64_t>(0, realtime_ns() - e.event.ts_ns);
      }
    }
    r.lag_events += r.spooled_events;
    out.rooms.push_back(std::move(r));
  }
  return out;
}

std::vector<RemoteAgent> remote_agents(const Bus& bus, std::string_view room) {
  RoomState* s = open_room_state(*RoomAccess::segment(bus), room, false);
  if (!s) return {};
  return read_remote_agents(*s, realtime_ns());
}

}  // namespace agentbus::bridge
