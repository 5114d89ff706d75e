// agentbus/orchestration/workgroup.hpp — pi-orchestra's workgroups: several agents started
// together on one goal, in one room (pi-orchestra's "bus").
//
//  * compete: members run in parallel and keep their conclusions to themselves; the first
//    `success` wins, and every member still running is cancelled (Provider::cancel_calls: a
//    CommandProvider's process group is killed, so a loser's process is gone when
//    run_workgroup returns).
//  * synthesize: members work in the open (each reply is published in the room as a
//    `workgroup.message` event) and the workgroup settles when all have finished.
// A member finishes by calling the `finish` tool ({"status":"success"|"blocked"|"failed",
// "summary":"..."}). A member that stops without it is asked once more; if it still does not,
// it FAILs with the summary "Agent stopped without calling finish." and its last text as data.
// Status resolution over the results: success if any succeeded, else blocked if any blocked,
// else failed. Each member's end is a `workgroup.member_finished` event in the room (payload
// {"workgroup","member","status","summary","pending":[...]}) and the end of the workgroup a
// `workgroup.finished` event ({"workgroup","status","winner","timed_out","pending":[...],
// "members":[{"name","status","summary"}]}). Settling waits at most `settle_timeout` (10 minutes
// by default): then the members still running are cancelled and reported in `pending`.
// Thread safety: run_workgroup may be called from several threads (one workgroup each); it
// calls each member's provider from a thread of its own.
#pragma once

#include <agentbus/bus.hpp>
#include <agentbus/orchestration/provider.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

namespace agentbus::orchestration {

enum class WorkgroupMode { compete, synthesize };
enum class MemberStatus { running, success, blocked, failed, cancelled };
[[nodiscard]] std::string_view to_string(MemberStatus s) noexcept;

struct WorkgroupMember {
  std::string name;        // unique in the workgroup, not empty
  Agent agent;             // its provider is called with the goal and its assignment
  std::string assignment;  // optional: this member's angle on the goal
};

struct WorkgroupSpec {
  std::string name = "workgroup";  // in events and prompts
  std::string room;                // the workgroup's room (pi-orchestra's busId): must exist
  std::string goal;
  WorkgroupMode mode = WorkgroupMode::compete;
  std::vector<WorkgroupMember> members;
  std::chrono::milliseconds settle_timeout{std::chrono::minutes(10)};
  const std::atomic<bool>* cancel = nullptr;  // set: every running member is cancelled (20 ms)
};

struct MemberResult {
  std::string name;
  MemberStatus status = MemberStatus::running;
  std::string summary;
  std::string data;  // the member's last text
};

struct WorkgroupResult {
  MemberStatus status = MemberStatus::failed;  // success, blocked or failed
  std::string winner;                          // compete: the first member to succeed
  std::vector<MemberResult> members;           // in spec order
  bool timed_out = false;
  bool cancelled = false;                      // spec.cancel was set before it settled
  std::vector<std::string> pending;            // members still running at the timeout
  std::vector<std::string> start_failures;     // "name: why"; the started ones were cancelled
};

// Throws Error{invalid_argument} with pi-orchestra's messages for a bad spec:
// "workgroup requires room.", "workgroup requires goal.", "workgroup requires at least one
// member.", "Member name must not be empty.", "Duplicate member name: x.", a settle timeout
// that is not positive; Error{not_found} "Bus <room> not found." for a room that does not exist.
// A member that cannot start (no provider) is reported in start_failures after the members
// already started have been cancelled; the result is then failed.
[[nodiscard]] WorkgroupResult run_workgroup(Bus& bus, const WorkgroupSpec& spec);

}  // namespace agentbus::orchestration
