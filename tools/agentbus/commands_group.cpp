// commands_group.cpp — consumer groups: group read, ack, receipt, pending, autoclaim, info.
#include "common.hpp"
#include "output.hpp"

#include <memory>

namespace agentbus::cli {
namespace {

struct GroupArgs {
  std::string group;
  std::string member = "cli";
  std::vector<EventId> ids;
  std::vector<std::string> interests{"*"};
  std::string from = "latest";
  std::string timeout = "0";
  std::string min_idle = "30s";
  std::uint32_t max_deliveries = 5;
  std::size_t count = 1;
  bool json = false;
};

// Only `group read` creates the room and the group; the other verbs need them to exist.
ConsumerGroup open_group(const Globals& g, const GroupArgs& a, bool as_member, bool create) {
  GroupOptions o;
  o.interests = a.interests;
  o.max_deliveries = a.max_deliveries;
  o.from = a.from == "earliest" ? StartFrom::earliest : StartFrom::latest;
  o.create = create;
  o.owner_pid = session_pid(g);
  std::optional<Room> room = create ? std::optional<Room>(open_room(g)) : open_existing_room(g);
  if (!room) throw Error(Errc::not_found, "room '" + room_name(g) + "' has no consumer group '" + a.group + "'");
  if (as_member) touch_presence(*room, a.member);
  return ConsumerGroup(*room, a.group, as_member ? a.member : "", o);
}

std::string delivery_json(const Delivery& d, const GroupArgs& a, std::string_view room) {
  std::string line = event_json(d.event.view(), room);
  line.pop_back();  // the closing brace and newline come back below
  line.pop_back();
  return line + ",\"group\":" + json_string(a.group) + ",\"member\":" + json_string(a.member) +
         ",\"deliveries\":" + std::to_string(d.deliveries) + "}\n";
}

std::string delivery_text(const Delivery& d) {
  std::string text = event_text(d.event.view());
  if (d.deliveries > 1) text += "    (delivery " + std::to_string(d.deliveries) + ")\n";
  return text;
}

std::string pending_json(const PendingEntry& e) {
  return "{\"id\":" + std::to_string(e.id) + ",\"type\":" + json_string(e.type) + ",\"owner\":" + json_string(e.owner) +
         ",\"owner_alive\":" + (e.owner_alive ? "true" : "false") + ",\"receipt\":" + (e.receipt ? "true" : "false") +
         ",\"delivered\":\"" + iso8601_utc(e.delivered_ns) + "\",\"deliveries\":" + std::to_string(e.deliveries) + "}\n";
}

std::string pending_text(const PendingEntry& e) {
  return std::to_string(e.id) + "  " + sanitize_for_terminal(e.type) + "  " + sanitize_for_terminal(e.owner) +
         (e.owner_alive ? "" : " (gone)") + "  delivered " + clock_local(e.delivered_ns) + "  x" +
         std::to_string(e.deliveries) + (e.receipt ? "  receipt" : "") + "\n";
}

std::string info_text(const GroupInfo& i) {
  std::string interests;
  for (const std::string& t : i.interests) interests += (interests.empty() ? "" : ",") + sanitize_for_terminal(t);
  std::string out = "group        " + sanitize_for_terminal(i.name) + "\ninterests    " + interests +
                    "\nnext id      " + std::to_string(i.next_id) + "\nfloor id     " + std::to_string(i.floor_id) +
                    "\npending      " + std::to_string(i.pending) + " of " + std::to_string(i.pending_capacity) +
                    "\nhanded out   " + std::to_string(i.dispatched) + " (" + std::to_string(i.counters.filtered) +
                    " filtered)\nredelivered  " + std::to_string(i.counters.redelivered) + "\ndead letters " +
                    std::to_string(i.counters.dead_lettered) + " (after " + std::to_string(i.max_deliveries) +
                    " deliveries)\nreceipts     " + std::to_string(i.counters.receipts_honoured) +
                    " honoured\nmembers\n";
  for (const GroupMemberInfo& m : i.members)
    out += "  " + sanitize_for_terminal(m.name) + "  pid " + std::to_string(m.pid) + (m.alive ? "" : " (gone)") +
           "  " + std::to_string(m.pending) + " pending\n";
  return out;
}

std::string info_json(const GroupInfo& i) {
  std::string out = "{\"group\":" + json_string(i.name) + ",\"interests\":[";
  for (std::size_t k = 0; k < i.interests.size(); ++k) out += (k ? "," : "") + json_string(i.interests[k]);
  out += "],\"max_deliveries\":" + std::to_string(i.max_deliveries) + ",\"pending_capacity\":" +
         std::to_string(i.pending_capacity) + ",\"next_id\":" + std::to_string(i.next_id) + ",\"floor_id\":" +
         std::to_string(i.floor_id) + ",\"pending\":" + std::to_string(i.pending) + ",\"dispatched\":" +
         std::to_string(i.dispatched) + ",\"redelivered\":" + std::to_string(i.counters.redelivered) +
         ",\"filtered\":" + std::to_string(i.counters.filtered) + ",\"dead_lettered\":" +
         std::to_string(i.counters.dead_lettered) + ",\"receipts_honoured\":" +
         std::to_string(i.counters.receipts_honoured) + ",\"members\":[";
  for (std::size_t k = 0; k < i.members.size(); ++k) {
    const GroupMemberInfo& m = i.members[k];
    out += std::string(k ? "," : "") + "{\"name\":" + json_string(m.name) + ",\"pid\":" + std::to_string(m.pid) +
           ",\"alive\":" + (m.alive ? "true" : "false") + ",\"pending\":" + std::to_string(m.pending) + "}";
  }
  return out + "]}\n";
}

constexpr const char* kGroupFooter = R"(A consumer group hands each event of the room to exactly one of its members, at
least once: an event stays pending until it is acked, and the pending events of a
member whose session ended go to the next member that reads. The group keeps producers
from overwriting anything it has not acked. Members are named with --member and owned by
the session process (--session-pid, default: the agent process above this command).

Example (a worker loop in a shell):
  while ev=$(agentbus group read builds --member w1 --interest build --timeout 30s --json); do
    [ -z "$ev" ] && continue
    id=$(echo "$ev" | jq .id); run_build "$ev" && agentbus group receipt builds "$id" --member w1
    agentbus group ack builds "$id"
  done)";

}  // namespace

void add_group_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto a = std::make_shared<GroupArgs>();
  CLI::App* group = app.add_subcommand("group", "Consumer groups: each event to one member, at least once.");
  group->group("Tasks");
  group->footer(kGroupFooter);
  group->require_subcommand(1);

  auto with_group = [&a](CLI::App* cmd) {
    cmd->add_option("group", a->group, "Group name")->required();
    return cmd;
  };
  auto with_member = [&a](CLI::App* cmd) {
    cmd->add_option("--member", a->member, "Member name (default: the agent id)")
        ->envname("AGENTBUS_AGENT")
        ->capture_default_str();
    return cmd;
  };

  CLI::App* read = with_member(with_group(group->add_subcommand("read", "Take the next event(s) for this member.")));
  read->add_option("-n,--count", a->count, "Take up to this many")->check(CLI::Range(1, 10000))->capture_default_str();
  read->add_option("--timeout", a->timeout, "Wait this long for the first one, up to 24h (0: do not wait)")
      ->check(duration_validator())
      ->capture_default_str();
  read->add_option("--interest", a->interests, "Event types the group takes, when this call creates it (repeatable)")
      ->capture_default_str();
  read->add_option("--from", a->from, "Where a new group starts")
      ->check(CLI::IsMember({"latest", "earliest"}))
      ->capture_default_str();
  read->add_option("--max-deliveries", a->max_deliveries, "Deliveries before an event is dead-lettered (new group)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  read->add_flag("--json", a->json, "One JSON object per event, with group, member and deliveries");
  read->footer("Prints nothing (exit 0) when no event arrived in time. A pending event of a member\n"
               "that is gone comes first, marked with its delivery count. The first read creates\n"
               "the group, with --interest, --from and --max-deliveries.\n\n"
               "Examples:\n"
               "  agentbus group read builds --member w1 --interest build --from earliest\n"
               "  agentbus group read builds --member w1 -n 10 --timeout 30s --json");
  commands.push_back({read, [&g, a] {
                        ConsumerGroup cg = open_group(g, *a, true, true);
                        std::string out;
                        auto wait = std::chrono::nanoseconds(validated_ms(a->timeout));
                        for (std::size_t i = 0; i < a->count; ++i) {
                          const std::optional<Delivery> d = cg.read(wait);
                          if (!d) break;
                          out += a->json ? delivery_json(*d, *a, room_name(g)) : delivery_text(*d);
                          wait = std::chrono::nanoseconds::zero();
                        }
                        write_out(out, true);
                        return 0;
                      }});

  CLI::App* ack = with_group(group->add_subcommand("ack", "Acknowledge events: done for the whole group."));
  ack->add_option("ids", a->ids, "Event ids")->required()->check(id_validator());
  ack->footer("Exit 4 when an id is not pending in the group (already acked, or never delivered).\n\n"
              "Example:\n  agentbus group ack builds 4096 4160");
  commands.push_back({ack, [&g, a] {
                        ConsumerGroup cg = open_group(g, *a, false, false);
                        std::string missing;
                        for (const EventId id : a->ids)
                          if (cg.ack(id) != AckResult::acked) missing += (missing.empty() ? "" : ", ") + std::to_string(id);
                        if (!missing.empty())
                          throw Error(Errc::not_found, "not pending in group '" + a->group + "': " + missing);
                        return 0;
                      }});

  CLI::App* receipt = with_member(
      with_group(group->add_subcommand("receipt", "Record that an event's work is done, before acking it.")));
  receipt->add_option("ids", a->ids, "Event ids")->required()->check(id_validator());
  receipt->footer("If this member's session dies before the ack, the event is acked on reclaim\n"
                  "instead of being delivered again. Exit 3 when the event is not pending for this member.\n\n"
                  "Example:\n  agentbus group receipt builds 4096 --member w1");
  commands.push_back({receipt, [&g, a] {
                        ConsumerGroup cg = open_group(g, *a, true, false);
                        for (const EventId id : a->ids) cg.record_receipt(id);
                        return 0;
                      }});

  CLI::App* pending = with_group(group->add_subcommand("pending", "List delivered events not yet acked."));
  pending->add_option("-n,--count", a->count, "At most this many")->check(CLI::Range(1, 1000000));
  pending->add_flag("--json", a->json, "One JSON object per line");
  pending->footer("One line per event: id, type, owner ('(gone)': its session ended), when it was\n"
                  "delivered, deliveries, and whether a receipt was recorded. Default: at most 100.\n\n"
                  "Examples:\n  agentbus group pending builds\n  agentbus group pending builds -n 5 --json");
  commands.push_back({pending, [&g, a, pending] {
                        ConsumerGroup cg = open_group(g, *a, false, false);
                        std::string out;
                        const std::size_t n = pending->count("--count") ? a->count : 100;
                        for (const PendingEntry& e : cg.pending(n)) out += a->json ? pending_json(e) : pending_text(e);
                        write_out(out, true);
                        return 0;
                      }});

  CLI::App* autoclaim = with_member(
      with_group(group->add_subcommand("autoclaim", "Take over events pending too long (Redis XAUTOCLAIM).")));
  autoclaim->add_option("--min-idle", a->min_idle, "Pending at least this long, up to 24h (0: any)")
      ->check(duration_validator())
      ->capture_default_str();
  autoclaim->add_option("-n,--count", a->count, "At most this many")->check(CLI::Range(1, 10000));
  autoclaim->add_flag("--json", a->json, "One JSON object per event");
  autoclaim->footer("Events of members whose session is gone are taken whatever their age. An event\n"
                    "past its max deliveries is dead-lettered (ENGINE_RUNTIME_ERROR) instead.\n\n"
                    "Example:\n  agentbus group autoclaim builds --member w2 --min-idle 5m --json");
  commands.push_back({autoclaim, [&g, a, autoclaim] {
                        ConsumerGroup cg = open_group(g, *a, true, false);
                        std::string out;
                        const std::size_t n = autoclaim->count("--count") ? a->count : 10;
                        for (const Delivery& d : cg.autoclaim(validated_ms(a->min_idle), n))
                          out += a->json ? delivery_json(d, *a, room_name(g)) : delivery_text(d);
                        write_out(out, true);
                        return 0;
                      }});

  CLI::App* info = with_group(group->add_subcommand("info", "Show a group: position, pending, members, counters."));
  info->add_flag("--json", a->json, "One JSON object");
  info->footer("Exit 4 when the room has no such group.\n\n"
               "Examples:\n  agentbus group info builds\n  agentbus group info builds --json | jq .pending");
  commands.push_back({info, [&g, a] {
                        const GroupInfo i = open_group(g, *a, false, false).info();
                        write_out(a->json ? info_json(i) : info_text(i), true);
                        return 0;
                      }});
}

}  // namespace agentbus::cli
