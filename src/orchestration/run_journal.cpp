// run_journal.cpp — reading a run's events back from its room.
#include <agentbus/process.hpp>

#include "orchestration/json_object.hpp"
#include "orchestration/room_scan.hpp"
#include "orchestration/run_journal.hpp"

namespace agentbus::orchestration {

std::string journal_key(std::string_view type, std::uint64_t step, std::string_view key) {
  std::string k(type);
  k.push_back('|');
  k += std::to_string(step);
  k.push_back('|');
  k.append(key);
  return k;
}

bool driver_alive(int pid, std::uint64_t start_time) {
  if (pid <= 0) return false;
  auto st = read_process_stat(pid);
  return st && st->state != 'Z' && st->start_time == start_time;
}

std::optional<DriverRecord> live_driver(const RunJournal& journal, int except_pid) {
  for (auto it = journal.drivers.rbegin(); it != journal.drivers.rend(); ++it)
    if (it->pid != except_pid && driver_alive(it->pid, it->start_time)) return *it;
  return std::nullopt;
}

RunJournal read_journal(Room& room, std::string_view run_id) {
  RunJournal j;
  simdjson::dom::parser parser;
  const ScanResult scan = scan_room(room, [&](const EventView& e) {
    simdjson::dom::object obj;
    std::string why, run;
    if (!json::parse_object(parser, e.payload, obj, why) || !json::get_string(obj, "run", run, true, why) || run != run_id)
      return;
    if (e.type == "RUN_STARTED" || e.type == "RUN_RESUMED") {
      if (e.type == "RUN_STARTED") {
        if (j.started) return;  // the first start counts
        j.started = std::string(e.payload);
        j.started_ns = e.ts_ns;
      }
      std::uint64_t pid = 0, start = 0;
      if (json::get_uint(obj, "pid", pid, true, why) && json::get_uint(obj, "pid_start", start, true, why)) {
        j.driver_pid = static_cast<int>(pid);
        j.driver_start_time = start;
        j.drivers.push_back({e.id, j.driver_pid, start});
      }
      return;
    }
    if (e.type == "RUN_FINISHED") {
      if (!j.finished) {
        j.finished = std::string(e.payload);
        j.finished_ns = e.ts_ns;
      }
      return;
    }
    std::uint64_t step = 0;
    std::string key;
    if (!json::get_uint(obj, "step", step, true, why) || !json::get_string(obj, "key", key, false, why)) return;
    const auto [it, fresh] = j.entries.emplace(journal_key(e.type, step, key), std::string(e.payload));
    if (fresh && (e.type == "STEP_REPLY" || e.type == "STEP_FAILED")) ++j.outcomes;
    if (step > j.highest_step) j.highest_step = step;
  });
  j.lost_start = scan.lost > 0;
  return j;
}

}  // namespace agentbus::orchestration
