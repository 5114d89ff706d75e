// The inbox's recipient table and message slots: finding a recipient, reserving a slot for
// a message (space before publishing), filling and committing it, and scanning a recipient's
// messages. See inbox_impl.hpp; the slot state machine is in inbox_layout.hpp.
#include "coord/inbox_impl.hpp"

#include "shm/claim_table.hpp"
#include "shm/clock.hpp"
#include "shm/fences.hpp"
#include "shm/hash.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <functional>
#include <thread>

namespace agentbus {

using coord::SlotPhase;
using coord::slot_gen;
using coord::slot_phase;
using coord::slot_state;

namespace {

constexpr auto kSettleWait = std::chrono::milliseconds(1000);  // another process writing a name


}  // namespace

namespace coord::inbox {


}  // namespace coord::inbox

using coord::check_len;

std::int64_t Inbox::Impl::lookup(std::string_view name, bool create) const {
  if (name.empty() || name.size() > sizeof(coord::Recipient::name))
    throw Error(Errc::bad_name, "an inbox recipient name must be 1 to " +
                                    std::to_string(sizeof(coord::Recipient::name)) + " bytes");
  shm::ClaimTable<coord::Recipient> table({recipients, recipient_capacity}, {.settle_wait = kSettleWait});
  const shm::ClaimLookup found = table.find_or_claim(
      shm::fnv1a(name), create, [&](const coord::Recipient& r) { return name_of(r) == name; },
      [&](coord::Recipient& r) {
        r.next_seq.store(1, std::memory_order_relaxed);
        r.cursor.store(0, std::memory_order_relaxed);
        r.ask_owner.store(0, std::memory_order_relaxed);
        r.ask_id.store(0, std::memory_order_relaxed);
        std::copy_n(name.data(), name.size(), r.name);
        r.name_len = static_cast<std::uint32_t>(name.size());
      });
  using Outcome = shm::ClaimLookup::Outcome;
  switch (found.outcome) {
    case Outcome::found:
    case Outcome::created: return found.index;
    case Outcome::absent: return -1;
    case Outcome::foreign: corrupt("recipient " + std::to_string(found.index) + " has a bad state");
    case Outcome::stuck:
      throw Error(Errc::timeout, "inbox recipient entry " + std::to_string(found.index) + " stayed mid-write by pid " +
                                     std::to_string(shm::ClaimWord::pid(found.word)) + " for over a second");
    case Outcome::full: break;
  }
  if (!create) return -1;
  throw Error(Errc::no_space, "the inbox of room '" + room.name() + "' knows " + std::to_string(recipient_capacity) +
                                  " recipients, its limit; create the room's inbox with a larger recipient_capacity");
}

std::uint32_t Inbox::Impl::reserve(std::uint32_t r, std::string_view to) const {
  const shm::ProcessId me = shm::self_process();
  const auto tid = std::hash<std::thread::id>{}(std::this_thread::get_id());
  const std::uint32_t start = static_cast<std::uint32_t>((tid ^ (tid >> 29) ^ me.pid) % capacity);
  for (std::uint32_t k = 0; k < capacity; ++k) {
    const std::uint32_t i = (start + k) % capacity;
    coord::MessageSlot& m = slot(i);
    std::uint64_t s = m.state.load(std::memory_order_acquire);
    if (slot_phase(s) == SlotPhase::reserved && !coord::MessageWord::holder_alive_cached(s)) {
      if (free_slot(m, s)) header->dead_writers_reclaimed.fetch_add(1, std::memory_order_relaxed);
      s = m.state.load(std::memory_order_acquire);
    } else if (slot_phase(s) == SlotPhase::ready && acknowledged(m)) {
      free_slot(m, s);
      s = m.state.load(std::memory_order_acquire);
    }
    if (slot_phase(s) != SlotPhase::free) continue;
    const std::uint64_t mine = slot_state(SlotPhase::reserved, slot_gen(s) + 1, me);
    if (!m.state.compare_exchange_strong(s, mine, std::memory_order_acq_rel)) continue;
    m.seq.store(0, std::memory_order_seq_cst);
    m.recipient.store(r + 1, std::memory_order_seq_cst);
    if (held_by(r) > per_recipient) {
      free_slot(m, mine);
      header->full_refusals.fetch_add(1, std::memory_order_relaxed);
      throw Error(Errc::no_space, "the inbox of '" + std::string(to) + "' is full: " +
                                      std::to_string(per_recipient) +
                                      " unacknowledged messages, its limit; it must read and ack them "
                                      "(`agentbus inbox --ack`); the message was not sent");
    }
    return i;
  }
  header->full_refusals.fetch_add(1, std::memory_order_relaxed);
  throw Error(Errc::no_space, "the inboxes of room '" + room.name() + "' hold " + std::to_string(capacity) +
                                  " messages, their limit; recipients must read and ack them "
                                  "(`agentbus inbox --ack`); the message was not sent");
}

std::uint32_t Inbox::Impl::held_by(std::uint32_t r) const {
  std::uint32_t held = 0;
  for (std::uint32_t j = 0; j < capacity; ++j) {
    coord::MessageSlot& o = slot(j);
    const std::uint64_t os = o.state.load(std::memory_order_seq_cst);
    if (slot_phase(os) == SlotPhase::free || o.recipient.load(std::memory_order_seq_cst) != r + 1) continue;
    if (slot_phase(os) == SlotPhase::ready && acknowledged(o)) continue;
    if (slot_phase(os) == SlotPhase::reserved && !coord::MessageWord::holder_alive_cached(os)) continue;
    ++held;
  }
  return held;
}

void Inbox::Impl::fill(std::uint32_t i, std::string_view from, std::string_view type,
                        std::string_view payload, std::optional<EventId> reply_to) const {
  coord::MessageSlot& m = slot(i);
  coord::MessageFields f{};
  f.ts_ns = shm::realtime_ns();
  f.has_reply_to = reply_to.has_value();
  f.reply_to = reply_to.value_or(0);
  f.payload_len = static_cast<std::uint32_t>(payload.size());
  f.type_len = static_cast<std::uint8_t>(type.size());
  f.from_len = static_cast<std::uint8_t>(from.size());
  std::copy_n(type.data(), type.size(), f.type);
  std::copy_n(from.data(), from.size(), f.from);
  shm::copy_to_ring(reinterpret_cast<std::byte*>(&m.fields), &f, sizeof f);
  shm::copy_to_ring(payload_of(m), payload.data(), payload.size());
}

std::uint64_t Inbox::Impl::commit(std::uint32_t i, std::uint32_t r, EventId id) const {
  coord::MessageSlot& m = slot(i);
  shm::copy_to_ring(reinterpret_cast<std::byte*>(&m.fields.event_id), &id, sizeof id);
  coord::Recipient& rec = recipients[r];
  std::uint64_t n = rec.next_seq.load(std::memory_order_acquire);
  for (;;) {
    m.seq.store(n, std::memory_order_release);
    if (rec.next_seq.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel)) break;
  }
  std::uint64_t s = m.state.load(std::memory_order_relaxed);
  const std::uint64_t ready = slot_state(SlotPhase::ready, slot_gen(s), {});
  if (slot_phase(s) != SlotPhase::reserved || !m.state.compare_exchange_strong(s, ready, std::memory_order_acq_rel))
    corrupt("message slot " + std::to_string(i) + " changed while its sender held it");
  header->stored.fetch_add(1, std::memory_order_relaxed);
  return n;
}

std::uint64_t Inbox::Impl::store_published(EventId id, std::string_view from, std::string_view to,
                                           std::string_view type, std::string_view payload,
                                           std::optional<EventId> reply_to) const {
  check_len("recipient ('to')", to, kMaxAgentBytes, false);
  check_len("event type", type, kMaxTypeBytes, false);
  check_len("sender", from, kMaxAgentBytes, true);
  check_len("inbox payload", payload, max_payload, true);
  const auto r = static_cast<std::uint32_t>(lookup(to, true));
  const std::uint32_t i = reserve(r, to);
  fill(i, from, type, payload, reply_to);
  return commit(i, r, id);
}

Inbox::Impl::Scan Inbox::Impl::scan(std::uint32_t r, bool copy) const {
  Scan out;
  coord::Recipient& rec = recipients[r];
  out.cursor = rec.cursor.load(std::memory_order_acquire);
  out.next = rec.next_seq.load(std::memory_order_acquire);
  if (out.next == 0 || out.cursor >= out.next) corrupt("recipient " + std::to_string(r) + " has cursor " +
                                                     std::to_string(out.cursor) + " >= next seq " + std::to_string(out.next));
  const std::string to(name_of(rec));
  std::string payload(max_payload, '\0');
  for (std::uint32_t i = 0; i < capacity; ++i) {
    coord::MessageSlot& m = slot(i);
    for (int attempt = 0;; ++attempt) {
      if (attempt > 1000) throw Error(Errc::timeout, "inbox message slot " + std::to_string(i) + " kept changing while read");
      const std::uint64_t s1 = m.state.load(std::memory_order_acquire);
      if (slot_phase(s1) == SlotPhase::free) break;
      if (m.recipient.load(std::memory_order_acquire) != r + 1) break;
      const std::uint64_t seq = m.seq.load(std::memory_order_acquire);
      if (seq == 0 || seq <= out.cursor || seq >= out.next) break;
      if (slot_phase(s1) == SlotPhase::reserved) {
        if (coord::MessageWord::holder_alive_cached(s1)) out.pending.insert(seq);
        break;
      }
      if (slot_phase(s1) != SlotPhase::ready) corrupt("message slot " + std::to_string(i) + " has a bad state");
      if (!copy) {
        out.ready.emplace(seq, InboxMessage{});
        break;
      }
      coord::MessageFields f;
      shm::copy_from_ring(&f, reinterpret_cast<const std::byte*>(&m.fields), sizeof f);
      const std::size_t len = std::min<std::size_t>(f.payload_len, max_payload);
      shm::copy_from_ring(payload.data(), payload_of(m), len);
      if (shm::load_after_reads(m.state) != s1) continue;
      if (f.payload_len > max_payload || f.type_len == 0 || f.type_len > sizeof f.type || f.from_len > sizeof f.from)
        corrupt("message slot " + std::to_string(i) + " has bad lengths");
      InboxMessage msg;
      msg.seq = seq;
      msg.id = f.event_id;
      msg.ts_ns = f.ts_ns;
      msg.type.assign(f.type, f.type_len);
      msg.from.assign(f.from, f.from_len);
      msg.to = to;
      if (f.has_reply_to) msg.reply_to = f.reply_to;
      msg.payload.assign(payload.data(), len);
      out.ready.emplace(seq, std::move(msg));
      break;
    }
  }
  return out;
}

std::vector<std::uint64_t> Inbox::Impl::readable(const Scan& sc, std::size_t max) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t q = sc.cursor + 1; q < sc.next && out.size() < max; ++q) {
    if (sc.ready.count(q)) out.push_back(q);
    else if (sc.pending.count(q)) break;
  }
  return out;
}

}  // namespace agentbus
