// status_entry.cpp — StatusLevel, StatusEntry, parse_status_entry and RoomKit's text formats.
#include "status/json_fields.hpp"
#include "status/status_format.hpp"

#include <agentbus/status_bus.hpp>

#include <simdjson.h>

#include <array>
#include <cstdio>

namespace agentbus {
namespace {

constexpr std::array<std::string_view, 5> kLevels = {"ok", "failed", "pending", "info", "completed"};

using status_json::read_string;

}  // namespace

std::string_view to_string(StatusLevel level) noexcept { return kLevels[static_cast<std::size_t>(level)]; }

std::optional<StatusLevel> parse_status_level(std::string_view text) noexcept {
  for (std::size_t i = 0; i < kLevels.size(); ++i)
    if (kLevels[i] == text) return static_cast<StatusLevel>(i);
  return std::nullopt;
}

std::string StatusEntry::to_json() const {
  std::string out;
  out.reserve(96 + agent_id.size() + action.size() + detail.size() + metadata.size());
  status::append_entry_json(out, ts, agent_id, action, status, detail, metadata);
  if (!origin_host.empty()) {
    out.pop_back();
    out += ",\"origin_host\":";
    status::append_json_string(out, origin_host);
    out += '}';
  }
  return out;
}

std::optional<StatusEntry> status_entry_from(const EventView& event) {
  std::optional<StatusEntry> e = parse_status_entry(event.payload);
  if (!e) return e;
  e->id = event.id;
  if (event.imported) e->origin_host.assign(event.origin.host);
  return e;
}

std::optional<std::int64_t> StatusEntry::ts_ns() const { return status::parse_iso8601(ts); }

std::optional<StatusEntry> parse_status_entry(std::string_view json) {
  std::string why;
  return parse_status_entry(json, why);
}

std::optional<StatusEntry> parse_status_entry(std::string_view json, std::string& why) {
  if (json.empty()) {
    why = "empty line";
    return std::nullopt;
  }
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (const auto err = parser.parse(json.data(), json.size(), true).get(doc)) {
    why = std::string("not valid JSON: ") + simdjson::error_message(err);
    return std::nullopt;
  }
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) {
    why = "not a JSON object";
    return std::nullopt;
  }
  StatusEntry e;
  std::string ts, level;
  if (!read_string(obj, "ts", ts, true, why) || !read_string(obj, "agent_id", e.agent_id, true, why) ||
      !read_string(obj, "action", e.action, true, why) || !read_string(obj, "status", level, true, why) ||
      !read_string(obj, "detail", e.detail, false, why))
    return std::nullopt;
  const std::optional<std::int64_t> ns = status::parse_iso8601(ts);
  if (!ns) {
    why = "\"ts\" is not an ISO-8601 UTC time";
    return std::nullopt;
  }
  e.ts.reserve(27);
  status::append_iso8601(e.ts, *ns);
  const std::optional<StatusLevel> l = parse_status_level(level);
  if (!l) {
    why = "\"status\" must be one of ok, failed, pending, info, completed";
    return std::nullopt;
  }
  e.status = *l;
  simdjson::dom::element meta;
  if (!obj["metadata"].get(meta)) {
    if (!meta.is_object()) {
      why = "\"metadata\" must be a JSON object";
      return std::nullopt;
    }
    e.metadata = simdjson::minify(meta);
  }
  return e;
}

std::string status_line(const StatusEntry& e) {
  std::string out = "[";
  out += e.ts.size() >= 19 ? std::string_view(e.ts).substr(11, 8) : std::string_view(e.ts);
  out += "] ";
  out += e.agent_id;
  if (!e.origin_host.empty()) out += '@' + e.origin_host;
  out += ": ";
  out += e.action;
  out += " \u2192 ";
  out += to_string(e.status);
  if (!e.detail.empty()) {
    out += " | ";
    out += e.detail;
  }
  return out;
}

std::string status_text(const std::vector<StatusEntry>& entries) {
  if (entries.empty()) return "No activity yet.";
  std::string out;
  for (const StatusEntry& e : entries) {
    if (!out.empty()) out += '\n';
    out += status_line(e);
  }
  return out;
}

std::string status_summary(const std::vector<StatusEntry>& entries) {
  if (entries.empty()) return "No status entries.\n";
  std::string out = "Status Log\n" + std::string(60, '=') + "\n";
  std::size_t ok = 0, failed = 0, completed = 0;
  char num[32];
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const StatusEntry& e = entries[i];
    char icon = '?';
    switch (e.status) {
      case StatusLevel::ok: icon = '+', ++ok; break;
      case StatusLevel::failed: icon = 'x', ++failed; break;
      case StatusLevel::info: icon = '~'; break;
      case StatusLevel::completed: icon = '*', ++completed; break;
      case StatusLevel::pending: icon = '?'; break;
    }
    std::snprintf(num, sizeof num, "  %2zu. [%c] ", i + 1, icon);
    out += num;
    const std::string agent = e.origin_host.empty() ? e.agent_id : e.agent_id + '@' + e.origin_host;
    out += agent;
    if (agent.size() < 6) out.append(6 - agent.size(), ' ');
    out += ' ';
    out += e.action;
    out += '\n';
    if (!e.detail.empty()) {
      out += "      ";
      out += status::utf8_prefix(e.detail, 100);
      out += '\n';
    }
  }
  std::snprintf(num, sizeof num, "%zu", entries.size());
  out += "\n  Total: " + std::string(num) + " entries (" + std::to_string(ok) +
         " ok, " + std::to_string(failed) + " failed, " + std::to_string(completed) + " completed)\n";
  return out;
}

}  // namespace agentbus
