// event_json.cpp — events as JSON lines, out (tail --json, archives) and back in (import).
#include <agentbus/event_json.hpp>

#include "status/json_fields.hpp"
#include <agentbus/json_text.hpp>
#include <agentbus/names.hpp>

#include <simdjson.h>

#include <cstdio>
#include <ctime>

namespace agentbus {
namespace {

using util::json_string;

// The minified text when `payload` is valid JSON (UTF-8 included), else nothing.
std::optional<std::string> minified_json(std::string_view payload) {
  // One parser per thread keeps its buffers between events.
  thread_local simdjson::dom::parser parser;
  if (payload.empty() || parser.parse(payload.data(), payload.size(), true).error()) return std::nullopt;
  // Valid, so the text minifier, which keeps numbers byte-exact, is safe.
  std::string out(payload.size() + simdjson::SIMDJSON_PADDING, '\0');
  std::size_t n = 0;
  if (simdjson::minify(payload.data(), payload.size(), out.data(), n) != simdjson::SUCCESS) return std::nullopt;
  out.resize(n);
  return out;
}

std::string exact_payload_json(std::string_view payload) {
  const std::optional<std::string> m = minified_json(payload);
  if (m && *m == payload && payload.front() != '"') return *m;
  return json_string(payload);
}

std::string origin_json(const OriginRef& o) {
  return "{\"host\":" + json_string(o.host) + ",\"id\":" + std::to_string(o.id) + '}';
}

ParsedEventLine malformed(std::string why) {
  ParsedEventLine p;
  p.kind = ParsedEventLine::Kind::malformed;
  p.why = std::move(why);
  return p;
}

// {"host": "<host id>", "id": <unsigned>}; false with `why` otherwise.
bool read_origin(simdjson::dom::element value, std::string_view name, Origin& out, std::string& why) {
  simdjson::dom::object obj;
  std::string_view host;
  std::uint64_t id = 0;
  if (value.get_object().get(obj) || obj["host"].get_string().get(host) || obj["id"].get_uint64().get(id)) {
    why = "\"" + std::string(name) + "\" must be {\"host\": string, \"id\": unsigned integer}";
    return false;
  }
  if (const std::optional<std::string> problem = host_id_problem(host)) {
    why = "\"" + std::string(name) + "\".host: " + *problem;
    return false;
  }
  out.host.assign(host);
  out.id = id;
  return true;
}

bool read_string(simdjson::dom::object& obj, std::string_view key, std::string& out, bool required, std::string& why) {
  return status_json::read_string(obj, key, out, required, why, status_json::Null::is_absent);  // null: "to": null
}

}  // namespace

std::string payload_json(std::string_view payload) {
  std::optional<std::string> m = minified_json(payload);
  return m ? std::move(*m) : json_string(payload);
}

std::string iso8601_utc(std::int64_t ts_ns) {
  std::int64_t secs = ts_ns / 1'000'000'000;
  std::int64_t nanos = ts_ns % 1'000'000'000;
  if (nanos < 0) secs -= 1, nanos += 1'000'000'000;
  const auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(nanos));
  return buf;
}

std::string event_json(const EventView& event, std::string_view room, PayloadForm form) {
  std::string out = "{\"id\":" + std::to_string(event.id);
  out += ",\"ts\":\"" + iso8601_utc(event.ts_ns) + '"';
  out += ",\"room\":" + json_string(room);
  out += ",\"type\":" + json_string(event.type);
  out += ",\"agent\":" + json_string(event.agent);
  out += ",\"to\":" + (event.to.empty() ? std::string("null") : json_string(event.to));
  out += ",\"reply_to\":" + (event.reply_to ? std::to_string(*event.reply_to) : "null");
  out += ",\"origin\":" + origin_json(event.origin);
  if (event.imported) out += ",\"stream_id\":\"" + event.origin.stream.to_string() + '"';
  if (event.reply_to_origin) out += ",\"reply_to_origin\":" + origin_json(*event.reply_to_origin);
  out += ",\"payload\":" + (form == PayloadForm::exact ? exact_payload_json(event.payload) : payload_json(event.payload));
  out += "}\n";
  return out;
}

ParsedEventLine parse_event_line(std::string_view json) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  // Not JSON, or not an object: not an event line; the status parser says what is wrong.
  if (json.empty() || parser.parse(json.data(), json.size(), true).get(doc) || doc.get_object().get(obj))
    return {};
  simdjson::dom::element stream_value, origin_value;
  if (obj["stream_id"].get(stream_value) || obj["origin"].get(origin_value)) return {};

  ParsedEventLine p;
  p.kind = ParsedEventLine::Kind::event;
  EventLine& e = p.event;
  std::string_view stream_text;
  std::optional<StreamId> stream;
  if (stream_value.get_string().get(stream_text) || !(stream = StreamId::parse(stream_text)) || stream->empty())
    return malformed("\"stream_id\" must be a stream id \"<ms>-<seq>\"");
  std::string why;
  if (!read_origin(origin_value, "origin", e.origin, why)) return malformed(why);
  e.origin.stream = *stream;
  if (!read_string(obj, "type", e.type, true, why) || !read_string(obj, "agent", e.agent, true, why) ||
      !read_string(obj, "to", e.to, false, why) || !read_string(obj, "room", e.room, false, why))
    return malformed(why);
  simdjson::dom::element reply_value;
  if (!obj["reply_to_origin"].get(reply_value) && !reply_value.is_null()) {
    Origin reply;
    if (!read_origin(reply_value, "reply_to_origin", reply, why)) return malformed(why);
    e.reply_to_origin = std::move(reply);
  }
  simdjson::dom::element payload;
  if (obj["payload"].get(payload)) return malformed("missing \"payload\"");
  std::string_view text;
  if (!payload.get_string().get(text)) e.payload.assign(text);
  else e.payload = simdjson::minify(payload);
  return p;
}

}  // namespace agentbus
