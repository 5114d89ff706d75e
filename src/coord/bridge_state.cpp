#include "coord/bridge_state.hpp"

#include "coord/region.hpp"
#include "shm/fences.hpp"
#include "shm/owner_word.hpp"
#include "shm/process.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <cstring>

namespace agentbus::bridge {

namespace {

namespace ob = shm::owner_bits;

const coord::RegionKind kBusKind{"bridge state", "#bridge", kBusStateMagic, kBridgeStateVersion, sizeof(BusState)};
const coord::RegionKind kRoomKind{"bridge state", "#bridge", kRoomStateMagic, kBridgeStateVersion, sizeof(RoomState)};

}  // namespace

BusState* open_bus_state(shm::Segment& seg, bool create) {
  // The bus-wide region is named "#bridge": no room name is empty, so it is no room's.
  std::optional<coord::Region> r = coord::Region::find(seg, "", kBusKind, sizeof(BusState), create, {});
  return r ? r->header<BusState>() : nullptr;
}

RoomState* open_room_state(shm::Segment& seg, std::string_view room, bool create) {
  std::optional<coord::Region> r = coord::Region::find(seg, room, kRoomKind, sizeof(RoomState), create, {});
  return r ? r->header<RoomState>() : nullptr;
}

BridgeHold::BridgeHold(BusState& state, std::string_view bus) : state_(state), mine_(ob::holder(shm::self_process())) {
  for (;;) {
    std::uint64_t cur = state_.holder.load(std::memory_order_acquire);
    if (cur != 0 && ob::holder_alive(cur))
      throw Error(Errc::conflict, "a bridge is already running for bus '" + std::string(bus) + "' (pid " +
                                      std::to_string(ob::pid(cur)) + "); stop it first, or bridge another bus");
    if (state_.holder.compare_exchange_strong(cur, mine_, std::memory_order_acq_rel)) return;
  }
}

BridgeHold::~BridgeHold() {
  std::uint64_t expected = mine_;
  state_.holder.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
  state_.connected.store(0, std::memory_order_relaxed);
}

int running_bridge_pid(const BusState& state) noexcept {
  const std::uint64_t cur = state.holder.load(std::memory_order_acquire);
  return cur != 0 && ob::holder_alive(cur) ? static_cast<int>(ob::pid(cur)) : 0;
}

// Only the bridge writes it, from one thread at a time (the caller serialises); readers
// retry on a torn copy.
void set_last_error(BusState& state, std::string_view error) noexcept {
  const std::size_t n = std::min(error.size(), kMaxErrorBytes);
  state.error_seq.fetch_add(1, std::memory_order_acq_rel);
  std::memcpy(state.last_error, error.data(), n);
  state.error_len.store(static_cast<std::uint32_t>(n), std::memory_order_relaxed);
  state.error_seq.fetch_add(1, std::memory_order_release);
}

std::string last_error(BusState& state) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::uint64_t s1 = state.error_seq.load(std::memory_order_acquire);
    if (s1 & 1) continue;
    const std::size_t n = std::min<std::size_t>(state.error_len.load(std::memory_order_relaxed), kMaxErrorBytes);
    std::string out(state.last_error, n);
    if (shm::load_after_reads(state.error_seq) == s1) return out;
  }
  return {};
}

// in_current counts writes; the slot in use is its low bit. A reader that sees the count move
// while it read (the out thread, as the in thread writes) reads again.
std::optional<InPosition> RoomStateRef::in_checkpoint() const noexcept {
  for (;;) {
    const std::uint64_t g = s_->in_current.load(std::memory_order_acquire);
    const InCheckpoint& c = s_->in[g & 1];
    const bool valid = c.valid.load(std::memory_order_acquire) != 0;
    const InPosition p{{c.stream_ms.load(std::memory_order_relaxed), c.stream_seq.load(std::memory_order_relaxed)},
                       c.local_id.load(std::memory_order_relaxed)};
    if (shm::load_after_reads(s_->in_current) != g) continue;
    if (!valid) return std::nullopt;
    return p;
  }
}

void RoomStateRef::set_in_checkpoint(const InPosition& p) noexcept {
  const std::uint64_t g = s_->in_current.load(std::memory_order_relaxed) + 1;
  InCheckpoint& c = s_->in[g & 1];
  c.stream_ms.store(p.stream.ms, std::memory_order_relaxed);
  c.stream_seq.store(p.stream.seq, std::memory_order_relaxed);
  c.local_id.store(p.local_id, std::memory_order_relaxed);
  c.valid.store(1, std::memory_order_release);
  s_->in_current.store(g, std::memory_order_release);
}

}  // namespace agentbus::bridge
