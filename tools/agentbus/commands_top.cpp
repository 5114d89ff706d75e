// commands_top.cpp — `agentbus top`: a live view of every room of a bus, redrawn once a
// second with ncurses; `q` quits. top_view.hpp builds the screen's lines from a snapshot
// (pure, unit-tested); this file takes the snapshots and draws them.
//
// Terminals: only plain curses calls (no colours, no line drawing, ASCII only, since Debian's
// narrow ncurses is what CMake links), so it works on TERM=vt100/xterm over ssh and in tmux.
// Event rate: top keeps one tailer per room and counts the events (plus the ones an overrun
// reports missed) it drained since the previous refresh; the same tailer feeds the status
// lines. Its own reader slots are left out of the readers shown.
#include "common.hpp"
#include "output.hpp"
#include "top_view.hpp"

#include <agentbus/bridge_status.hpp>
#include <agentbus/orchestration/run.hpp>

#include <agentbus/clock.hpp>

#define NCURSES_NOMACROS  // keep curses from defining move(), erase(), timeout() as macros
#include <curses.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <strings.h>

namespace agentbus::cli {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct TopArgs {
  bool once = false;
  std::string interval = "1s";
};

// What top remembers about a room between refreshes.
struct Feed {
  std::optional<Subscription> tailer;
  Clock::time_point since;
  std::deque<std::string> status;
};

bool is_status(std::string_view type) { return type.size() == 6 && ::strncasecmp(type.data(), "STATUS", 6) == 0; }

void add_status(Feed& feed, const EventView& e) {
  if (!is_status(e.type)) return;
  if (std::optional<std::string> line = status_line(e.payload, e.agent, e.ts_ns, e.imported ? e.origin.host : "")) {
    feed.status.push_back(std::move(*line));
    if (feed.status.size() > kTopStatusLines) feed.status.pop_front();
  }
}

class Watcher {
 public:
  Watcher(const Globals& g, bool live) : g_(g), live_(live) {}

  TopSnapshot snapshot() {
    TopSnapshot snap;
    snap.bus = g_.bus;
    snap.live = live_;
    snap.now_ns = realtime_ns();
    if (!bus_) {
      BusOptions o;
      o.name = g_.bus;
      o.create = false;
      o.init_timeout = 500ms;
      try {
        bus_.emplace(Bus::open(o));
      } catch (const Error& e) {
        if (e.code() != Errc::not_found) throw;
        snap.bus_found = false;
        snap.note = "no bus named '" + g_.bus + "' yet" + (live_ ? " (waiting for one)" : "");
        return snap;
      }
    }
    for (const RoomInfo& info : bus_->info().rooms) {
      try {
        snap.rooms.push_back(room(info));
      } catch (const Error& e) {
        snap.note = "room " + info.name + ": " + e.what();
      }
    }
    const bridge::BridgeStatus b = bridge::bridge_status(*bus_);
    if (b.pid != 0 || !b.rooms.empty()) {
      BridgeSummary sum{b.pid, b.connected, 0, 0, 0};
      for (const bridge::BridgeRoomStatus& r : b.rooms) {
        sum.lag_events += r.lag_events;
        sum.spooled_events += r.spooled_events;
        sum.oldest_lag_ns = std::max(sum.oldest_lag_ns, r.oldest_lag_ns);
      }
      snap.bridge = bridge_line(sum);
    }
    for (const orchestration::RunSummary& r : orchestration::list_runs(*bus_))
      if (r.state == orchestration::RunState::running && !r.start_lost)
        snap.runs.push_back(run_line({r.run_id, r.strategy, r.steps, r.driver_pid, r.driver_alive}));
    return snap;
  }

 private:
  TopRoom room(const RoomInfo& info) {
    TopRoom r;
    r.name = info.name;
    r.ring_bytes = info.ring_bytes;
    r.tail = info.tail;
    r.oldest = info.oldest;
    // A tailer whose process died holds nothing back (tailers never gate producers) and its
    // slot is reclaimed on the next attach: it is not a reader any more.
    for (const ReaderInfo& rd : info.readers)
      if (rd.pid != ::getpid() && (rd.durable || rd.alive))
        r.readers.push_back({rd.name, rd.durable, rd.alive, rd.lag_bytes});

    RoomOptions ro;
    ro.create = false;
    Room room = bus_->room(info.name, ro);
    for (const AgentInfo& a :
         or_absent<std::vector<AgentInfo>>([&] { return Presence(room, {.create = false}).who(); }, {}))
      r.agents.push_back({a.handle, a.role, a.working_on});
    or_absent<int>(
        [&] {
          TaskBoardOptions o;
          o.create = false;
          TaskBoard board(room, o);
          r.open_tasks = board.open_tasks(100000).size();
          for (const TaskState& t : board.live_claims()) r.claimed.push_back({t.id, t.type, t.claimant});
          return 0;
        },
        0);

    auto [it, created] = feeds_.try_emplace(info.name);
    Feed& feed = it->second;
    if (created) {
      // The latest status lines from before top started; then the tailer takes over.
      for (const Event& e : room.recent(512)) add_status(feed, e.view());
      if (live_) {
        try {
          feed.tailer.emplace(room.subscribe({.from = StartFrom::latest}));
        } catch (const Error&) {  // no reader slot left: no rate for this room
        }
        feed.since = Clock::now();
      }
    } else if (feed.tailer) {
      std::uint64_t events = 0;
      for (int i = 0; i < 200'000; ++i) {
        const ReadResult got = feed.tailer->next(std::chrono::nanoseconds::zero());
        if (got.status == ReadStatus::timeout) break;
        if (got.status == ReadStatus::overrun) {
          events += got.missed;
          continue;
        }
        ++events;
        add_status(feed, got.event);
      }
      const Clock::time_point now = Clock::now();
      const double secs = std::chrono::duration<double>(now - feed.since).count();
      if (secs > 0) r.rate = static_cast<double>(events) / secs;
      feed.since = now;
    }
    r.status.assign(feed.status.begin(), feed.status.end());
    return r;
  }

  const Globals& g_;
  bool live_;
  std::optional<Bus> bus_;
  std::map<std::string, Feed> feeds_;
};

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

void draw(const TopSnapshot& snap) {
  const std::size_t width = static_cast<std::size_t>(std::max(COLS - 1, 10));
  const std::size_t height = static_cast<std::size_t>(std::max(LINES, 1));
  const std::vector<std::string> lines = render_top(snap, width, height);
  erase();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const bool heading = i == 0 || lines[i].rfind("ROOM ", 0) == 0;
    if (heading) attron(A_BOLD);
    mvaddnstr(static_cast<int>(i), 0, to_ascii(lines[i]).c_str(), static_cast<int>(width));
    if (heading) attroff(A_BOLD);
  }
  refresh();
}

int run_live(const Globals& g, const TopArgs& a) {
  if (::isatty(STDIN_FILENO) != 1 || ::isatty(STDOUT_FILENO) != 1) {
    report_error("top draws on a terminal; use `agentbus top --once` to print one snapshot");
    return kExitFailure;
  }
  const auto interval = validated_ms(a.interval);
  Watcher watcher(g, true);
  TopSnapshot snap = watcher.snapshot();  // before curses takes the screen: errors print plainly
  install_stop_handlers();                // set first, so ncurses keeps ours for SIGINT/SIGTERM
  SCREEN* screen = newterm(nullptr, stdout, stdin);
  if (screen == nullptr) {
    const char* term = std::getenv("TERM");
    report_error(std::string("cannot drive terminal type '") + (term != nullptr ? term : "") +
                 "'; try TERM=xterm, or `agentbus top --once`");
    return kExitFailure;
  }
  struct Restore {
    SCREEN* screen;
    ~Restore() {
      endwin();
      delscreen(screen);
    }
  } restore{screen};
  cbreak();
  noecho();
  keypad(stdscr, TRUE);
  curs_set(0);  // ERR on terminals that cannot hide the cursor: harmless

  for (;;) {
    draw(snap);
    const Clock::time_point next = Clock::now() + interval;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
      if (left <= 0) break;
      timeout(static_cast<int>(left));
      const int ch = getch();
      if (g_stop != 0 || ch == 'q' || ch == 'Q') return 0;
      if (ch == KEY_RESIZE) draw(snap);  // ncurses has updated LINES and COLS
    }
    if (g_stop != 0) return 0;
    snap = watcher.snapshot();
  }
}

}  // namespace

void add_top_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto args = std::make_shared<TopArgs>();
  CLI::App* top = app.add_subcommand("top", "Live view of every room: event rate, tail, readers, agents, tasks, status.");
  top->add_flag("--once", args->once, "Print one snapshot as plain text and exit (no terminal needed)");
  top->add_option("--interval", args->interval, "Time between refreshes")
      ->check(duration_validator(100ms, std::chrono::hours(1)))
      ->capture_default_str();
  top->footer(
      "One line per room: events/s seen since the last refresh, tail id, share of the ring in\n"
      "use, readers and the largest reader lag (bytes behind the tail), present agents, open\n"
      "and claimed tasks. Below: each room's agents, claims, readers and latest STATUS lines\n"
      "(payload {\"ts\",\"agent_id\",\"action\",\"status\",\"detail\"}). A consumer group's gate (the\n"
      "durable reader group.NAME that holds the group's acknowledged floor) is shown as such;\n"
      "tailers of dead processes are left out. q quits; Ctrl-C too.\n"
      "Plain curses, ASCII only: works on any terminal over ssh (TERM=vt100 included).\n\n"
      "Examples:\n  agentbus top\n  agentbus --bus ci top --once");
  commands.push_back({top, [&g, args] {
                        if (!args->once) return run_live(g, *args);
                        Watcher watcher(g, false);
                        const TopSnapshot snap = watcher.snapshot();
                        // A snapshot of no bus is an unknown bus, as for every other read (exit 4);
                        // the live view waits for one instead.
                        if (!snap.bus_found) throw Error(Errc::not_found, "no bus named '" + g.bus + "'");
                        write_out(join_lines(render_top(snap, 0, 0)), true);
                        return 0;
                      }});
}

}  // namespace agentbus::cli
