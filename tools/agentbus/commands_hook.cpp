// commands_hook.cpp — Claude Code hooks (`agentbus hook session-start|user-prompt-submit|
// session-end`), agentroom style. docs/hooks.md describes the wiring; `agentbus welcome`, the
// greeting session-start shows, is in commands_welcome.cpp.
//
// A hook must never block or fail the agent that runs it. So a hook:
//  * reads stdin with a deadline and at most 1 MiB, and treats anything but a JSON object with
//    a session_id as "nothing to do";
//  * opens the bus and room without creating them (a missing bus or room: nothing to do), with
//    short bounded waits (bus initialisation, scratchpad writers, a full ring);
//  * arms a watchdog (--timeout, default 2s) that ends the process with exit 0 and no output;
//  * catches every error, prints nothing, and exits 0 (one line on stderr when
//    $AGENTBUS_HOOK_DEBUG is set).
// This file holds those guards' order and the commands; hook_run.cpp does the work.
#include "common.hpp"
#include "hook_digest.hpp"
#include "hook_guard.hpp"
#include "hook_run.hpp"
#include "hook_session.hpp"

#include <algorithm>
#include <memory>

namespace agentbus::cli {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

int run_hook(const Globals& g, const CLI::App& root, const HookArgs& args, HookKind kind) {
  try {
    arm_watchdog(validated_ms(args.timeout));
    const std::optional<std::string> raw = read_stdin(std::min(validated_ms(args.timeout) / 2, milliseconds(1000)));
    if (!raw) {
      hook_debug("no complete input on stdin");
      return 0;
    }
    std::optional<HookInput> input = parse_hook_input(*raw);
    if (!input) {
      hook_debug("stdin is not hook JSON with a session_id");
      return 0;
    }
    if (kind == HookKind::session_start) export_to_claude_env(g, args.agent);
    return run_hook_event(g, root, args, kind, std::move(*input));
  } catch (const StdoutClosed&) {
    hook_debug("stdout closed");
  } catch (const std::exception& e) {
    hook_debug(e.what());
  } catch (...) {
    hook_debug("unknown error");
  }
  return 0;
}

}  // namespace

void add_hook_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto args = std::make_shared<HookArgs>();
  const std::string group = "Agent hooks";

  CLI::App* hook = app.add_subcommand("hook", "Claude Code hooks: digest at session start, news with each prompt.");
  hook->group(group);
  hook->require_subcommand(1);
  hook->footer(
      "Claude Code runs these with the hook's JSON (session_id, cwd, prompt, ...) on stdin.\n"
      "session-start prints a digest: sign-in nudge, the pinned lobby welcome, who is here,\n"
      "open tasks, inbox, and the events of the last --join-window. user-prompt-submit prints\n"
      "only what is new since the session's last prompt, and nothing when nothing is.\n"
      "session-end posts SESSION_ENDED and takes the agent out of `who`. A hook never fails the\n"
      "agent: no bus, no room, bad input or any error means no output and exit 0\n"
      "($AGENTBUS_HOOK_DEBUG=1 prints why on stderr). The room is --room/$AGENTBUS_ROOM, else\n"
      "REPO/BRANCH with REPO from --repo/$REPO_ID, else the name of the hook input's cwd.\n"
      "Wiring for .claude/settings.json: see docs/hooks.md.\n\n"
      "Example:\n"
      "  echo '{\"session_id\":\"s1\",\"cwd\":\"'$PWD'\"}' | agentbus hook session-start --agent fixer");

  const auto add = [&](const char* name, const char* help, HookKind kind, bool window, const char* footer) {
    CLI::App* cmd = hook->add_subcommand(name, help);
    cmd->footer(footer);
    cmd->add_option("--agent", args->agent, "The agent id this session posts as (excluded from its news)")
        ->envname("AGENTBUS_AGENT");
    cmd->add_option("--timeout", args->timeout, "Give up (no output, exit 0) after this long")
        ->check(duration_validator(10ms, std::chrono::hours(1)))
        ->capture_default_str();
    if (window)
      cmd->add_option("--join-window", args->join_window, "Replay the events of this last stretch of time, up to 24h")
          ->check(duration_validator())
          ->capture_default_str();
    commands.push_back({cmd, [&g, &app, args, kind] { return run_hook(g, app, *args, kind); }});
  };
  add("session-start", "SessionStart: print the room digest, set this session's cursor.", HookKind::session_start,
      true,
      "Reads the hook's JSON on stdin; never fails the session (see `agentbus hook --help`).\n\n"
      "Example:\n"
      "  echo '{\"session_id\":\"s1\",\"cwd\":\"'$PWD'\"}' | agentbus hook session-start --agent fixer --join-window 1h");
  add("user-prompt-submit", "UserPromptSubmit: print what is new since the last prompt.",
      HookKind::user_prompt_submit, false,
      "Prints nothing when nothing is new since this session's last prompt.\n\n"
      "Example:\n"
      "  echo '{\"session_id\":\"s1\",\"cwd\":\"'$PWD'\",\"prompt\":\"go\"}' | agentbus hook user-prompt-submit --agent fixer");
  add("session-end", "SessionEnd: post SESSION_ENDED and leave the room.", HookKind::session_end, false,
      "Example:\n"
      "  echo '{\"session_id\":\"s1\",\"cwd\":\"'$PWD'\"}' | agentbus hook session-end --agent fixer");
}

}  // namespace agentbus::cli
