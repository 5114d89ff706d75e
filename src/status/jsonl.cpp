// jsonl.cpp — export_jsonl / import_jsonl: status entries between a room and a JSONL file; import
// also takes the event lines of a bridge archive (agentbus/event_json.hpp).
#include "bus/room_access.hpp"

#include <agentbus/error.hpp>
#include <agentbus/event_json.hpp>
#include <agentbus/status_bus.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace agentbus {
namespace {

void write_all(int fd, std::string& buf) {
  std::size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::write(fd, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(Errc::system, std::string("cannot write the export: ") + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
  buf.clear();
}

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) throw Error(Errc::not_found, "no such file: '" + path + "'");
    throw Error(Errc::system, "cannot open '" + path + "': " + std::strerror(errno));
  }
  std::string data;
  char chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw Error(Errc::system, "cannot read '" + path + "': " + std::strerror(err));
    }
    if (n == 0) break;
    data.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return data;
}

// An archived event keeps its origin, stream id included, so it is an imported event here:
// the bridge never ships it back to Redis, and `reply_to_origin` still names what it answers.
PublishResult publish_imported(Room& room, const EventLine& e) {
  PublishOptions o;
  o.to = e.to;
  o.origin = e.origin.view();
  if (e.reply_to_origin) o.reply_to_origin = e.reply_to_origin->view();
  return room.publish(e.type, e.agent, e.payload, o);
}

}  // namespace

ExportResult export_jsonl(Room& room, int fd, const ExportOptions& options) {
  shm::Ring& ring = RoomAccess::ring(room);
  const std::uint64_t end = ring.tail();
  SubscribeOptions so;
  if (options.from) {
    so.from = StartFrom::id;
    so.from_id = *options.from;
  } else {
    so.from = StartFrom::earliest;
  }
  Subscription sub = room.subscribe(so);
  ExportResult result;
  std::string buf;
  auto last_progress = std::chrono::steady_clock::now();
  while (sub.position() < end) {
    const ReadResult r = sub.next(std::chrono::milliseconds(100));
    if (r.status == ReadStatus::timeout) {
      // A record claimed before `end` and never committed: the ring repairs it once its
      // claimer is confirmed dead. A live, stuck claimer bounds us instead.
      if (std::chrono::steady_clock::now() - last_progress > std::chrono::seconds(10))
        throw Error(Errc::timeout, "export stalled: an event before the tail stays uncommitted");
      continue;
    }
    last_progress = std::chrono::steady_clock::now();
    if (r.status == ReadStatus::overrun) {
      result.missed += r.missed;
      continue;
    }
    if (r.event.id >= end) break;
    if (r.event.type != kStatusEventType) continue;
    const std::optional<StatusEntry> e = status_entry_from(r.event);
    if (!e) {
      ++result.skipped;
      continue;
    }
    buf += e->to_json();
    buf += '\n';
    ++result.exported;
    if (buf.size() >= (256u << 10)) write_all(fd, buf);
  }
  write_all(fd, buf);
  return result;
}

ImportResult import_jsonl(Room& room, const std::string& path, const ImportOptions& options) {
  const std::string data = read_file(path);
  const auto warn = [&](const std::string& message) {
    if (options.warn) options.warn(message);
    else std::fprintf(stderr, "warning: %s\n", message.c_str());
  };
  ImportResult result;
  std::size_t start = 0, line_no = 0;
  while (start < data.size()) {
    ++line_no;
    std::size_t nl = data.find('\n', start);
    const bool terminated = nl != std::string::npos;
    if (!terminated) nl = data.size();
    std::string_view line(data.data() + start, nl - start);
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank
    std::string why;
    const ParsedEventLine event = parse_event_line(line);
    std::optional<StatusEntry> entry;
    if (event.kind == ParsedEventLine::Kind::malformed) why = event.why;
    else if (event.kind == ParsedEventLine::Kind::not_event) entry = parse_status_entry(line, why);
    if (event.kind == ParsedEventLine::Kind::event || entry) {
      try {
        const PublishResult r = entry ? room.publish(kStatusEventType, entry->agent_id, entry->to_json())
                                      : publish_imported(room, event.event);
        if (!r.ok()) throw Error(Errc::timeout, "room '" + room.name() + "' is full: a durable reader is behind");
        ++(entry ? result.imported : result.events);
        continue;
      } catch (const Error& err) {
        if (err.code() != Errc::too_large && err.code() != Errc::invalid_argument) throw;
        why = err.what();
      }
    }
    ++result.skipped;
    if (!terminated) {
      result.torn_last_line = true;
      warn(path + ": line " + std::to_string(line_no) +
           ": torn last line (a writer killed mid-write?), skipped: " + why);
      break;
    }
    const std::string message = path + ": line " + std::to_string(line_no) + ": " + why;
    if (options.strict) throw Error(Errc::invalid_argument, message + " (--strict: import stopped)");
    warn(message + "; skipped");
  }
  return result;
}

}  // namespace agentbus
