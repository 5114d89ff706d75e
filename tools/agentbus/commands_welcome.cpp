// commands_welcome.cpp — `agentbus welcome`: pin, show or clear the lobby greeting that
// `agentbus hook session-start` puts at the top of its digest.
#include "common.hpp"
#include "hook_digest.hpp"
#include "output.hpp"

#include <memory>

namespace agentbus::cli {
namespace {

struct WelcomeArgs {
  std::string text;
  std::string agent = "cli";
  bool show = false;
  bool clear = false;
};

int run_welcome(const Globals& g, const WelcomeArgs& a) {
  if (a.show || a.clear) {
    std::optional<Room> room = open_existing_room(g);
    std::optional<Scratchpad> pad;
    if (room) {
      try {
        pad.emplace(*room, ScratchpadOptions{.create = false});
      } catch (const Error& e) {
        if (e.code() != Errc::not_found) throw;
      }
    }
    if (a.clear) {
      if (!pad || pad->remove(kWelcomeKey) != ScratchStatus::found) {
        report_error("no welcome pinned in room " + room_name(g));
        return kExitNotFound;
      }
      return 0;
    }
    const ScratchValue v = pad ? pad->read(kWelcomeKey) : ScratchValue{};
    if (!v.found()) {
      report_error("no welcome pinned in room " + room_name(g));
      return kExitNotFound;
    }
    write_out(sanitize_for_terminal(v.value, Newlines::keep) + "\n", true);
    return 0;
  }
  const std::string name = room_name(g);
  std::string text = a.text.empty() ? default_welcome(name) : a.text == "-" ? read_all_stdin() : a.text;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.empty() || text.size() > kMaxWelcomeBytes) {
    report_error("a welcome is 1.." + std::to_string(kMaxWelcomeBytes) + " bytes; got " + std::to_string(text.size()));
    return kExitUsage;
  }
  Room room = open_room(g);
  Scratchpad pad(room);
  const ScratchValue current = pad.read(kWelcomeKey);
  if (current.found() && current.value == text) {
    write_out("welcome in " + sanitize_for_terminal(name) + " unchanged\n", true);
    return 0;
  }
  pad.write(kWelcomeKey, text);
  touch_presence(room, a.agent);
  const PublishResult r = room.publish("WELCOME", a.agent, text);
  write_out("pinned the welcome of " + sanitize_for_terminal(name) +
                (r.ok() ? " (event " + std::to_string(r.id) + ")\n" : " (the room is full: no WELCOME event)\n"),
            true);
  return 0;
}

}  // namespace

void add_welcome_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto welcome_args = std::make_shared<WelcomeArgs>();
  CLI::App* welcome = app.add_subcommand("welcome", "Pin the lobby greeting session-start shows.");
  welcome->group("Agent hooks");  // beside `hook`, whose digest shows it
  welcome->add_option("text", welcome_args->text, "The greeting; '-' reads stdin; default: a short how-to");
  welcome->add_option("--agent", welcome_args->agent, "Agent id the WELCOME event is from")
      ->envname("AGENTBUS_AGENT")
      ->capture_default_str();
  welcome->add_flag("--show", welcome_args->show, "Print the pinned welcome (exit 4 when none)");
  welcome->add_flag("--clear", welcome_args->clear, "Unpin it (exit 4 when none)");
  welcome->footer(
      "The welcome is kept in the room's scratchpad under \"lobby:welcome\" (no TTL) and posted\n"
      "once as a WELCOME event. Pinning the same text again changes nothing and posts nothing.\n\n"
      "Examples:\n"
      "  agentbus welcome\n"
      "  agentbus welcome 'Reviews go to reviewer-*; never push to main.' --agent lead\n"
      "  agentbus welcome --show");
  commands.push_back({welcome, [&g, welcome_args] { return run_welcome(g, *welcome_args); }});
}

}  // namespace agentbus::cli
