// Reading a room from its oldest event up to a bound, for what orchestration keeps in rooms
// (conversation state chains, run journals): a tailer that never gates producers.
#pragma once

#include <agentbus/error.hpp>
#include <agentbus/room.hpp>
#include <agentbus/subscription.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace agentbus::orchestration {

struct ScanResult {
  EventId first_seen = 0;      // the oldest event read (0: none)
  std::uint64_t lost = 0;      // events lapped or unreadable while reading
};

// Calls visit(EventView) for every event from `from` (0: the oldest still in the ring) up to
// (not including) `end`, the room's tail when the scan starts unless given.
template <class Visit>
ScanResult scan_room(Room& room, Visit&& visit, EventId end = 0, EventId from = 0) {
  if (end == 0) end = room.info().tail;
  ScanResult result;
  SubscribeOptions options;
  options.from = from == 0 ? StartFrom::earliest : StartFrom::id;
  options.from_id = from;
  Subscription sub = room.subscribe(options);
  // Records before `end` may still be being written by other producers: wait for them (the
  // ring turns a dead producer's claim into padding after its stall timeout), so that every
  // reader sees the same events below `end`, which is what the state chain's rule needs.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (sub.position() < end) {
    ReadResult r = sub.next(std::chrono::milliseconds(20));
    if (r.status == ReadStatus::timeout) {
      if (std::chrono::steady_clock::now() > deadline)
        throw Error(Errc::timeout, "room '" + room.name() + "': events before " + std::to_string(end) +
                                       " were not committed within 10 s");
      continue;
    }
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
