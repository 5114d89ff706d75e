// The inbox: directed messages kept per recipient until acknowledged, and ask/reply.
// Layout and state machine: src/coord/inbox_layout.hpp; rules: docs/coordination.md.
#include <agentbus/inbox.hpp>

#include "bus/room_access.hpp"
#include "coord/inbox_layout.hpp"
#include "coord/region.hpp"
#include "shm/layout.hpp"
#include "shm/claim_table.hpp"
#include "shm/clock.hpp"
#include "shm/fences.hpp"
#include "shm/hash.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"
#include "shm/slot_table.hpp"

#include <agentbus/error.hpp>
#include <agentbus/presence.hpp>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <thread>
#include <unistd.h>

namespace agentbus {

using coord::SlotPhase;
using coord::slot_gen;
using coord::slot_phase;
using coord::slot_state;

namespace {

constexpr coord::RegionKind kRegion{"inbox", "#inbox", coord::kInboxMagic, coord::kInboxVersion,
                                    sizeof(coord::InboxHeader)};

using Clock = std::chrono::steady_clock;
constexpr auto kSettleWait = std::chrono::milliseconds(1000);  // another process writing a name

using shm::align64;

std::uint64_t layout_bytes(std::uint32_t capacity, std::uint32_t recipients, std::uint32_t payload,
                           std::uint64_t& recipients_offset, std::uint64_t& slots_offset,
                           std::uint64_t& stride) {
  recipients_offset = align64(sizeof(coord::InboxHeader));
  slots_offset = align64(recipients_offset + std::uint64_t(recipients) * sizeof(coord::Recipient));
  stride = align64(sizeof(coord::MessageSlot) + payload);
  return slots_offset + std::uint64_t(capacity) * stride;
}

std::uint64_t hash_name(std::string_view s) {  // FNV-1a, then splitmix64's finaliser
  std::uint64_t h = shm::fnv1a(s);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  return h;
}

void check_len(std::string_view what, std::string_view value, std::size_t max, bool allow_empty) {
  if (!allow_empty && value.empty()) throw Error(Errc::invalid_argument, std::string(what) + " is empty");
  if (value.size() > max)
    throw Error(Errc::too_large, std::string(what) + " is " + std::to_string(value.size()) +
                                     " bytes; the limit is " + std::to_string(max));
}

}  // namespace

struct Inbox::Impl {
  Room room;
  std::shared_ptr<shm::Segment> segment;
  coord::InboxHeader* header;
  coord::Recipient* recipients;
  std::byte* slots;
  std::uint64_t stride;
  std::uint32_t capacity, per_recipient, recipient_capacity, max_payload;

  coord::MessageSlot& slot(std::uint32_t i) const {
    return *reinterpret_cast<coord::MessageSlot*>(slots + std::uint64_t(i) * stride);
  }
  std::byte* payload_of(coord::MessageSlot& s) const {
    return reinterpret_cast<std::byte*>(&s) + sizeof(coord::MessageSlot);
  }
  [[noreturn]] void corrupt(const std::string& what) const {
    throw coord::corrupt_region(segment->bus(), room.name(), kRegion.noun, what);
  }

  static std::string_view name_of(const coord::Recipient& r) {
    return {r.name, std::min<std::size_t>(r.name_len, sizeof r.name)};
  }

  // The recipient entry of `name`: its index, or -1 when absent and !create.
  std::int64_t lookup(std::string_view name, bool create) const {
    if (name.empty() || name.size() > sizeof(coord::Recipient::name))
      throw Error(Errc::bad_name, "an inbox recipient name must be 1 to " +
                                      std::to_string(sizeof(coord::Recipient::name)) + " bytes");
    shm::ClaimTable<coord::Recipient> table({recipients, recipient_capacity}, {.settle_wait = kSettleWait});
    const shm::ClaimLookup found = table.find_or_claim(
        hash_name(name), create, [&](const coord::Recipient& r) { return name_of(r) == name; },
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

  coord::Recipient& recipient(std::int64_t i) const { return recipients[i]; }

  std::uint64_t cursor_of(std::uint32_t r) const { return recipients[r].cursor.load(std::memory_order_acquire); }

  // A ready slot whose message its recipient has acknowledged: free to reuse.
  bool acknowledged(coord::MessageSlot& m) const {
    const std::uint64_t rec = m.recipient.load(std::memory_order_acquire);
    const std::uint64_t seq = m.seq.load(std::memory_order_acquire);
    return rec >= 1 && rec <= recipient_capacity && seq != 0 && seq <= cursor_of(static_cast<std::uint32_t>(rec - 1));
  }

  // Frees a slot (bumping its generation) if it is still in state `s`.
  bool free_slot(coord::MessageSlot& m, std::uint64_t s) const {
    return m.state.compare_exchange_strong(s, slot_state(SlotPhase::free, slot_gen(s) + 1, {}),
                                           std::memory_order_acq_rel);
  }

  // Reserves a slot for recipient `r`; throws no_space when none is free or r's inbox is full.
  std::uint32_t reserve(std::uint32_t r, std::string_view to) const {
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
      // Count r's held messages, ours included; concurrent senders each see the others.
      std::uint32_t held = 0;
      for (std::uint32_t j = 0; j < capacity; ++j) {
        coord::MessageSlot& o = slot(j);
        const std::uint64_t os = o.state.load(std::memory_order_seq_cst);
        if (slot_phase(os) == SlotPhase::free || o.recipient.load(std::memory_order_seq_cst) != r + 1) continue;
        if (slot_phase(os) == SlotPhase::ready && acknowledged(o)) continue;
        if (slot_phase(os) == SlotPhase::reserved && !coord::MessageWord::holder_alive_cached(os)) continue;
        ++held;
      }
      if (held > per_recipient) {
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

  void fill(std::uint32_t i, std::string_view from, std::string_view type, std::string_view payload,
            std::optional<EventId> reply_to) const {
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

  // Gives the message its seq and makes it readable.
  std::uint64_t commit(std::uint32_t i, std::uint32_t r, EventId id) const {
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

  struct Scan {
    std::map<std::uint64_t, InboxMessage> ready;
    std::set<std::uint64_t> pending;  // seqs a live sender is still storing
    std::uint64_t cursor = 0, next = 1;
  };

  Scan scan(std::uint32_t r, bool copy) const {
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

  // The readable prefix after the cursor: stops at a seq a live sender is still storing and
  // skips seqs whose sender died before committing.
  static std::vector<std::uint64_t> readable(const Scan& sc, std::size_t max) {
    std::vector<std::uint64_t> out;
    for (std::uint64_t q = sc.cursor + 1; q < sc.next && out.size() < max; ++q) {
      if (sc.ready.count(q)) out.push_back(q);
      else if (sc.pending.count(q)) break;
    }
    return out;
  }

  std::uint64_t store_published(EventId id, std::string_view from, std::string_view to, std::string_view type,
                                std::string_view payload, std::optional<EventId> reply_to) const {
    check_len("recipient ('to')", to, kMaxAgentBytes, false);
    check_len("event type", type, kMaxTypeBytes, false);
    check_len("sender", from, kMaxAgentBytes, true);
    check_len("inbox payload", payload, max_payload, true);
    const auto r = static_cast<std::uint32_t>(lookup(to, true));
    const std::uint32_t i = reserve(r, to);
    fill(i, from, type, payload, reply_to);
    return commit(i, r, id);
  }
};

Inbox::Inbox(Room room, const InboxOptions& o) {
  if (o.capacity == 0 || o.capacity > (1u << 16)) throw Error(Errc::invalid_argument, "inbox capacity must be from 1 to 65536");
  if (o.per_recipient == 0 || o.per_recipient > o.capacity)
    throw Error(Errc::invalid_argument, "inbox per_recipient must be from 1 to capacity");
  if (o.recipient_capacity == 0 || o.recipient_capacity > (1u << 16))
    throw Error(Errc::invalid_argument, "inbox recipient_capacity must be from 1 to 65536");
  if (o.max_payload_bytes == 0 || o.max_payload_bytes > (1u << 20))
    throw Error(Errc::invalid_argument, "inbox max_payload_bytes must be from 1 to 1 MiB");
  std::uint64_t ro = 0, so = 0, stride = 0;
  const std::uint64_t bytes = layout_bytes(o.capacity, o.recipient_capacity, o.max_payload_bytes, ro, so, stride);
  const auto& seg = RoomAccess::segment(room);
  const coord::Region region =
      coord::Region::open(*seg, room.name(), kRegion, bytes, o.create, [&](std::span<std::byte> r) {
        auto* h = reinterpret_cast<coord::InboxHeader*>(r.data());
        h->capacity = o.capacity;
        h->per_recipient = o.per_recipient;
        h->recipient_capacity = o.recipient_capacity;
        h->max_payload_bytes = o.max_payload_bytes;
        h->slot_stride = stride;
        h->recipients_offset = ro;
        h->slots_offset = so;
        h->total_bytes = bytes;
      });

  auto* h = region.header<coord::InboxHeader>();
  std::uint64_t r2 = 0, s2 = 0, st2 = 0;
  const bool shape_ok = h->capacity >= 1 && h->capacity <= (1u << 16) && h->per_recipient >= 1 &&
                        h->per_recipient <= h->capacity && h->recipient_capacity >= 1 &&
                        h->recipient_capacity <= (1u << 16) && h->max_payload_bytes >= 1 &&
                        h->max_payload_bytes <= (1u << 20);
  region.require(shape_ok &&
                     layout_bytes(h->capacity, h->recipient_capacity, h->max_payload_bytes, r2, s2, st2) ==
                         h->total_bytes &&
                     h->total_bytes <= region.size() && r2 == h->recipients_offset && s2 == h->slots_offset &&
                     st2 == h->slot_stride,
                 "inconsistent layout");
  std::byte* base = region.bytes().data();
  impl_ = std::make_unique<Impl>(Impl{room, seg, h, reinterpret_cast<coord::Recipient*>(base + h->recipients_offset),
                                      base + h->slots_offset, h->slot_stride, h->capacity, h->per_recipient,
                                      h->recipient_capacity, h->max_payload_bytes});
}

Inbox::~Inbox() = default;
Inbox::Inbox(Inbox&&) noexcept = default;
Inbox& Inbox::operator=(Inbox&&) noexcept = default;

const Room& Inbox::room() const noexcept { return impl_->room; }

EventId Inbox::send(std::string_view from, std::string_view to, std::string_view type, std::string_view payload,
                    const SendOptions& options) {
  Impl& m = *impl_;
  check_len("recipient ('to')", to, kMaxAgentBytes, false);
  check_len("event type", type, kMaxTypeBytes, false);
  check_len("sender", from, kMaxAgentBytes, true);
  check_len("inbox payload", payload, m.max_payload, true);
  const auto r = static_cast<std::uint32_t>(m.lookup(to, true));
  const std::uint32_t i = m.reserve(r, to);  // space first: never publish what cannot be stored
  PublishResult published;
  try {
    m.fill(i, from, type, payload, options.reply_to);
    published = m.room.publish(type, from, payload, {.to = to, .reply_to = options.reply_to});
  } catch (...) {
    m.free_slot(m.slot(i), m.slot(i).state.load(std::memory_order_acquire));
    throw;
  }
  if (!published.ok()) {
    m.free_slot(m.slot(i), m.slot(i).state.load(std::memory_order_acquire));
    throw Error(Errc::no_space, "room '" + m.room.name() + "' is full (a durable reader is behind); the message to '" +
                                    std::string(to) + "' was not sent");
  }
  m.commit(i, r, published.id);
  return published.id;
}

std::uint64_t Inbox::deliver(const EventView& e) {
  return impl_->store_published(e.id, e.agent, e.to, e.type, e.payload, e.reply_to);
}

std::vector<InboxMessage> Inbox::read(std::string_view agent, std::size_t max) const {
  const std::int64_t r = impl_->lookup(agent, false);
  if (r < 0 || max == 0) return {};
  Impl::Scan sc = impl_->scan(static_cast<std::uint32_t>(r), true);
  std::vector<InboxMessage> out;
  for (const std::uint64_t q : Impl::readable(sc, max)) out.push_back(std::move(sc.ready[q]));
  return out;
}

std::uint64_t Inbox::ack(std::string_view agent, std::uint64_t upto) {
  Impl& m = *impl_;
  const std::int64_t ri = m.lookup(agent, false);
  if (ri < 0) return 0;
  const auto r = static_cast<std::uint32_t>(ri);
  // Never past a message a live sender is still storing: the agent has not seen it.
  const Impl::Scan sc = m.scan(r, false);
  std::uint64_t limit = sc.next - 1;
  if (!sc.pending.empty()) limit = std::min(limit, *sc.pending.begin() - 1);
  upto = std::min(upto, limit);
  coord::Recipient& rec = m.recipients[r];
  std::uint64_t cur = rec.cursor.load(std::memory_order_acquire);
  while (cur < upto && !rec.cursor.compare_exchange_weak(cur, upto, std::memory_order_acq_rel)) {
  }
  const std::uint64_t now = std::max(cur, upto);
  for (std::uint32_t i = 0; i < m.capacity; ++i) {
    coord::MessageSlot& s = m.slot(i);
    const std::uint64_t st = s.state.load(std::memory_order_acquire);
    if (slot_phase(st) == SlotPhase::ready && s.recipient.load(std::memory_order_acquire) == r + 1) {
      const std::uint64_t seq = s.seq.load(std::memory_order_acquire);
      if (seq != 0 && seq <= now) m.free_slot(s, st);
    }
  }
  return now;
}

std::uint64_t Inbox::cursor(std::string_view agent) const {
  const std::int64_t r = impl_->lookup(agent, false);
  return r < 0 ? 0 : impl_->cursor_of(static_cast<std::uint32_t>(r));
}

std::vector<Counter> counter_list(const InboxCounters& c) {
  return {{"held", c.held},
          {"stored", c.stored},
          {"full_refusals", c.full_refusals},
          {"dead_writers_reclaimed", c.dead_writers_reclaimed},
          {"asks_reclaimed", c.asks_reclaimed}};
}

InboxCounters Inbox::counters() const {
  const Impl& m = *impl_;
  InboxCounters c;
  for (std::uint32_t i = 0; i < m.capacity; ++i) {
    coord::MessageSlot& s = m.slot(i);
    const std::uint64_t st = s.state.load(std::memory_order_acquire);
    if (slot_phase(st) == SlotPhase::reserved || (slot_phase(st) == SlotPhase::ready && !m.acknowledged(s))) ++c.held;
  }
  c.stored = m.header->stored.load(std::memory_order_relaxed);
  c.full_refusals = m.header->full_refusals.load(std::memory_order_relaxed);
  c.dead_writers_reclaimed = m.header->dead_writers_reclaimed.load(std::memory_order_relaxed);
  c.asks_reclaimed = m.header->asks_reclaimed.load(std::memory_order_relaxed);
  return c;
}

// ---- ask / reply --------------------------------------------------------------------------

namespace {

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

// ---- free functions -----------------------------------------------------------------------

std::vector<Event> directed(Room& room, std::string_view agent, std::size_t n) {
  std::vector<Event> out;
  if (n == 0 || agent.empty()) return out;
  const EventId end = RoomAccess::ring(room).tail();
  std::deque<Event> last;
  Subscription sub = room.subscribe({.from = StartFrom::earliest, .wait = WaitStrategy::yield});
  for (;;) {
    const ReadResult got = sub.next(std::chrono::nanoseconds(0));
    if (got.status == ReadStatus::overrun) continue;
    if (!got.has_event() || got.event.id >= end) break;
    if (got.event.to != agent) continue;
    last.push_back(got.event.to_owned());
    if (last.size() > n) last.pop_front();
  }
  out.assign(std::make_move_iterator(last.rbegin()), std::make_move_iterator(last.rend()));
  return out;
}

std::uint64_t deliver_to_inbox(Room& room, EventId id, std::string_view from, std::string_view to,
                               std::string_view type, std::string_view payload, std::optional<EventId> reply_to) {
  Inbox inbox(room);
  return inbox.deliver({id, 0, type, from, to, reply_to, payload});
}

}  // namespace agentbus
