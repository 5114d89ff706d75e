// ISO-8601 UTC timestamps with microseconds ("2026-05-01T19:05:15.123456Z"), the form RoomKit's
// datetimes take in JSON, for conversation state and run listings.
#pragma once

#include <agentbus/clock.hpp>

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

namespace agentbus::orchestration {

inline std::string iso_utc(std::int64_t ns) {
  const std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>((ns % 1'000'000'000) / 1000));
  return buf;
}

inline std::string iso_now() { return iso_utc(realtime_ns()); }

}  // namespace agentbus::orchestration
