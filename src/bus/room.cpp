#include "bus/reader_slots.hpp"
#include "bus/room_impl.hpp"
#include "shm/process.hpp"
#include "shm/ring_copy.hpp"

#include <agentbus/counter.hpp>
#include <agentbus/error.hpp>

#include <chrono>

namespace agentbus {

Room::Room(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

const std::string& Room::name() const noexcept { return impl_->name; }

bool Room::bus_destroyed() const noexcept { return impl_->segment->unlinked(); }

PublishResult Room::publish(std::string_view type, std::string_view agent, std::string_view payload,
                            const PublishOptions& o) {
  return impl_->ring.publish({type, agent, o.to, o.reply_to, payload, o.origin, o.reply_to_origin});
}

PublishResult Room::publish_batch(std::span<const EventIn> events, std::span<EventId> ids) {
  thread_local std::vector<shm::RecordFields> fields;
  fields.clear();
  for (const EventIn& e : events) {
    const PublishOptions& o = e.options;
    fields.push_back({e.type, e.agent, o.to, o.reply_to, e.payload, o.origin, o.reply_to_origin});
  }
  return impl_->ring.publish_batch(fields, ids);
}

bool Room::drop_reader(std::string_view durable_name) {
  shm::ReaderSlot* s = find_durable(impl_->ring, durable_name);
  if (s == nullptr) return false;
  const std::uint64_t owner = s->owner.load(std::memory_order_acquire);
  if (owner != 0 && owner != shm::pack_owner(shm::self_process()) && shm::owner_alive(owner))
    throw Error(Errc::invalid_argument, "durable reader '" + std::string(durable_name) +
                                            "' is attached by live pid " + std::to_string(owner >> 32) +
                                            "; stop that process first");
  release_reader(*s, false, 0);
  return true;
}

RoomInfo Room::info() const {
  const shm::Ring& ring = impl_->ring;
  const shm::RingControl& c = ring.control();
  RoomInfo info;
  info.name = impl_->name;
  info.ring_bytes = ring.capacity();
  info.max_record_bytes = ring.max_record();
  info.tail = ring.tail();
  info.oldest = ring.oldest();
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  info.counters = {get(c.counters.wrap_paddings), get(c.counters.dead_claims_padded),
                   get(c.counters.gaps_padded),   get(c.counters.aborted_claims),
                   get(c.counters.overruns),      get(c.counters.bus_full),
                   get(c.counters.dead_sessions_reclaimed), get(c.counters.wakeups),
                   get(c.counters.exclusive_revokes), get(c.counters.dead_writer_leases)};
  for (const shm::ReaderSlot& s : c.readers) {
    const std::uint64_t kind = s.state.load(std::memory_order_acquire) & shm::kReaderKindMask;
    if (kind != shm::kReaderTailer && kind != shm::kReaderDurable) continue;
    ReaderInfo r;
    r.durable = kind == shm::kReaderDurable;
    r.name = r.durable ? std::string(s.name, std::min<std::size_t>(s.name_len, shm::kMaxReaderName))
                       : "tailer";
    const std::uint64_t owner = s.owner.load(std::memory_order_acquire);
    r.pid = static_cast<int>(owner >> 32);
    r.alive = owner != 0 && shm::owner_alive(owner);
    r.cursor = s.cursor.load(std::memory_order_acquire);
    r.lag_bytes = info.tail > r.cursor ? info.tail - r.cursor : 0;
    info.readers.push_back(std::move(r));
  }
  return info;
}

std::vector<Counter> counter_list(const RoomCounters& c) {
  return {{"wrap_paddings", c.wrap_paddings},   {"dead_claims_padded", c.dead_claims_padded},
          {"gaps_padded", c.gaps_padded},       {"aborted_claims", c.aborted_claims},
          {"overruns", c.overruns},             {"bus_full", c.bus_full},
          {"dead_sessions_reclaimed", c.dead_sessions_reclaimed}, {"wakeups", c.wakeups},
          {"exclusive_revokes", c.exclusive_revokes}, {"dead_writer_leases", c.dead_writer_leases}};
}

}  // namespace agentbus
