#include "bridge/inbound.hpp"

#include "bridge/presence_sync.hpp"
#include "bridge/stream_keys.hpp"
#include "coord/task_arbiter.hpp"
#include "shm/failpoint.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <thread>
#include <utility>

namespace agentbus::bridge {

namespace {

using namespace std::chrono_literals;

constexpr auto kBlock = 500ms;
constexpr std::size_t kReadCount = 256;
constexpr std::size_t kMaxRemembered = 1 << 16;
constexpr auto kFullRetry = 50ms;  // a full room's imports are tried again this often
constexpr std::size_t kMaxBatch = 64;  // entries per publish_batch (kept well under half a small ring)

}  // namespace

Inbound::Inbound(std::string host_id, Link& link, std::chrono::microseconds awake)
    : host_(std::move(host_id)), link_(link), awake_(awake) {}

void Inbound::add_room(Room room, RoomStateRef state, std::string stream_key) {
  auto m = std::make_unique<Mirror>(Mirror{std::move(room), state, std::move(stream_key), {}, 0, {}, 0, {}, {}, {}, {}, {}, false});
  const RoomInfo info = m->room.info();
  m->payload_limit = info.max_record_bytes;
  m->key_prefix = room_key_prefix(m->room.name());
  // Recover the last imported entry: the checkpoint, then anything imported after it.
  const std::optional<InPosition> cp = state.in_checkpoint();
  if (cp) m->last = cp->stream;
  SubscribeOptions from{.from = StartFrom::earliest};
  if (cp && cp->local_id >= info.oldest) from = {.from = StartFrom::id, .from_id = cp->local_id};
  Subscription scan = m->room.subscribe(from);
  std::optional<EventId> newest_uncovered;  // an import past the checkpoint: the bridge died before writing it
  for (;;) {
    const ReadResult r = scan.next(0ns);
    if (r.status == ReadStatus::timeout) break;
    if (!r.has_event() || !r.event.imported) continue;
    remember(*m, EntryOrigin{std::string(r.event.origin.host), r.event.origin.id}, r.event.id);
    if (r.event.origin.stream > m->last) m->last = r.event.origin.stream;
    if (!cp || r.event.id > cp->local_id) newest_uncovered = r.event.id;
    // Published but maybe not delivered when the bridge died: the checkpoint did not cover it.
    if (!cp || r.event.id > cp->local_id) {
      if (!r.event.to.empty()) deliver(*m, r.event, true);
      const bool task = coord::has_task_board(m->room) && TaskBoard(m->room, {.create = false}).find_type(r.event.type);
      apply_to_board(*m, r.event, task, EntryOrigin{std::string(r.event.origin.host), r.event.origin.id});
    }
  }
  // Record what the scan found, so that the checkpoint covers it: the out reader never commits
  // past an import the checkpoint does not cover, and without this it would wait for the next
  // import into this room, holding the ring meanwhile (publishers get bus_full).
  if (newest_uncovered) state.set_in_checkpoint({m->last, *newest_uncovered});
  state->importing.store(0, std::memory_order_release);  // a killed bridge may have left it set
  std::lock_guard lock(mutex_);
  mirrors_.push_back(std::move(m));
}

void Inbound::remember(Mirror& m, const EntryOrigin& o, EventId local) {
  if (m.local_of.size() >= kMaxRemembered) m.local_of.erase(m.local_of.begin());
  m.local_of[{o.host, o.id}] = local;
}

std::optional<EventId> Inbound::local_id_of(Mirror& m, const EntryOrigin& o) const {
  if (o.host == host_) return o.id;  // one of ours: its origin id is its id here
  const auto it = m.local_of.find({o.host, o.id});
  if (it == m.local_of.end()) return std::nullopt;
  return it->second;
}

void Inbound::deliver(Mirror& m, const EventView& published, bool unless_held) {
  try {
    if (!m.inbox) m.inbox.emplace(m.room);
    if (unless_held)
      for (const InboxMessage& held : m.inbox->read(published.to, 1 << 16))
        if (held.id == published.id) return;
    (void)m.inbox->deliver(published);
  } catch (const Error& e) {  // a full inbox: the event stays in the room (`agentbus directed`)
    link_.log("could not store event " + std::to_string(published.id) + " in the inbox of " + std::string(published.to) +
              " in room " + m.room.name() + ": " + e.what());
  }
}

// Idempotent, so that the restart scan may apply an import again.
void Inbound::apply_to_board(Mirror& m, const EventView& published, bool task, const EntryOrigin& origin) {
  const bool done = published.type == "TASK_DONE" && published.reply_to;
  if (!task && !done) return;
  try {
    if (!m.board && (task || coord::has_task_board(m.room))) {
      m.board.emplace(m.room);
      coord::attach_arbiter(*m.state);  // claims of it are decided through Redis at once
    }
    if (!m.board) return;
    if (task)
      coord::import_task(*m.board, published.id, published.type, published.agent, published.payload, published.ts_ns,
                         origin.host, origin.id);
    else
      (void)coord::complete_imported(*m.board, *published.reply_to, std::string(published.agent) + "@" + origin.host,
                                     published.payload);
  } catch (const Error& e) {  // a full table: the event stays in the room, not as a task
    link_.log("room " + m.room.name() + ": event " + std::to_string(published.id) + " from " + origin.host +
              " not applied to the task board: " + e.what());
  }
}

// An entry to publish, or nothing: an echo or a malformed entry, counted (and m.last moved past it).
std::optional<Inbound::Pending> Inbound::classify(Mirror& m, StreamId id, ReplyView fields) {
  m.last = id;
  if (entry_origin_host(fields) == host_) {  // shipped from here: never echoed back, nor decoded
    m.state->echoes_skipped.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  DecodedEntry d = decode_entry_fields(fields, m.payload_limit);
  if (!d.ok()) {
    m.state->rejected.fetch_add(1, std::memory_order_relaxed);
    if (m.rejected_logged++ < 10 || m.rejected_logged % 1000 == 0)
      link_.log("skipped entry " + id.to_string() + " of " + m.key + ": " + d.rejection + " (" +
                std::to_string(m.state->rejected.load(std::memory_order_relaxed)) + " skipped so far)");
    return std::nullopt;
  }
  Pending p{id, std::move(*d.event), {}};
  if (p.event.reply_to_origin) p.reply_to = local_id_of(m, *p.event.reply_to_origin);
  return p;
}

PublishOptions Inbound::options_of(const Pending& p) {
  const StreamEvent& e = p.event;
  PublishOptions o;
  o.to = e.to;
  o.origin = OriginRef{e.origin.host, e.origin.id, p.id};
  if (p.reply_to)
    o.reply_to = *p.reply_to;
  else if (e.reply_to_origin)
    o.reply_to_origin = OriginRef{e.reply_to_origin->host, e.reply_to_origin->id, {}};
  return o;
}

// What follows a publish: the inbox copy, the task board, then the in-checkpoint.
void Inbound::record(Mirror& m, std::span<const Pending> batch, std::span<const EventId> ids) {
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const StreamEvent& e = batch[i].event;
    EventView v;
    v.id = ids[i];
    v.type = e.type;
    v.agent = e.agent;
    v.to = e.to;
    v.reply_to = batch[i].reply_to;
    v.payload = e.payload;
    v.ts_ns = e.ts_ns;
    if (!e.to.empty()) deliver(m, v, false);
    apply_to_board(m, v, e.task, e.origin);
    remember(m, e.origin, ids[i]);
  }
  m.state.set_in_checkpoint({batch.back().id, ids.back()});
  m.state->in_events.fetch_add(batch.size(), std::memory_order_relaxed);
  if (std::exchange(m.full_said, false)) link_.log("room " + m.room.name() + " takes imports again");
}

// Publishes `batch` (entries read after `before`) as one publish_batch; an entry the room
// refuses (too large for it) makes it go one at a time, so that only that one is skipped.
// False when the room is full: nothing more is published, and m.last goes back to the
// first entry not published, so that it is read again later.
bool Inbound::publish(Mirror& m, std::vector<Pending>& batch, StreamId before) {
  if (batch.empty()) return true;
  m.state->importing.store(1, std::memory_order_seq_cst);
  struct Done {  // after the checkpoint, or when nothing was published
    RoomStateRef s;
    ~Done() { s->importing.store(0, std::memory_order_release); }
  } done{m.state};
  std::vector<EventIn> in;
  in.reserve(batch.size());
  for (const Pending& p : batch) in.push_back({p.event.type, p.event.agent, p.event.payload, options_of(p)});
  std::vector<EventId> ids(batch.size());
  bool one_by_one = false;
  try {
    const PublishResult r = m.room.publish_batch(in, ids);
    if (r.ok()) {
      shm::failpoint(shm::Failpoint::bridge_after_import_publish);
      record(m, batch, ids);
      batch.clear();
      return true;
    }
  } catch (const Error&) {  // an event this room refuses, or a batch over half its ring
    one_by_one = true;
  }
  if (one_by_one) {
    bool full = false;
    for (std::size_t i = 0; i < batch.size() && !full; ++i) {
      PublishResult r;
      try {
        r = m.room.publish(in[i].type, in[i].agent, in[i].payload, in[i].options);
      } catch (const Error& err) {  // fits Redis, not this room (a smaller max record)
        m.state->rejected.fetch_add(1, std::memory_order_relaxed);
        link_.log("skipped entry " + batch[i].id.to_string() + " of " + m.key + ": " + err.what());
        continue;
      }
      if (!r.ok()) {
        if (i > 0) before = batch[i - 1].id;
        full = true;
        continue;
      }
      shm::failpoint(shm::Failpoint::bridge_after_import_publish);
      record(m, std::span(batch).subspan(i, 1), std::span(&r.id, 1));
    }
    if (!full) {
      batch.clear();
      return true;
    }
  }
  // Full: a durable reader there holds the ring. The entries wait in Redis, and the other
  // rooms are not held up by this one.
  if (!std::exchange(m.full_said, true))
    link_.log("room " + m.room.name() + " is full (a durable reader holds it); its imports wait after " +
              before.to_string() + ", the other rooms go on");
  m.full_until = std::chrono::steady_clock::now() + kFullRetry;
  m.last = before;
  batch.clear();
  return false;
}

void Inbound::read_once(RedisConnection& conn) {
  std::vector<std::string> args = {"XREAD", "COUNT", std::to_string(kReadCount), "BLOCK",
                                   std::to_string(kBlock.count()), "STREAMS"};
  std::vector<Mirror*> order;
  {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    bool set_aside = false;
    for (const auto& m : mirrors_) {
      if (m->full_until && now >= *m->full_until) m->full_until.reset();
      const bool aside = (m->wrong_type_until && now < *m->wrong_type_until) || m->full_until;
      set_aside |= aside;
      if (!aside) order.push_back(m.get());
    }
    if (order.empty()) {  // none mirrored yet (the bridge adds them as they appear), or all set aside
      std::this_thread::sleep_for(set_aside ? kFullRetry : kBlock);
      return;
    }
  }
  for (Mirror* m : order) args.push_back(m->key);
  for (Mirror* m : order) args.push_back(m->last.to_string());
  const std::vector<std::string_view> argv(args.begin(), args.end());
  const RedisReply reply = conn.command(argv);
  if (reply.is_nil()) return;  // nothing within the block time
  if (reply.is_error()) {
    if (reply.error().value_or("").starts_with("WRONGTYPE")) return set_aside_wrong_types(conn, order);
    throw Error(Errc::system, "XREAD: " + std::string(reply.error().value_or("")));
  }
  for (std::size_t s = 0; s < reply.size(); ++s) {
    const ReplyView stream = reply.at(s);
    const std::optional<std::string_view> key = stream.at(0).string();
    Mirror* m = nullptr;
    for (Mirror* c : order)
      if (key && c->key == *key) m = c;
    if (!m) continue;
    const ReplyView entries = stream.at(1);
    // One publish_batch per run of entries; a run ends before an entry that answers one in it
    // (its reply_to then resolves to the local id) and at kMaxBatch.
    std::vector<Pending> batch;
    StreamId before = m->last;
    bool full = false;
    for (std::size_t i = 0; i < entries.size() && !full; ++i) {
      const ReplyView entry = entries.at(i);
      const std::optional<std::string_view> id_text = entry.at(0).string();
      const std::optional<StreamId> id = id_text ? StreamId::parse(*id_text) : std::nullopt;
      if (!id) continue;  // Redis gives every entry an id; anything else is not an entry
      if (stop_ && stop_->load(std::memory_order_relaxed)) return;
      const StreamId prev = m->last;
      std::optional<Pending> p = classify(*m, *id, entry.at(1));
      if (!p) continue;
      const bool answers_one = p->event.reply_to_origin &&
                               std::any_of(batch.begin(), batch.end(), [&](const Pending& q) {
                                 return q.event.origin == *p->event.reply_to_origin;
                               });
      if (answers_one || batch.size() >= kMaxBatch) {
        full = !publish(*m, batch, before);  // full: the rest of this room's entries wait too
        if (full) break;
        before = prev;
        p = classify(*m, *id, entry.at(1));  // again: the reply_to it answers is local now
        if (!p) continue;
      }
      batch.push_back(std::move(*p));
    }
    if (!full) (void)publish(*m, batch, before);
  }
}

// XREAD refused a key that is not a stream: find which, and leave those rooms out for a while
// (logged once per look), so that the other rooms go on importing.
void Inbound::set_aside_wrong_types(RedisConnection& conn, const std::vector<Mirror*>& order) {
  for (Mirror* m : order) {
    const RedisReply type = conn.command({"TYPE", m->key});
    const std::string_view t = type.status().value_or(type.string().value_or(""));
    if (t == "stream" || t == "none") {
      m->wrong_type_until.reset();
      continue;
    }
    if (!m->wrong_type_until)
      link_.log("room " + m->room.name() + ": " + m->key + " in Redis is a " + std::string(t) +
                ", not a stream; not importing it (the other rooms go on) until it is one again");
    m->wrong_type_until = std::chrono::steady_clock::now() + 10s;
  }
}

void Inbound::pull_all_presence(RedisConnection& conn) {
  std::vector<Mirror*> order;
  {
    std::lock_guard lock(mutex_);
    for (const auto& m : mirrors_) order.push_back(m.get());
  }
  for (Mirror* m : order) write_remote_agents(*m->state, pull_presence(conn, m->key_prefix, host_));
}

void Inbound::run(const std::atomic<bool>& stop) {
  stop_ = &stop;
  Retry retry;
  std::optional<RedisConnection> conn;
  while (!stop.load(std::memory_order_relaxed)) {
    if (!conn) {
      conn = link_.connect(retry);
      if (!conn) {
        std::this_thread::sleep_until(std::min(retry.next(), std::chrono::steady_clock::now() + 200ms));
        continue;
      }
      conn->set_command_timeout(kBlock + link_.timeout());
      conn->set_awake(awake_);
    }
    try {
      if (std::chrono::steady_clock::now() >= presence_due_) {
        presence_due_ = std::chrono::steady_clock::now() + 1s;
        pull_all_presence(*conn);
      }
      read_once(*conn);
    } catch (const RedisDisconnected& e) {
      conn.reset();
      link_.lost(e.what());
    } catch (const Error& e) {  // Redis refused (WRONGTYPE, NOPERM, OOM, ...): back off, as for an outage
      link_.lost(e.what());
      conn.reset();
      retry.failed();
    } catch (const std::exception& e) {  // never let the thread die: log, wait, go on
      link_.log(std::string("import: ") + e.what() + "; retrying in 1 s");
      conn.reset();
      std::this_thread::sleep_for(1s);
    }
  }
}

}  // namespace agentbus::bridge
