// What workgroup members and workflow leaders end with: the `finish` tool, and their results
// as JSON and as text.
#pragma once

#include <agentbus/orchestration/provider.hpp>
#include <agentbus/orchestration/workgroup.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace agentbus::orchestration {

[[nodiscard]] ToolSpec finish_tool();
// Reads the reply's finish call into out.status / out.summary; false when it has none (or a
// malformed one).
bool read_finish(const Reply& reply, MemberResult& out);

// pi-orchestra's member checks, Error{invalid_argument}: "<where> requires at least one
// member.", "Member name must not be empty.", "Duplicate member name: <name>."
void check_member_names(const std::vector<WorkgroupMember>& members, std::string_view where);

// [{"name","status","summary"}, ...]
[[nodiscard]] std::string members_json(const std::vector<MemberResult>& members);
// "name: summary" lines of the members that left a summary: a synthesised group's output.
[[nodiscard]] std::string summary_lines(const std::vector<MemberResult>& members);

}  // namespace agentbus::orchestration
