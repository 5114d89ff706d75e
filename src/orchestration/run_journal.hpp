// A run's journal as read from its room: tagged events by (type, step, key), and the run's
// start, resumptions and end.
#pragma once

#include <agentbus/room.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::orchestration {

// A driver taking the run on: its RUN_STARTED or RUN_RESUMED event.
struct DriverRecord {
  EventId id = 0;
  int pid = 0;
  std::uint64_t start_time = 0;
};

struct RunJournal {
  std::vector<DriverRecord> drivers;           // in log order
  std::map<std::string, std::string> entries;  // journal_key(type, step, key) -> payload
  std::optional<std::string> started;          // RUN_STARTED payload
  std::optional<std::string> finished;         // RUN_FINISHED payload
  std::int64_t started_ns = 0, finished_ns = 0;
  int driver_pid = 0;                          // from the last RUN_STARTED / RUN_RESUMED
  std::uint64_t driver_start_time = 0;
  std::uint64_t outcomes = 0;                  // STEP_REPLY + STEP_FAILED
  std::uint64_t highest_step = 0;
  bool lost_start = false;                     // events were overwritten before we read them
};

[[nodiscard]] std::string journal_key(std::string_view type, std::uint64_t step, std::string_view key);

// Reads every event of `run_id` in `room`.
[[nodiscard]] RunJournal read_journal(Room& room, std::string_view run_id);

// Whether the process (pid, start time) recorded as a driver still runs.
[[nodiscard]] bool driver_alive(int pid, std::uint64_t start_time);

// A driver of the run that is still alive, other than `except_pid`: the latest such record
// (a process that lost a race to resume left a record too, and is gone or going).
[[nodiscard]] std::optional<DriverRecord> live_driver(const RunJournal& journal, int except_pid = 0);

}  // namespace agentbus::orchestration
