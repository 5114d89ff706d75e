// commands_room.cpp — info and destroy: the bus and its rooms as a whole (`post` and `tail`
// are in commands_post.cpp and commands_tail.cpp).
#include "common.hpp"
#include "output.hpp"

#include <agentbus/bridge_status.hpp>

#include <cstring>
#include <memory>

namespace agentbus::cli {
namespace {

// ---- coordination counters, for `info` ----------------------------------------------------
// Every recovery the coordination primitives perform is counted; `info` shows the counters of
// each primitive a room has (opening none of them creates anything).

using Counters = std::vector<Counter>;
struct CoordGroup {
  const char* name;
  Counters counters;
};

template <class Primitive, class Options, class Read>
void add_group(std::vector<CoordGroup>& out, const Room& room, const char* name, Read&& read) {
  Options options;
  options.create = false;
  try {
    const Primitive primitive(room, options);
    out.push_back({name, read(primitive)});
  } catch (const Error& e) {
    if (e.code() != Errc::not_found) throw;
  }
}

std::vector<CoordGroup> coordination_counters(const Room& room) {
  std::vector<CoordGroup> out;
  add_group<TaskBoard, TaskBoardOptions>(out, room, "tasks", [](const TaskBoard& t) { return counter_list(t.counters()); });
  add_group<Presence, PresenceOptions>(out, room, "presence", [](const Presence& p) { return counter_list(p.counters()); });
  add_group<Leases, LeasesOptions>(out, room, "leases", [](const Leases& l) { return counter_list(l.counters()); });
  add_group<Inbox, InboxOptions>(out, room, "inbox", [](const Inbox& i) { return counter_list(i.counters()); });
  add_group<Scratchpad, ScratchpadOptions>(out, room, "scratchpad", [](const Scratchpad& s) { return counter_list(s.info()); });
  return out;
}

std::string coordination_text(const std::string& room, const std::vector<CoordGroup>& groups) {
  std::string out = "\ncoordination in " + sanitize_for_terminal(room) + "\n";
  for (const CoordGroup& group : groups) {
    out += "  " + std::string(group.name) + std::string(12 - std::strlen(group.name), ' ');
    for (const auto& [name, value] : group.counters) out += std::string(name) + " " + std::to_string(value) + "  ";
    out.resize(out.size() - 2);
    out += "\n";
  }
  return out;
}

std::string coordination_json(const std::string& room, const std::vector<CoordGroup>& groups) {
  std::string out = json_string(room) + ":{";
  for (const CoordGroup& group : groups) {
    out += "\"" + std::string(group.name) + "\":{";
    for (const auto& [name, value] : group.counters) out += "\"" + std::string(name) + "\":" + std::to_string(value) + ",";
    out.back() = '}';
    out += ",";
  }
  if (out.back() == ',') out.pop_back();
  return out + "}";
}

// The Redis bridge's view of the bus, when one ever ran here (docs/bridge.md).
std::string bridge_text(const bridge::BridgeStatus& s) {
  if (s.rooms.empty() && s.pid == 0) return "";
  std::string out = "\nbridge " + (s.pid ? "pid " + std::to_string(s.pid) + (s.connected ? ", Redis connected" : ", Redis unreachable (spooling)")
                                         : std::string("not running"));
  out += ", " + std::to_string(s.reconnects) + " outages\n";
  if (!s.last_error.empty()) out += "  last error: " + sanitize_for_terminal(s.last_error) + "\n";
  std::vector<std::vector<std::string>> rows = {{"ROOM", "OUT", "IN", "LAG", "LAG AGE", "SPOOLED", "REJECTED"}};
  for (const bridge::BridgeRoomStatus& r : s.rooms)
    rows.push_back({sanitize_for_terminal(r.room), std::to_string(r.out_events), std::to_string(r.in_events), std::to_string(r.lag_events),
                    std::to_string(r.oldest_lag_ns / 1'000'000) + " ms", std::to_string(r.spooled_events),
                    std::to_string(r.rejected)});
  return out + aligned_table(rows, "  ");
}

std::string bridge_json(const bridge::BridgeStatus& s) {
  std::string out = "{\"pid\":" + std::to_string(s.pid) + ",\"connected\":" + (s.connected ? "true" : "false") +
                    ",\"reconnects\":" + std::to_string(s.reconnects) + ",\"rooms\":[";
  for (std::size_t i = 0; i < s.rooms.size(); ++i) {
    const bridge::BridgeRoomStatus& r = s.rooms[i];
    out += (i ? ",{" : "{");
    out += "\"room\":" + json_string(r.room) + ",\"out\":" + std::to_string(r.out_events) + ",\"in\":" +
           std::to_string(r.in_events) + ",\"lag_events\":" + std::to_string(r.lag_events) + ",\"oldest_lag_ns\":" +
           std::to_string(r.oldest_lag_ns) + ",\"spooled\":" + std::to_string(r.spooled_events) + ",\"rejected\":" +
           std::to_string(r.rejected) + "}";
  }
  return out + "]}";
}

int run_info(const Globals& g, bool json) {
  BusOptions options;
  options.name = g.bus;
  options.create = false;
  Bus bus = Bus::open(options);
  const BusInfo info = bus.info();
  std::string text, coordination, corrupt;
  for (const RoomInfo& r : info.rooms) {
    if (!r.corrupt.empty()) {
      corrupt = r.corrupt;
      continue;
    }
    RoomOptions ro;
    ro.create = false;
    const auto groups = coordination_counters(bus.room(r.name, ro));
    if (groups.empty()) continue;
    text += coordination_text(r.name, groups);
    coordination += (coordination.empty() ? "" : ",") + coordination_json(r.name, groups);
  }
  if (!json) {
    write_out(info_text(info) + text + bridge_text(bridge::bridge_status(bus)), true);
  } else {
    // One JSON object: the bus's, with a "coordination" member keyed by room.
    std::string object = info_json(info);
    const auto close = object.rfind('}');
    object = object.substr(0, close) + ",\"coordination\":{" + coordination + "},\"bridge\":" +
             bridge_json(bridge::bridge_status(bus)) + "}\n";
    write_out(object, true);
  }
  // Everything readable was shown; a corrupt room still makes the command fail.
  if (corrupt.empty()) return 0;
  report_error(corrupt);
  return kExitFailure;
}

// Live tailers (`tail -f`, top) of the bus: they notice the destroy and exit, but whoever
// runs `destroy` should know they were there. A bus that cannot be read has none to report.
std::vector<std::string> attached_followers(const Globals& g) {
  std::vector<std::string> out;
  try {
    BusOptions options;
    options.name = g.bus;
    options.create = false;
    for (const RoomInfo& room : Bus::open(options).info().rooms)
      for (const ReaderInfo& r : room.readers)
        if (!r.durable && r.alive) out.push_back("pid " + std::to_string(r.pid) + " on " + room.name);
  } catch (const Error&) {
  }
  return out;
}

int run_destroy(const Globals& g) {
  if (const std::vector<std::string> followers = attached_followers(g); !followers.empty()) {
    std::string list;
    for (std::size_t i = 0; i < followers.size() && i < 5; ++i) list += (i ? ", " : "") + followers[i];
    if (followers.size() > 5) list += ", ...";
    report_warning(std::to_string(followers.size()) + " follower(s) attached to bus " + g.bus + " (" + list +
                   "); they will stop with an error");
  }
  const bool existed = Bus::destroy(g.bus);
  write_out((existed ? "destroyed bus " : "no bus ") + g.bus + "\n", true);
  return 0;
}

}  // namespace

void add_room_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto info_json = std::make_shared<bool>(false);

  CLI::App* info_cmd = app.add_subcommand("info", "Show the bus: size, rooms, counters, readers.");
  info_cmd->footer("Examples:\n  agentbus info\n  agentbus --bus ci info --json");
  info_cmd->add_flag("--json", *info_json, "One JSON object");

  CLI::App* destroy_cmd = app.add_subcommand(
      "destroy", "Remove the bus's shared-memory object (processes using it keep their mapping).");
  destroy_cmd->footer("Example:\n  agentbus --bus scratch destroy");
  commands.push_back({info_cmd, [&g, info_json] { return run_info(g, *info_json); }});
  commands.push_back({destroy_cmd, [&g] { return run_destroy(g); }});
}

}  // namespace agentbus::cli
