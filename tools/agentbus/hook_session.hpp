// hook_session.hpp — the agent session a hook runs in: the processes that may stand for it,
// and the exports that make the session's later commands act as the same agent.
#pragma once

#include "common.hpp"

#include <set>
#include <string_view>

namespace agentbus::cli {

// `session` and the processes above this one (parent, grandparent, ... up to init): the
// processes an agent may have named as the session of its presence.
[[nodiscard]] std::set<int> session_ancestors(int session);

// Appends to $CLAUDE_ENV_FILE (Claude Code sources it before each later command of the
// session) the export lines of `agent` and this session, so those commands act as the same
// agent in the same session whatever shells run them. A line already in the file is not
// written again (a resumed session runs session-start again). Any failure only means no
// exports: the hook goes on.
void export_to_claude_env(const Globals& g, std::string_view agent);

}  // namespace agentbus::cli
