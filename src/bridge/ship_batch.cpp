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

// The script's arguments. The fields are views into the batch; only the numbers are made
// here, in `numbers`, sized up front so that the views into it stay valid.
struct ShipArgs {
  std::vector<std::string> numbers;
  std::vector<std::string_view> views;
  ShipArgs(const ShipTarget& target, std::span<const ShipEntry> batch) {
    numbers.reserve(3 + 2 * batch.size());
    views.push_back(target.incarnation);
    number(std::to_string(target.maxlen));
    number(std::to_string(target.ttl_ms));
    number(std::to_string(batch.size()));
    for (const ShipEntry& e : batch) {
      number(id20(e.local_id));
      number(std::to_string(e.fields.size() / 2));
      views.insert(views.end(), e.fields.begin(), e.fields.end());
    }
  }
  void number(std::string text) { views.push_back(numbers.emplace_back(std::move(text))); }
};

ShipResult ship_result(const RedisReply& r, const ShipTarget& target) {
  if (r.is_error())
    throw Error(Errc::system, "Redis refused the ship script for " + target.stream_key + ": " +
                                  std::string(r.error().value_or("")));
  const std::optional<long long> added = r.at(0).integer();
  const std::optional<std::string_view> last = r.at(1).string();
  if (!added || !last) throw Error(Errc::system, "the ship script answered " + r.describe());
  return {static_cast<std::uint64_t>(*added), last->empty() ? 0 : parse_id(*last).value_or(0)};
}

}  // namespace

ShipResult ship(RedisConnection& conn, RedisScript& script, const ShipTarget& target,
                std::span<const ShipEntry> batch) {
  const ShipArgs args(target, batch);
  const std::string_view keys[] = {target.stream_key, target.checkpoint_key};
  return ship_result(conn.eval(script, keys, args.views), target);
}

void send_ship(RedisConnection& conn, RedisScript& script, const ShipTarget& target, std::span<const ShipEntry> batch) {
  const ShipArgs args(target, batch);
  const std::string_view keys[] = {target.stream_key, target.checkpoint_key};
  conn.append_eval(script, keys, args.views);
}

ShipResult receive_ship(RedisConnection& conn, RedisScript& script, const ShipTarget& target) {
  const RedisReply r = conn.read_reply();
  // Redis forgot the script (SCRIPT FLUSH): the batch was not run; load it again for the next
  // call and report the batch as not confirmed, so that it is shipped again.
  if (const auto error = r.error(); error && error->starts_with("NOSCRIPT")) {
    script.sha.clear();
    throw Error(Errc::system, "Redis forgot the ship script (" + std::string(*error) + ")");
  }
  return ship_result(r, target);
}

}  // namespace agentbus::bridge
