// output.cpp — rendering events and bus info for the CLI; see output.hpp for the contract.
#include "output.hpp"

#include <agentbus/json_text.hpp>
#include <agentbus/utf8.hpp>

#include <agentbus/counter.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <vector>

namespace agentbus::cli {
namespace {

// ---- UTF-8 -------------------------------------------------------------------------------

using util::CodePoint;
using util::decode_utf8;
constexpr char32_t kInvalid = util::kInvalidCodePoint;
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// ---- terminal escape sequences (ECMA-48) --------------------------------------------------

bool in(unsigned char c, unsigned char lo, unsigned char hi) { return c >= lo && c <= hi; }

// CSI body: parameter and intermediate bytes, then one final byte.
std::size_t skip_csi(std::string_view s, std::size_t i) {
  while (i < s.size() && in(static_cast<unsigned char>(s[i]), 0x20, 0x3F)) ++i;
  if (i < s.size() && in(static_cast<unsigned char>(s[i]), 0x40, 0x7E)) ++i;
  return i;
}

// OSC/DCS/SOS/PM/APC body, up to and including its terminator: BEL, ST (ESC \ or U+009C), or
// CAN/SUB, which abort a sequence in real terminals. Another ESC ends the body but starts a new
// sequence, so it is left for the caller. An unterminated body runs to the end of the text, as
// a terminal would swallow it.
std::size_t skip_string(std::string_view s, std::size_t i) {
  while (i < s.size()) {
    const auto [cp, len] = decode_utf8(s, i);
    if (cp == 0x07 || cp == 0x18 || cp == 0x1A) return i + 1;
    if (cp == 0x9C) return i + len;
    if (cp == 0x1B) return (i + 1 < s.size() && s[i + 1] == '\\') ? i + 2 : i;
    i += len;
  }
  return i;
}

bool starts_string(char32_t c) {  // OSC, DCS, SOS, PM, APC in their 7-bit (ESC x) forms
  return c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_';
}

// `i` is at ESC or at a C1 control (U+0080..U+009F, `len` bytes); returns the index just past
// the whole sequence it introduces.
std::size_t skip_escape(std::string_view s, std::size_t i, char32_t introducer, std::size_t len) {
  if (introducer == 0x9B) return skip_csi(s, i + len);
  if (introducer == 0x9D || introducer == 0x90 || introducer == 0x98 || introducer == 0x9E ||
      introducer == 0x9F) {
    return skip_string(s, i + len);
  }
  if (introducer != 0x1B) return i + len;  // any other C1 control: just that character
  const std::size_t j = i + 1;
  if (j >= s.size()) return j;
  const auto c = static_cast<unsigned char>(s[j]);
  if (c == '[') return skip_csi(s, j + 1);
  if (starts_string(c)) return skip_string(s, j + 1);
  if (in(c, 0x20, 0x2F)) {  // nF: intermediates, then one final byte (e.g. ESC ( B)
    std::size_t k = j;
    while (k < s.size() && in(static_cast<unsigned char>(s[k]), 0x20, 0x2F)) ++k;
    if (k < s.size() && in(static_cast<unsigned char>(s[k]), 0x30, 0x7E)) ++k;
    return k;
  }
  if (in(c, 0x30, 0x7E)) return j + 1;  // two-byte forms: ESC c (reset), ESC 7, ESC M, ...
  return j;                             // a lone ESC: drop it, keep what follows
}

bool is_bidi_control(char32_t cp) {
  return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

// ---- small formatting helpers -------------------------------------------------------------

std::string line(std::string_view text) { return sanitize_for_terminal(text, Newlines::to_space); }

struct Split {
  std::int64_t secs;
  std::int64_t nanos;
};

Split split_ns(std::int64_t ts_ns) {
  std::int64_t secs = ts_ns / 1'000'000'000;
  std::int64_t nanos = ts_ns % 1'000'000'000;
  if (nanos < 0) secs -= 1, nanos += 1'000'000'000;
  return {secs, nanos};
}

}  // namespace

// ---- columns -----------------------------------------------------------------------------

std::size_t display_width(std::string_view s) {  // code points: good enough for alignment
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string align_left(std::string s, std::size_t width) {
  const std::size_t w = display_width(s);
  if (w < width) s.append(width - w, ' ');
  return s;
}

std::string clip_to_width(std::string_view s, std::size_t max) {
  if (display_width(s) <= max) return std::string(s);
  if (max == 0) return {};
  std::size_t points = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && points++ == max - 1) break;
  }
  return std::string(s.substr(0, i)) + "\u2026";
}

std::string aligned_table(const std::vector<std::vector<std::string>>& rows, std::string_view indent) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c)
      widths[c] = std::max(widths[c], display_width(row[c]));
  }
  std::string out;
  for (const auto& row : rows) {
    std::string text(indent);
    for (std::size_t c = 0; c < row.size(); ++c)
      text += c + 1 < row.size() ? align_left(row[c], widths[c] + 2) : row[c];
    out += text + '\n';
  }
  return out;
}

std::string sanitize_for_terminal(std::string_view text, Newlines newlines) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto [cp, len] = decode_utf8(text, i);
    if (cp == kInvalid) {
      out += kReplacement;
    } else if (cp == 0x1B || (cp >= 0x80 && cp <= 0x9F)) {
      i = skip_escape(text, i, cp, len);
      continue;
    } else if (cp == '\n') {
      out += newlines == Newlines::keep ? '\n' : ' ';
    } else if (cp == '\t') {
      out += ' ';
    } else if (cp < 0x20 || cp == 0x7F || is_bidi_control(cp)) {
      // dropped
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string json_string(std::string_view text) { return util::json_string(text); }

std::string clock_local(std::int64_t ts_ns) {
  const auto t = static_cast<std::time_t>(split_ns(ts_ns).secs);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string sender(const EventView& event) {
  if (!event.imported) return std::string(event.agent);
  return std::string(event.agent) + '@' + std::string(event.origin.host);
}

std::string event_text(const EventView& event) {
  std::string out = align_left(std::to_string(event.id), 10) + ' ' + clock_local(event.ts_ns) + ' ' +
                    align_left(line(event.type), 16) + ' ' + line(sender(event)) + '\n';
  if (!event.to.empty()) out += "  To: " + line(event.to) + '\n';
  if (event.reply_to) out += "  ReplyTo: " + std::to_string(*event.reply_to) + '\n';
  std::string payload = sanitize_for_terminal(event.payload, Newlines::keep);
  while (!payload.empty() && (payload.back() == '\n' || payload.back() == ' ')) payload.pop_back();
  if (payload.empty()) return out;
  // Every payload line is indented, so a payload cannot forge what looks like an event header.
  std::size_t start = 0;
  while (start <= payload.size()) {
    const std::size_t end = std::min(payload.find('\n', start), payload.size());
    out.append("  ").append(payload, start, end - start).append("\n");
    start = end + 1;
  }
  return out;
}

std::string repo_name_from_dir(std::string_view dir_name) {
  std::string repo;
  for (const char ch : dir_name) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
      repo += ch;
    } else if ((c & 0xC0) != 0x80) {  // one '-' per character, not per UTF-8 byte
      repo += '-';
    }
  }
  return (repo.empty() || repo == "." || repo == "..") ? "default" : repo;
}

std::string human_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes) / 1024;
  std::size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

// ---- info ---------------------------------------------------------------------------------

namespace {

std::string percent(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
  return buf;
}

}  // namespace

std::string info_text(const BusInfo& info) {
  std::vector<std::vector<std::string>> bus_rows = {
    {"bus", line(info.name)},
    {"shm object", line(info.object_name)},
    {"segment", human_bytes(info.segment_bytes) + " virtual, " + human_bytes(info.used_bytes) +
                    " used by rooms (" + percent(info.used_bytes, info.segment_bytes) + ")"},
    {"rooms", std::to_string(info.rooms.size()) + " of " + std::to_string(info.max_rooms)},
    {"layout", "v" + std::to_string(info.layout_version)},
    {"host id", line(info.host_id)},
    {"creator pid", std::to_string(info.creator_pid)},
  };
  for (const Counter& c : counter_list(info)) bus_rows.push_back({std::string(c.name), std::to_string(c.value)});
  std::string out = aligned_table(bus_rows, "");
  for (const auto& room : info.rooms) {
    out += "\nroom " + line(room.name) + '\n';
    if (!room.corrupt.empty()) {
      out += "  CORRUPT: " + line(room.corrupt) + '\n';
      continue;
    }
    std::vector<std::vector<std::string>> rows = {
        {"ring", human_bytes(room.ring_bytes) + " (max record " +
                     human_bytes(room.max_record_bytes) + ")"},
        {"tail", std::to_string(room.tail)},
        {"oldest", std::to_string(room.oldest)},
        {"retained", human_bytes(room.tail - std::min(room.oldest, room.tail)) + " (" +
                         percent(room.tail - std::min(room.oldest, room.tail), room.ring_bytes) +
                         " of ring)"},
    };
    for (const Counter& c : counter_list(room.counters)) rows.push_back({std::string(c.name), std::to_string(c.value)});
    out += aligned_table(rows, "  ");
    if (room.readers.empty()) {
      out += "  readers: none\n";
      continue;
    }
    std::vector<std::vector<std::string>> readers = {
        {"READER", "KIND", "PID", "STATE", "CURSOR", "LAG"}};
    for (const auto& r : room.readers) {
      readers.push_back({line(r.name), r.durable ? "durable" : "tailer",
                         r.pid ? std::to_string(r.pid) : "-", r.alive ? "alive" : "gone",
                         std::to_string(r.cursor), human_bytes(r.lag_bytes)});
    }
    out += aligned_table(readers, "  ");
  }
  return out;
}

std::string info_json(const BusInfo& info) {
  std::string out = "{\"bus\":" + json_string(info.name);
  out += ",\"object\":" + json_string(info.object_name);
  out += ",\"segment_bytes\":" + std::to_string(info.segment_bytes);
  out += ",\"used_bytes\":" + std::to_string(info.used_bytes);
  out += ",\"max_rooms\":" + std::to_string(info.max_rooms);
  out += ",\"layout_version\":" + std::to_string(info.layout_version);
  out += ",\"host_id\":" + json_string(info.host_id);
  out += ",\"creator_pid\":" + std::to_string(info.creator_pid);
  for (const Counter& c : counter_list(info)) out += ",\"" + std::string(c.name) + "\":" + std::to_string(c.value);
  out += ",\"rooms\":[";
  for (std::size_t i = 0; i < info.rooms.size(); ++i) {
    const auto& room = info.rooms[i];
    out += i ? ",{" : "{";
    out += "\"name\":" + json_string(room.name);
    if (!room.corrupt.empty()) {
      out += ",\"corrupt\":" + json_string(room.corrupt) + "}";
      continue;
    }
    out += ",\"ring_bytes\":" + std::to_string(room.ring_bytes);
    out += ",\"max_record_bytes\":" + std::to_string(room.max_record_bytes);
    out += ",\"tail\":" + std::to_string(room.tail);
    out += ",\"oldest\":" + std::to_string(room.oldest);
    out += ",\"counters\":{";
    bool first = true;
    for (const Counter& c : counter_list(room.counters)) {
      out += (first ? "\"" : ",\"") + std::string(c.name) + "\":" + std::to_string(c.value);
      first = false;
    }
    out += "},\"readers\":[";
    for (std::size_t r = 0; r < room.readers.size(); ++r) {
      const auto& rd = room.readers[r];
      out += r ? ",{" : "{";
      out += "\"name\":" + json_string(rd.name);
      out += ",\"durable\":" + std::string(rd.durable ? "true" : "false");
      out += ",\"pid\":" + std::to_string(rd.pid);
      out += ",\"alive\":" + std::string(rd.alive ? "true" : "false");
      out += ",\"cursor\":" + std::to_string(rd.cursor);
      out += ",\"lag_bytes\":" + std::to_string(rd.lag_bytes);
      out += "}";
    }
    out += "]}";
  }
  out += "]}\n";
  return out;
}

}  // namespace agentbus::cli
