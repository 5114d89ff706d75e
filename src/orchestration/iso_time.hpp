// ISO-8601 UTC timestamps with microseconds ("2026-05-01T19:05:15.123456Z"), the form RoomKit's
// datetimes take in JSON, for conversation state and run listings.
#pragma once

#include <agentbus/clock.hpp>

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

namespace agentbus::orchestration {

// `value`'s last `width` decimal digits at `p`, zero-padded; returns the end.
inline char* put_digits(char* p, int value, int width) {
  for (int i = width - 1; i >= 0; --i, value /= 10) p[i] = static_cast<char>('0' + value % 10);
  return p + width;
}

inline std::string iso_utc(std::int64_t ns) {
  const std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  const int year = tm.tm_year + 1900, micros = static_cast<int>((ns % 1'000'000'000) / 1000);
  if (year < 0 || year > 9999 || micros < 0) {  // outside the fixed-width form: printf's, as ever
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec, micros);
    return buf;
  }
  // Every state transition stamps one: digits by hand cost a tenth of snprintf's parsing.
  char buf[27];
  char* p = put_digits(buf, year, 4);
  *p++ = '-';
  p = put_digits(p, tm.tm_mon + 1, 2);
  *p++ = '-';
  p = put_digits(p, tm.tm_mday, 2);
  *p++ = 'T';
  p = put_digits(p, tm.tm_hour, 2);
  *p++ = ':';
  p = put_digits(p, tm.tm_min, 2);
  *p++ = ':';
  p = put_digits(p, tm.tm_sec, 2);
  *p++ = '.';
  p = put_digits(p, micros, 6);
  *p++ = 'Z';
  return std::string(buf, static_cast<std::size_t>(p - buf));
}

inline std::string iso_now() { return iso_utc(realtime_ns()); }

}  // namespace agentbus::orchestration
