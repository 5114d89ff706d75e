// top_view.cpp — see top_view.hpp.
#include "top_view.hpp"

#include "output.hpp"

#include <agentbus/utf8.hpp>

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>

namespace agentbus::cli {
namespace {

std::string align_right(const std::string& s, std::size_t w) {
  const std::size_t n = display_width(s);
  return n < w ? std::string(w - n, ' ') + s : s;
}

std::string clean(std::string_view s, std::size_t max) { return clip_to_width(sanitize_for_terminal(s), max); }

std::string field(simdjson::dom::element root, const char* key) {
  std::string_view v;
  if (!root[key].get(v)) return std::string(v);
  // A number or boolean is shown as written; objects and arrays are not status text.
  simdjson::dom::element e;
  if (root[key].get(e) || e.is_object() || e.is_array() || e.is_null()) return {};
  return simdjson::minify(e);
}

int digits(std::string_view s, std::size_t at, std::size_t n) {
  if (at + n > s.size()) return -1;
  int v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (std::isdigit(static_cast<unsigned char>(s[i])) == 0) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

std::string rate_text(const std::optional<double>& rate) {
  if (!rate) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, *rate < 10 ? "%.1f" : "%.0f", *rate);
  return buf;
}

}  // namespace

std::optional<std::int64_t> parse_iso8601(std::string_view s) {
  const int year = digits(s, 0, 4), mon = digits(s, 5, 2), day = digits(s, 8, 2);
  const int hour = digits(s, 11, 2), min = digits(s, 14, 2), sec = digits(s, 17, 2);
  if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || min < 0 || min > 59 ||
      sec < 0 || sec > 60 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' ||
      s[16] != ':')
    return std::nullopt;
  std::size_t at = 19;
  std::int64_t frac_ns = 0;
  if (at < s.size() && (s[at] == '.' || s[at] == ',')) {
    ++at;
    std::int64_t scale = 100'000'000;
    const std::size_t first = at;
    for (; at < s.size() && std::isdigit(static_cast<unsigned char>(s[at])) != 0; ++at) {
      frac_ns += (s[at] - '0') * scale;
      scale /= 10;
    }
    if (at == first) return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  std::int64_t secs = 0;
  if (at == s.size()) {  // no offset: local time, as a naive Python datetime.now() writes it
    tm.tm_isdst = -1;
    secs = static_cast<std::int64_t>(std::mktime(&tm));
  } else if (s[at] == 'Z' || s[at] == 'z') {
    if (at + 1 != s.size()) return std::nullopt;
    secs = static_cast<std::int64_t>(timegm(&tm));
  } else if (s[at] == '+' || s[at] == '-') {
    const int oh = digits(s, at + 1, 2);
    const bool colon = at + 3 < s.size() && s[at + 3] == ':';
    const int om = digits(s, at + (colon ? 4 : 3), 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59 || at + (colon ? 6 : 5) != s.size()) return std::nullopt;
    const int sign = s[at] == '+' ? 1 : -1;
    secs = static_cast<std::int64_t>(timegm(&tm)) - sign * (oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  return secs * 1'000'000'000 + frac_ns;
}

std::optional<std::string> status_line(std::string_view payload, std::string_view event_agent,
                                       std::int64_t event_ts_ns, std::string_view origin_host) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  const simdjson::padded_string padded(payload);
  if (parser.parse(padded).get(root) || !root.is_object()) return std::nullopt;
  const std::string action = field(root, "action");
  const std::string status = field(root, "status");
  if (action.empty() && status.empty()) return std::nullopt;
  std::string agent = field(root, "agent_id");
  if (agent.empty()) agent = std::string(event_agent);
  if (!origin_host.empty()) agent += '@' + std::string(origin_host);
  const std::optional<std::int64_t> ts = parse_iso8601(field(root, "ts"));
  std::string line = "[" + clock_local(ts.value_or(event_ts_ns)) + "] " + clean(agent, 40) + ": ";
  if (!action.empty()) line += clean(action, 60);
  if (!action.empty() && !status.empty()) line += " \u2192 ";
  if (!status.empty()) line += clean(status, 20);
  const std::string detail = field(root, "detail");
  if (!detail.empty()) line += " | " + clean(detail, 200);
  return line;
}

namespace {
// A durable reader is a cursor that gates producers whether or not a process holds it, so
// "dead" would mislead; a group's gate is never held by anyone (its members read for it).
std::string reader_label(const TopReader& rd) {
  if (!rd.durable) return "";
  if (rd.name.rfind("group.", 0) == 0) return " (gate of consumer group " + clean(rd.name.substr(6), 64) + ")";
  return rd.alive ? " (durable)" : " (durable, not attached)";
}
}  // namespace

std::string bridge_line(const BridgeSummary& b) {
  if (b.pid == 0) return "bridge not running; lag " + std::to_string(b.lag_events) + " events";
  char age[32];
  std::snprintf(age, sizeof age, "%.1f s", double(b.oldest_lag_ns) / 1e9);
  return "bridge pid " + std::to_string(b.pid) + ", Redis " + (b.connected ? "connected" : "unreachable") + ", lag " +
         std::to_string(b.lag_events) + " events" + (b.lag_events ? std::string(" (oldest ") + age + ")" : "") +
         ", spooled " + std::to_string(b.spooled_events);
}

std::string run_line(const TopRun& r) {
  const std::string head = "run " + clean(r.id, 64) + " " + clean(r.strategy, 16) + ": ";
  const std::string steps = std::to_string(r.steps) + (r.steps == 1 ? " step" : " steps") + " done";
  if (!r.driver_alive) return head + "interrupted (driver gone), " + steps + ": agentbus run --resume " + clean(r.id, 64);
  return head + "running, " + steps + ", driver pid " + std::to_string(r.driver_pid);
}

std::vector<std::string> render_top(const TopSnapshot& snap, std::size_t width, std::size_t height) {
  std::vector<std::string> lines;
  lines.push_back("agentbus top -- bus " + clean(snap.bus, 40) + " -- " + clock_local(snap.now_ns) + " -- " +
                  std::to_string(snap.rooms.size()) + (snap.rooms.size() == 1 ? " room" : " rooms") +
                  (snap.live ? " -- q quits" : ""));
  if (!snap.bridge.empty()) lines.push_back(snap.bridge);
  for (const auto& run : snap.runs) lines.push_back(run);
  if (snap.rooms.empty()) {
    lines.push_back("");
    lines.push_back("no rooms yet: nothing has been posted on this bus");
  } else {
    std::size_t name_w = 4;
    for (const TopRoom& r : snap.rooms) name_w = std::max(name_w, display_width(clean(r.name, 40)));
    lines.push_back("");
    lines.push_back(align_left("ROOM", name_w) + "  " + align_right("EV/S", 7) + "  " + align_right("TAIL", 12) + "  " +
                    align_right("RING", 6) + "  " + align_right("READERS", 7) + "  " + align_right("MAX LAG", 10) + "  " +
                    align_right("AGENTS", 6) + "  " + align_right("OPEN", 5) + "  " + align_right("CLAIMED", 7));
    for (const TopRoom& r : snap.rooms) {
      std::uint64_t max_lag = 0;
      for (const TopReader& rd : r.readers) max_lag = std::max(max_lag, rd.lag_bytes);
      char ring[16];
      const double used = r.ring_bytes == 0 ? 0.0 : 100.0 * static_cast<double>(r.tail - r.oldest) /
                                                          static_cast<double>(r.ring_bytes);
      std::snprintf(ring, sizeof ring, "%.0f%%", std::min(used, 100.0));
      lines.push_back(align_left(clean(r.name, 40), name_w) + "  " + align_right(rate_text(r.rate), 7) + "  " +
                      align_right(std::to_string(r.tail), 12) + "  " + align_right(ring, 6) + "  " +
                      align_right(std::to_string(r.readers.size()), 7) + "  " +
                      align_right(r.readers.empty() ? "-" : human_bytes(max_lag), 10) + "  " +
                      align_right(std::to_string(r.agents.size()), 6) + "  " + align_right(std::to_string(r.open_tasks), 5) + "  " +
                      align_right(std::to_string(r.claimed.size()), 7));
    }
    for (const TopRoom& r : snap.rooms) {
      if (r.agents.empty() && r.claimed.empty() && r.status.empty() && r.readers.empty()) continue;
      lines.push_back("");
      lines.push_back(clean(r.name, 128));
      const auto section = [&](const char* label, std::size_t i, const std::string& text) {
        lines.push_back(std::string("  ") + (i == 0 ? align_left(label, 8) : std::string(8, ' ')) + " " + text);
      };
      for (std::size_t i = 0; i < r.agents.size(); ++i) {
        const TopAgent& a = r.agents[i];
        std::string text = clean(a.handle, 64);
        if (!a.role.empty()) text += " (" + clean(a.role, 40) + ")";
        if (!a.working_on.empty()) text += ": " + clean(a.working_on, 80);
        section("agents", i, text);
      }
      for (std::size_t i = 0; i < r.claimed.size(); ++i) {
        const TopTask& t = r.claimed[i];
        section("claimed", i, std::to_string(t.id) + " " + clean(t.type, 40) + " by " + clean(t.claimant, 64));
      }
      for (std::size_t i = 0; i < r.readers.size(); ++i) {
        const TopReader& rd = r.readers[i];
        section("readers", i, clean(rd.name, 64) + reader_label(rd) + " lag " + human_bytes(rd.lag_bytes));
      }
      for (std::size_t i = 0; i < r.status.size(); ++i) section("status", i, r.status[i]);
    }
  }
  lines.push_back("");
  lines.push_back(snap.note.empty()
                      ? "EV/S: events/s seen by top since the last refresh; RING: share of the ring holding events; "
                        "LAG: bytes a reader is behind"
                      : "note: " + clean(snap.note, 200));
  if (height > 0 && lines.size() > height) {
    const std::size_t cut = lines.size() - (height - 1);
    lines.resize(height - 1);
    lines.push_back("\u2026 " + std::to_string(cut) + " more line(s): enlarge the terminal");
  }
  if (width > 0)
    for (std::string& l : lines) l = clip_to_width(l, width);
  return lines;
}

std::string to_ascii(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const util::CodePoint c = util::decode_utf8(text, i);
    if (c.cp < 0x80) out += static_cast<char>(c.cp);
    else if (c.cp == 0x2192) out += "->";   // →
    else if (c.cp == 0x2026) out += "...";  // …
    else out += '?';                        // anything else, invalid bytes included
    i += c.len;
  }
  return out;
}

}  // namespace agentbus::cli
