// hook_guard.hpp — what keeps a hook from blocking or failing the agent that runs it (the
// rules are listed in commands_hook.cpp): a quiet debug line, a watchdog, a bounded stdin.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace agentbus::cli {

// One "agentbus hook: ..." line on stderr, only when $AGENTBUS_HOOK_DEBUG is set: a hook's
// failures must not reach the agent, but whoever wires the hooks needs to see why.
void hook_debug(std::string_view what);

// Past `limit` the hook gives up: exit 0, and whatever was still buffered is never written.
void arm_watchdog(std::chrono::milliseconds limit);

// All of stdin, read until EOF within `limit`; nullopt when it does not end in time, is over
// 1 MiB, or cannot be read. A terminal on stdin is no input (a human typing the command).
[[nodiscard]] std::optional<std::string> read_stdin(std::chrono::milliseconds limit);

}  // namespace agentbus::cli
