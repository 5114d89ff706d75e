// commands_status.cpp — the status bus (RoomKit's StatusBus): status post/recent/summary/watch,
// and export/import of status entries as JSONL.
#include "common.hpp"
#include "output.hpp"

#include <simdjson.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <unistd.h>

namespace agentbus::cli {
namespace {

using namespace std::chrono_literals;

struct StatusArgs {
  std::string action;
  std::string status;
  std::string detail;
  std::string metadata;
  std::string agent = "cli";
  // Each command its own default, so that --help shows the one that applies.
  std::size_t recent_count = 10;
  std::size_t summary_count = 500;
  std::size_t watch_count = 0;
  std::string filter_agent;
  std::string filter_status;
  bool json = false;
  std::string timeout;
  std::string file;
  EventId from = 0;
  CLI::Option* from_opt = nullptr;
  bool strict = false;
};

CLI::Validator level_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        return parse_status_level(text) ? ""
                                        : "status must be one of ok, failed, pending, info, completed; got '" +
                                              sanitize_for_terminal(text) + "'";
      },
      "ok|failed|pending|info|completed");
}

CLI::Validator metadata_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        simdjson::dom::parser parser;
        simdjson::dom::element doc;
        if (parser.parse(text).get(doc)) return "--metadata must be valid JSON";
        return doc.is_object() ? "" : "--metadata must be a JSON object, e.g. '{\"results\":7}'";
      },
      "JSON-OBJECT");
}

// Entries come from other processes: every field shown on a terminal is made inert.
StatusEntry for_terminal(StatusEntry e) {
  e.agent_id = sanitize_for_terminal(e.agent_id);
  e.action = sanitize_for_terminal(e.action);
  e.detail = sanitize_for_terminal(e.detail);
  e.origin_host = sanitize_for_terminal(e.origin_host);
  return e;
}

std::string entry_json(const StatusEntry& e) {
  // The entry's own JSON (RoomKit's fields, as in the JSONL file) with its event id first.
  return "{\"id\":" + std::to_string(e.id) + "," + e.to_json().substr(1) + "\n";
}

StatusFilter make_filter(const StatusArgs& a) {
  StatusFilter f;
  f.agent_id = a.filter_agent;
  if (!a.filter_status.empty()) f.status = parse_status_level(a.filter_status);
  return f;
}

bool matches(const StatusEntry& e, const StatusFilter& f) {
  return (f.agent_id.empty() || e.agent_id == f.agent_id) && (!f.status || e.status == *f.status);
}

void add_filters(CLI::App* cmd, StatusArgs& a) {
  cmd->add_option("--agent", a.filter_agent, "Only entries of this agent");
  cmd->add_option("--status", a.filter_status, "Only entries with this status")->check(level_validator());
  cmd->add_flag("--json", a.json, "One JSON object per line: the entry's fields plus its event id");
}

int run_watch(const Globals& g, const StatusArgs& a) {
  install_stop_handlers();
  Room room = open_room(g);
  const StatusFilter filter = make_filter(a);
  // Subscribed first, so entries posted meanwhile arrive through `sub`, not twice.
  Subscription sub = room.subscribe({.from = StartFrom::latest});
  const EventId start = sub.position();
  if (a.watch_count > 0) {
    StatusBus bus(room);
    for (const StatusEntry& e : bus.recent(a.watch_count, filter))
      if (e.id < start) write_out(a.json ? entry_json(e) : status_line(for_terminal(e)) + "\n", false);
  }
  write_out("", true);
  std::optional<std::chrono::nanoseconds> timeout;
  if (!a.timeout.empty()) timeout = validated_ms(a.timeout);
  const auto deadline =
      timeout ? std::chrono::steady_clock::now() + *timeout : std::chrono::steady_clock::time_point::max();
  DestroyedBusCheck destroyed(room);
  while (g_stop == 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    const ReadResult r = sub.next(std::min<std::chrono::nanoseconds>(100ms, deadline - now));
    if (r.status == ReadStatus::overrun) warn_overrun(r.missed);
    if (r.status == ReadStatus::skipped) warn_unreadable(room.name(), r.missed);
    // Only once caught up, so entries posted before the destroy are all printed.
    if (r.status == ReadStatus::timeout && destroyed.reported(g.bus)) return kExitFailure;
    if (r.status != ReadStatus::event || r.event.type != kStatusEventType) continue;
    std::optional<StatusEntry> e = status_entry_from(r.event);
    if (!e || !matches(*e, filter)) continue;
    write_out(a.json ? entry_json(*e) : status_line(for_terminal(*e)) + "\n", true);
  }
  return 0;
}

int run_export(const Globals& g, const StatusArgs& a) {
  const bool to_stdout = a.file == "-";
  std::optional<Room> room = open_existing_room(g);
  const int fd = to_stdout ? STDOUT_FILENO : ::open(a.file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(Errc::system, "cannot create '" + a.file + "': " + std::strerror(errno));
  ExportResult r;
  try {
    if (room) {
      write_out("", true);
      ExportOptions o;
      if (a.from_opt->count() > 0) o.from = a.from;
      r = export_jsonl(*room, fd, o);
    }
  } catch (...) {
    if (!to_stdout) ::close(fd);
    throw;
  }
  if (!to_stdout && ::close(fd) != 0) throw Error(Errc::system, "cannot write '" + a.file + "': " + std::strerror(errno));
  if (r.missed > 0) warn_overrun(r.missed);
  if (r.skipped > 0) report_warning(std::to_string(r.skipped) + " STATUS events were not valid entries; skipped");
  if (!to_stdout) write_out("exported " + std::to_string(r.exported) + " entries to " + sanitize_for_terminal(a.file) + "\n", true);
  return 0;
}

int run_import(const Globals& g, const StatusArgs& a) {
  Room room = open_room(g);
  ImportOptions o;
  o.strict = a.strict;
  o.warn = [](const std::string& message) { report_warning(message); };
  const ImportResult r = import_jsonl(room, a.file, o);
  // Lines were there but none was an entry: probably not a status file or archive at all.
  if (r.imported == 0 && r.events == 0 && r.skipped > 0) {
    report_error("imported nothing from " + a.file + ": its " + std::to_string(r.skipped) +
                 (r.skipped == 1 ? " line is" : " lines are") + " not status entries or archived events");
    return kExitFailure;
  }
  write_out("imported " + std::to_string(r.imported) + " entries" +
                (r.events > 0 ? " and " + std::to_string(r.events) + " archived events" : "") +
                (r.skipped > 0 ? ", skipped " + std::to_string(r.skipped) + " malformed lines" : "") + "\n",
            true);
  return 0;
}

}  // namespace

void add_status_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto a = std::make_shared<StatusArgs>();
  const std::string group = "Status";

  CLI::App* status = app.add_subcommand("status", "RoomKit's status bus: agents post what they did; all can read and watch.");
  status->group(group);
  status->require_subcommand(1);
  status->footer(
      "A status entry is {ts, agent_id, action, status, detail, metadata}, status one of\n"
      "ok, failed, pending, info, completed. It is an event of type STATUS in the room, so\n"
      "every process on the bus sees it (see docs/status.md).\n\n"
      "Examples:\n"
      "  agentbus status post search_google ok --detail 'Found 7 results' --agent exec\n"
      "  agentbus status recent --count 5 --agent exec\n"
      "  agentbus status summary\n"
      "  agentbus status watch --status failed");

  CLI::App* post = status->add_subcommand("post", "Post a status entry; prints its event id.");
  post->add_option("action", a->action, "What the agent did, e.g. search_google")->required();
  post->add_option("status", a->status, "ok, failed, pending, info or completed")->required()->check(level_validator());
  post->add_option("--detail", a->detail, "Free text, e.g. 'Found 7 results'");
  post->add_option("--metadata", a->metadata, "A JSON object, e.g. '{\"results\":7}'")->check(metadata_validator());
  post->add_option("--agent", a->agent, "Agent id posting")->envname("AGENTBUS_AGENT")->capture_default_str();
  post->footer(
      "Exit 2 for a status outside the five levels or metadata that is not a JSON object.\n\n"
      "Examples:\n"
      "  agentbus status post search_google ok --detail 'Found 7 results' --agent exec\n"
      "  agentbus status post task completed --metadata '{\"pr\":42}' --agent fixer");
  commands.push_back({post, [&g, a] {
                        Room room = open_room(g);
                        touch_presence(room, a->agent);
                        StatusBus bus(room);
                        const PostResult r = bus.post(a->agent, a->action, a->status, a->detail, a->metadata);
                        if (!r.ok())
                          throw Error(Errc::timeout, "room '" + room.name() + "' is full: a durable reader (e.g. a "
                                                     "status JSONL writer) is behind; see `agentbus info`");
                        write_out(std::to_string(r.id) + "\n", true);
                        return 0;
                      }});

  CLI::App* recent = status->add_subcommand("recent", "The last status entries, oldest first.");
  recent->add_option("-n,--count", a->recent_count, "At most this many, 1 to 1000000")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
      ->capture_default_str();
  add_filters(recent, *a);
  recent->footer(
      "Text lines look like RoomKit's: [19:05:15] exec: search_google → ok | Found 7 results\n"
      "(time in UTC). Filters combine with AND. Prints \"No activity yet.\" when there is none.\n\n"
      "Examples:\n"
      "  agentbus status recent\n"
      "  agentbus status recent --count 50 --status failed --json");
  commands.push_back({recent, [&g, a] {
                        std::optional<Room> room = open_existing_room(g);
                        std::vector<StatusEntry> entries;
                        if (room) entries = StatusBus(*room).recent(a->recent_count, make_filter(*a));
                        std::string out;
                        if (a->json) {
                          for (const StatusEntry& e : entries) out += entry_json(e);
                        } else {
                          for (StatusEntry& e : entries) e = for_terminal(std::move(e));
                          out = status_text(entries) + "\n";
                        }
                        write_out(out, true);
                        return 0;
                      }});

  CLI::App* summary = status->add_subcommand("summary", "The numbered status log with totals.");
  summary->add_option("-n,--count", a->summary_count, "Cover at most this many entries, 1 to 1000000")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
      ->capture_default_str();
  summary->footer(
      "RoomKit's print_summary: icons + ok, x failed, ~ info, * completed, ? pending, and\n"
      "a closing line such as \"Total: 3 entries (2 ok, 0 failed, 1 completed)\".\n\n"
      "Example:\n  agentbus status summary -n 500");
  commands.push_back({summary, [&g, a] {
                        std::optional<Room> room = open_existing_room(g);
                        std::vector<StatusEntry> entries;
                        if (room) entries = StatusBus(*room).recent(a->summary_count);
                        for (StatusEntry& e : entries) e = for_terminal(std::move(e));
                        write_out(status_summary(entries), true);
                        return 0;
                      }});

  CLI::App* watch = status->add_subcommand("watch", "Print each status entry as it arrives, until Ctrl-C.");
  watch->add_option("-n,--count", a->watch_count, "First print this many recent entries (0: none), up to 1000000")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1000000}))
      ->capture_default_str();
  add_filters(watch, *a);
  watch->add_option("--timeout", a->timeout, "Exit (0) after this long, up to 24h, e.g. 30s")->check(duration_validator());
  watch->footer(
      "Blocks (no CPU while idle) and prints entries posted by any process on the bus.\n"
      "Ctrl-C or SIGTERM ends it with exit code 0.\n\n"
      "Examples:\n"
      "  agentbus status watch\n"
      "  agentbus status watch --agent exec --json --timeout 10m");
  commands.push_back({watch, [&g, a] { return run_watch(g, *a); }});

  CLI::App* exp = app.add_subcommand("export", "Write a room's status entries to a JSONL file.");
  exp->group(group);
  exp->add_option("--jsonl", a->file, "The file ('-': stdout); replaced if it exists")->required();
  a->from_opt = exp->add_option("--from", a->from, "Start at this event id (default: the oldest in the ring)")
                    ->check(id_validator());
  exp->footer(
      "One line per entry, RoomKit's fields: {\"ts\",\"agent_id\",\"action\",\"status\",\"detail\",\n"
      "\"metadata\"}. Covers what is still in the room's ring, up to its end when started.\n\n"
      "Examples:\n"
      "  agentbus export --jsonl status.jsonl\n"
      "  agentbus --room api/main export --jsonl - --from 8192 | jq .detail");
  commands.push_back({exp, [&g, a] { return run_export(g, *a); }});

  CLI::App* imp = app.add_subcommand("import", "Replay a JSONL file of status entries or archived events into a room.");
  imp->group(group);
  imp->add_option("file", a->file,
                  "A JSONL file (from export, a StatusBus persist_path, RoomKit, or agentbus-bridge archive)")
      ->required();
  imp->add_flag("--strict", a->strict, "Stop at the first malformed line (exit 1) instead of skipping it");
  imp->footer(
      "Each valid status line becomes a STATUS event, keeping its ts. A line with \"stream_id\" and\n"
      "\"origin\" (an event that agentbus-bridge archive wrote) is published as an imported event\n"
      "with that origin, type, agent, to and payload, under a new local ts; a bridge never ships\n"
      "it back to Redis. Malformed lines (an archive's undecodable \"raw\" entries among them) are\n"
      "reported on stderr with their line number and skipped. A torn last line (a writer killed\n"
      "mid-line) is skipped with a warning even with --strict. Exit 1 when the file has lines but\n"
      "none could be imported; exit 4 when the file does not exist.\n\n"
      "Examples:\n"
      "  agentbus --room replay import status.jsonl\n"
      "  agentbus --room api/main import archive/repo_api_main_events-1796000000000.jsonl\n"
      "  agentbus import status.jsonl --strict");
  commands.push_back({imp, [&g, a] { return run_import(g, *a); }});
}

}  // namespace agentbus::cli
