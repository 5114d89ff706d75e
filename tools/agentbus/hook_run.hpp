// hook_run.hpp — one hook event run against its room: what session-start, user-prompt-submit
// and session-end read, print and record. commands_hook.cpp guards the run (watchdog, bounded
// stdin, no error escapes); this is the part that talks to the bus.
#pragma once

#include "common.hpp"
#include "hook_digest.hpp"

#include <string>

namespace agentbus::cli {

struct HookArgs {
  std::string agent;
  std::string join_window = "10m";
  std::string timeout = "2s";
};

enum class HookKind { session_start, user_prompt_submit, session_end };

// Opens the bus and the hook's room without creating either (`root` tells whether --repo was
// given) and runs `kind`; a missing bus or room is nothing to do (exit 0). Errors propagate:
// the caller keeps them from the agent.
[[nodiscard]] int run_hook_event(const Globals& g, const CLI::App& root, const HookArgs& args, HookKind kind,
                                 HookInput input);

}  // namespace agentbus::cli
