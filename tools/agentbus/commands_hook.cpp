// commands_hook.cpp — Claude Code hooks (`agentbus hook session-start|user-prompt-submit|
// session-end`) and `agentbus welcome`, agentroom style. docs/hooks.md describes the wiring.
//
// A hook must never block or fail the agent that runs it. So a hook:
//  * reads stdin with a deadline and at most 1 MiB, and treats anything but a JSON object with
//    a session_id as "nothing to do";
//  * opens the bus and room without creating them (a missing bus or room: nothing to do), with
//    short bounded waits (bus initialisation, scratchpad writers, a full ring);
//  * arms a watchdog (--timeout, default 2s) that ends the process with exit 0 and no output;
//  * catches every error, prints nothing, and exits 0 (one line on stderr when
//    $AGENTBUS_HOOK_DEBUG is set).
// The per-session cursor lives in the room's scratchpad (hook_digest.hpp, session_key()) with a
// 24 h TTL, and is written only after the hook's output was written and flushed.
#include "common.hpp"
#include "hook_digest.hpp"
#include "output.hpp"
#include "session.hpp"

#include <agentbus/clock.hpp>
#include <agentbus/process.hpp>

#include <poll.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <iterator>
#include <memory>
#include <set>

namespace agentbus::cli {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

struct HookArgs {
  std::string agent;
  std::string join_window = "10m";
  std::string timeout = "2s";
};

struct WelcomeArgs {
  std::string text;
  std::string agent = "cli";
  bool show = false;
  bool clear = false;
};

void debug(std::string_view what) {
  if (std::getenv("AGENTBUS_HOOK_DEBUG") != nullptr)
    std::fprintf(stderr, "agentbus hook: %s\n", sanitize_for_terminal(what).c_str());
}

extern "C" void hook_watchdog(int) { ::_exit(0); }

// Past `limit` the hook gives up: exit 0, and whatever was still buffered is never written.
void arm_watchdog(milliseconds limit) {
  struct sigaction action {};
  action.sa_handler = hook_watchdog;
  sigemptyset(&action.sa_mask);
  sigaction(SIGALRM, &action, nullptr);
  itimerval timer{};
  timer.it_value.tv_sec = static_cast<time_t>(limit.count() / 1000);
  timer.it_value.tv_usec = static_cast<suseconds_t>(limit.count() % 1000 * 1000);
  setitimer(ITIMER_REAL, &timer, nullptr);
}

// All of stdin, read until EOF within `limit`; nullopt when it does not end in time, is over
// 1 MiB, or cannot be read. A terminal on stdin is no input (a human typing the command).
std::optional<std::string> read_stdin(milliseconds limit) {
  if (::isatty(STDIN_FILENO) == 1) return std::string();
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::string data;
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{STDIN_FILENO, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return std::nullopt;
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return data;
    data.append(buf, static_cast<std::size_t>(n));
    if (data.size() > (1u << 20)) return std::nullopt;
  }
}

// `session` and the processes above this one (parent, grandparent, ... up to init): the
// processes an agent may have named as the session of its presence.
std::set<int> session_ancestors(int session) {
  std::set<int> pids{session};
  int pid = static_cast<int>(::getppid());
  for (int depth = 0; depth < 32 && pid > 1 && pids.insert(pid).second; ++depth) {
    const std::optional<ProcessStat> stat = read_process_stat(pid);
    if (!stat) break;
    pid = stat->ppid;
  }
  return pids;
}

// Appends to $CLAUDE_ENV_FILE (Claude Code sources it before each later command of the
// session) the export lines of this agent and session, so those commands act as the same
// agent in the same session whatever shells run them. A line already in the file is not
// written again (a resumed session runs session-start again). Any failure only means no
// exports: the hook goes on.
void export_to_claude_env(const Globals& g, const HookArgs& args) {
  const char* path = std::getenv("CLAUDE_ENV_FILE");
  if (path == nullptr || *path == '\0') return;
  try {
    std::string present;
    if (std::FILE* f = std::fopen(path, "re")) {
      char buf[4096];
      for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0 && present.size() < (1u << 20);)
        present.append(buf, n);
      std::fclose(f);
    }
    std::set<std::string_view> lines;
    for (std::size_t at = 0; at < present.size();) {
      const std::size_t end = std::min(present.find('\n', at), present.size());
      lines.insert(std::string_view(present).substr(at, end - at));
      at = end + 1;
    }
    const std::string wanted = session_exports(args.agent, session_pid(g));
    std::string missing;
    for (std::size_t at = 0; at < wanted.size();) {
      const std::size_t end = wanted.find('\n', at);
      const std::string_view line = std::string_view(wanted).substr(at, end - at);
      if (lines.count(line) == 0) (missing += line) += '\n';
      at = end + 1;
    }
    if (missing.empty()) return;
    if (!present.empty() && present.back() != '\n') missing.insert(0, "\n");
    std::FILE* f = std::fopen(path, "ae");
    if (f == nullptr) {
      debug(std::string("cannot open $CLAUDE_ENV_FILE ") + path + ": " + std::strerror(errno));
      return;
    }
    const bool ok = std::fwrite(missing.data(), 1, missing.size(), f) == missing.size();
    if (std::fclose(f) != 0 || !ok) debug(std::string("cannot write $CLAUDE_ENV_FILE ") + path);
  } catch (const std::exception& e) {
    debug(std::string("no exports to $CLAUDE_ENV_FILE: ") + e.what());
  }
}

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
    if (!r.ok()) debug("SESSION_ENDED not posted: the room's ring is full");
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
      debug(e.what());
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

enum class HookKind { session_start, user_prompt_submit, session_end };

int run_hook(const Globals& g, const CLI::App& root, const HookArgs& args, HookKind kind) {
  try {
    arm_watchdog(validated_ms(args.timeout));
    const std::optional<std::string> raw = read_stdin(std::min(validated_ms(args.timeout) / 2, milliseconds(1000)));
    if (!raw) {
      debug("no complete input on stdin");
      return 0;
    }
    std::optional<HookInput> input = parse_hook_input(*raw);
    if (!input) {
      debug("stdin is not hook JSON with a session_id");
      return 0;
    }
    if (kind == HookKind::session_start) export_to_claude_env(g, args);
    HookRun run(g, root, args, std::move(*input));
    if (!run.open()) {
      debug("no such bus or room");
      return 0;
    }
    switch (kind) {
      case HookKind::session_start: return run.session_start();
      case HookKind::user_prompt_submit: return run.user_prompt_submit();
      case HookKind::session_end: return run.session_end();
    }
  } catch (const StdoutClosed&) {
    debug("stdout closed");
  } catch (const std::exception& e) {
    debug(e.what());
  } catch (...) {
    debug("unknown error");
  }
  return 0;
}

std::string read_all_stdin() {
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return text;
}

int run_welcome(const Globals& g, const WelcomeArgs& a) {
  if (a.show || a.clear) {
    std::optional<Room> room = open_existing_room(g);
    std::optional<Scratchpad> pad;
    if (room) {
      try {
        pad.emplace(*room, ScratchpadOptions{.create = false});
      } catch (const Error& e) {
        if (e.code() != Errc::not_found) throw;
      }
    }
    if (a.clear) {
      if (!pad || pad->remove(kWelcomeKey) != ScratchStatus::found) {
        report_error("no welcome pinned in room " + room_name(g));
        return kExitNotFound;
      }
      return 0;
    }
    const ScratchValue v = pad ? pad->read(kWelcomeKey) : ScratchValue{};
    if (!v.found()) {
      report_error("no welcome pinned in room " + room_name(g));
      return kExitNotFound;
    }
    write_out(sanitize_for_terminal(v.value, Newlines::keep) + "\n", true);
    return 0;
  }
  const std::string name = room_name(g);
  std::string text = a.text.empty() ? default_welcome(name) : a.text == "-" ? read_all_stdin() : a.text;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.empty() || text.size() > kMaxWelcomeBytes) {
    report_error("a welcome is 1.." + std::to_string(kMaxWelcomeBytes) + " bytes; got " + std::to_string(text.size()));
    return kExitUsage;
  }
  Room room = open_room(g);
  Scratchpad pad(room);
  const ScratchValue current = pad.read(kWelcomeKey);
  if (current.found() && current.value == text) {
    write_out("welcome in " + sanitize_for_terminal(name) + " unchanged\n", true);
    return 0;
  }
  pad.write(kWelcomeKey, text);
  touch_presence(room, a.agent);
  const PublishResult r = room.publish("WELCOME", a.agent, text);
  write_out("pinned the welcome of " + sanitize_for_terminal(name) +
                (r.ok() ? " (event " + std::to_string(r.id) + ")\n" : " (the room is full: no WELCOME event)\n"),
            true);
  return 0;
}

}  // namespace

void add_hook_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto args = std::make_shared<HookArgs>();
  auto welcome_args = std::make_shared<WelcomeArgs>();
  const std::string group = "Agent hooks";

  CLI::App* hook = app.add_subcommand("hook", "Claude Code hooks: digest at session start, news with each prompt.");
  hook->group(group);
  hook->require_subcommand(1);
  hook->footer(
      "Claude Code runs these with the hook's JSON (session_id, cwd, prompt, ...) on stdin.\n"
      "session-start prints a digest: sign-in nudge, the pinned lobby welcome, who is here,\n"
      "open tasks, inbox, and the events of the last --join-window. user-prompt-submit prints\n"
      "only what is new since the session's last prompt, and nothing when nothing is.\n"
      "session-end posts SESSION_ENDED and takes the agent out of `who`. A hook never fails the\n"
      "agent: no bus, no room, bad input or any error means no output and exit 0\n"
      "($AGENTBUS_HOOK_DEBUG=1 prints why on stderr). The room is --room/$AGENTBUS_ROOM, else\n"
      "REPO/BRANCH with REPO from --repo/$REPO_ID, else the name of the hook input's cwd.\n"
      "Wiring for .claude/settings.json: see docs/hooks.md.\n\n"
      "Example:\n"
      "  echo '{\"session_id\":\"s1\",\"cwd\":\"'$PWD'\"}' | agentbus hook session-start --agent fixer");

  const auto add = [&](const char* name, const char* help, HookKind kind, bool window, const char* footer) {
    CLI::App* cmd = hook->add_subcommand(name, help);
    cmd->footer(footer);
    cmd->add_option("--agent", args->agent, "The agent id this session posts as (excluded from its news)")
        ->envname("AGENTBUS_AGENT");
    cmd->add_option("--timeout", args->timeout, "Give up (no output, exit 0) after this long")
        ->check(duration_validator(10ms, std::chrono::hours(1)))
        ->capture_default_str();
    if (window)
      cmd->add_option("--join-window", args->join_window, "Replay the events of this last stretch of time, up to 24h")
          ->check(duration_validator())
          ->capture_default_str();
    commands.push_back({cmd, [&g, &app, args, kind] { return run_hook(g, app, *args, kind); }});
  };
  add("session-start", "SessionStart: print the room digest, set this session's cursor.", HookKind::session_start,
      true,
      "Reads the hook's JSON on stdin; never fails the session (see `agentbus hook --help`).\n\n"
      "Example:\n"
      "  echo '{\"session_id\":\"s1\",\"cwd\":\"'$PWD'\"}' | agentbus hook session-start --agent fixer --join-window 1h");
  add("user-prompt-submit", "UserPromptSubmit: print what is new since the last prompt.",
      HookKind::user_prompt_submit, false,
      "Prints nothing when nothing is new since this session's last prompt.\n\n"
      "Example:\n"
      "  echo '{\"session_id\":\"s1\",\"cwd\":\"'$PWD'\",\"prompt\":\"go\"}' | agentbus hook user-prompt-submit --agent fixer");
  add("session-end", "SessionEnd: post SESSION_ENDED and leave the room.", HookKind::session_end, false,
      "Example:\n"
      "  echo '{\"session_id\":\"s1\",\"cwd\":\"'$PWD'\"}' | agentbus hook session-end --agent fixer");

  CLI::App* welcome = app.add_subcommand("welcome", "Pin the lobby greeting session-start shows.");
  welcome->group(group);
  welcome->add_option("text", welcome_args->text, "The greeting; '-' reads stdin; default: a short how-to");
  welcome->add_option("--agent", welcome_args->agent, "Agent id the WELCOME event is from")
      ->envname("AGENTBUS_AGENT")
      ->capture_default_str();
  welcome->add_flag("--show", welcome_args->show, "Print the pinned welcome (exit 4 when none)");
  welcome->add_flag("--clear", welcome_args->clear, "Unpin it (exit 4 when none)");
  welcome->footer(
      "The welcome is kept in the room's scratchpad under \"lobby:welcome\" (no TTL) and posted\n"
      "once as a WELCOME event. Pinning the same text again changes nothing and posts nothing.\n\n"
      "Examples:\n"
      "  agentbus welcome\n"
      "  agentbus welcome 'Reviews go to reviewer-*; never push to main.' --agent lead\n"
      "  agentbus welcome --show");
  commands.push_back({welcome, [&g, welcome_args] { return run_welcome(g, *welcome_args); }});
}

}  // namespace agentbus::cli
