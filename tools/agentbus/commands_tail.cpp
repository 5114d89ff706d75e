// commands_tail.cpp — `agentbus tail`: print a room's recent events, or follow it.
#include "common.hpp"
#include "output.hpp"

#include <algorithm>
#include <memory>

namespace agentbus::cli {
namespace {

using namespace std::chrono_literals;

struct TailArgs {
  std::size_t count = 20;
  CLI::Option* count_opt = nullptr;
  bool follow = false;
  std::string from;
  bool json = false;
  std::string timeout;
};

std::optional<SubscribeOptions> parse_from(const std::string& text) {
  SubscribeOptions options;
  if (text == "earliest") {
    options.from = StartFrom::earliest;
  } else if (text == "latest") {
    options.from = StartFrom::latest;
  } else if (const std::optional<std::uint64_t> id = parse_decimal(text)) {
    options.from = StartFrom::id;
    options.from_id = *id;
  } else {
    return std::nullopt;
  }
  return options;
}

CLI::Validator from_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        return parse_from(text) ? "" : "--from must be earliest, latest or an event id, got '" + text + "'";
      },
      "earliest|latest|ID");
}


class EventPrinter {
 public:
  EventPrinter(std::string room, bool json, bool flush_each)
      : room_(std::move(room)), json_(json), flush_each_(flush_each) {}
  void print(const EventView& event) const {
    write_out(json_ ? event_json(event, room_) : event_text(event), flush_each_);
  }

 private:
  std::string room_;
  bool json_;
  bool flush_each_;
};

// Without --follow: the last N events, or (with --from) the events from a point up to what
// was the end when the command started, so a busy room cannot keep it running.
int tail_snapshot(const Globals& g, const TailArgs& args,
                  const std::optional<SubscribeOptions>& from) {
  const EventPrinter printer(room_name(g), args.json, false);
  std::optional<Room> room = open_existing_room(g);
  if (!room) return 0;
  if (!from) {
    const RecentEvents recent = room->recent_events(args.count);
    warn_unreadable(room->name(), recent.unreadable);
    for (const Event& event : recent.events) printer.print(event.view());
    return 0;
  }
  const EventId end = room->info().tail;
  Subscription sub = room->subscribe(*from);
  const bool limited = args.count_opt->count() > 0;
  std::size_t printed = 0;
  while (sub.position() < end && (!limited || printed < args.count)) {
    // A wait, not a poll: a record may be claimed but not yet committed by a live producer.
    const ReadResult r = sub.next(1s);
    if (r.status == ReadStatus::timeout) break;
    if (r.status == ReadStatus::overrun) {
      warn_overrun(r.missed);
      continue;
    }
    if (r.status == ReadStatus::skipped) {
      warn_unreadable(room->name(), r.missed);
      continue;
    }
    printer.print(r.event);
    ++printed;
  }
  return 0;
}

int tail_follow(const Globals& g, const TailArgs& args,
                const std::optional<SubscribeOptions>& from,
                std::optional<std::chrono::nanoseconds> timeout) {
  install_stop_handlers();

  const EventPrinter printer(room_name(g), args.json, true);
  Room room = open_room(g);
  Subscription sub = room.subscribe(from.value_or(SubscribeOptions{}));
  if (!from) {
    // Subscribed first, so events published meanwhile arrive through `sub`, not twice.
    const EventId start = sub.position();
    const RecentEvents recent = room.recent_events(args.count);
    warn_unreadable(room.name(), recent.unreadable);
    for (const Event& event : recent.events)
      if (event.id < start) printer.print(event.view());
  }
  const auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                                : std::chrono::steady_clock::time_point::max();
  DestroyedBusCheck destroyed(room);
  while (g_stop == 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;

    // Bounded waits so a signal is noticed within 100 ms even if the wait resumes after EINTR.
    const ReadResult r = sub.next(std::min<std::chrono::nanoseconds>(100ms, deadline - now));
    if (r.status == ReadStatus::event) printer.print(r.event);
    if (r.status == ReadStatus::overrun) warn_overrun(r.missed);
    if (r.status == ReadStatus::skipped) warn_unreadable(room.name(), r.missed);
    // Only once caught up, so events published before the destroy are all printed.
    if (r.status == ReadStatus::timeout && destroyed.reported(g.bus)) return kExitFailure;
  }
  return 0;
}

int run_tail(const Globals& g, const TailArgs& args) {
  std::optional<SubscribeOptions> from;
  if (!args.from.empty()) from = parse_from(args.from);  // already validated by CLI11
  std::optional<std::chrono::nanoseconds> timeout;
  if (!args.timeout.empty()) timeout = parse_duration(args.timeout);
  return args.follow ? tail_follow(g, args, from, timeout) : tail_snapshot(g, args, from);
}

}  // namespace

void add_tail_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto tail = std::make_shared<TailArgs>();

  CLI::App* tail_cmd = app.add_subcommand("tail", "Print a room's recent events, or follow it.");
  tail_cmd->footer(
      "Text output is stripped of terminal escapes and control characters.\n"
      "--json prints one object per line: id, ts, room, type, agent, to, reply_to, origin\n"
      "({host, id}: where the event was first published), payload; an event imported from\n"
      "another host adds stream_id and, when it answers one by origin, reply_to_origin.\n"
      "Text output names an imported event's sender agent@host.\n"
      "With --from and no --count, prints everything from that point; with --follow, --count\n"
      "is the backlog shown before following. Ctrl-C ends --follow with exit code 0; a\n"
      "destroyed bus ends it with exit code 1 once the events before the destroy are printed.\n\n"
      "Examples:\n"
      "  agentbus tail -n 50\n"
      "  agentbus tail --follow --json | jq .payload\n"
      "  agentbus tail --from earliest --json > room.jsonl\n"
      "  agentbus tail -f --from 4096 --timeout 30s");
  // CLI11 2.1 would wrap "-3" into a huge unsigned value; refuse it instead.
  tail->count_opt = tail_cmd->add_option("-n,--count", tail->count, "How many events")
                            ->check(CLI::NonNegativeNumber)
                            ->capture_default_str();
  tail_cmd->add_flag("-f,--follow", tail->follow, "Keep printing events as they arrive");
  tail_cmd->add_option("--from", tail->from, "Start at earliest, latest or an event id")
      ->check(from_validator());
  tail_cmd->add_flag("--json", tail->json, "One JSON object per line");
  tail_cmd->add_option("--timeout", tail->timeout, "With --follow: exit (0) after this long, e.g. 30s")
      ->check(duration_validator());
  commands.push_back({tail_cmd, [&g, tail] { return run_tail(g, *tail); }});
}

}  // namespace agentbus::cli
