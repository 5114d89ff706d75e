// The task board's calls on a claim: claim, renew, complete, release. Guarantees are in
// include/agentbus/tasks.hpp, the state machine in coord/task_board_layout.hpp. In a bridged
// room each call first wins locally (the entry's transitional phase), then asks the bridge to
// confirm it in Redis (coord/task_arbiter.hpp) before it takes effect.
#include <agentbus/tasks.hpp>

#include "coord/task_arbiter.hpp"
#include "coord/task_table.hpp"
#include "shm/clock.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"

#include <agentbus/error.hpp>

#include <algorithm>

namespace agentbus {

using coord::Phase;
using coord::make_state;
using coord::phase_of;
using coord::token_of;
using namespace coord::tasks;
using shm::monotonic_ns;
using shm::realtime_ns;

namespace {

// In a bridged room, the one from Redis: "alice@host-b". Claims decided here: the local claimant.
Claim held_by(EventId id, std::string holder, std::uint32_t token, std::chrono::milliseconds left,
              std::chrono::milliseconds ttl) {
  return Claim{ClaimStatus::held, id, 0, ttl, std::move(holder), token, left};
}

Claim already_done(EventId id) {
  Claim c;
  c.status = ClaimStatus::done;
  c.id = id;
  return c;
}

[[noreturn]] void arbiter_unavailable(std::string_view doing, EventId id, const std::string& room,
                                      const coord::ArbiterReply& r, std::string_view then) {
  throw Error(Errc::unavailable, std::string(doing) + " task " + std::to_string(id) + " in bridged room '" + room +
                                     "' needs the bridge's answer from Redis: " + r.detail + "; " + std::string(then));
}

// A task of another host is decided in Redis only: with no arbiter it cannot be claimed here.
void require_arbiter_for_remote(const TaskBoard::Impl& m, coord::TaskEntry& e, EventId id,
                                const std::optional<coord::ArbiterLink>& link) {
  if (link) return;
  const coord::TaskFields f = load_fields(e.task);
  if (f.origin_host_len == 0) return;
  throw Error(Errc::unavailable, "task " + std::to_string(id) + " was posted on host '" +
                                     get(f.origin_host, f.origin_host_len) + "' and room '" + m.room.name() +
                                     "' has no bridge attached to decide claims through Redis; start "
                                     "`agentbus-bridge run` for this bus");
}

}  // namespace

Claim TaskBoard::claim(EventId id, std::string_view agent, const ClaimOptions& o) {
  Impl& m = *impl_;
  coord::ClaimFields c{};
  check_len("agent", agent, sizeof c.claimant, false);
  if (o.ttl <= std::chrono::milliseconds::zero())
    throw Error(Errc::invalid_argument, "a claim's ttl must be positive");
  const auto pid = static_cast<std::uint32_t>(o.session_pid != 0 ? o.session_pid : static_cast<int>(m.self_pid));
  c.owner_pid = pid;
  c.owner_start = shm::process_start_time_cached(pid);
  if (c.owner_start == 0)
    throw Error(Errc::invalid_argument, "session process " + std::to_string(pid) + " does not exist");
  c.claimant_len = static_cast<std::uint8_t>(put(c.claimant, agent));

  coord::TaskEntry& e = m.find(id);
  const std::optional<coord::ArbiterLink> link = coord::arbiter_of(m);
  require_arbiter_for_remote(m, e, id, link);
  for (;;) {
    // Someone live is claiming, renewing or completing it right now: we lost, no need to wait.
    const std::uint64_t now_state = e.state.load(std::memory_order_acquire);
    const Phase now_phase = phase_of(now_state);
    if (coord::transitional(now_phase) && now_phase != Phase::reserving &&
        coord::TaskStateWord::holder_alive_cached(now_state)) {
      Claim lost;
      lost.status = now_phase == Phase::completing ? ClaimStatus::done : ClaimStatus::held;
      lost.id = id;
      lost.holder_token = token_of(now_state);
      return lost;
    }
    std::uint64_t s = m.settled_state(e, id);
    bool expired = false, dead = false;
    std::uint64_t replaced_remote = 0;  // the lapsed or dead claim of this host being taken over
    switch (phase_of(s)) {
      case Phase::open: break;
      case Phase::claimed: {
        const coord::ClaimFields held = load_fields(e.claim);
        const std::int64_t deadline = e.lease_deadline_ns.load(std::memory_order_acquire);
        if (e.state.load(std::memory_order_acquire) != s) continue;
        expired = monotonic_ns() >= deadline;
        dead = !expired && !m.alive(held.owner_pid, held.owner_start);
        if (!expired && !dead)
          return held_by(id, get(held.claimant, held.claimant_len), token_of(s),
                         std::chrono::milliseconds((deadline - monotonic_ns() + 999'999) / 1'000'000), o.ttl);
        replaced_remote = held.remote_token;
        break;
      }
      case Phase::done: return already_done(id);
      default:
        throw Error(Errc::not_found, "no task " + std::to_string(id) + " in room '" + m.room.name() + "'");
    }
    const std::uint64_t claiming = make_state(Phase::claiming, token_of(s) + 1, shm::self_process());
    if (!e.state.compare_exchange_strong(s, claiming, std::memory_order_acq_rel)) continue;
    store_fields(e.claim, c);
    if (link) {  // this host's race is won; now the hosts' race, in Redis
      const coord::ArbiterReply r =
          coord::ask_arbiter(e, coord::ArbiterOp::claim, {o.ttl.count(), replaced_remote, 0}, *link);
      if (r.verdict != coord::ArbiterVerdict::granted) {
        std::uint64_t back = claiming;
        e.state.compare_exchange_strong(back, make_state(Phase::open, token_of(claiming), {}), std::memory_order_acq_rel);
        if (r.verdict == coord::ArbiterVerdict::done) return already_done(id);
        if (r.verdict == coord::ArbiterVerdict::held)
          return held_by(id, r.holder, static_cast<std::uint32_t>(r.remote_token),
                         std::chrono::milliseconds(std::max<std::int64_t>(r.lease_left_ms, 0)), o.ttl);
        arbiter_unavailable("claiming", id, m.room.name(), r, "nothing was claimed; try again");
      }
      c.remote_token = r.remote_token;
      store_fields(e.claim, c);
    }
    e.lease_deadline_ns.store(monotonic_ns() + std::chrono::nanoseconds(o.ttl).count(), std::memory_order_release);
    std::uint64_t expected = claiming;
    if (!e.state.compare_exchange_strong(expected, make_state(Phase::claimed, token_of(claiming), {pid, c.owner_start}),
                                         std::memory_order_acq_rel))
      continue;  // rolled back by someone who took us for dead: try again
    m.header->claims.fetch_add(1, std::memory_order_relaxed);
    if (expired) m.header->expired_reclaimed.fetch_add(1, std::memory_order_relaxed);
    if (dead) m.header->dead_sessions_reclaimed.fetch_add(1, std::memory_order_relaxed);
    Claim won;
    won.id = id;
    won.token = token_of(claiming);
    won.ttl = o.ttl;
    return won;
  }
}

namespace {

// In a bridged room, asks Redis whether the claim behind `token` is still the current one;
// on a refusal the entry is left as `refused_to` and the caller told why.
void confirm_with_arbiter(TaskBoard::Impl& m, coord::TaskEntry& e, EventId id, std::uint32_t token,
                          coord::ArbiterOp op, std::int64_t ttl_ms, std::uint32_t result_len,
                          const coord::ArbiterLink& link, std::uint64_t holding, std::uint64_t settled) {
  const coord::ClaimFields c = load_fields(e.claim);
  const coord::ArbiterReply r = coord::ask_arbiter(e, op, {ttl_ms, c.remote_token, result_len}, link);
  if (r.verdict == coord::ArbiterVerdict::granted) return;
  std::uint64_t back = holding;
  const char* doing = op == coord::ArbiterOp::renew ? "renewing" : op == coord::ArbiterOp::complete ? "completing" : "releasing";
  if (r.verdict == coord::ArbiterVerdict::unavailable) {  // nothing changed anywhere: the claim stands
    e.state.compare_exchange_strong(back, settled, std::memory_order_acq_rel);
    arbiter_unavailable(doing, id, m.room.name(), r, "the claim is kept; try again");
  }
  // Another host's claimant holds it now, or it was completed: this claim is over here too.
  e.state.compare_exchange_strong(back, make_state(Phase::open, token, {}), std::memory_order_acq_rel);
  m.header->stale_tokens_refused.fetch_add(1, std::memory_order_relaxed);
  const std::string now = r.verdict == coord::ArbiterVerdict::done
                              ? "it was completed"
                              : r.holder.empty() ? "its claim lapsed and it was claimed again"
                                                 : "it is claimed by " + r.holder + " (token " +
                                                       std::to_string(r.remote_token) + " in Redis)";
  throw Error(Errc::conflict, "token " + std::to_string(token) + " for task " + std::to_string(id) + " is stale: " + now);
}

}  // namespace

void TaskBoard::renew(EventId id, std::uint32_t token, std::chrono::milliseconds ttl) {
  Impl& m = *impl_;
  if (ttl <= std::chrono::milliseconds::zero()) throw Error(Errc::invalid_argument, "ttl must be positive");
  coord::TaskEntry& e = m.find(id);
  const std::optional<coord::ArbiterLink> link = coord::arbiter_of(m);
  for (;;) {
    std::uint64_t s = m.settled_state(e, id);
    if (phase_of(s) != Phase::claimed || token_of(s) != token) m.stale(id, token, e, s);
    const std::uint64_t renewing = make_state(Phase::renewing, token, shm::self_process());
    if (!e.state.compare_exchange_strong(s, renewing, std::memory_order_acq_rel)) continue;
    if (link) confirm_with_arbiter(m, e, id, token, coord::ArbiterOp::renew, ttl.count(), 0, *link, renewing, s);
    e.lease_deadline_ns.store(monotonic_ns() + std::chrono::nanoseconds(ttl).count(), std::memory_order_release);
    std::uint64_t expected = renewing;
    if (e.state.compare_exchange_strong(expected, coord::TaskStateWord::keep_holder(s, Phase::claimed, token),
                                        std::memory_order_acq_rel))
      return;
  }
}

EventId TaskBoard::complete(EventId id, std::uint32_t token, std::string_view result) {
  Impl& m = *impl_;
  check_len("task result", result, m.max_payload);
  coord::TaskEntry& e = m.find(id);
  const std::optional<coord::ArbiterLink> link = coord::arbiter_of(m);
  for (;;) {
    std::uint64_t s = m.settled_state(e, id);
    if (phase_of(s) != Phase::claimed || token_of(s) != token) m.stale(id, token, e, s);
    const std::uint64_t completing = make_state(Phase::completing, token, shm::self_process());
    if (!e.state.compare_exchange_strong(s, completing, std::memory_order_acq_rel)) continue;
    shm::copy_to_ring(m.result_of(e), result.data(), result.size());
    if (link)
      confirm_with_arbiter(m, e, id, token, coord::ArbiterOp::complete, 0, static_cast<std::uint32_t>(result.size()),
                           *link, completing, s);
    const coord::ClaimFields c = load_fields(e.claim);
    PublishOptions po;
    po.reply_to = id;
    const PublishResult done_event = m.room.publish("TASK_DONE", get(c.claimant, c.claimant_len), result, po);
    if (!done_event.ok()) {
      std::uint64_t back = completing;
      e.state.compare_exchange_strong(back, s, std::memory_order_acq_rel);
      throw Error(Errc::timeout, "room '" + m.room.name() + "' is full: TASK_DONE could not be published; "
                                     "the claim is kept, complete again later");
    }
    store_fields(e.done, coord::DoneFields{realtime_ns(), static_cast<std::uint32_t>(result.size())});
    std::uint64_t expected = completing;
    if (e.state.compare_exchange_strong(expected, make_state(Phase::done, token, {}), std::memory_order_acq_rel))
      return done_event.id;
    // Rolled back meanwhile (we were taken for dead): the claim stands; report the event anyway.
    return done_event.id;
  }
}

void TaskBoard::release(EventId id, std::uint32_t token) {
  Impl& m = *impl_;
  coord::TaskEntry& e = m.find(id);
  const std::optional<coord::ArbiterLink> link = coord::arbiter_of(m);
  for (;;) {
    std::uint64_t s = m.settled_state(e, id);
    if (phase_of(s) != Phase::claimed || token_of(s) != token) m.stale(id, token, e, s);
    if (!link) {
      if (e.state.compare_exchange_strong(s, make_state(Phase::open, token, {}), std::memory_order_acq_rel)) return;
      continue;
    }
    // Bridged: held as renewing while Redis lets go of the claim.
    const std::uint64_t releasing = make_state(Phase::renewing, token, shm::self_process());
    if (!e.state.compare_exchange_strong(s, releasing, std::memory_order_acq_rel)) continue;
    confirm_with_arbiter(m, e, id, token, coord::ArbiterOp::release, 0, 0, *link, releasing, s);
    std::uint64_t expected = releasing;
    if (e.state.compare_exchange_strong(expected, make_state(Phase::open, token, {}), std::memory_order_acq_rel)) return;
  }
}

}  // namespace agentbus
