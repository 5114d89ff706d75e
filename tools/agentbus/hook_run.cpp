// hook_run.cpp — see hook_run.hpp. The per-session cursor lives in the room's scratchpad
// (hook_digest.hpp, session_key()) with a 24 h TTL, and is written only after the hook's output
// was written and flushed.
#include "hook_run.hpp"

#include "hook_guard.hpp"
#include "hook_session.hpp"
#include "output.hpp"

#include <agentbus/clock.hpp>

#include <algorithm>
#include <deque>
#include <optional>
#include <set>

namespace agentbus::cli {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

class HookRun {
 public:
  HookRun(const Globals& g, const CLI::App& root, const HookArgs& args, HookInput input)
      : g_(g), args_(args), in_(std::move(input)), key_(session_key(in_.session_id)) {
    Globals h = g;
    // The room: --room / $AGENTBUS_ROOM, else REPO/BRANCH where REPO is --repo / $REPO_ID,
    // else the name of the session's working directory from the hook input (Claude Code may
    // run hooks from another directory), else this process's working directory.
    const bool repo_given = root.get_option("--repo")->count() > 0 || std::getenv("REPO_ID") != nullptr;
    if (h.room.empty() && !repo_given && !in_.cwd.empty()) h.repo = repo_from_path(in_.cwd);
    room_name_ = room_name(h);
  }

  // False when there is no bus or no such room: nothing to report, nothing to create.
  bool open() {
    BusOptions bo;
    bo.name = g_.bus;
    bo.create = false;
    bo.init_timeout = 200ms;
    RoomOptions ro;
    ro.create = false;
    ro.publish_timeout = 200ms;
    try {
      room_.emplace(Bus::open(bo).room(room_name_, ro));
    } catch (const Error& e) {
      if (e.code() == Errc::not_found) return false;
      throw;
    }
    return true;
  }

  int session_start() {
    const std::optional<SessionRecord> old = read_record();
    const std::string self = self_agent(old);
    touch(self);
    const std::int64_t now = realtime_ns();
    const milliseconds window = validated_ms(args_.join_window);

    HookDigest d = base_digest(self);
    d.join_window = window;
    d.welcome = or_absent<std::optional<std::string>>(
        [&]() -> std::optional<std::string> {
          const ScratchValue v = existing_scratch()->read(kWelcomeKey);
          return v.found() ? std::optional<std::string>(v.value) : std::nullopt;
        },
        std::nullopt);
    d.agents = or_absent<std::vector<AgentInfo>>([&] { return Presence(*room_, {.create = false}).who(); }, {});
    d.signed_in = std::any_of(d.agents.begin(), d.agents.end(),
                              [&](const AgentInfo& a) { return is_own_agent(a.handle, self); });
    or_absent<int>(
        [&] {
          TaskBoardOptions o;
          o.create = false;
          TaskBoard board(*room_, o);
          std::vector<TaskState> open = board.open_tasks(1000);
          d.open_total = open.size();
          if (open.size() > 10) open.resize(10);
          d.open_tasks = std::move(open);
          d.claimed = board.live_claims();
          return 0;
        },
        0);
    d.inbox = new_inbox(self, 0);
    const Collected c = collect(std::nullopt, now - std::chrono::nanoseconds(window).count(), self,
                                inbox_ids(d.inbox), d.welcome.has_value());
    fill_events(d, c);

    write_out(hook_output("SessionStart", session_start_text(d)), true);
    SessionRecord r;
    r.cursor = c.end;
    r.inbox_seq = d.inbox.empty() ? (old && old->agent == self ? old->inbox_seq : 0) : d.inbox.back().seq;
    r.started_ns = old ? old->started_ns : now;
    r.seen = (old ? old->seen : 0) + c.total + d.inbox.size();
    r.agent = self;
    write_record(r);
    return 0;
  }

  int user_prompt_submit() {
    const std::optional<SessionRecord> old = read_record();
    const std::string self = self_agent(old);
    touch(self);
    if (!old) {
      // No cursor (session-start did not run, or the record expired): set it silently.
      write_record({room_->info().tail, 0, realtime_ns(), 0, self});
      return 0;
    }
    const std::uint64_t inbox_after = old->agent == self ? old->inbox_seq : 0;
    HookDigest d = base_digest(self);
    d.inbox = new_inbox(self, inbox_after);
    const Collected c = collect(old->cursor, std::nullopt, self, inbox_ids(d.inbox));
    fill_events(d, c);

    const std::string text = delta_text(d);
    if (!text.empty()) write_out(hook_output("UserPromptSubmit", text), true);
    SessionRecord r = *old;
    r.cursor = c.end;
    r.inbox_seq = d.inbox.empty() ? inbox_after : d.inbox.back().seq;
    r.seen += c.total + d.inbox.size();
    r.agent = self;
    write_record(r);  // also renews the 24 h TTL of an active session's record
    return 0;
  }

  int session_end() {
    const std::optional<SessionRecord> old = read_record();
    const std::string self = self_agent(old);
    const std::string agent = self.empty() ? "session-" + key_.substr(key_.rfind(':') + 1, 8) : self;
    const PublishResult r = room_->publish("SESSION_ENDED", agent, session_ended_payload(in_, old, realtime_ns()));
    if (!r.ok()) hook_debug("SESSION_ENDED not posted: the room's ring is full");
    if (!self.empty()) {
      or_absent<int>(
          [&] {
            // The agent's entry: self exactly, or self qualified by the token of a session
            // process that is one of this hook's ancestors (the agent joined from its own
            // shell or with --session-pid of the agent process, which runs this hook).
            Presence presence(*room_, {.create = false});
            if (presence.leave(self)) return 0;
            const std::set<int> mine = session_ancestors(session_pid(g_));
            for (const AgentInfo& a : presence.who())
              if (is_own_agent(a.handle, self) && mine.count(a.pid) != 0) (void)presence.leave(a.handle);
            return 0;
          },
          0);
    }
    or_absent<int>(
        [&] {
          (void)existing_scratch()->remove(key_);
          return 0;
        },
        0);
    return 0;
  }

 private:
  struct Collected {
    std::deque<Event> shown;
    std::uint64_t total = 0;
    std::uint64_t missed = 0;
    EventId end = 0;  // the new cursor: the first event not looked at
  };

  std::string self_agent(const std::optional<SessionRecord>& record) const {
    if (!args_.agent.empty()) return args_.agent;
    return record ? record->agent : std::string();
  }

  // agentroom refreshes presence on activity: a prompt is the agent being active.
  void touch(const std::string& self) {
    if (self.empty()) return;
    try {
      touch_presence(*room_, self);
    } catch (const Error& e) {
      hook_debug(e.what());
    }
  }

  HookDigest base_digest(const std::string& self) const {
    HookDigest d;
    d.room = room_name_;
    d.self = self;
    return d;
  }

  std::optional<Scratchpad> existing_scratch() const {
    ScratchpadOptions o;
    o.create = false;
    o.busy_timeout = 200ms;
    return Scratchpad(*room_, o);  // Error{not_found} when the room has none
  }

  std::optional<SessionRecord> read_record() const {
    return or_absent<std::optional<SessionRecord>>(
        [&]() -> std::optional<SessionRecord> {
          const ScratchValue v = existing_scratch()->read(key_);
          return v.found() ? decode_record(v.value) : std::nullopt;
        },
        std::nullopt);
  }

  void write_record(const SessionRecord& r) {
    ScratchpadOptions o;
    o.busy_timeout = 200ms;
    Scratchpad(*room_, o).write(key_, encode_record(r), kCursorTtl);
  }

  // Messages in self's inbox after seq `after` (and after its acknowledged cursor), oldest
  // first, at most kHookMaxEvents.
  std::vector<InboxMessage> new_inbox(const std::string& self, std::uint64_t after) {
    if (self.empty()) return {};
    std::vector<InboxMessage> out = or_absent<std::vector<InboxMessage>>(
        [&] { return Inbox(*room_, InboxOptions{.create = false}).read(self, 256); }, {});
    std::erase_if(out, [&](const InboxMessage& m) { return m.seq <= after; });
    if (out.size() > kHookMaxEvents) out.resize(kHookMaxEvents);
    return out;
  }

  static std::set<EventId> inbox_ids(const std::vector<InboxMessage>& inbox) {
    std::set<EventId> ids;
    for (const InboxMessage& m : inbox) ids.insert(m.id);
    return ids;
  }

  // Events from `from` (nullopt: the oldest in the ring) up to the tail as it was when the
  // scan started, at or after `min_ts` when given; self's own events, those shown as inbox
  // messages, and (with skip_welcome) WELCOME events are passed over. Keeps the newest kHookMaxEvents.
  Collected collect(std::optional<EventId> from, std::optional<std::int64_t> min_ts, const std::string& self,
                    const std::set<EventId>& skip, bool skip_welcome = false) {
    Collected c;
    const EventId tail = room_->info().tail;
    c.end = tail;
    EventId start = from.value_or(0);
    if (from && *from >= tail) return c;  // nothing new (or a cursor from a bus since recreated)
    std::optional<Subscription> sub;
    try {
      if (from) sub.emplace(room_->subscribe({.from = StartFrom::id, .from_id = *from}));
    } catch (const Error& e) {
      if (e.code() != Errc::invalid_argument) throw;  // not an event boundary: scan from the oldest
    }
    if (!sub) sub.emplace(room_->subscribe({.from = StartFrom::earliest}));
    for (std::size_t guard = 0; guard < 4'000'000; ++guard) {
      if (sub->position() >= tail) break;
      const ReadResult r = sub->next(std::chrono::nanoseconds::zero());
      if (r.status == ReadStatus::timeout) {
        c.end = sub->position();  // a record still being written: look again next time
        break;
      }
      if (r.status == ReadStatus::overrun) {
        c.missed += r.missed;
        continue;
      }
      const EventView& v = r.event;
      if (v.id >= tail) break;
      if (v.id < start || (min_ts && v.ts_ns < *min_ts)) continue;
      if (is_own_agent(v.agent, self) || skip.count(v.id) != 0) continue;
      if (skip_welcome && v.type == "WELCOME") continue;  // the pinned welcome is shown already
      ++c.total;
      c.shown.push_back(v.to_owned());
      if (c.shown.size() > kHookMaxEvents) c.shown.pop_front();
    }
    return c;
  }

  static void fill_events(HookDigest& d, const Collected& c) {
    d.events.assign(c.shown.begin(), c.shown.end());
    d.events_total = c.total;
    d.missed = c.missed;
  }

  const Globals& g_;
  const HookArgs& args_;
  HookInput in_;
  std::string key_;
  std::string room_name_;
  std::optional<Room> room_;
};

}  // namespace

int run_hook_event(const Globals& g, const CLI::App& root, const HookArgs& args, HookKind kind, HookInput input) {
  HookRun run(g, root, args, std::move(input));
  if (!run.open()) {
    hook_debug("no such bus or room");
    return 0;
  }
  switch (kind) {
    case HookKind::session_start: return run.session_start();
    case HookKind::user_prompt_submit: return run.user_prompt_submit();
    case HookKind::session_end: return run.session_end();
  }
  return 0;
}

}  // namespace agentbus::cli
