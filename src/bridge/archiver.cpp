// archiver.cpp — SCAN, XRANGE in pages into a file, then XDEL of exactly what the file holds.
#include "bridge/archiver.hpp"

#include "bridge/archive_file.hpp"
#include "bridge/entry_codec.hpp"
#include "bridge/stream_keys.hpp"

#include <agentbus/clock.hpp>
#include <agentbus/error.hpp>
#include <agentbus/event_json.hpp>
#include <agentbus/json_text.hpp>

#include <limits>
#include <set>

namespace agentbus::bridge {
namespace {

using util::append_json_string;

std::vector<std::string> stream_keys_matching(RedisConnection& redis, const std::vector<std::string>& patterns) {
  std::vector<std::string> keys;
  std::set<std::string> seen;  // SCAN may return a key twice, and patterns may overlap
  for (const std::string& pattern : patterns) {
    std::string cursor = "0";
    do {
      const RedisReply r = redis.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000", "TYPE", "stream"});
      const std::optional<std::string_view> next = r.at(0).string();
      if (!next) throw Error(Errc::system, "SCAN answered " + r.describe());
      cursor = std::string(*next);
      const ReplyView found = r.at(1);
      for (std::size_t i = 0; i < found.size(); ++i)
        if (const auto key = found.at(i).string(); key && seen.insert(std::string(*key)).second)
          keys.emplace_back(*key);
    } while (cursor != "0");
  }
  return keys;
}

// An entry that does not decode as one of ours (agentroom's own, or written by hand) is kept
// field by field, with why, so that nothing is lost.
std::string raw_line(std::string_view id, std::string_view room, ReplyView fields, std::string_view why) {
  std::string out = "{\"stream_id\":";
  append_json_string(out, id);
  out += ",\"room\":";
  append_json_string(out, room);
  out += ",\"rejected\":";
  append_json_string(out, why);
  out += ",\"raw\":{";
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (i) out += ',';
    append_json_string(out, fields.at(i).string().value_or(fields.at(i).describe()));
    out += ':';
    append_json_string(out, fields.at(i + 1).string().value_or(fields.at(i + 1).describe()));
  }
  out += "}}\n";
  return out;
}

std::string event_line(const StreamId& stream, std::string_view room, const StreamEvent& e) {
  EventView v;
  v.id = e.origin.id;
  v.ts_ns = e.ts_ns;
  v.type = e.type;
  v.agent = e.agent;
  v.to = e.to;
  v.payload = e.payload;
  v.origin = {e.origin.host, e.origin.id, stream};
  v.imported = true;  // so the line carries its stream id
  if (e.reply_to_origin) v.reply_to_origin = OriginRef{e.reply_to_origin->host, e.reply_to_origin->id, {}};
  return event_json(v, room, PayloadForm::exact);
}

struct Written {
  std::vector<std::string> ids;
  std::uint64_t raw = 0;
};

// XRANGE from the start up to `last` (the newest entry when the sweep reached the stream, so
// a busy stream cannot keep the sweep going), page by page, into `file`.
Written write_entries(RedisConnection& redis, const std::string& key, const std::string& last, std::string_view room,
                      std::size_t page, ArchiveFile& file) {
  Written w;
  const std::string count = std::to_string(page);
  std::string start = "-";
  for (;;) {
    const RedisReply r = redis.command({"XRANGE", key, start, last, "COUNT", count});
    if (r.kind() != ReplyKind::array) throw Error(Errc::system, "XRANGE " + key + " answered " + r.describe());
    for (std::size_t i = 0; i < r.size(); ++i) {
      const ReplyView entry = r.at(i);
      const std::optional<std::string_view> id = entry.at(0).string();
      const std::optional<StreamId> stream = id ? StreamId::parse(*id) : std::nullopt;
      if (!stream) throw Error(Errc::system, "XRANGE " + key + " gave an entry id that is " + entry.at(0).describe());
      const DecodedEntry d = decode_entry_fields(entry.at(1), std::numeric_limits<std::size_t>::max());
      if (d.ok()) {
        file.append(event_line(*stream, room, *d.event));
      } else {
        file.append(raw_line(*id, room, entry.at(1), d.rejection));
        ++w.raw;
      }
      w.ids.emplace_back(*id);
    }
    if (r.size() < page || w.ids.back() == last) return w;
    start = "(" + w.ids.back();
  }
}

// Deletes exactly `ids`, `page` at a time.
void delete_entries(RedisConnection& redis, const std::string& key, const std::vector<std::string>& ids,
                    std::size_t page) {
  for (std::size_t at = 0; at < ids.size(); at += page) {
    std::vector<std::string_view> argv{"XDEL", key};
    for (std::size_t i = at; i < std::min(ids.size(), at + page); ++i) argv.push_back(ids[i]);
    const RedisReply r = redis.command(argv);
    if (!r.integer()) throw Error(Errc::system, "XDEL " + key + " answered " + r.describe());
  }
}

StreamArchive archive_stream(RedisConnection& redis, const std::string& key, const ArchiveOptions& o) {
  StreamArchive s;
  s.key = key;
  const RedisReply len = redis.command({"XLEN", key});
  if (!len.integer()) {
    s.error = "XLEN answered " + len.describe();
    return s;
  }
  s.length = static_cast<std::uint64_t>(*len.integer());
  if (s.length < o.threshold || s.length == 0) {
    s.below_threshold = true;
    return s;
  }
  const RedisReply newest = redis.command({"XREVRANGE", key, "+", "-", "COUNT", "1"});
  if (newest.kind() != ReplyKind::array) {  // e.g. WRONGTYPE: replaced by another key since SCAN
    s.error = "XREVRANGE answered " + newest.describe();
    return s;
  }
  const std::optional<std::string_view> last = newest.at(0).at(0).string();
  if (!last) {  // emptied since XLEN
    s.below_threshold = true;
    return s;
  }
  const std::string room = room_of_stream_key(key).value_or("");
  Written w;
  try {
    ArchiveFile file(o.dir, archive_file_stem(key) + "-" + std::to_string(realtime_ns() / 1'000'000));
    w = write_entries(redis, key, std::string(*last), room, o.page, file);
    s.file = file.commit();
  } catch (const RedisDisconnected&) {
    throw;
  } catch (const Error& e) {
    s.error = e.what();  // nothing deleted
    return s;
  }
  if (o.before_delete) o.before_delete(key);
  try {
    delete_entries(redis, key, w.ids, o.page);
  } catch (const RedisDisconnected&) {
    throw;
  } catch (const Error& e) {
    s.error = std::string(e.what()) + " (the file has every entry; some may still be in the stream)";
    return s;
  }
  s.archived = w.ids.size();
  s.raw = w.raw;
  return s;
}

}  // namespace

bool ArchiveReport::ok() const {
  for (const StreamArchive& s : streams)
    if (!s.error.empty()) return false;
  return true;
}

ArchiveReport archive(RedisConnection& redis, const ArchiveOptions& o) {
  if (o.dir.empty()) throw Error(Errc::invalid_argument, "the archive needs a directory");
  if (o.page == 0) throw Error(Errc::invalid_argument, "the archive's page size must be at least 1");
  ArchiveReport report;
  for (const std::string& key : stream_keys_matching(redis, o.match)) report.streams.push_back(archive_stream(redis, key, o));
  return report;
}

ArchiveReport archive_streams(const RedisTarget& target, const ArchiveOptions& o, std::chrono::milliseconds timeout) {
  RedisConnection redis = RedisConnection::connect(target, timeout);
  return archive(redis, o);
}

}  // namespace agentbus::bridge
