// Ask and reply over the inbox: an ASK is sent through the asked agent's inbox and the asker
// waits on the room (and, when lapped or quiet, on its own inbox) for the REPLY. One pending ask
// per asking agent, marked in its recipient entry by (pid, start time). See inbox_impl.hpp.
#include "coord/inbox_impl.hpp"

#include "shm/process.hpp"

#include <agentbus/error.hpp>
#include <agentbus/presence.hpp>

#include <algorithm>
#include <chrono>

namespace agentbus {

using coord::check_len;

namespace {

using Clock = std::chrono::steady_clock;

// The live agent `to` names: its qualified handle, or the one live agent whose short handle it is.
std::string resolve_present(const Room& room, std::string_view to) {
  std::optional<Presence> presence;
  try {
    presence.emplace(room, PresenceOptions{.create = false});
  } catch (const Error& e) {
    if (e.code() != Errc::not_found) throw;
    throw Error(Errc::not_found, "agent '" + std::string(to) + "' is not present in room '" + room.name() +
                                     "' (nobody has joined it)");
  }
  if (presence->find(to)) return std::string(to);
  std::vector<std::string> matches;
  for (const AgentInfo& a : presence->who()) {
    const std::string_view h = a.handle;
    if (h.size() > to.size() + 1 && h.starts_with(to) && h[to.size()] == '-' &&
        h.find('-', to.size() + 1) == std::string_view::npos)
      matches.push_back(a.handle);
  }
  if (matches.size() == 1) return matches[0];
  if (matches.empty())
    throw Error(Errc::not_found, "agent '" + std::string(to) + "' is not present in room '" + room.name() +
                                     "' (`agentbus who` lists who is)");
  std::string list;
  for (const auto& h : matches) list += (list.empty() ? "" : ", ") + h;
  throw Error(Errc::invalid_argument, "'" + std::string(to) + "' names several present agents (" + list +
                                          "); ask one by its qualified handle");
}

// Releases the asker's pending-ask mark when the ask ends, however it ends.
struct AskMark {
  coord::Recipient& rec;
  std::uint64_t me;
  ~AskMark() {
    std::uint64_t expected = me;
    rec.ask_id.store(0, std::memory_order_relaxed);
    rec.ask_owner.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
  }
};

std::optional<Event> event_at(Room& room, EventId id) {
  try {
    Subscription sub = room.subscribe({.from = StartFrom::id, .from_id = id, .wait = WaitStrategy::yield});
    ReadResult got = sub.next(std::chrono::nanoseconds(0));
    if (got.has_event() && got.event.id == id) return got.event.to_owned();
  } catch (const Error& e) {
    if (e.code() != Errc::invalid_argument) throw;
  }
  return std::nullopt;
}

}  // namespace

Event Inbox::ask(std::string_view from, std::string_view to, std::string_view message,
                 std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  check_len("asking agent", from, kMaxAgentBytes, false);
  const std::string target = resolve_present(m.room, to);
  coord::Recipient& rec = m.recipients[m.lookup(from, true)];
  const std::uint64_t me = shm::pack_owner(shm::self_process());
  for (std::uint64_t cur = rec.ask_owner.load(std::memory_order_acquire);;) {
    if (cur == 0) {
      if (rec.ask_owner.compare_exchange_weak(cur, me, std::memory_order_acq_rel)) break;
    } else if (cur != me && !shm::owner_alive(cur)) {
      if (rec.ask_owner.compare_exchange_weak(cur, me, std::memory_order_acq_rel)) {
        m.header->asks_reclaimed.fetch_add(1, std::memory_order_relaxed);
        break;
      }
    } else {
      const std::uint64_t pending = rec.ask_id.load(std::memory_order_acquire);
      throw Error(Errc::conflict, "agent '" + std::string(from) + "' already has an ask pending (pid " +
                                      std::to_string(cur >> 32) +
                                      (pending ? ", ask " + std::to_string(pending) : std::string()) +
                                      "); one ask at a time");
    }
  }
  AskMark mark{rec, me};
  Subscription sub = m.room.subscribe({.from = StartFrom::latest});  // before sending: no reply missed
  const EventId id = send(from, target, "ASK", message);
  rec.ask_id.store(id, std::memory_order_release);
  auto answers = [&](std::string_view agent, std::optional<EventId> reply_to) {
    return reply_to == id && (agent == target || agent == to);
  };
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) break;
    const ReadResult got = sub.next(std::min<Clock::duration>(left, std::chrono::milliseconds(250)));
    if (got.has_event()) {
      if (answers(got.event.agent, got.event.reply_to)) return got.event.to_owned();
      continue;
    }
    // Lapped, or quiet for a while: the reply also sits in our inbox.
    for (const InboxMessage& msg : read(from, m.capacity))
      if (answers(msg.from, msg.reply_to))
        return Event{msg.id, msg.ts_ns, msg.type, msg.from, msg.to, msg.reply_to, msg.payload};
  }
  throw Error(Errc::timeout, "no reply from '" + target + "' to ask " + std::to_string(id) + " within " +
                                 std::to_string(timeout.count()) + " ms");
}

EventId Inbox::reply(std::string_view from, EventId ask_id, std::string_view message) {
  Impl& m = *impl_;
  std::optional<Event> ask;
  for (const InboxMessage& msg : read(from, m.capacity))
    if (msg.id == ask_id) ask = Event{msg.id, msg.ts_ns, msg.type, msg.from, msg.to, msg.reply_to, msg.payload};
  if (!ask) ask = event_at(m.room, ask_id);
  if (!ask)
    throw Error(Errc::not_found, "no event " + std::to_string(ask_id) + " in room '" + m.room.name() +
                                     "' (neither in " + std::string(from) + "'s inbox nor still in the room's ring)");
  if (ask->type != "ASK")
    throw Error(Errc::invalid_argument, "event " + std::to_string(ask_id) + " is a '" + ask->type + "', not an ASK");
  if (ask->agent.empty())
    throw Error(Errc::invalid_argument, "ASK " + std::to_string(ask_id) + " has no sender to reply to");
  return send(from, ask->agent, "REPLY", message, {.reply_to = ask_id});
}

}  // namespace agentbus
