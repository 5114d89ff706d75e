#include "bridge/ship_batch.hpp"

#include <agentbus/error.hpp>

#include <charconv>
#include <cstdio>

namespace agentbus::bridge {

namespace {

void put(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
bool get(std::string_view& in, std::uint64_t& v, int bytes) {
  if (in.size() < static_cast<std::size_t>(bytes)) return false;
  v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t(static_cast<unsigned char>(in[i])) << (8 * i);
  in.remove_prefix(bytes);
  return true;
}

// Fixed width, so that the script compares ids as strings (Lua's numbers are doubles).
std::string id20(EventId id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(id));
  return buf;
}

std::optional<EventId> parse_id(std::string_view s) {
  EventId v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::string serialise(const ShipEntry& e) {
  std::string out;
  put(out, e.local_id, 8);
  put(out, e.fields.size(), 4);
  for (const std::string& f : e.fields) {
    put(out, f.size(), 4);
    out += f;
  }
  return out;
}

std::optional<ShipEntry> parse_ship_entry(std::string_view in) {
  ShipEntry e;
  std::uint64_t count = 0;
  if (!get(in, e.local_id, 8) || !get(in, count, 4) || count > 2 * 64) return std::nullopt;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint64_t len = 0;
    if (!get(in, len, 4) || len > in.size()) return std::nullopt;
    e.fields.emplace_back(in.substr(0, len));
    in.remove_prefix(len);
  }
  if (!in.empty()) return std::nullopt;
  return e;
}

namespace {

std::string checkpoint_value(std::string_view incarnation, EventId last) {
  return std::string(incarnation) + ":" + id20(last);
}

// "<incarnation>:<digits>"; anything else (a key another tool wrote) counts as no checkpoint.
ShipCursor parse_checkpoint(std::string_view value) {
  const std::size_t colon = value.rfind(':');
  if (colon == std::string_view::npos) return {};
  const std::optional<EventId> id = parse_id(value.substr(colon + 1));
  if (!id) return {};
  return {std::string(value.substr(0, colon)), *id};
}

std::string refused(const ShipTarget& target, std::string_view why) {
  return "Redis refused the batch for " + target.stream_key + ": " + std::string(why);
}

// The transaction's last word: the checkpoint moves only if the key is a stream. An XADD that
// fails inside EXEC (the key changed type after read_cursor looked) does not stop the commands
// after it, and a plain SET would then move the checkpoint past entries Redis does not hold.
constexpr std::string_view kSetCheckpoint =
    "if redis.call('TYPE', KEYS[1]).ok == 'stream' then redis.call('SET', KEYS[2], ARGV[1]) return 1 end return 0";

}  // namespace

std::span<const ShipEntry> ShipCursor::unshipped(std::span<const ShipEntry> batch, std::string_view inc) const {
  if (incarnation != inc) return batch;
  std::size_t first = 0;
  while (first < batch.size() && batch[first].local_id <= last) ++first;
  return batch.subspan(first);
}

ShipCursor read_cursor(RedisConnection& conn, const ShipTarget& target) {
  // A user whose ACL lacks MULTI would have every XADD run on its own: refuse to ship at all.
  const RedisReply multi = conn.command({"MULTI"});
  if (multi.is_error())
    throw Error(Errc::system, "Redis refused MULTI (" + std::string(multi.error().value_or("")) +
                                  "): the bridge ships each batch in a transaction; allow +multi +exec +discard +eval");
  const RedisReply discard = conn.command({"DISCARD"});
  if (discard.is_error())  // the connection would stay inside the transaction: say so, go no further
    throw Error(Errc::system, "Redis refused DISCARD (" + std::string(discard.error().value_or("")) +
                                  "): allow +multi +exec +discard +eval");
  const RedisReply type = conn.command({"TYPE", target.stream_key});
  const std::optional<std::string_view> kind = type.status();
  if (!kind) throw Error(Errc::system, "TYPE " + target.stream_key + " answered " + type.describe());
  if (*kind != "stream" && *kind != "none")
    throw Error(Errc::system, target.stream_key + " holds a " + std::string(*kind) +
                                  ", not a stream: the room's events cannot be added (delete or rename the key)");
  const RedisReply cp = conn.command({"GET", target.checkpoint_key});
  if (cp.is_nil()) return {};
  const std::optional<std::string_view> value = cp.string();
  if (!value) throw Error(Errc::system, "GET " + target.checkpoint_key + " answered " + cp.describe());
  return parse_checkpoint(*value);
}

PendingShip queue_ship(RedisConnection& conn, ShipCursor& cursor, const ShipTarget& target, std::span<const ShipEntry> batch) {
  const std::span<const ShipEntry> fresh = cursor.unshipped(batch, target.incarnation);
  PendingShip p;
  if (fresh.empty()) {
    p.checkpoint = cursor.last;
    return p;
  }
  const std::string maxlen = std::to_string(target.maxlen), ttl = std::to_string(target.ttl_ms);
  conn.append({"MULTI"});
  std::vector<std::string_view> xadd;
  for (const ShipEntry& e : fresh) {
    xadd.assign({"XADD", target.stream_key, "MAXLEN", "~", maxlen, "*"});
    xadd.insert(xadd.end(), e.fields.begin(), e.fields.end());
    conn.append(xadd);
  }
  conn.append({"EVAL", kSetCheckpoint, "2", target.stream_key, target.checkpoint_key,
               checkpoint_value(target.incarnation, fresh.back().local_id)});
  p.replies = fresh.size() + 3;
  const auto now = std::chrono::steady_clock::now();
  if (target.ttl_ms > 0 && now >= cursor.ttl_due) {
    conn.append({"PEXPIRE", target.stream_key, ttl});
    conn.append({"PEXPIRE", target.checkpoint_key, ttl});
    p.replies += 2;
    cursor.ttl_due = now + std::chrono::seconds(1);
  }
  p.added = fresh.size();
  p.checkpoint = fresh.back().local_id;
  p.set_at = fresh.size();
  cursor.incarnation = target.incarnation;
  cursor.last = p.checkpoint;
  return p;
}

void exec_ship(RedisConnection& conn, const PendingShip& p) {
  if (p.replies > 0) conn.append({"EXEC"});
}

ShipResult receive_ship(RedisConnection& conn, const PendingShip& p, const ShipTarget& target) {
  if (p.replies == 0) return {0, p.checkpoint};
  // MULTI's +OK, then +QUEUED for each command; a command Redis would not queue (ACL, OOM)
  // makes EXEC abort the whole transaction.
  std::optional<std::string> queue_error;
  for (std::size_t i = 0; i + 1 < p.replies; ++i) {
    const RedisReply r = conn.read_reply();
    const std::optional<std::string_view> st = r.status();
    if (!st || *st != (i == 0 ? "OK" : "QUEUED"))
      if (!queue_error) queue_error = r.is_error() ? std::string(*r.error()) : "unexpected reply " + r.describe();
  }
  const RedisReply exec = conn.read_reply();
  if (const auto e = exec.error()) throw Error(Errc::system, refused(target, queue_error.value_or(std::string(*e))));
  if (queue_error) throw Error(Errc::system, refused(target, *queue_error));
  if (exec.kind() != ReplyKind::array || exec.size() != p.replies - 2)
    throw Error(Errc::system, "EXEC of the batch for " + target.stream_key + " answered " + exec.describe());
  if (exec.at(p.set_at).integer() != 1) {
    // The checkpoint did not move: the entries that failed go again with the rest.
    std::string why = "its key is no longer a stream";
    for (std::size_t i = 0; i < p.set_at; ++i)
      if (const auto e = exec.at(i).error()) why = std::string(*e);
    throw Error(Errc::system, refused(target, why));
  }
  return {p.added, p.checkpoint};
}

ShipResult ship(RedisConnection& conn, ShipCursor& cursor, const ShipTarget& target, std::span<const ShipEntry> batch) {
  const PendingShip p = queue_ship(conn, cursor, target, batch);
  exec_ship(conn, p);
  return receive_ship(conn, p, target);
}

}  // namespace agentbus::bridge
