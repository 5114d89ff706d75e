#include "bridge/outbound.hpp"

#include "bridge/entry_codec.hpp"
#include "bridge/presence_sync.hpp"
#include "coord/task_arbiter.hpp"
#include "shm/failpoint.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <thread>

namespace agentbus::bridge {

namespace {

using namespace std::chrono_literals;

constexpr const char* kReaderName = "bridge.out";
constexpr std::size_t kMaxRememberedImports = 1 << 16;
// A spool's first record: never a ShipEntry (its count field would be far over the limit).
constexpr std::string_view kSpoolMark = "agentbus-spool incarnation ";

}  // namespace

Outbound::Outbound(Room room, RoomStateRef state, ShipTarget target, OutboundSettings settings, Link& link)
    : room_(std::move(room)),
      state_(state),
      target_(std::move(target)),
      settings_(std::move(settings)),
      link_(link),
      reader_(room_.subscribe(reader_options())),
      spool_(settings_.spool_path, settings_.spool_max_bytes) {
  spool_incarnation_ = target_.incarnation;  // a spool from before the mark: assume this bus's
  if (!spool_.empty()) {
    const std::vector<std::string> recs = spool_.read_all();
    if (!recs.empty() && recs.front().starts_with(kSpoolMark)) {
      spool_incarnation_ = recs.front().substr(kSpoolMark.size());
      spool_marked_ = true;
    }
  }
  if (spool_.torn_dropped())
    link_.log("spool " + spool_.path() + " ended in a torn record (the bridge was killed writing it); dropped: "
              "its events were never committed, so they are read again");
  note_spool();
}

void Outbound::note_spool() {
  state_->spooled_events.store(spool_.records() - (spool_marked_ ? 1 : 0), std::memory_order_relaxed);
  state_->spool_bytes.store(spool_.bytes(), std::memory_order_relaxed);
}

SubscribeOptions Outbound::reader_options() const {
  SubscribeOptions o{.from = StartFrom::earliest, .wait = WaitStrategy::block, .durable_name = kReaderName, .explicit_commit = true};
  o.yield_before_block = settings_.awake;
  return o;
}

// Recorded: the in-checkpoint covers it, or no import is in flight, so that every import of
// this bridge is covered and this one came from elsewhere (`agentbus import`).
bool Outbound::recorded_by_inbound(EventId id) const {
  const bool in_flight = state_->importing.load(std::memory_order_acquire) != 0;
  const std::optional<InPosition> cp = state_.in_checkpoint();
  return (cp && cp->local_id >= id) || !in_flight;
}

EntryOrigin Outbound::origin_of_reply(EventId reply_to) {
  if (const auto it = imported_.find(reply_to); it != imported_.end()) return it->second;
  // Not passed by this reader since it started: read the event itself. Local unless imported.
  Subscription one = room_.subscribe({.from = StartFrom::id, .from_id = reply_to});
  const ReadResult r = one.next(0ns);
  if (r.has_event() && r.event.id == reply_to && r.event.imported)
    return EntryOrigin{std::string(r.event.origin.host), r.event.origin.id};
  return EntryOrigin{settings_.host_id, reply_to};
}

std::optional<ShipEntry> Outbound::entry_for(const EventView& e) {
  if (e.imported) {
    if (imported_.size() >= kMaxRememberedImports) imported_.clear();
    imported_[e.id] = EntryOrigin{std::string(e.origin.host), e.origin.id};
    return std::nullopt;
  }
  StreamEvent s;
  s.type = e.type;
  s.agent = e.agent;
  s.to = e.to;
  s.payload = e.payload;
  s.ts_ns = e.ts_ns;
  s.origin = {settings_.host_id, e.id};
  s.task = board_ && board_->find_type(e.type).has_value();
  if (e.reply_to) s.reply_to_origin = origin_of_reply(*e.reply_to);
  return ShipEntry{e.id, encode_entry(std::move(s))};
}

// Up to `max` events, after waiting up to `wait` for the first.
void Outbound::read_batch(Batch& b, std::chrono::milliseconds wait, std::size_t max) {
  b.entries.clear();
  for (std::size_t n = 0; n < max; ++n) {
    const ReadResult r = reader_.next(n == 0 ? std::chrono::nanoseconds(wait) : 0ns);
    if (r.status == ReadStatus::timeout) break;
    // A board made before this batch's first event is seen here, so that its first task is marked.
    if (n == 0 && !board_ && coord::has_task_board(room_)) board_.emplace(room_, TaskBoardOptions{.create = false});
    if (r.has_event()) {
      if (r.event.imported && !recorded_by_inbound(r.event.id)) unrecorded_.push_back(r.event.id);
      if (std::optional<ShipEntry> entry = entry_for(r.event)) b.entries.push_back(std::move(*entry));
    }
  }
  b.commit_to = reader_.position();
  if (!board_ && !b.entries.empty() && coord::has_task_board(room_)) {
    // The board appeared while this batch was read: mark the tasks among its events now.
    board_.emplace(room_, TaskBoardOptions{.create = false});
    for (ShipEntry& entry : b.entries)
      if (entry.fields.size() > 1 && board_->find_type(entry.fields[1])) {
        entry.fields.emplace_back("task");
        entry.fields.emplace_back("1");
      }
  }
}

// How far the reader may commit: not past an imported event the inbound side has not
// recorded yet (it records right after it publishes, so this holds for a moment at most).
EventId Outbound::commit_limit(EventId wanted) {
  while (!unrecorded_.empty() && recorded_by_inbound(unrecorded_.front())) unrecorded_.pop_front();
  return unrecorded_.empty() ? wanted : std::min(wanted, unrecorded_.front());
}

void Outbound::drop_connection(const std::exception& why) {
  conn_.reset();
  cursor_.reset();  // batches sent may or may not have run: the next connection reads it again
  link_.lost(why.what());
}

bool Outbound::drain_spool() {
  if (spool_.empty()) return true;
  if (!conn_) return false;
  std::vector<ShipEntry> entries;
  for (const std::string& rec : spool_.read_all()) {
    if (std::optional<ShipEntry> e = parse_ship_entry(rec)) entries.push_back(std::move(*e));
  }
  ShipTarget target = target_;
  target.incarnation = spool_incarnation_;
  try {
    const std::span<const ShipEntry> all(entries);
    for (std::size_t at = 0; at < all.size(); at += settings_.batch_events) {
      const ShipResult r = ship(*conn_, *cursor_, target, all.subspan(at, std::min(settings_.batch_events, all.size() - at)));
      state_->out_events.fetch_add(r.added, std::memory_order_relaxed);
    }
  } catch (const Error& e) {  // connection lost or the batch refused: the spool stays, retried later
    drop_connection(e);
    return false;
  }
  shm::failpoint(shm::Failpoint::bridge_after_spool_shipped);
  spool_.clear();
  spool_incarnation_ = target_.incarnation;
  spool_marked_ = false;
  note_spool();
  return true;
}

// How many of `entries` (from the front) are in Redis or, fsynced, in the spool: the reader
// may commit up to the first of the rest.
std::size_t Outbound::ship_or_spool(std::span<const ShipEntry> entries) {
  if (entries.empty()) return 0;
  if (conn_ && spool_.empty()) {
    try {
      const ShipResult r = ship(*conn_, *cursor_, target_, entries);
      state_->out_events.fetch_add(r.added, std::memory_order_relaxed);
      shm::failpoint(shm::Failpoint::bridge_after_ship);
      return entries.size();
    } catch (const Error& e) {  // connection lost, or the batch refused (ACL, OOM): spool, retry later
      drop_connection(e);
    }
  }
  // An older incarnation's spool ships first, on its own: this bus's entries wait in the ring.
  if (!spool_.empty() && spool_incarnation_ != target_.incarnation) return 0;
  if (spool_entries(entries)) return entries.size();
  // No room for all of a big batch: as many pieces of a transaction's size as fit.
  std::size_t done = 0;
  while (entries.size() > settings_.batch_events && done < entries.size() &&
         spool_entries(entries.subspan(done, std::min(settings_.batch_events, entries.size() - done))))
    done += std::min(settings_.batch_events, entries.size() - done);
  if (done < entries.size() && state_->spool_full.fetch_add(1, std::memory_order_relaxed) == 0)
    link_.log("spool " + spool_.path() + " is full (" + std::to_string(spool_.bytes()) +
              " bytes, --spool-max); the room's events wait in the ring, and publishers will get bus_full "
              "once it fills");
  return done;
}

// Appends the entries to the spool and fsyncs; false (nothing written) when they do not fit.
bool Outbound::spool_entries(std::span<const ShipEntry> entries) {
  const bool first = spool_.empty();
  std::vector<std::string> records;
  records.reserve(entries.size() + 1);
  if (first) records.push_back(std::string(kSpoolMark) + target_.incarnation);
  for (const ShipEntry& e : entries) records.push_back(serialise(e));
  if (!spool_.append(records)) return false;
  if (first) {
    spool_incarnation_ = target_.incarnation;
    spool_marked_ = true;
  }
  shm::failpoint(shm::Failpoint::bridge_after_spool_write);
  note_spool();
  return true;
}

// Ships or spools `entries` and commits past what is safe, which leaves `entries`. True when
// that is all of them.
bool Outbound::settle(std::vector<ShipEntry>& entries, EventId commit_to) {
  const std::size_t safe = ship_or_spool(entries);
  if (safe == entries.size()) {
    commit(commit_to);
    entries.clear();
    return true;
  }
  if (safe > 0) {
    commit(entries[safe].local_id);
    entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(safe));
  }
  return false;
}

void Outbound::run(const std::atomic<bool>& stop) {
  Retry retry;
  Batch b;
  bool holding = false;  // a batch not yet in Redis or the spool is kept, not read again
  while (!stop.load(std::memory_order_relaxed)) {
    try {
      step(retry, b, holding);
    } catch (const std::exception& e) {
      // The disk refused the spool, or the room went bad: say so, keep the batch, try again.
      link_.log("room " + room_.name() + ": " + e.what() + "; retrying in 1 s");
      if (b.complete) {
        holding = true;  // a whole batch: ship or spool it again
      } else {           // a batch cut short: read it again from the cursor
        try {
          reader_.close();
          reader_ = room_.subscribe(reader_options());
          unrecorded_.clear();
          b.entries.clear();
          holding = false;
        } catch (const std::exception& again) {  // no reader slot now: the next round tries again
          link_.log("room " + room_.name() + ": cannot reopen the out reader: " + again.what());
        }
      }
      std::this_thread::sleep_for(1s);
    }
  }
  if (in_flight_ && conn_) (void)confirm_in_flight();  // else it is shipped again after a restart
  reader_.close();
}

void Outbound::commit(EventId to) {
  const EventId limit = commit_limit(to);
  committed_ = std::max(limit, committed_);
  reader_.commit(committed_);
  state_->shipped_to.store(to, std::memory_order_relaxed);
}

// Reads the reply of the batch in flight and commits past it. False when the connection went:
// the batch is then unconfirmed.
bool Outbound::confirm_in_flight() {
  if (!in_flight_) return true;
  try {
    const ShipResult r = receive_ship(*conn_, in_flight_->pending, target_);
    state_->out_events.fetch_add(r.added, std::memory_order_relaxed);
    shm::failpoint(shm::Failpoint::bridge_after_ship);
  } catch (const Error& e) {
    drop_connection(e);
    unconfirm(*in_flight_);
    in_flight_.reset();
    return false;
  }
  commit(in_flight_->commit_to);
  in_flight_.reset();
  return true;
}

// Queues `b` (read while Redis ran the batch in flight) behind the batch in flight, confirms
// that one, and only then runs `b`, which is in flight after: run behind a transaction Redis
// refused, `b` would move the checkpoint past the refused entries (a failed confirm drops the
// connection, and `b`'s queued transaction with it). False when the connection went:
// everything not confirmed is then unconfirmed, in order.
bool Outbound::send_after_in_flight(Batch& b) {
  try {
    b.pending = queue_ship(*conn_, *cursor_, target_, b.entries);
    if (confirm_in_flight()) {
      exec_ship(*conn_, b.pending);
      in_flight_ = std::move(b);
      b = Batch{};
      return true;
    }
  } catch (const Error& e) {  // lost before the one in flight was confirmed, or after
    drop_connection(e);
  }
  if (in_flight_) {  // not confirmed: it goes again, before `b`
    unconfirm(*in_flight_);
    in_flight_.reset();
  }
  unconfirm(b);
  return false;
}

// `b`'s entries join the unconfirmed ones (after them, in order), and `b` is emptied.
void Outbound::unconfirm(Batch& b) {
  for (ShipEntry& e : b.entries) unconfirmed_.push_back(std::move(e));
  unconfirmed_to_ = std::max(unconfirmed_to_, b.commit_to);
  b = Batch{};
}

// Connects when there is no connection, and reads what Redis holds of the room before
// anything is sent on it. False while there is none.
bool Outbound::connected(Retry& retry) {
  if (!conn_) conn_ = link_.connect(retry);
  if (!conn_ || cursor_) return conn_.has_value();
  try {
    cursor_ = read_cursor(*conn_, target_);
  } catch (const Error& e) {  // connection lost, or a stream key of the wrong type: back off
    drop_connection(e);
    retry.failed();
  }
  return conn_.has_value();
}

void Outbound::step(Retry& retry, Batch& b, bool& holding) {
  (void)connected(retry);
  if (conn_ && !spool_.empty() && !drain_spool()) {
    retry.failed();  // Redis refused the spool (or went): back off, never reconnect in a tight loop
    return;
  }
  const bool presence_due = std::chrono::steady_clock::now() >= presence_due_;
  if (conn_ && presence_due && confirm_in_flight()) {  // the connection carries one reply at a time here
    presence_due_ = std::chrono::steady_clock::now() + 1s;
    try {
      push_presence(*conn_, room_, settings_.key_prefix, settings_.host_id);
    } catch (const RedisDisconnected& e) {
      drop_connection(e);
    }
  }
  if (!unconfirmed_.empty() && !settle(unconfirmed_, unconfirmed_to_)) {
    // Sent before a lost connection (Redis may or may not have them), and still not safe.
    std::this_thread::sleep_until(std::max(retry.next(), std::chrono::steady_clock::now() + 20ms));
    return;
  }
  if (!holding) {
    b.complete = false;
    // Into the spool, a batch costs one fdatasync however small it is: take what the ring
    // holds, up to spool_batch_events, so that the disk's sync rate does not cap the room's.
    read_batch(b, in_flight_ ? 0ms : 100ms, conn_ ? settings_.batch_events : settings_.spool_batch_events);
    b.complete = true;
  }
  if (!holding && conn_ && spool_.empty() && !b.entries.empty()) {
    (void)send_after_in_flight(b);
    return;
  }
  if (!confirm_in_flight()) {  // nothing new to send: confirm the batch in flight on its own
    unconfirm(b);
    return;
  }
  holding = !settle(b.entries, b.commit_to);
  if (holding)  // the spool is full and Redis away: wait for either to change
    std::this_thread::sleep_until(std::max(retry.next(), std::chrono::steady_clock::now() + 20ms));
}

}  // namespace agentbus::bridge
