// Reading a room from its oldest event up to a bound, for what orchestration keeps in rooms
// (conversation state chains, run journals): a tailer that never gates producers.
#pragma once

#include <agentbus/room.hpp>
#include <agentbus/subscription.hpp>

#include <chrono>
#include <cstdint>

namespace agentbus::orchestration {

struct ScanResult {
  EventId first_seen = 0;      // the oldest event read (0: none)
  std::uint64_t lost = 0;      // events lapped or unreadable while reading
};

// Calls visit(EventView) for every event from the oldest still in the ring up to (not
// including) `end`, the room's tail when the scan starts unless given.
template <class Visit>
ScanResult scan_room(Room& room, Visit&& visit, EventId end = 0) {
  if (end == 0) end = room.info().tail;
  ScanResult result;
  SubscribeOptions options;
  options.from = StartFrom::earliest;
  Subscription sub = room.subscribe(options);
  while (sub.position() < end) {
    ReadResult r = sub.next(std::chrono::nanoseconds(0));
    if (r.status == ReadStatus::timeout) break;
    if (r.status == ReadStatus::overrun || r.status == ReadStatus::skipped) {
      result.lost += r.missed;
      continue;
    }
    if (r.event.id >= end) break;
    if (result.first_seen == 0) result.first_seen = r.event.id;
    visit(r.event);
  }
  return result;
}

}  // namespace agentbus::orchestration
