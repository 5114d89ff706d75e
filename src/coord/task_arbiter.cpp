// Tasks in a bridged room: the request/answer channel between a task's claimant and the bridge,
// and the bridge's calls on the board (coord/task_arbiter.hpp).
#include "coord/task_arbiter.hpp"

#include "bus/room_access.hpp"
#include "coord/bridge_state.hpp"
#include "shm/clock.hpp"
#include "shm/futex.hpp"
#include "shm/owner_word.hpp"
#include "shm/process.hpp"

#include <agentbus/error.hpp>

namespace agentbus {

namespace coord {

struct TaskBoardAccess {
  static TaskBoard::Impl& impl(TaskBoard& b) { return *b.impl_; }
  static const TaskBoard::Impl& impl(const TaskBoard& b) { return *b.impl_; }
};

namespace {

using namespace tasks;
namespace ob = shm::owner_bits;
using Clock = std::chrono::steady_clock;

enum class RequestState : std::uint64_t { pending = 0, answered = 1, withdrawn = 2 };

constexpr std::uint64_t request_word(std::uint64_t seq, RequestState st, ArbiterOp op) {
  return seq << 8 | static_cast<std::uint64_t>(st) << 4 | static_cast<std::uint64_t>(op);
}
constexpr std::uint64_t seq_of(std::uint64_t w) { return w >> 8; }
constexpr RequestState state_of(std::uint64_t w) { return static_cast<RequestState>((w >> 4) & 0xf); }
constexpr ArbiterOp op_of(std::uint64_t w) { return static_cast<ArbiterOp>(w & 0xf); }

// The phase an asker holds while it waits for an answer to `op`.
constexpr Phase phase_for(ArbiterOp op) {
  switch (op) {
    case ArbiterOp::claim: return Phase::claiming;
    case ArbiterOp::complete: return Phase::completing;
    default: return Phase::renewing;  // renew, and release (which holds renewing while it asks)
  }
}

template <std::size_t N>
std::uint8_t put_clipped(char (&dst)[N], std::string_view s) {
  const std::size_t n = std::min(s.size(), std::min<std::size_t>(N, 255));
  std::copy_n(s.data(), n, dst);
  return static_cast<std::uint8_t>(n);
}

ArbiterReply unavailable(std::string why) {
  ArbiterReply r;
  r.verdict = ArbiterVerdict::unavailable;
  r.detail = std::move(why);
  return r;
}

}  // namespace

// ---- the board's side -------------------------------------------------------------------

std::optional<ArbiterLink> arbiter_of(TaskBoard::Impl& m) {
  TaskBoard::Impl::BridgeRegions& cache = *m.bridge_regions;
  bridge::RoomState* room = cache.room.load(std::memory_order_acquire);
  if (!room) {
    room = bridge::open_room_state(*m.segment, m.room.name(), false);
    if (!room) return std::nullopt;  // never bridged
    cache.room.store(room, std::memory_order_release);
  }
  const std::uint64_t arbiter = room->task_arbiter.load(std::memory_order_acquire);
  if (arbiter == 0) return std::nullopt;  // bridged, but its board was never attached: decided here
  bridge::BusState* bus = cache.bus.load(std::memory_order_acquire);
  if (!bus) {
    bus = bridge::open_bus_state(*m.segment, false);
    if (!bus) throw Error(Errc::corrupt, "room '" + m.room.name() + "' names a bridge, but the bus has no bridge state");
    cache.bus.store(bus, std::memory_order_release);
  }
  if (!ob::holder_alive(arbiter))  // not cached: a bridge killed a moment ago must be noticed here
    throw Error(Errc::unavailable,
                "room '" + m.room.name() + "' is bridged to other hosts, and its bridge (pid " +
                    std::to_string(ob::pid(arbiter)) + ") is not running: its tasks are claimed, renewed and "
                    "completed through Redis, so that two hosts never both win. Start `agentbus-bridge run` "
                    "for this bus again");
  return ArbiterLink{bus, room};
}

ArbiterReply ask_arbiter(TaskEntry& e, ArbiterOp op, const ArbiterAsk& ask, const ArbiterLink& link) {
  store_fields(e.arbiter.ask, ask);
  const std::uint64_t seq = seq_of(e.arbiter.request.load(std::memory_order_acquire)) + 1;
  const std::uint64_t pending = request_word(seq, RequestState::pending, op);
  e.arbiter.request.store(pending, std::memory_order_seq_cst);
  link.bus->task_requests.fetch_add(1, std::memory_order_seq_cst);
  shm::futex_wake_all(link.bus->task_requests);

  const auto deadline = Clock::now() + kArbiterWait;
  for (;;) {
    const std::uint32_t wake = e.arbiter.wake.load(std::memory_order_acquire);
    std::uint64_t r = e.arbiter.request.load(std::memory_order_acquire);
    if (r == request_word(seq, RequestState::answered, op)) {
      const ArbiterAnswer a = load_fields(e.arbiter.answer);
      ArbiterReply reply;
      reply.verdict = static_cast<ArbiterVerdict>(a.verdict);
      reply.remote_token = a.remote_token;
      reply.lease_left_ms = a.lease_left_ms;
      reply.holder = get(a.holder, a.holder_len);
      reply.detail = get(a.detail, a.detail_len);
      return reply;
    }
    const std::uint64_t arbiter = link.room->task_arbiter.load(std::memory_order_acquire);
    const bool dead = !ob::holder_alive(arbiter);
    if (dead || Clock::now() >= deadline) {
      if (e.arbiter.request.compare_exchange_strong(r, request_word(seq, RequestState::withdrawn, op),
                                                    std::memory_order_acq_rel))
        return unavailable(dead ? "the bridge (pid " + std::to_string(ob::pid(arbiter)) + ") died before it answered"
                                : "the bridge did not answer within " + std::to_string(kArbiterWait.count()) +
                                      " s (is Redis slow?)");
      continue;  // answered just now
    }
    shm::futex_wait(e.arbiter.wake, wake, std::chrono::milliseconds(100));
  }
}

// ---- the bridge's side ------------------------------------------------------------------

void attach_arbiter(bridge::RoomState& room) {
  room.task_arbiter.store(ob::holder(shm::self_process()), std::memory_order_release);
}

std::size_t serve_arbiter_requests(TaskBoard& board, const ArbiterDecision& decide, const WithdrawnGrant& withdrawn) {
  TaskBoard::Impl& m = TaskBoardAccess::impl(board);
  std::size_t served = 0;
  for (std::uint32_t i = 0; i < m.capacity; ++i) {
    TaskEntry& e = m.entry(i);
    std::uint64_t r = e.arbiter.request.load(std::memory_order_acquire);
    if (r == 0 || state_of(r) != RequestState::pending) continue;
    const ArbiterOp op = op_of(r);
    const std::uint64_t s = e.state.load(std::memory_order_acquire);
    const std::uint64_t key = m.keys[i].load(std::memory_order_acquire);
    // The asker holds its transition until it has an answer or withdraws: a pending request
    // on an entry in any other phase, or held by a dead process, was left by a dead asker.
    if (op < ArbiterOp::claim || op > ArbiterOp::release || phase_of(s) != phase_for(op) || key == 0 ||
        !TaskStateWord::holder_alive(s)) {
      e.arbiter.request.compare_exchange_strong(r, request_word(seq_of(r), RequestState::withdrawn, op),
                                                std::memory_order_acq_rel);
      continue;
    }
    const ArbiterAsk ask = load_fields(e.arbiter.ask);
    const TaskFields f = load_fields(e.task);
    const ClaimFields c = load_fields(e.claim);
    ArbiterRequest req;
    req.task = key - 1;
    req.op = op;
    req.origin_host = get(f.origin_host, f.origin_host_len);
    req.origin_id = f.origin_host_len != 0 ? f.origin_id : req.task;
    req.claimant = get(c.claimant, c.claimant_len);
    req.ttl_ms = ask.ttl_ms;
    req.remote_token = ask.remote_token;
    if (op == ArbiterOp::complete) {
      req.result.resize(std::min<std::uint64_t>(ask.result_len, m.max_payload));
      shm::copy_from_ring(req.result.data(), m.result_of(e), req.result.size());
    }
    // Read while the asker may have given up and another begun: only a request still the same
    // after the copy is served.
    if (e.arbiter.request.load(std::memory_order_acquire) != r || e.state.load(std::memory_order_acquire) != s) continue;

    const ArbiterReply reply = decide(req);
    ArbiterAnswer a{};
    a.verdict = static_cast<std::uint8_t>(reply.verdict);
    a.remote_token = reply.remote_token;
    a.lease_left_ms = reply.lease_left_ms;
    a.holder_len = put_clipped(a.holder, reply.holder);
    a.detail_len = put_clipped(a.detail, reply.detail);
    store_fields(e.arbiter.answer, a);
    const bool answered = e.arbiter.request.compare_exchange_strong(
        r, request_word(seq_of(r), RequestState::answered, op), std::memory_order_acq_rel);
    if (!answered && op == ArbiterOp::claim && reply.verdict == ArbiterVerdict::granted) withdrawn(req, reply);
    e.arbiter.wake.fetch_add(1, std::memory_order_release);
    shm::futex_wake_all(e.arbiter.wake);
    ++served;
  }
  return served;
}

bool is_task(const TaskBoard& board, EventId id) { return TaskBoardAccess::impl(board).lookup(id) >= 0; }

void import_task(TaskBoard& board, EventId local_id, std::string_view type, std::string_view creator,
                 std::string_view payload, std::int64_t created_ts_ns, std::string_view origin_host,
                 EventId origin_id) {
  TaskBoard::Impl& m = TaskBoardAccess::impl(board);
  if (m.lookup(local_id) >= 0) return;
  TaskFields f{};
  check_len("task payload", payload, m.max_payload);
  check_len("agent", creator, sizeof f.creator);
  check_len("origin host", origin_host, sizeof f.origin_host);
  if (!board.find_type(type)) board.register_task({std::string(type), "", "", ""});
  f.created_ts_ns = created_ts_ns;
  f.payload_len = static_cast<std::uint32_t>(payload.size());
  f.type_len = static_cast<std::uint8_t>(put(f.type, type));
  f.creator_len = static_cast<std::uint8_t>(put(f.creator, creator));
  f.origin_host_len = static_cast<std::uint8_t>(put(f.origin_host, origin_host));
  f.origin_id = origin_id;
  m.insert(local_id, f, payload);
}

bool complete_imported(TaskBoard& board, EventId id, std::string_view claimant, std::string_view result) {
  TaskBoard::Impl& m = TaskBoardAccess::impl(board);
  const std::int64_t i = m.lookup(id);
  if (i < 0) return false;
  TaskEntry& e = m.entry(static_cast<std::uint32_t>(i));
  const std::string_view kept = result.substr(0, std::min<std::size_t>(result.size(), m.max_payload));
  const std::string_view who = claimant.substr(0, std::min<std::size_t>(claimant.size(), sizeof(ClaimFields::claimant)));
  for (int attempt = 0; attempt < 64; ++attempt) {
    std::uint64_t s = m.settled_state(e, id);
    if (phase_of(s) == Phase::done) return true;
    if (phase_of(s) != Phase::open && phase_of(s) != Phase::claimed) return false;
    const std::uint64_t completing = make_state(Phase::completing, token_of(s) + 1, shm::self_process());
    if (!e.state.compare_exchange_strong(s, completing, std::memory_order_acq_rel)) continue;
    ClaimFields c{};  // the claim was another host's: no session here
    c.claimant_len = static_cast<std::uint8_t>(put(c.claimant, who));
    store_fields(e.claim, c);
    shm::copy_to_ring(m.result_of(e), kept.data(), kept.size());
    store_fields(e.done, DoneFields{shm::realtime_ns(), static_cast<std::uint32_t>(kept.size())});
    std::uint64_t expected = completing;
    if (e.state.compare_exchange_strong(expected, make_state(Phase::done, token_of(completing), {}),
                                        std::memory_order_acq_rel))
      return true;
  }
  return false;
}

}  // namespace coord
}  // namespace agentbus
