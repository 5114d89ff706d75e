// commands_post.cpp — `agentbus post`: publish one event, or one per line of stdin; a task
// type goes onto the task board and a directed event into the recipient's inbox.
#include "common.hpp"
#include "output.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <system_error>
#include <vector>

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
//
// Plain events (no --to, not a task type) go out with Room::publish_batch, up to kBatchLines
// lines or an eighth of the ring at a time: one claim and one commit per batch. A batch the
// room refuses as too large is posted again line by line, which names the offending lines.
class LinePoster {
 public:
  LinePoster(Room& room, const PostArgs& args)
      : room_(room), args_(args),
        batched_(args.to.empty() && (args.reply_to_opt->count() > 0 || !is_task_type(room, args.type))),
        batch_bytes_(room.info().ring_bytes / 8) {}

  // False once the ring stayed full (reported); the caller stops reading.
  bool add(std::size_t line_no, std::string_view line) {
    if (!batched_) return post(line_no, line);
    if (lines_.size() == kBatchLines || (!lines_.empty() && arena_bytes() + line.size() > batch_bytes_))
      if (!flush()) return false;
    lines_.push_back({line_no, arena_.size(), line.size()});
    arena_.append(line);
    return true;
  }

  // Publishes what is pending; false when the ring stayed full (reported).
  bool flush() {
    if (lines_.empty()) return true;
    std::vector<EventIn> events;
    events.reserve(lines_.size());
    PublishOptions options;
    if (args_.reply_to_opt->count() > 0) options.reply_to = args_.reply_to;
    for (const Line& l : lines_) events.push_back({args_.type, args_.agent, text(l), options});
    ids_out_.resize(events.size());
    bool ok = true;
    try {
      ok = room_.publish_batch(events, ids_out_).ok();
    } catch (const Error& e) {
      if (e.code() != Errc::too_large) throw;
      return flush_one_by_one();  // which line: post_one names it
    }
    if (!ok) return full(lines_.front().no);
    for (EventId id : ids_out_) note_id(id);
    clear();
    return true;
  }

  int finish(std::size_t line_count) {
    write_out(ids_, true);
    if (too_large_.empty()) return 0;
    std::string numbers;
    for (std::size_t i = 0; i < std::min(too_large_.size(), kLinesNamed); ++i)
      numbers += (i ? ", " : "") + std::to_string(too_large_[i]);
    if (too_large_.size() > kLinesNamed) numbers += ", ...";
    report_error(std::to_string(too_large_.size()) + " of " + std::to_string(line_count) +
                 " lines were too large for room " + room_.name() + " and not published (" +
                 (too_large_.size() == 1 ? "line " : "lines ") + numbers + "); the others were");
    return kExitFailure;
  }

 private:
  static constexpr std::size_t kLinesNamed = 10;  // too-large lines reported one by one; then a count
  static constexpr std::size_t kBatchLines = 256;
  struct Line {
    std::size_t no, offset, size;
  };

  std::string_view text(const Line& l) const { return std::string_view(arena_).substr(l.offset, l.size); }
  std::size_t arena_bytes() const { return arena_.size(); }
  void clear() {
    lines_.clear();
    arena_.clear();
  }

  bool flush_one_by_one() {
    for (const Line& l : lines_)
      if (!post(l.no, text(l))) return false;
    clear();
    return true;
  }

  bool post(std::size_t line_no, std::string_view line) {
    std::optional<EventId> id;
    try {
      id = post_one(room_, args_, line);
    } catch (const Error& e) {
      if (e.code() != Errc::too_large || std::string_view(e.what()).rfind("payload is", 0) != 0) throw;
      if (too_large_.size() < kLinesNamed) report_warning("line " + std::to_string(line_no) + ": " + e.what());
      too_large_.push_back(line_no);
      return true;
    }
    if (!id) return full(line_no);
    note_id(*id);
    return true;
  }

  bool full(std::size_t line_no) {
    write_out(ids_, true);
    report_error(full_message(room_) + "; published up to line " + std::to_string(line_no - 1) + ", line " +
                 std::to_string(line_no) + " and after were not" +
                 (too_large_.empty() ? "" : " (nor " + std::to_string(too_large_.size()) + " too large lines before)"));
    return false;
  }

  void note_id(EventId id) {
    ids_ += std::to_string(id) + "\n";
    if (ids_.size() >= (64 << 10)) {
      write_out(ids_, false);
      ids_.clear();
    }
  }

  Room& room_;
  const PostArgs& args_;
  const bool batched_;
  const std::size_t batch_bytes_;
  std::vector<Line> lines_;
  std::string arena_;
  std::vector<EventId> ids_out_;
  std::string ids_;
  std::vector<std::size_t> too_large_;
};

int post_lines(Room& room, const PostArgs& args) {
  LinePoster poster(room, args);
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
    if (!poster.add(line_no, line)) return kExitFailure;
  }
  if (std::ferror(stdin)) throw std::system_error(errno, std::generic_category(), "cannot read stdin");
  if (!poster.flush()) return kExitFailure;
  return poster.finish(line_no);
}

int run_post(const Globals& g, const PostArgs& args) {
  std::string payload = args.payload;
  if (payload == "-") payload = read_all_stdin();

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

}  // namespace

void add_post_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto post = std::make_shared<PostArgs>();

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
  commands.push_back({post_cmd, [&g, post] { return run_post(g, *post); }});
}

}  // namespace agentbus::cli
