#include "coord/bridge_state.hpp"

#include "coord/region.hpp"
#include "shm/fences.hpp"
#include "shm/ring_copy.hpp"
#include "shm/owner_word.hpp"
#include "shm/process.hpp"

#include <agentbus/error.hpp>

#include <agentbus/clock.hpp>

#include <algorithm>
#include <cstddef>
#include <random>
#include <cstring>

namespace agentbus::bridge {

namespace {

namespace ob = shm::owner_bits;

const coord::RegionKind kBusKind{"bridge state", "#bridge", kBusStateMagic, kBridgeStateVersion, sizeof(BusState)};
const coord::RegionKind kRoomKind{"bridge state", "#bridge", kRoomStateMagic, kBridgeStateVersion, sizeof(RoomState)};

}  // namespace

BusState* open_bus_state(shm::Segment& seg, bool create) {
  // The bus-wide region is named "#bridge": no room name is empty, so it is no room's.
  std::optional<coord::Region> r =
      coord::Region::find(seg, "", kBusKind, sizeof(BusState), create, [](std::span<std::byte> bytes) {
        std::random_device entropy;
        const std::uint64_t nonce = (std::uint64_t{entropy()} << 32) ^ entropy() ^ std::uint64_t(realtime_ns());
        std::memcpy(bytes.data() + offsetof(BusState, nonce), &nonce, sizeof nonce);
      });
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

namespace {

template <std::size_t N>
std::uint64_t put(char (&dst)[N], std::string_view s) {
  const std::size_t n = std::min(s.size(), N);
  shm::copy_to_ring(reinterpret_cast<std::byte*>(dst), s.data(), n);
  return n;
}
template <std::size_t N>
std::string get(const char (&src)[N], std::uint64_t len) {
  std::string out(std::min<std::uint64_t>(len, N), '\0');
  shm::copy_from_ring(out.data(), reinterpret_cast<const std::byte*>(src), out.size());
  return out;
}

}  // namespace

void write_remote_agents(RoomState& s, const std::vector<RemoteAgent>& agents) noexcept {
  for (std::size_t i = 0; i < kMaxRemoteAgents; ++i) {
    RemoteAgentSlot& slot = s.remote[i];
    slot.seq.fetch_add(1, std::memory_order_acq_rel);  // odd: being written
    if (i < agents.size()) {
      const RemoteAgent& a = agents[i];
      const std::uint64_t lengths = put(slot.host, a.host) | put(slot.handle, a.handle) << 8 |
                                    put(slot.role, a.role) << 16 | put(slot.working_on, a.working_on) << 24;
      slot.lengths.store(lengths, std::memory_order_relaxed);
      slot.expires_ns.store(a.expires_ns, std::memory_order_relaxed);
    } else {
      slot.expires_ns.store(0, std::memory_order_relaxed);
    }
    slot.seq.fetch_add(1, std::memory_order_release);
  }
}

std::vector<RemoteAgent> read_remote_agents(RoomState& s, std::int64_t now_ns) {
  std::vector<RemoteAgent> out;
  for (RemoteAgentSlot& slot : s.remote) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      const std::uint64_t s1 = slot.seq.load(std::memory_order_acquire);
      if (s1 & 1) continue;
      const std::int64_t expires = slot.expires_ns.load(std::memory_order_relaxed);
      const std::uint64_t len = slot.lengths.load(std::memory_order_relaxed);
      RemoteAgent a{get(slot.host, len & 0xff), get(slot.handle, (len >> 8) & 0xff), get(slot.role, (len >> 16) & 0xff),
                    get(slot.working_on, (len >> 24) & 0xff), expires};
      if (shm::load_after_reads(slot.seq) != s1) continue;
      if (expires > now_ns) out.push_back(std::move(a));
      break;
    }
  }
  return out;
}

}  // namespace agentbus::bridge
