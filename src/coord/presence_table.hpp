// The presence table (internal): Presence::Impl and the entry protocol every call shares:
// reading an entry consistently, filling and publishing one we hold, taking over a free or
// departed one, and merging duplicate joins. The protocol is at the top of
// presence_table.cpp; the layout and state word in coord/presence_layout.hpp.
#pragma once

#include <agentbus/presence.hpp>

#include "coord/presence_layout.hpp"
#include "coord/region.hpp"
#include "shm/claim_table.hpp"
#include "shm/process.hpp"

#include <agentbus/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace agentbus {
namespace coord::presence {

using Claims = shm::ClaimTable<Entry>;

inline constexpr RegionKind kRegion{"presence table", "#presence", kPresenceMagic, kPresenceVersion, sizeof(Header)};

// A process-local copy of one live entry.
struct Snapshot {
  uint64_t state = 0;
  std::string handle, role, working_on;
  shm::ProcessId session;
  int64_t last_seen_ns = 0, ttl_ns = 0, joined_ns = 0;
};

enum class Slot { free, busy, stale_writer, live };
enum class Departure { none, expired, session_ended };

// Whether the agent of `s` is gone at CLOCK_MONOTONIC `now`, and why.
Departure departure(const Snapshot& s, int64_t now);

}  // namespace coord::presence

struct Presence::Impl {
  using Departure = coord::presence::Departure;
  using Entry = coord::presence::Entry;
  using Header = coord::presence::Header;
  using Slot = coord::presence::Slot;
  using Snapshot = coord::presence::Snapshot;

  explicit Impl(Room r) : room(std::move(r)) {}

  Room room;
  Header* header = nullptr;
  Entry* entries = nullptr;
  std::uint32_t capacity = 0;
  std::string bus;

  // What a writer puts into an entry it holds.
  struct Fields {
    std::string_view handle, role, working_on;
    shm::ProcessId session;
    std::int64_t ttl_ns = 0;
    std::int64_t joined_ns = 0;
  };

  // Copies entry i. Waits (bounded) while a live process is writing it: writes take
  // microseconds, and a stopped writer must not stall readers for long.
  Slot read(std::uint32_t i, Snapshot& out) const;
  Error corrupt(const std::string& what) const;
  // Entry i with handle `qualified`, live or not yet reclaimed.
  std::optional<std::uint32_t> find(std::string_view qualified, Snapshot& snap) const;
  // Fills entry i, which we hold in writing, and publishes it live. Returns its live state.
  std::uint64_t fill(std::uint32_t i, const Fields& f);
  // Two joins of one handle from one session can race and create two entries; this merges
  // them (see presence_table.cpp). Returns false when our own entry was the one dropped.
  bool dedupe(std::uint32_t mine, std::uint64_t my_state, std::string_view qualified, shm::ProcessId session);
  void publish_joined(std::string_view qualified, const Fields& f);
  void publish_left(std::string_view qualified, std::string_view reason);
  // Takes entry i for a new agent if it is free, held by a dead writer, or holds an agent that
  // is gone. On success the entry is ours (writing) and `left` names whom it displaced.
  bool take(std::uint32_t i, std::optional<std::pair<std::string, Departure>>& left);
};

}  // namespace agentbus
