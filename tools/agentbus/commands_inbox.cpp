// commands_inbox.cpp — directed messages: inbox, ask, reply, directed.
// A directed message is posted with `agentbus post <type> [payload] --to <agent>`.
#include "common.hpp"
#include "output.hpp"

#include <memory>

namespace agentbus::cli {
namespace {

struct InboxArgs {
  std::string agent = "cli";
  std::string to;
  std::string message;
  std::string timeout = "30s";
  EventId ask_id = 0;
  std::size_t count = 100;
  bool ack = false;
  bool json = false;
};

CLI::App* with_agent(CLI::App* cmd, InboxArgs& a) {
  cmd->add_option("--agent", a.agent, "Agent id acting (the inbox owner, asker or replier)")
      ->envname("AGENTBUS_AGENT")
      ->capture_default_str();
  return cmd;
}

std::string opt_reply_json(const std::optional<EventId>& r) {
  return r ? std::to_string(*r) : std::string("null");
}

std::string message_json(const InboxMessage& m, std::string_view room) {
  return "{\"seq\":" + std::to_string(m.seq) + ",\"id\":" + std::to_string(m.id) + ",\"room\":" + json_string(room) +
         ",\"ts\":\"" + iso8601_utc(m.ts_ns) + "\",\"type\":" + json_string(m.type) + ",\"from\":" + json_string(m.from) +
         ",\"to\":" + json_string(m.to) + ",\"reply_to\":" + opt_reply_json(m.reply_to) +
         ",\"payload\":" + payload_json(m.payload) + "}\n";
}

std::string message_text(const InboxMessage& m) {
  std::string out = "#" + std::to_string(m.seq) + "  " + std::to_string(m.id) + "  " + clock_local(m.ts_ns) + "  " +
                    sanitize_for_terminal(m.type) + "  from " + sanitize_for_terminal(m.from) + "\n";
  if (m.reply_to) out += "    ReplyTo: " + std::to_string(*m.reply_to) + "\n";
  if (!m.payload.empty()) out += "    " + sanitize_for_terminal(m.payload) + "\n";
  return out;
}

}  // namespace

void add_inbox_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto a = std::make_shared<InboxArgs>();
  const std::string group = "Messages";

  CLI::App* inbox = with_agent(app.add_subcommand("inbox", "Print the messages in an agent's inbox, oldest first."), *a);
  inbox->group(group);
  inbox->add_option("-n,--count", a->count, "At most this many")->check(CLI::PositiveNumber)->capture_default_str();
  inbox->add_flag("--ack", a->ack, "Acknowledge what was printed (it will not be printed again)");
  inbox->add_flag("--json", a->json, "One JSON object per line");
  inbox->footer(
      "Directed messages (`agentbus post T P --to A`, ask, reply) are kept in the recipient's\n"
      "inbox until acknowledged, so an agent that was offline reads them when it returns.\n"
      "Without --ack the same messages are printed again next time. Each line starts with the\n"
      "message's sequence number (#N) and its event id.\n\n"
      "Examples:\n  agentbus inbox --agent reviewer-1\n  agentbus inbox --agent reviewer-1 --ack --json");
  commands.push_back({inbox, [&g, a] {
                        std::optional<Room> room = open_existing_room(g);
                        if (!room) return 0;
                        std::optional<Inbox> box;
                        try {
                          box.emplace(*room, InboxOptions{.create = false});
                        } catch (const Error& e) {
                          if (e.code() != Errc::not_found) throw;
                          return 0;  // nobody has sent anything in this room
                        }
                        const std::vector<InboxMessage> msgs = box->read(a->agent, a->count);
                        std::string out;
                        for (const InboxMessage& m : msgs) out += a->json ? message_json(m, room->name()) : message_text(m);
                        write_out(out, true);  // acknowledge only what was written
                        if (a->ack && !msgs.empty()) box->ack(a->agent, msgs.back().seq);
                        return 0;
                      }});

  CLI::App* ask = with_agent(app.add_subcommand("ask", "Ask a present agent something and wait for its reply."), *a);
  ask->group(group);
  ask->add_option("to", a->to, "The agent asked: a qualified handle, or a short one naming one present agent")->required();
  ask->add_option("message", a->message, "The question")->required();
  ask->add_option("--timeout", a->timeout, "How long to wait for the reply, 1ms to 24h")
      ->check(duration_validator(std::chrono::milliseconds(1)))
      ->capture_default_str();
  ask->add_flag("--json", a->json, "Print the reply event as a JSON object");
  ask->footer(
      "Sends an ASK to the agent's inbox and prints the payload of its REPLY. One ask per\n"
      "agent at a time. Exit 1 on timeout, 3 when this agent already has an ask pending,\n"
      "4 when `to` is not present in the room (`agentbus who`).\n\n"
      "Example:\n  agentbus ask reviewer 'is parser.go safe to touch?' --agent fixer --timeout 2m\n"
      "  # the other side: agentbus inbox --agent reviewer; agentbus reply <ask-id> 'yes'");
  commands.push_back({ask, [&g, a] {
                        Room room = open_room(g);
                        Inbox box(room);
                        const auto timeout = validated_ms(a->timeout);
                        const Event reply = box.ask(a->agent, a->to, a->message, timeout);
                        write_out(a->json ? event_json(reply.view(), room.name())
                                          : sanitize_for_terminal(reply.payload, Newlines::keep) + "\n",
                                  true);
                        return 0;
                      }});

  CLI::App* reply = with_agent(app.add_subcommand("reply", "Answer an ASK; prints the reply's event id."), *a);
  reply->group(group);
  reply->add_option("ask-id", a->ask_id, "Event id of the ASK")->required()->check(id_validator());
  reply->add_option("message", a->message, "The answer")->required();
  reply->footer(
      "The REPLY goes to the asker (and its inbox), with reply_to = the ASK's id.\n"
      "Exit 4 when the ASK is neither in your inbox nor still in the room.\n\n"
      "Example:\n  agentbus reply 8192 'yes, go ahead' --agent reviewer");
  commands.push_back({reply, [&g, a] {
                        Inbox box(open_room(g));
                        write_out(std::to_string(box.reply(a->agent, a->ask_id, a->message)) + "\n", true);
                        return 0;
                      }});

  CLI::App* dir = with_agent(app.add_subcommand("directed", "The latest events addressed to an agent, newest first."), *a);
  dir->group(group);
  dir->add_option("-n,--count", a->count, "At most this many")->check(CLI::PositiveNumber)->capture_default_str();
  dir->add_flag("--json", a->json, "One JSON object per line");
  dir->footer(
      "Reads the room's ring (what is still in it), not the inbox; broadcasts are excluded.\n\n"
      "Example:\n  agentbus directed --agent reviewer-1 -n 20");
  commands.push_back({dir, [&g, a] {
                        std::optional<Room> room = open_existing_room(g);
                        if (!room) return 0;
                        std::string out;
                        for (const Event& e : directed(*room, a->agent, a->count))
                          out += a->json ? event_json(e.view(), room->name()) : event_text(e.view());
                        write_out(out, true);
                        return 0;
                      }});
}

}  // namespace agentbus::cli
