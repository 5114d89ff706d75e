// The inbox: directed messages kept per recipient until acknowledged, and ask/reply. This
// file holds the opener and the public calls; the recipient table and message slots are in
// inbox_messages.cpp, ask/reply in inbox_ask.cpp (see inbox_impl.hpp). Layout and state
// machine: src/coord/inbox_layout.hpp; rules: docs/coordination.md.
#include <agentbus/inbox.hpp>

#include "bus/room_access.hpp"
#include "coord/inbox_impl.hpp"
#include "coord/inbox_layout.hpp"
#include "coord/region.hpp"
#include "shm/layout.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <deque>

namespace agentbus {

using coord::SlotPhase;
using coord::slot_phase;
using coord::check_len;
using coord::inbox::kRegion;

namespace {

using shm::align64;

std::uint64_t layout_bytes(std::uint32_t capacity, std::uint32_t recipients, std::uint32_t payload,
                           std::uint64_t& recipients_offset, std::uint64_t& slots_offset,
                           std::uint64_t& stride) {
  recipients_offset = align64(sizeof(coord::InboxHeader));
  slots_offset = align64(recipients_offset + std::uint64_t(recipients) * sizeof(coord::Recipient));
  stride = align64(sizeof(coord::MessageSlot) + payload);
  return slots_offset + std::uint64_t(capacity) * stride;
}

}  // namespace

std::optional<Inbox> Inbox::find(Room room) {
  if (!coord::Region::find(*RoomAccess::segment(room), room.name(), kRegion, 0, false, nullptr)) return std::nullopt;
  InboxOptions existing;
  existing.create = false;
  return Inbox(std::move(room), existing);
}

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
