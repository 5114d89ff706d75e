// The `finish` tool that workgroup members and workflow leaders end with.
#pragma once

#include <agentbus/orchestration/provider.hpp>
#include <agentbus/orchestration/workgroup.hpp>

namespace agentbus::orchestration {

[[nodiscard]] ToolSpec finish_tool();
// Reads the reply's finish call into out.status / out.summary; false when it has none (or a
// malformed one).
bool read_finish(const Reply& reply, MemberResult& out);

}  // namespace agentbus::orchestration
