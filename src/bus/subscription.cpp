#include "bus/reader_slots.hpp"
#include "bus/room_impl.hpp"
#include "shm/ring_copy.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

namespace agentbus {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxBatchEvents = 64;
constexpr std::size_t kMaxBatchBytes = 64 << 10;
constexpr int kSpinsBeforeYield = 256;

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }


}  // namespace

struct Subscription::Impl {
  std::shared_ptr<Room::Impl> room;
  shm::ReaderSlot* slot;
  bool durable;
  WaitStrategy wait;

  struct Item {
    std::uint64_t pos, len;
    std::size_t offset;  // into `copy` (tailer) — durable readers view the ring directly
  };
  std::vector<std::byte> copy;
  std::vector<Item> batch;
  std::size_t next_item = 0;
  std::uint64_t fetch_pos;      // next position to fetch from the ring
  std::uint64_t ack_pos;        // durable: first position not yet consumed
  std::uint64_t viewed_end;     // durable: end of the event handed out last
  std::uint64_t stall_pos = ~0ull;
  Clock::time_point stall_since{};
  std::uint64_t seen_events = 0, seen_bytes = 0;
  bool closed = false;
  bool explicit_commit = false;  // durable: the cursor moves only on commit()
  // Yielding is a syscall per turn: bounded by time (SubscribeOptions), so that a reader woken
  // by its timeout (a loop checking for shutdown) costs microseconds before it sleeps again.
  std::chrono::nanoseconds yield_before_block{};

  shm::Ring& ring() const { return room->ring; }

  enum class Fill { events, nothing, overrun };
  Fill fill(ReadResult& out, bool consult_tail = true);
  ReadResult overrun(std::uint64_t lost_from);
  ReadResult skip(std::uint64_t from, std::uint64_t to);
  ReadResult deliver();
  // Durable, implicit commit: moves the cursor past everything handed out so far.
  void acknowledge();
  // The next event, without acknowledging anything (next() and poll() do that).
  ReadResult read(std::chrono::nanoseconds timeout);
  bool note_stall(bool pending, std::uint64_t pending_len);
};

Subscription::Impl::Fill Subscription::Impl::fill(ReadResult& out, bool consult_tail) {
  shm::Ring& r = ring();
  batch.clear();
  next_item = 0;
  copy.clear();
  const std::uint64_t start = fetch_pos;
  std::uint64_t pos = fetch_pos, bytes = 0;
  shm::Peek stopped = shm::Peek::empty;
  std::uint64_t stopped_len = 0;
  while (batch.size() < kMaxBatchEvents && bytes < kMaxBatchBytes) {
    shm::PeekResult p;
    try {
      p = r.peek(pos, consult_tail);
    } catch (const Error& e) {
      if (e.code() != Errc::corrupt) throw;
      if (!batch.empty()) break;  // deliver what came before it first
      out = skip(pos, r.next_intact(pos, r.tail()));
      return Fill::overrun;
    }
    if (p.kind == shm::Peek::padding) {
      pos += p.len;
      continue;
    }
    if (p.kind != shm::Peek::committed) {
      stopped = p.kind;
      stopped_len = p.len;
      break;
    }
    std::size_t offset = 0;
    if (!durable) {
      offset = copy.size();
      copy.resize(offset + p.len);
      shm::copy_from_ring(copy.data() + offset, r.at(pos), p.len);  // validated below
    }
    batch.push_back({pos, p.len, offset});
    pos += p.len;
    bytes += p.len;
  }
  if (!durable && pos != start) {
    if (r.overwritten_since(start)) {
      batch.clear();
      out = overrun(start);
      return Fill::overrun;
    }
  }
  if (batch.empty() && stopped == shm::Peek::lapped) {
    out = overrun(pos);
    return Fill::overrun;
  }
  fetch_pos = pos;
  if (!durable) slot->cursor.store(pos, std::memory_order_relaxed);
  if ((stopped != shm::Peek::unstamped || !batch.empty()) &&
      note_stall(batch.empty() && stopped == shm::Peek::pending, stopped_len)) {
    out = skip(pos, r.next_intact(pos, r.tail()));
    return Fill::overrun;
  }
  return batch.empty() ? Fill::nothing : Fill::events;
}

// An unreadable record at `from`: go on at `to`, the next plausible one.
ReadResult Subscription::Impl::skip(std::uint64_t from, std::uint64_t to) {
  ReadResult out;
  out.status = ReadStatus::skipped;
  out.missed = 1;
  out.missed_bytes = to - from;
  fetch_pos = to;
  if (durable && explicit_commit) {
    viewed_end = to;  // the reader's next commit() covers the skipped records
  } else if (durable) {
    ack_pos = viewed_end = to;
    slot->cursor.store(to, std::memory_order_release);
  } else {
    slot->cursor.store(to, std::memory_order_relaxed);
  }
  return out;
}

// Lapped: resume a sixteenth of the ring past the oldest intact record (so the producer that
// lapped us has room before it laps us again), at a record boundary found by walking from the
// oldest one, and estimate what was lost from the size of the records walked over.
ReadResult Subscription::Impl::overrun(std::uint64_t lost_from) {
  shm::Ring& r = ring();
  r.control().counters.overruns.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t pos = 0, walked_events = 0, walked_bytes = 0;
  for (int attempt = 0; attempt < 64; ++attempt) {
    pos = r.oldest();
    const std::uint64_t target = std::min(r.tail(), pos + r.capacity() / 16);
    bool lapped = false;
    walked_events = walked_bytes = 0;
    while (pos < target) {
      const shm::PeekResult p = r.peek(pos);
      if (p.kind == shm::Peek::lapped) { lapped = true; break; }
      if (p.kind != shm::Peek::committed && p.kind != shm::Peek::padding) break;
      if (p.kind == shm::Peek::committed) { ++walked_events; walked_bytes += p.len; }
      pos += p.len;
    }
    if (!lapped) break;
  }
  seen_events += walked_events;
  seen_bytes += walked_bytes;
  ReadResult out;
  out.status = ReadStatus::overrun;
  out.missed_bytes = pos > lost_from ? pos - lost_from : 0;
  if (seen_events == 0 && r.peek(pos).kind == shm::Peek::committed) {
    seen_events = 1;
    seen_bytes = r.peek(pos).len;
  }
  out.missed = seen_events == 0 ? 0 : (out.missed_bytes * seen_events + seen_bytes / 2) / seen_bytes;
  fetch_pos = pos;
  slot->cursor.store(pos, std::memory_order_relaxed);
  return out;
}

// A record stuck uncommitted past the stall timeout is padded if its claimer is confirmed
// dead; one never stamped (its producer died first, or a foreign write hit the stamp) is
// padded up to the next stamped record (Ring::repair). Returns true for the latter, which the
// reader reports as a skipped record: nobody knows what was there.
bool Subscription::Impl::note_stall(bool pending, std::uint64_t pending_len) {
  if (!pending) {
    stall_pos = ~0ull;
    return false;
  }
  const auto now = Clock::now();
  if (stall_pos != fetch_pos) {
    stall_pos = fetch_pos;
    stall_since = now;
  } else if (now - stall_since >= ring().timeouts().stall) {
    stall_since = now;
    return ring().repair(fetch_pos) && pending_len == 0;
  }
  return false;
}

ReadResult Subscription::Impl::deliver() {
  const Item& it = batch[next_item++];
  const std::byte* rec = durable ? ring().at(it.pos) : copy.data() + it.offset;
  ReadResult out;
  viewed_end = it.pos + it.len;  // consumed once next() is called again
  if (!ring().decode(rec, it.len, it.pos, out.event)) {
    out.status = ReadStatus::skipped;  // a committed stamp over an impossible header
    out.missed = 1;
    out.missed_bytes = it.len;
    return out;
  }
  out.status = ReadStatus::event;
  ++seen_events;
  seen_bytes += it.len;
  return out;
}

Subscription::Subscription(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Subscription::Subscription(Subscription&&) noexcept = default;
Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
Subscription::~Subscription() { close(); }

EventId Subscription::position() const noexcept {
  const Impl& s = *impl_;
  return s.next_item < s.batch.size() ? s.batch[s.next_item].pos : s.fetch_pos;
}

void Subscription::commit(EventId up_to) {
  Impl& s = *impl_;
  if (s.closed) throw Error(Errc::invalid_argument, "subscription is closed");
  if (!s.durable) throw Error(Errc::invalid_argument, "commit() is for durable readers; a tailer has no cursor to keep");
  const EventId read_to = position();  // everything before it was handed out, or is padding
  if (up_to < s.ack_pos || up_to > read_to)
    throw Error(Errc::invalid_argument, "commit(" + std::to_string(up_to) + ") is outside what was read: " +
                                            std::to_string(s.ack_pos) + " .. " + std::to_string(read_to));
  if (up_to == s.ack_pos) return;
  s.ack_pos = up_to;
  s.slot->cursor.store(up_to, std::memory_order_release);
}

void Subscription::close() noexcept {
  if (!impl_ || impl_->closed) return;
  impl_->closed = true;
  release_reader(*impl_->slot, impl_->durable, impl_->durable ? impl_->ack_pos : 0);
}

ReadResult Subscription::next(std::chrono::nanoseconds timeout) {
  Impl& s = *impl_;
  if (s.closed) throw Error(Errc::invalid_argument, "subscription is closed");
  s.acknowledge();
  return s.read(timeout);
}

PollResult Subscription::poll_with(EventSink sink, void* context, std::size_t limit,
                                   std::chrono::nanoseconds timeout, bool acknowledge) {
  Impl& s = *impl_;
  if (s.closed) throw Error(Errc::invalid_argument, "subscription is closed");
  s.acknowledge();
  PollResult res;
  // A caller collecting views (next_batch) must stop where the tailer's copy is refilled.
  const bool keep_views = !acknowledge;
  if (limit == 0) return res;
  for (ReadResult r = s.read(timeout);; r = s.read(std::chrono::nanoseconds::zero())) {
    if (r.status == ReadStatus::event) {
      sink(context, r.event);
      ++res.events;
    } else if (r.status == ReadStatus::overrun || r.status == ReadStatus::skipped) {
      res.overrun |= r.status == ReadStatus::overrun;
      res.missed += r.missed;
      res.missed_bytes += r.missed_bytes;
    } else {
      break;  // nothing more now
    }
    if (res.events >= limit) break;
    if (keep_views && res.events > 0 && s.next_item >= s.batch.size()) break;
  }
  if (acknowledge) s.acknowledge();
  return res;
}

PollResult Subscription::next_batch(std::vector<EventView>& out, std::size_t limit, std::chrono::nanoseconds timeout) {
  out.clear();
  return poll_with([](void* v, const EventView& e) { static_cast<std::vector<EventView>*>(v)->push_back(e); },
                   &out, limit, timeout, false);
}

void Subscription::Impl::acknowledge() {
  if (durable && !explicit_commit && ack_pos != viewed_end) {
    ack_pos = viewed_end;
    slot->cursor.store(ack_pos, std::memory_order_release);
  }
}

ReadResult Subscription::Impl::read(std::chrono::nanoseconds timeout) {
  Impl& s = *this;
  if (s.next_item < s.batch.size()) return s.deliver();

  shm::Ring& ring = s.ring();
  const auto deadline = Clock::now() + timeout;
  ReadResult out;
  Clock::time_point block_after{};
  for (int spins = 0;; ++spins) {
    // The tail tells empty from pending and lapped; reading it on every spin would take its
    // cache line from every producer's claim, so a spinning reader looks only now and then.
    switch (s.fill(out, (spins & 63) == 0)) {
      case Impl::Fill::events: return s.deliver();
      case Impl::Fill::overrun: return out;
      case Impl::Fill::nothing: break;
    }
    if (timeout <= std::chrono::nanoseconds::zero()) return out;
    if ((spins & 63) == 0 && Clock::now() >= deadline) return out;
    if (s.wait == WaitStrategy::spin || spins < kSpinsBeforeYield) {
      cpu_relax();
    } else if (s.wait == WaitStrategy::yield ||
               (spins == kSpinsBeforeYield ? (block_after = Clock::now() + s.yield_before_block, true)
                                           : Clock::now() < block_after)) {
      std::this_thread::yield();
    } else {
      // Register as a waiter, re-check, then sleep until a publisher bumps the futex word.
      // A pending record (claimer maybe dead) bounds the sleep by the stall timeout.
      const std::uint32_t seq = ring.publish_seq();
      ring.add_waiter();
      const Impl::Fill again = s.fill(out);
      if (again == Impl::Fill::nothing) {
        auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now());
        if (s.stall_pos != ~0ull) left = std::min<std::chrono::nanoseconds>(left, ring.timeouts().stall);
        ring.wait_for_publish(seq, left);
      }
      ring.remove_waiter();
      if (again == Impl::Fill::events) return s.deliver();
      if (again == Impl::Fill::overrun) return out;
    }
  }
}

Subscription Room::subscribe(const SubscribeOptions& o) {
  shm::Ring& ring = impl_->ring;
  const bool durable = !o.durable_name.empty();
  if (o.durable_name.rfind("group.", 0) == 0)
    throw Error(Errc::invalid_argument, "durable reader names starting with 'group.' belong to consumer groups");
  AttachedReader a = durable ? attach_durable(ring, o.durable_name, o)
                             : attach_tailer(ring, resolve_start(ring, o));
  auto impl = std::make_unique<Subscription::Impl>(
      Subscription::Impl{impl_, a.slot, durable, o.wait, {}, {}, 0, a.cursor, a.cursor, a.cursor});
  impl->explicit_commit = durable && o.explicit_commit;
  impl->yield_before_block = std::max<std::chrono::nanoseconds>(o.yield_before_block, std::chrono::nanoseconds::zero());
  impl->copy.reserve(kMaxBatchBytes + ring.max_record());
  return Subscription(std::move(impl));
}

}  // namespace agentbus
