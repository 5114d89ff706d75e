// status_bus.cpp — StatusBus: post, subscribers (reader thread + one dispatcher per subscriber),
// recent/summary over the room's ring. See include/agentbus/status_bus.hpp for the guarantees.
#include "bus/room_access.hpp"
#include "status/dispatch_queue.hpp"
#include "status/jsonl_writer.hpp"
#include "status/status_format.hpp"

#include <agentbus/clock.hpp>
#include <agentbus/error.hpp>
#include <agentbus/status_bus.hpp>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <thread>

namespace agentbus {
namespace {

constexpr auto kPoll = std::chrono::milliseconds(50);
constexpr std::string_view kSystemAgent = "system";
constexpr std::string_view kCallbackErrorAction = "subscriber-error";
constexpr EventId kStopMarker = ~EventId{0};

struct Item {
  std::shared_ptr<const StatusEntry> entry;  // null: a marker (overrun skip, or stop)
  EventId through = 0;                       // every entry with an id <= through is handled
};

}  // namespace

struct StatusSubscription::State {
  std::weak_ptr<StatusBus::Impl> bus;
  StatusCallback callback;
  EventId start = 0;  // deliver entries with id >= start: those posted after subscribe()
  status::DispatchQueue<Item> queue;
  std::atomic<EventId> processed{0};  // every entry with id < processed has been handled
  std::atomic<bool> stop{false};   // unsubscribed: run no more callbacks
  std::atomic<bool> done{false};   // the dispatcher has exited
  std::thread thread;

  ~State() {
    if (thread.joinable()) {
      if (thread.get_id() == std::this_thread::get_id()) thread.detach();
      else thread.join();
    }
  }
};

namespace {
thread_local const StatusSubscription::State* tl_dispatching = nullptr;
}

struct StatusBus::Impl : std::enable_shared_from_this<StatusBus::Impl> {
  Room room;
  StatusBusOptions options;

  std::mutex mu;  // subs, retired, reader lifecycle
  std::vector<std::shared_ptr<StatusSubscription::State>> subs;
  std::vector<std::shared_ptr<StatusSubscription::State>> retired;  // unsubscribed from their own callback
  std::atomic<std::uint64_t> subs_version{0};
  std::thread reader;
  std::atomic<bool> reader_stop{false};
  bool closing = false;
  std::atomic<bool> closed{false};

  std::mutex sync_mu;
  std::condition_variable sync_cv;
  std::atomic<int> sync_waiters{0};

  std::atomic<std::uint64_t> delivered{0}, callback_errors{0}, overruns{0}, missed{0}, persisted{0},
      persist_errors{0};
  std::unique_ptr<status::JsonlWriter> writer;

  Impl(Room r, StatusBusOptions o) : room(std::move(r)), options(std::move(o)) {}

  PostResult post(std::string_view agent, std::string_view action, StatusLevel level, std::string_view detail,
                  std::string_view metadata);
  void start_reader(Subscription sub);
  void read_loop(Subscription sub);
  void dispatch_loop(const std::shared_ptr<StatusSubscription::State>& st);
  void report(std::string_view action, const std::string& detail) noexcept;
  void remove(const std::shared_ptr<StatusSubscription::State>& st) noexcept;
  void notify_sync() {
    if (sync_waiters.load() > 0) {
      std::lock_guard lock(sync_mu);
      sync_cv.notify_all();
    }
  }
  std::vector<StatusEntry> recent(std::size_t n, const StatusFilter& filter);
};

PostResult StatusBus::Impl::post(std::string_view agent, std::string_view action, StatusLevel level,
                                 std::string_view detail, std::string_view metadata) {
  if (closed.load(std::memory_order_relaxed)) throw Error(Errc::invalid_argument, "status bus is closed");
  if (agent.empty()) throw Error(Errc::invalid_argument, "status entry needs an agent_id");
  if (action.empty()) throw Error(Errc::invalid_argument, "status entry needs an action");
  // Reused per thread: a post allocates nothing once warm.
  thread_local std::string meta, ts, payload;
  std::string why;
  if (!status::canonical_metadata(metadata, meta, why)) throw Error(Errc::invalid_argument, why);
  ts.clear();
  status::append_iso8601(ts, realtime_ns());
  payload.clear();
  status::append_entry_json(payload, ts, agent, action, level, detail, meta);
  const PublishResult r = room.publish(kStatusEventType, agent, payload);
  return {r.ok() ? PostStatus::ok : PostStatus::bus_full, r.id};
}

void StatusBus::Impl::report(std::string_view action, const std::string& detail) noexcept {
  try {
    post(kSystemAgent, action, StatusLevel::failed, detail, {});
  } catch (...) {  // closed, or the room is full: the counters still say it
  }
}

void StatusBus::Impl::read_loop(Subscription sub) {
  std::vector<std::shared_ptr<StatusSubscription::State>> local;
  std::uint64_t version = ~0ull;
  shm::Ring& ring = RoomAccess::ring(room);
  std::uint64_t stop_at = ~0ull;
  for (;;) {
    if (stop_at == ~0ull && reader_stop.load(std::memory_order_acquire)) stop_at = ring.tail();
    if (stop_at != ~0ull && sub.position() >= stop_at) break;
    const ReadResult r = sub.next(kPoll);
    if (r.status == ReadStatus::timeout) {
      if (stop_at != ~0ull) break;
      continue;
    }
    // After next(): a subscriber added while we waited must get what we just read.
    if (const std::uint64_t v = subs_version.load(std::memory_order_acquire); v != version) {
      std::lock_guard lock(mu);
      local = subs;
      version = v;
    }
    if (r.status == ReadStatus::overrun) {
      overruns.fetch_add(1, std::memory_order_relaxed);
      missed.fetch_add(r.missed, std::memory_order_relaxed);
      const EventId through = sub.position() == 0 ? 0 : sub.position() - 1;
      for (const auto& s : local) s->queue.enqueue(Item{nullptr, through});
      report("status-overrun", "status subscribers of room '" + room.name() + "' missed about " +
                                   std::to_string(r.missed) + " events: the room lapped their reader");
      continue;
    }
    const EventView& ev = r.event;
    if (ev.type != kStatusEventType) continue;
    std::optional<StatusEntry> e = status_entry_from(ev);
    if (!e) continue;
    auto shared = std::make_shared<const StatusEntry>(std::move(*e));
    for (const auto& s : local)
      if (ev.id >= s->start && !s->stop.load(std::memory_order_relaxed)) s->queue.enqueue(Item{shared, ev.id});
  }
}

void StatusBus::Impl::dispatch_loop(const std::shared_ptr<StatusSubscription::State>& st) {
  tl_dispatching = st.get();
  for (;;) {
    Item it;
    if (!st->queue.wait_dequeue_timed(it, std::chrono::duration_cast<std::chrono::microseconds>(kPoll))) {
      if (st->stop.load(std::memory_order_acquire)) break;
      continue;
    }
    if (it.entry == nullptr && it.through == kStopMarker) break;
    if (it.entry != nullptr && !st->stop.load(std::memory_order_acquire)) {
      try {
        st->callback(*it.entry);
      } catch (const std::exception& ex) {
        callback_errors.fetch_add(1, std::memory_order_relaxed);
        if (!(it.entry->agent_id == kSystemAgent && it.entry->action == kCallbackErrorAction))
          report(kCallbackErrorAction, "a status subscriber threw on " + it.entry->agent_id + "/" +
                                           it.entry->action + ": " + ex.what());
      } catch (...) {
        callback_errors.fetch_add(1, std::memory_order_relaxed);
        if (!(it.entry->agent_id == kSystemAgent && it.entry->action == kCallbackErrorAction))
          report(kCallbackErrorAction, "a status subscriber threw a non-exception on " + it.entry->agent_id +
                                           "/" + it.entry->action);
      }
      delivered.fetch_add(1, std::memory_order_relaxed);
    }
    // `processed` is one past the last id handled, so the first event (id 0) counts too.
    if (it.through + 1 > st->processed.load(std::memory_order_relaxed)) st->processed.store(it.through + 1);
    notify_sync();
  }
  st->done.store(true);
  notify_sync();
  tl_dispatching = nullptr;
}

void StatusBus::Impl::remove(const std::shared_ptr<StatusSubscription::State>& st) noexcept {
  const bool self = st->thread.get_id() == std::this_thread::get_id();
  {
    std::lock_guard lock(mu);
    auto it = std::find(subs.begin(), subs.end(), st);
    if (it == subs.end()) return;  // already gone (close() took it)
    subs.erase(it);
    subs_version.fetch_add(1, std::memory_order_release);
    st->stop.store(true);
    st->queue.enqueue(Item{nullptr, kStopMarker});
    if (self) retired.push_back(st);
  }
  notify_sync();
  if (!self && st->thread.joinable()) st->thread.join();
}

std::vector<StatusEntry> StatusBus::Impl::recent(std::size_t n, const StatusFilter& filter) {
  std::vector<StatusEntry> out;
  if (n == 0) return out;
  // Other events share the room: ask for more than n and widen until n match or the ring ends.
  for (std::size_t want = std::max<std::size_t>(64, n * 4);; want *= 4) {
    const std::vector<Event> events = room.recent(want);
    out.clear();
    for (auto it = events.rbegin(); it != events.rend() && out.size() < n; ++it) {
      if (it->type != kStatusEventType) continue;
      if (!filter.agent_id.empty() && it->agent != filter.agent_id) continue;
      std::optional<StatusEntry> e = status_entry_from(it->view());
      if (!e || (!filter.agent_id.empty() && e->agent_id != filter.agent_id)) continue;
      if (filter.status && e->status != *filter.status) continue;
      out.push_back(std::move(*e));
    }
    if (out.size() >= n || events.size() < want) break;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

// ---- StatusSubscription ---------------------------------------------------------------------

StatusSubscription::StatusSubscription(std::shared_ptr<State> state) : state_(std::move(state)) {}
StatusSubscription::StatusSubscription(StatusSubscription&&) noexcept = default;
StatusSubscription& StatusSubscription::operator=(StatusSubscription&& other) noexcept {
  if (this != &other) {
    unsubscribe();
    state_ = std::move(other.state_);
  }
  return *this;
}
StatusSubscription::~StatusSubscription() { unsubscribe(); }

void StatusSubscription::unsubscribe() noexcept {
  std::shared_ptr<State> st = std::move(state_);
  if (!st) return;
  if (std::shared_ptr<StatusBus::Impl> bus = st->bus.lock()) bus->remove(st);
}

bool StatusSubscription::active() const noexcept {
  return state_ && !state_->stop.load() && !state_->done.load();
}

// ---- StatusBus ------------------------------------------------------------------------------

StatusBus::StatusBus(Room room, StatusBusOptions options)
    : impl_(std::make_shared<Impl>(std::move(room), std::move(options))) {
  if (!impl_->options.persist_path.empty())
    impl_->writer = std::make_unique<status::JsonlWriter>(impl_->room, impl_->options, impl_->persisted,
                                                          impl_->persist_errors);
}
StatusBus::StatusBus(StatusBus&&) noexcept = default;
StatusBus& StatusBus::operator=(StatusBus&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
StatusBus::~StatusBus() { close(); }

PostResult StatusBus::post(std::string_view agent_id, std::string_view action, std::string_view status,
                           std::string_view detail, std::string_view metadata) {
  const std::optional<StatusLevel> level = parse_status_level(status);
  if (!level)
    throw Error(Errc::invalid_argument, "unknown status '" + std::string(status.substr(0, 64)) +
                                            "': use ok, failed, pending, info or completed");
  return impl_->post(agent_id, action, *level, detail, metadata);
}

PostResult StatusBus::post(std::string_view agent_id, std::string_view action, StatusLevel status,
                           std::string_view detail, std::string_view metadata) {
  return impl_->post(agent_id, action, status, detail, metadata);
}

PostResult StatusBus::post_sync(std::string_view agent_id, std::string_view action, std::string_view status,
                                std::string_view detail, std::string_view metadata) {
  PostResult r = post(agent_id, action, status, detail, metadata);
  if (!r.ok()) return r;
  Impl& s = *impl_;
  std::vector<std::shared_ptr<StatusSubscription::State>> waiting;
  {
    std::lock_guard lock(s.mu);
    for (const auto& st : s.subs)
      if (st.get() != tl_dispatching && st->start <= r.id) waiting.push_back(st);
  }
  if (waiting.empty()) return r;
  const auto all_ran = [&] {
    for (const auto& st : waiting)
      if (!st->stop.load() && !st->done.load() && st->processed.load() <= r.id) return false;
    return true;
  };
  std::unique_lock lock(s.sync_mu);
  s.sync_waiters.fetch_add(1);
  const bool ok = s.sync_cv.wait_for(lock, s.options.sync_timeout, all_ran);
  s.sync_waiters.fetch_sub(1);
  if (!ok) r.status = PostStatus::timeout;
  return r;
}

std::vector<StatusEntry> StatusBus::recent(std::size_t n, const StatusFilter& filter) const {
  return impl_->recent(n, filter);
}

std::string StatusBus::recent_text(std::size_t n) const { return status_text(recent(n)); }

std::string StatusBus::summary() const { return status_summary(recent(impl_->options.summary_entries)); }

void StatusBus::print_summary(std::FILE* out) const {
  const std::string text = summary();
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
}

bool StatusBus::has_completed(std::string_view agent_id) const {
  return !recent(1, {std::string(agent_id), StatusLevel::completed}).empty();
}

std::optional<std::chrono::nanoseconds> StatusBus::last_completed_age(std::string_view agent_id) const {
  const std::vector<StatusEntry> last = recent(1, {std::string(agent_id), StatusLevel::completed});
  if (last.empty()) return std::nullopt;
  const std::optional<std::int64_t> ts = last.back().ts_ns();
  if (!ts) return std::nullopt;
  return std::chrono::nanoseconds(std::max<std::int64_t>(0, realtime_ns() - *ts));
}

StatusSubscription StatusBus::subscribe(StatusCallback callback) {
  if (!callback) throw Error(Errc::invalid_argument, "subscribe() needs a callback");
  Impl& s = *impl_;
  auto st = std::make_shared<StatusSubscription::State>();
  st->bus = impl_;
  st->callback = std::move(callback);
  std::lock_guard lock(s.mu);
  if (s.closing || s.closed.load()) throw Error(Errc::invalid_argument, "status bus is closed");
  shm::Ring& ring = RoomAccess::ring(s.room);
  st->start = ring.tail();
  if (!s.reader.joinable()) {
    // The reader's tailer starts at the tail now (>= start): every entry posted after we return
    // is seen.
    Subscription sub = s.room.subscribe({.from = StartFrom::latest});
    s.reader = std::thread([impl = impl_.get(), sub = std::move(sub)]() mutable { impl->read_loop(std::move(sub)); });
  }
  st->thread = std::thread([impl = impl_.get(), st] { impl->dispatch_loop(st); });
  s.subs.push_back(st);
  s.subs_version.fetch_add(1, std::memory_order_release);
  return StatusSubscription(st);
}

void StatusBus::close() {
  if (!impl_) return;
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    if (s.closing) return;
    s.closing = true;
  }
  // The reader delivers what is already in the room, then each dispatcher drains its queue.
  s.reader_stop.store(true, std::memory_order_release);
  if (s.reader.joinable()) s.reader.join();
  std::vector<std::shared_ptr<StatusSubscription::State>> subs, retired;
  {
    std::lock_guard lock(s.mu);
    subs.swap(s.subs);
    retired.swap(s.retired);
    s.subs_version.fetch_add(1, std::memory_order_release);
  }
  for (const auto& st : subs) st->queue.enqueue(Item{nullptr, kStopMarker});
  for (const auto& st : subs) {
    if (st->thread.joinable()) st->thread.join();
    st->stop.store(true);
  }
  for (const auto& st : retired)
    if (st->thread.joinable()) st->thread.join();
  s.notify_sync();
  if (s.writer) s.writer->stop(s.options.persist_drop_on_close);
  s.closed.store(true);
}

StatusBusStats StatusBus::stats() const {
  const Impl& s = *impl_;
  return {s.delivered.load(), s.callback_errors.load(), s.overruns.load(), s.missed.load(), s.persisted.load(),
          s.persist_errors.load()};
}

Room& StatusBus::room() { return impl_->room; }

}  // namespace agentbus
