// status_format.cpp — the bytes of a status entry; see status_format.hpp.
#include "status/status_format.hpp"

#include <agentbus/json_text.hpp>

#include <simdjson.h>

#include <cstdio>
#include <ctime>

namespace agentbus::status {
namespace {


// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool digits(std::string_view s, std::size_t at, std::size_t n, int& value) noexcept {
  if (at + n > s.size()) return false;
  value = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    value = value * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace


void append_iso8601(std::string& out, std::int64_t ts_ns) {
  std::int64_t secs = ts_ns / 1'000'000'000;
  std::int64_t nanos = ts_ns % 1'000'000'000;
  if (nanos < 0) nanos += 1'000'000'000, secs -= 1;
  // gmtime_r costs far more than a post; the second changes rarely.
  thread_local std::int64_t cached_secs = -1;
  thread_local char cached[64] = {};  // "YYYY-MM-DDTHH:MM:SS."
  if (secs != cached_secs) {
    const auto t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_secs = secs;
  }
  out.append(cached, 20);
  char micro[8];
  auto us = static_cast<unsigned>(nanos / 1000);
  for (int k = 5; k >= 0; --k) {
    micro[k] = static_cast<char>('0' + us % 10);
    us /= 10;
  }
  micro[6] = 'Z';
  out.append(micro, 7);
}

std::optional<std::int64_t> parse_iso8601(std::string_view s) noexcept {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(s, 0, 4, year) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, month) || s[7] != '-' ||
      !digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, hour) ||
      s[13] != ':' || !digits(s, 14, 2, minute) || s[16] != ':' || !digits(s, 17, 2, second))
    return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  std::size_t i = 19;
  std::int64_t nanos = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    std::int64_t scale = 100'000'000;
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      nanos += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return std::nullopt;
  }
  std::int64_t offset_s = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh = 0, om = 0;
    if (!digits(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !digits(s, i + 4, 2, om))
      return std::nullopt;
    offset_s = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return std::nullopt;  // a timestamp without a zone is not UTC
  }
  if (i != s.size()) return std::nullopt;
  const std::int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const std::int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  return secs * 1'000'000'000 + nanos;
}

bool canonical_metadata(std::string_view metadata, std::string& out, std::string& why) {
  out.clear();
  if (metadata.empty() || metadata == "{}") {
    out = "{}";
    return true;
  }
  // Agents tend to post the same metadata again and again: remember the last one per thread.
  thread_local std::string last_in, last_out;
  if (metadata == last_in && !last_out.empty()) {
    out = last_out;
    return true;
  }
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (const auto err = parser.parse(metadata.data(), metadata.size(), true).get(doc)) {
    why = std::string("metadata is not valid JSON: ") + simdjson::error_message(err);
    return false;
  }
  if (!doc.is_object()) {
    why = "metadata must be a JSON object, e.g. {\"k\":1}";
    return false;
  }
  out = simdjson::minify(doc);
  last_in.assign(metadata);
  last_out = out;
  return true;
}

void append_entry_json(std::string& out, std::string_view ts, std::string_view agent_id, std::string_view action,
                       StatusLevel status, std::string_view detail, std::string_view metadata) {
  out += "{\"ts\":";
  append_json_string(out, ts);
  out += ",\"agent_id\":";
  append_json_string(out, agent_id);
  out += ",\"action\":";
  append_json_string(out, action);
  out += ",\"status\":\"";
  out += to_string(status);
  out += "\",\"detail\":";
  append_json_string(out, detail);
  out += ",\"metadata\":";
  out += metadata;
  out += '}';
}

std::string_view utf8_prefix(std::string_view text, std::size_t max) noexcept {
  if (text.size() <= max) return text;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return text.substr(0, n);
}

}  // namespace agentbus::status
