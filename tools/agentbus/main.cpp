// main.cpp — the `agentbus` command: parse arguments (CLI11), call the library, print.
//
// Exit codes: 0 success; 1 a runtime failure, reported as one `error: ...` line on stderr;
// 2 a usage error (bad flags or arguments, or a bus/room name outside the grammar).
// A reader that goes away (`agentbus tail -f | head -1`) ends the command quietly with 0.
#include "output.hpp"

#include <agentbus/agentbus.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <system_error>

namespace {

using namespace agentbus;
using namespace std::chrono_literals;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Thrown when stdout's reader has gone (EPIPE): not an error for a pipeline like `| head`.
struct StdoutClosed {};

volatile std::sig_atomic_t g_stop = 0;
extern "C" void request_stop(int) { g_stop = 1; }

// ---- output -------------------------------------------------------------------------------

// SIGPIPE is ignored (see main), so a closed pipe shows up here as EPIPE.
void write_out(std::string_view text, bool flush) {
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() ||
      (flush && std::fflush(stdout) != 0)) {
    if (errno == EPIPE) throw StdoutClosed{};
    throw std::system_error(errno, std::generic_category(), "cannot write to stdout");
  }
}

// Messages can quote a rejected name, which may hold escape sequences: keep them inert.
void report_error(std::string_view message) {
  std::fprintf(stderr, "error: %s\n", cli::sanitize_for_terminal(message).c_str());
}

void warn_overrun(std::uint64_t missed) {
  std::fprintf(stderr, "warning: lapped by producers, %llu events missed\n",
               static_cast<unsigned long long>(missed));
}

// ---- arguments ----------------------------------------------------------------------------

struct Globals {
  std::string bus = "default";
  std::string room;
  std::string repo;
  std::string branch = "main";
  std::uint64_t ring_bytes = 0;     // 0: the library's default
  std::uint64_t segment_bytes = 0;  // 0: the library's default
};

struct PostArgs {
  std::string type;
  std::string payload;
  std::string agent = "cli";
  std::string to;
  EventId reply_to = 0;
  CLI::Option* reply_to_opt = nullptr;
};

struct TailArgs {
  std::size_t count = 20;
  CLI::Option* count_opt = nullptr;
  bool follow = false;
  std::string from;
  bool json = false;
  std::string timeout;
};

// agentroom's default repo: the working directory's name, made to fit the name grammar.
std::string default_repo() {
  std::error_code ec;
  const auto cwd = std::filesystem::current_path(ec);
  const std::string base = ec ? std::string() : cwd.filename().string();
  std::string repo;
  for (const char ch : base) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
      repo += ch;
    } else if ((c & 0xC0) != 0x80) {  // one '-' per character, not per UTF-8 byte
      repo += '-';
    }
  }
  return (repo.empty() || repo == "." || repo == "..") ? "default" : repo;
}

std::string room_name(const Globals& g) {
  return g.room.empty() ? g.repo + "/" + g.branch : g.room;
}

std::optional<SubscribeOptions> parse_from(const std::string& text) {
  SubscribeOptions options;
  if (text == "earliest") {
    options.from = StartFrom::earliest;
  } else if (text == "latest") {
    options.from = StartFrom::latest;
  } else if (!text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
               return std::isdigit(c) != 0;
             })) {
    options.from = StartFrom::id;
    try {
      options.from_id = std::stoull(text);
    } catch (const std::out_of_range&) {
      return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  return options;
}

// "250ms", "10s", "5m", "1h"; a bare number is seconds.
std::optional<std::chrono::nanoseconds> parse_duration(const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const std::string unit = text.substr(used);
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1e9;
  else if (unit == "ms") scale = 1e6;
  else if (unit == "us") scale = 1e3;
  else if (unit == "ns") scale = 1;
  else if (unit == "m") scale = 60e9;
  else if (unit == "h") scale = 3600e9;
  if (scale == 0 || !(value >= 0) || value * scale > 1e18) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(value * scale));
}

// ---- bus access ---------------------------------------------------------------------------

RoomOptions room_options(const Globals& g, bool create) {
  RoomOptions options;
  if (g.ring_bytes != 0) {
    options.ring_bytes = g.ring_bytes;
    // A small ring must still accept records: cap them at the library's ring/4 limit.
    options.max_record_bytes = std::min<std::size_t>(options.max_record_bytes, g.ring_bytes / 4);
  }
  options.create = create;
  return options;
}

Bus open_bus(const Globals& g) {
  BusOptions options;
  options.name = g.bus;
  if (g.segment_bytes != 0) options.segment_bytes = g.segment_bytes;
  return Bus::open(options);
}

// Reading must not create anything: a bus or room nobody has posted to is simply empty.
std::optional<Room> open_existing_room(const Globals& g) {
  try {
    BusOptions options;
    options.name = g.bus;
    options.create = false;
    return Bus::open(options).room(room_name(g), room_options(g, false));
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) return std::nullopt;
    throw;
  }
}

// ---- commands -----------------------------------------------------------------------------

int run_post(const Globals& g, const PostArgs& args) {
  std::string payload = args.payload;
  if (payload == "-") payload.assign(std::istreambuf_iterator<char>(std::cin), {});
  PublishOptions options;
  options.to = args.to;
  if (args.reply_to_opt->count() > 0) options.reply_to = args.reply_to;

  Room room = open_bus(g).room(room_name(g), room_options(g, true));
  const PublishResult result = room.publish(args.type, args.agent, payload, options);
  if (!result.ok()) {
    report_error("room " + room.name() +
                 " is full: a durable reader is not keeping up; see `agentbus info` for "
                 "readers and their lag");
    return kExitFailure;
  }
  write_out(std::to_string(result.id) + "\n", true);
  return 0;
}

class EventPrinter {
 public:
  EventPrinter(std::string room, bool json, bool flush_each)
      : room_(std::move(room)), json_(json), flush_each_(flush_each) {}
  void print(const EventView& event) const {
    write_out(json_ ? cli::event_json(event, room_) : cli::event_text(event), flush_each_);
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
    for (const Event& event : room->recent(args.count)) printer.print(event.view());
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
    printer.print(r.event);
    ++printed;
  }
  return 0;
}

int tail_follow(const Globals& g, const TailArgs& args,
                const std::optional<SubscribeOptions>& from,
                std::optional<std::chrono::nanoseconds> timeout) {
  struct sigaction action {};
  action.sa_handler = request_stop;  // no SA_RESTART: let a blocked wait return early
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  const EventPrinter printer(room_name(g), args.json, true);
  Room room = open_bus(g).room(room_name(g), room_options(g, true));
  Subscription sub = room.subscribe(from.value_or(SubscribeOptions{}));
  if (!from) {
    // Subscribed first, so events published meanwhile arrive through `sub`, not twice.
    const EventId start = sub.position();
    for (const Event& event : room.recent(args.count))
      if (event.id < start) printer.print(event.view());
  }
  const auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                                : std::chrono::steady_clock::time_point::max();
  while (g_stop == 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    // Bounded waits so a signal is noticed within 100 ms even if the wait resumes after EINTR.
    const ReadResult r = sub.next(std::min<std::chrono::nanoseconds>(100ms, deadline - now));
    if (r.status == ReadStatus::event) printer.print(r.event);
    if (r.status == ReadStatus::overrun) warn_overrun(r.missed);
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

int run_info(const Globals& g, bool json) {
  BusOptions options;
  options.name = g.bus;
  options.create = false;
  const BusInfo info = Bus::open(options).info();
  write_out(json ? cli::info_json(info) : cli::info_text(info), true);
  return 0;
}

int run_destroy(const Globals& g) {
  const bool existed = Bus::destroy(g.bus);
  write_out((existed ? "destroyed bus " : "no bus ") + g.bus + "\n", true);
  return 0;
}

// ---- command line -------------------------------------------------------------------------

constexpr const char* kTopFooter = R"(Rooms: --room NAME, or agentroom style --repo R --branch B for room "R/B".
Names are segments of [A-Za-z0-9._-] joined by '/', at most 128 bytes.

Environment:
  AGENTBUS_BUS    bus name (default "default"); the bus is /dev/shm/agentbus.<bus>
  AGENTBUS_ROOM   room name; overrides REPO_ID/BRANCH_NAME
  REPO_ID         repo part of the room (default: this directory's name)
  BRANCH_NAME     branch part of the room (default "main")
  AGENTBUS_AGENT  agent id that `post` signs events with (default "cli")

Exit codes: 0 ok, 1 error (one "error: ..." line on stderr), 2 usage error.

Examples:
  agentbus post status '{"state":"idle"}' --agent alice
  agentbus tail --follow --json
  agentbus --repo api --branch dev tail -n 5
  agentbus info)";

CLI::Validator from_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        return parse_from(text) ? "" : "--from must be earliest, latest or an event id, got '" + text + "'";
      },
      "earliest|latest|ID");
}

CLI::Validator duration_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        return parse_duration(text) ? "" : "not a duration (e.g. 500ms, 10s, 5m): '" + text + "'";
      },
      "DURATION");
}

CLI::Validator power_of_two_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const std::uint64_t v = std::stoull(text);  // AsSizeValue has made it a number
        return (v != 0 && (v & (v - 1)) == 0) ? "" : "must be a power of two, e.g. 1MiB";
      },
      "");
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout becomes EPIPE: handled, quiet, exit 0

  Globals g;
  g.repo = default_repo();
  PostArgs post_args;
  TailArgs tail_args;
  bool info_json = false;

  CLI::App app("agentbus: agent processes coordinating through rooms on a shared-memory bus.",
               "agentbus");
  app.footer(kTopFooter);
  app.fallthrough();  // global options may also follow the command name
  app.require_subcommand(1);
  app.add_option("--bus", g.bus, "Bus name")->envname("AGENTBUS_BUS")->capture_default_str();
  app.add_option("--room", g.room, "Room name; wins over --repo/--branch")->envname("AGENTBUS_ROOM");
  app.add_option("--repo", g.repo, "Repo part of the room name")
      ->envname("REPO_ID")
      ->capture_default_str();
  app.add_option("--branch", g.branch, "Branch part of the room name")
      ->envname("BRANCH_NAME")
      ->capture_default_str();
  app.add_option("--segment-bytes", g.segment_bytes,
                 "Bus size when this command creates the bus (virtual; default 256MiB)")
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--ring-bytes", g.ring_bytes,
                 "Ring size when this command creates the room (power of two, e.g. 4MiB)")
      ->transform(CLI::AsSizeValue(false))
      ->check(power_of_two_validator());

  CLI::App* post = app.add_subcommand("post", "Publish one event; prints its id.");
  post->footer(
      "Payload \"-\" reads it from stdin; a payload starting with '-' goes after \"--\".\n\n"
      "Examples:\n"
      "  agentbus post status '{\"state\":\"idle\"}' --agent alice\n"
      "  id=$(agentbus post ASK 'who owns the parser?')\n"
      "  agentbus post REPLY 'bob does' --to alice --reply-to \"$id\"\n"
      "  git diff | agentbus post PATCH -");
  post->add_option("type", post_args.type, "Event type, e.g. status, TASK, REPLY")->required();
  post->add_option("payload", post_args.payload, "Payload (JSON by convention); default empty");
  post->add_option("--agent", post_args.agent, "Agent id the event is from")
      ->envname("AGENTBUS_AGENT")
      ->capture_default_str();
  post->add_option("--to", post_args.to, "Direct the event to this agent");
  post_args.reply_to_opt =
      post->add_option("--reply-to", post_args.reply_to, "Id of the event this one answers")
          ->check(CLI::NonNegativeNumber);

  CLI::App* tail = app.add_subcommand("tail", "Print a room's recent events, or follow it.");
  tail->footer(
      "Text output is stripped of terminal escapes and control characters.\n"
      "--json prints one object per line: id, ts, room, type, agent, to, reply_to, payload.\n"
      "With --from and no --count, prints everything from that point; with --follow, --count\n"
      "is the backlog shown before following. Ctrl-C ends --follow with exit code 0.\n\n"
      "Examples:\n"
      "  agentbus tail -n 50\n"
      "  agentbus tail --follow --json | jq .payload\n"
      "  agentbus tail --from earliest --json > room.jsonl\n"
      "  agentbus tail -f --from 4096 --timeout 30s");
  // CLI11 2.1 would wrap "-3" into a huge unsigned value; refuse it instead.
  tail_args.count_opt = tail->add_option("-n,--count", tail_args.count, "How many events")
                            ->check(CLI::NonNegativeNumber)
                            ->capture_default_str();
  tail->add_flag("-f,--follow", tail_args.follow, "Keep printing events as they arrive");
  tail->add_option("--from", tail_args.from, "Start at earliest, latest or an event id")
      ->check(from_validator());
  tail->add_flag("--json", tail_args.json, "One JSON object per line");
  tail->add_option("--timeout", tail_args.timeout, "With --follow: exit (0) after this long, e.g. 30s")
      ->check(duration_validator());

  CLI::App* info = app.add_subcommand("info", "Show the bus: size, rooms, counters, readers.");
  info->footer("Examples:\n  agentbus info\n  agentbus --bus ci info --json");
  info->add_flag("--json", info_json, "One JSON object");

  CLI::App* destroy = app.add_subcommand(
      "destroy", "Remove the bus's shared-memory object (processes using it keep their mapping).");
  destroy->footer("Example:\n  agentbus --bus scratch destroy");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  int rc = 0;
  try {
    validate_bus_name(g.bus);
    if (*post || *tail) validate_room_name(room_name(g));
    if (*post) rc = run_post(g, post_args);
    else if (*tail) rc = run_tail(g, tail_args);
    else if (*info) rc = run_info(g, info_json);
    else if (*destroy) rc = run_destroy(g);
    write_out("", true);
  } catch (const StdoutClosed&) {
    return 0;
  } catch (const Error& e) {
    report_error(e.what());
    return e.code() == Errc::bad_name ? kExitUsage : kExitFailure;
  } catch (const std::exception& e) {
    report_error(e.what());
    return kExitFailure;
  }
  return rc;
}
