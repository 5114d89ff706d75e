// commands_room.cpp — post, tail, info, destroy: the room and the bus themselves.
#include "common.hpp"
#include "output.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <memory>
#include <system_error>

namespace agentbus::cli {
namespace {

using namespace std::chrono_literals;

struct PostArgs {
  std::string type;
  std::string payload;
  std::string agent = "cli";
  std::string to;
  EventId reply_to = 0;
  CLI::Option* reply_to_opt = nullptr;
  bool from_stdin = false;
};

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

// The library's too_large advice names a RoomOptions field; a CLI user needs the flag.
[[noreturn]] void throw_too_large(const Room& room, const Error& e) {
  const std::string_view what = e.what();
  if (what.rfind("payload is", 0) != 0) throw e;  // the type or an agent id: nothing to advise
  throw Error(Errc::too_large,
              std::string(what.substr(0, what.find(" ("))) + " (room " + room.name() + " takes records up to " +
                  human_bytes(room.info().max_record_bytes) +
                  ", fields included, and keeps that limit); post to a room created with a larger limit, "
                  "e.g. `agentbus --room " + room.name() + "-big --max-record-bytes 1MiB post ...`, or put the "
                  "data in a file and post its path");
}

// One event; its id, or nullopt when the ring stayed full (a durable reader not keeping up).
std::optional<EventId> post_one(Room& room, const PostArgs& args, std::string_view payload) {
  PublishOptions options;
  options.to = args.to;
  if (args.reply_to_opt->count() > 0) options.reply_to = args.reply_to;
  try {
    // An event of a registered task type is a task: it goes onto the room's task board.
    const bool directed = !options.to.empty() || options.reply_to.has_value();
    if (const auto task_id = directed ? std::nullopt : post_if_task(room, args.type, args.agent, payload))
      return task_id;
    if (!options.to.empty()) {
      // Directed: published and kept in the recipient's durable inbox, or neither.
      SendOptions send;
      send.reply_to = options.reply_to;
      return Inbox(room).send(args.agent, options.to, args.type, payload, send);
    }
    const PublishResult result = room.publish(args.type, args.agent, payload, options);
    if (!result.ok()) return std::nullopt;
    return result.id;
  } catch (const Error& e) {
    if (e.code() == Errc::too_large) throw_too_large(room, e);
    throw;
  }
}

std::string full_message(const Room& room) {
  return "room " + room.name() + " is full: a durable reader is not keeping up; see `agentbus info` for "
         "readers and their lag";
}

// --stdin: one event per line, ids printed in order. Empty lines are skipped (a file's last
// newline is not an event). A line too large for the room is reported with its number and the
// rest are still published; a full ring stops the batch at that line, since every later post
// would wait out the same timeout. Either way the exit is 1 and stderr says which lines were
// not published, so nothing is lost without a word.
int post_lines(Room& room, const PostArgs& args) {
  constexpr std::size_t kLinesNamed = 10;  // too-large lines reported one by one; then a count
  std::string ids;
  std::vector<std::size_t> too_large;
  std::size_t line_no = 0;
  char* buf = nullptr;
  std::size_t cap = 0;
  struct FreeLine {
    char*& p;
    ~FreeLine() { std::free(p); }
  } free_line{buf};
  for (ssize_t n; (n = ::getline(&buf, &cap, stdin)) >= 0;) {
    ++line_no;
    std::string_view line(buf, static_cast<std::size_t>(n));
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    std::optional<EventId> id;
    try {
      id = post_one(room, args, line);
    } catch (const Error& e) {
      if (e.code() != Errc::too_large || std::string_view(e.what()).rfind("payload is", 0) != 0) throw;
      if (too_large.size() < kLinesNamed) report_warning("line " + std::to_string(line_no) + ": " + e.what());
      too_large.push_back(line_no);
      continue;
    }
    if (!id) {
      write_out(ids, true);
      report_error(full_message(room) + "; published up to line " + std::to_string(line_no - 1) + ", line " +
                   std::to_string(line_no) + " and after were not" +
                   (too_large.empty() ? "" : " (nor " + std::to_string(too_large.size()) + " too large lines before)"));
      return kExitFailure;
    }
    ids += std::to_string(*id) + "\n";
    if (ids.size() >= (64 << 10)) {
      write_out(ids, false);
      ids.clear();
    }
  }
  if (std::ferror(stdin)) throw std::system_error(errno, std::generic_category(), "cannot read stdin");
  write_out(ids, true);
  if (too_large.empty()) return 0;
  std::string numbers;
  for (std::size_t i = 0; i < std::min(too_large.size(), kLinesNamed); ++i)
    numbers += (i ? ", " : "") + std::to_string(too_large[i]);
  if (too_large.size() > kLinesNamed) numbers += ", ...";
  report_error(std::to_string(too_large.size()) + " of " + std::to_string(line_no) +
               " lines were too large for room " + room.name() + " and not published (" +
               (too_large.size() == 1 ? "line " : "lines ") + numbers + "); the others were");
  return kExitFailure;
}

int run_post(const Globals& g, const PostArgs& args) {
  std::string payload = args.payload;
  if (payload == "-") payload.assign(std::istreambuf_iterator<char>(std::cin), {});

  Room room = open_room(g);
  touch_presence(room, args.agent);
  if (args.from_stdin) return post_lines(room, args);
  const std::optional<EventId> id = post_one(room, args, payload);
  if (!id) {
    report_error(full_message(room));
    return kExitFailure;
  }
  write_out(std::to_string(*id) + "\n", true);
  return 0;
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

// ---- coordination counters, for `info` ----------------------------------------------------
// Every recovery the coordination primitives perform is counted; `info` shows the counters of
// each primitive a room has (opening none of them creates anything).

using Counters = std::vector<Counter>;
struct CoordGroup {
  const char* name;
  Counters counters;
};

template <class Primitive, class Options, class Read>
void add_group(std::vector<CoordGroup>& out, const Room& room, const char* name, Read&& read) {
  Options options;
  options.create = false;
  try {
    const Primitive primitive(room, options);
    out.push_back({name, read(primitive)});
  } catch (const Error& e) {
    if (e.code() != Errc::not_found) throw;
  }
}

std::vector<CoordGroup> coordination_counters(const Room& room) {
  std::vector<CoordGroup> out;
  add_group<TaskBoard, TaskBoardOptions>(out, room, "tasks", [](const TaskBoard& t) { return counter_list(t.counters()); });
  add_group<Presence, PresenceOptions>(out, room, "presence", [](const Presence& p) { return counter_list(p.counters()); });
  add_group<Leases, LeasesOptions>(out, room, "leases", [](const Leases& l) { return counter_list(l.counters()); });
  add_group<Inbox, InboxOptions>(out, room, "inbox", [](const Inbox& i) { return counter_list(i.counters()); });
  add_group<Scratchpad, ScratchpadOptions>(out, room, "scratchpad", [](const Scratchpad& s) { return counter_list(s.info()); });
  return out;
}

std::string coordination_text(const std::string& room, const std::vector<CoordGroup>& groups) {
  std::string out = "\ncoordination in " + sanitize_for_terminal(room) + "\n";
  for (const CoordGroup& group : groups) {
    out += "  " + std::string(group.name) + std::string(12 - std::strlen(group.name), ' ');
    for (const auto& [name, value] : group.counters) out += std::string(name) + " " + std::to_string(value) + "  ";
    out.resize(out.size() - 2);
    out += "\n";
  }
  return out;
}

std::string coordination_json(const std::string& room, const std::vector<CoordGroup>& groups) {
  std::string out = json_string(room) + ":{";
  for (const CoordGroup& group : groups) {
    out += "\"" + std::string(group.name) + "\":{";
    for (const auto& [name, value] : group.counters) out += "\"" + std::string(name) + "\":" + std::to_string(value) + ",";
    out.back() = '}';
    out += ",";
  }
  if (out.back() == ',') out.pop_back();
  return out + "}";
}

int run_info(const Globals& g, bool json) {
  BusOptions options;
  options.name = g.bus;
  options.create = false;
  Bus bus = Bus::open(options);
  const BusInfo info = bus.info();
  std::string text, coordination, corrupt;
  for (const RoomInfo& r : info.rooms) {
    if (!r.corrupt.empty()) {
      corrupt = r.corrupt;
      continue;
    }
    RoomOptions ro;
    ro.create = false;
    const auto groups = coordination_counters(bus.room(r.name, ro));
    if (groups.empty()) continue;
    text += coordination_text(r.name, groups);
    coordination += (coordination.empty() ? "" : ",") + coordination_json(r.name, groups);
  }
  if (!json) {
    write_out(info_text(info) + text, true);
  } else {
    // One JSON object: the bus's, with a "coordination" member keyed by room.
    std::string object = info_json(info);
    const auto close = object.rfind('}');
    object = object.substr(0, close) + ",\"coordination\":{" + coordination + "}}\n";
    write_out(object, true);
  }
  // Everything readable was shown; a corrupt room still makes the command fail.
  if (corrupt.empty()) return 0;
  report_error(corrupt);
  return kExitFailure;
}

// Live tailers (`tail -f`, top) of the bus: they notice the destroy and exit, but whoever
// runs `destroy` should know they were there. A bus that cannot be read has none to report.
std::vector<std::string> attached_followers(const Globals& g) {
  std::vector<std::string> out;
  try {
    BusOptions options;
    options.name = g.bus;
    options.create = false;
    for (const RoomInfo& room : Bus::open(options).info().rooms)
      for (const ReaderInfo& r : room.readers)
        if (!r.durable && r.alive) out.push_back("pid " + std::to_string(r.pid) + " on " + room.name);
  } catch (const Error&) {
  }
  return out;
}

int run_destroy(const Globals& g) {
  if (const std::vector<std::string> followers = attached_followers(g); !followers.empty()) {
    std::string list;
    for (std::size_t i = 0; i < followers.size() && i < 5; ++i) list += (i ? ", " : "") + followers[i];
    if (followers.size() > 5) list += ", ...";
    report_warning(std::to_string(followers.size()) + " follower(s) attached to bus " + g.bus + " (" + list +
                   "); they will stop with an error");
  }
  const bool existed = Bus::destroy(g.bus);
  write_out((existed ? "destroyed bus " : "no bus ") + g.bus + "\n", true);
  return 0;
}

}  // namespace

void add_room_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto post = std::make_shared<PostArgs>();
  auto tail = std::make_shared<TailArgs>();
  auto info_json = std::make_shared<bool>(false);

  CLI::App* post_cmd = app.add_subcommand("post", "Publish one event; prints its id.");
  post_cmd->footer(
      "Payload \"-\" reads it from stdin; a payload starting with '-' goes after \"--\".\n\n"
      "Examples:\n"
      "  agentbus post status '{\"state\":\"idle\"}' --agent alice\n"
      "  id=$(agentbus post ASK 'who owns the parser?')\n"
      "  agentbus post REPLY 'bob does' --to alice --reply-to \"$id\"\n"
      "  git diff | agentbus post PATCH -\n"
      "  jq -c '.[]' items.json | agentbus post ITEM --stdin   # one event per line\n\n"
      "--stdin publishes one event per line of stdin (empty lines skipped, a trailing \\r\n"
      "dropped) and prints their ids, one per line. A line larger than the room takes is\n"
      "reported with its line number and the others are still published; a full ring stops\n"
      "the batch at that line. Either way the exit code is 1 and stderr names the lines that\n"
      "were not published. Records are at most 64 KiB unless the room was created with\n"
      "--max-record-bytes (a room keeps the limits it was created with).");
  post_cmd->add_option("type", post->type, "Event type, e.g. status, TASK, REPLY")->required();
  CLI::Option* payload_opt =
      post_cmd->add_option("payload", post->payload, "Payload (JSON by convention); default empty");
  post_cmd->add_option("--agent", post->agent, "Agent id the event is from")
      ->envname("AGENTBUS_AGENT")
      ->capture_default_str();
  post_cmd->add_option("--to", post->to, "Direct the event to this agent");
  post_cmd->add_flag("--stdin", post->from_stdin, "Publish one event per line of stdin")->excludes(payload_opt);
  post->reply_to_opt =
      post_cmd->add_option("--reply-to", post->reply_to, "Id of the event this one answers")
          ->check(id_validator());

  CLI::App* tail_cmd = app.add_subcommand("tail", "Print a room's recent events, or follow it.");
  tail_cmd->footer(
      "Text output is stripped of terminal escapes and control characters.\n"
      "--json prints one object per line: id, ts, room, type, agent, to, reply_to, payload.\n"
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

  CLI::App* info_cmd = app.add_subcommand("info", "Show the bus: size, rooms, counters, readers.");
  info_cmd->footer("Examples:\n  agentbus info\n  agentbus --bus ci info --json");
  info_cmd->add_flag("--json", *info_json, "One JSON object");

  CLI::App* destroy_cmd = app.add_subcommand(
      "destroy", "Remove the bus's shared-memory object (processes using it keep their mapping).");
  destroy_cmd->footer("Example:\n  agentbus --bus scratch destroy");


  commands.push_back({post_cmd, [&g, post] { return run_post(g, *post); }});
  commands.push_back({tail_cmd, [&g, tail] { return run_tail(g, *tail); }});
  commands.push_back({info_cmd, [&g, info_json] { return run_info(g, *info_json); }});
  commands.push_back({destroy_cmd, [&g] { return run_destroy(g); }});
}

}  // namespace agentbus::cli
