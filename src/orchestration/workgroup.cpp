// Workgroups: members on threads of their own, settled by mode (compete / synthesize).
#include "orchestration/json_object.hpp"
#include "orchestration/workgroup_finish.hpp"

#include <agentbus/error.hpp>
#include <agentbus/orchestration/workgroup.hpp>
#include <agentbus/room.hpp>

#include <simdjson.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

namespace agentbus::orchestration {

std::string_view to_string(MemberStatus s) noexcept {
  switch (s) {
    case MemberStatus::running: return "running";
    case MemberStatus::success: return "success";
    case MemberStatus::blocked: return "blocked";
    case MemberStatus::failed: return "failed";
    case MemberStatus::cancelled: return "cancelled";
  }
  return "failed";
}

ToolSpec finish_tool() {
  return {"finish", "End your work with a status and a summary",
          R"({"type":"object","properties":{"status":{"enum":["success","blocked","failed"]},"summary":{"type":"string"}},"required":["status","summary"]})"};
}

bool read_finish(const Reply& reply, MemberResult& out) {
  const ToolCall* call = reply.find_tool("finish");
  if (call == nullptr) return false;
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  std::string why, status, summary;
  if (!json::parse_object(parser, call->arguments, obj, why) || !json::get_string(obj, "status", status, true, why) ||
      !json::get_string(obj, "summary", summary, false, why))
    return false;
  if (status == "success") out.status = MemberStatus::success;
  else if (status == "blocked") out.status = MemberStatus::blocked;
  else if (status == "failed") out.status = MemberStatus::failed;
  else return false;
  out.summary = summary;
  return true;
}

namespace {

constexpr std::string_view kNoFinish = "Agent stopped without calling finish.";

std::string member_prompt(const WorkgroupSpec& spec, const WorkgroupMember& m) {
  std::string p = spec.mode == WorkgroupMode::compete
                      ? "You are " + m.name + " in workgroup " + spec.name +
                            ", competing with other members on the goal below. Keep your conclusions to yourself "
                            "until you call finish; the first success wins.\n"
                      : "You are " + m.name + " in workgroup " + spec.name + ". Members debate openly in room " +
                            spec.room + "; cover your angle and call finish when you are done.\n";
  p += "Goal: " + spec.goal;
  if (!m.assignment.empty()) p += "\nYour assignment: " + m.assignment;
  return p;
}

struct Shared {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<MemberResult> results;
  std::vector<std::size_t> finished_order;
  bool settled = false;  // no more results are wanted (compete won, timed out)
  // One per member, its call's ProviderRequest::cancel: ending one member's call leaves the
  // calls of another member that shares its provider alone.
  std::unique_ptr<std::atomic<bool>[]> cancel;
};

void run_member(Room room, const WorkgroupSpec& spec, std::size_t i, Shared& shared) {
  const WorkgroupMember& m = spec.members[i];
  ProviderRequest req;
  req.run_id = spec.name;
  req.agent = m.agent.info();
  req.tools = {finish_tool()};
  req.messages.push_back({"user", "", member_prompt(spec, m)});
  req.cancel = &shared.cancel[i];
  MemberResult r{m.name, MemberStatus::failed, {}, {}};
  for (int attempt = 0; attempt < 2; ++attempt) {
    req.step = static_cast<std::uint64_t>(attempt);
    // Past the settle timeout the workgroup cancels the call; its own bound is only a backstop.
    const CallResult call = m.agent.provider->call(req, spec.settle_timeout + std::chrono::seconds(10));
    if (!call.ok()) {
      r.status = MemberStatus::failed;
      r.summary = call.error;
      break;
    }
    r.data = call.reply.text;
    if (spec.mode == WorkgroupMode::synthesize && !call.reply.text.empty())
      (void)room.publish("workgroup.message", m.name, call.reply.text);
    if (read_finish(call.reply, r)) break;
    if (attempt == 0) {
      req.messages.push_back({"assistant", m.name, call.reply.text});
      req.messages.push_back({"user", "", "You stopped without calling finish. Call finish now with your status and summary."});
      continue;
    }
    r.status = MemberStatus::failed;
    r.summary = std::string(kNoFinish);
  }
  std::lock_guard lock(shared.mutex);
  if (shared.settled) r.status = r.status == MemberStatus::success ? r.status : MemberStatus::cancelled;
  shared.results[i] = std::move(r);
  shared.finished_order.push_back(i);
  shared.cv.notify_all();
}

}  // namespace

std::string members_json(const std::vector<MemberResult>& members) {
  return json::array(members, [](const MemberResult& m) {
    return json::ObjectWriter().str("name", m.name).str("status", to_string(m.status)).str("summary", m.summary).finish();
  });
}

void check_member_names(const std::vector<WorkgroupMember>& members, std::string_view where) {
  if (members.empty()) throw Error(Errc::invalid_argument, std::string(where) + " requires at least one member.");
  std::set<std::string> seen;
  for (const auto& m : members) {
    if (m.name.empty()) throw Error(Errc::invalid_argument, "Member name must not be empty.");
    if (!seen.insert(m.name).second) throw Error(Errc::invalid_argument, "Duplicate member name: " + m.name + ".");
  }
}

std::string summary_lines(const std::vector<MemberResult>& members) {
  std::string out;
  for (const auto& m : members)
    if (!m.summary.empty()) out += (out.empty() ? "" : "\n") + m.name + ": " + m.summary;
  return out;
}

namespace {

MemberStatus resolve(const std::vector<MemberResult>& results) {
  bool blocked = false;
  for (const auto& r : results) {
    if (r.status == MemberStatus::success) return MemberStatus::success;
    blocked = blocked || r.status == MemberStatus::blocked;
  }
  return blocked ? MemberStatus::blocked : MemberStatus::failed;
}

void validate(Bus& bus, const WorkgroupSpec& spec) {
  if (spec.room.empty()) throw Error(Errc::invalid_argument, "workgroup requires room.");
  if (spec.goal.find_first_not_of(" \t\r\n") == std::string::npos) throw Error(Errc::invalid_argument, "workgroup requires goal.");
  check_member_names(spec.members, "workgroup");
  if (spec.settle_timeout <= std::chrono::milliseconds(0))
    throw Error(Errc::invalid_argument, "workgroup settle timeout must be positive.");
  RoomOptions existing;
  existing.create = false;
  try {
    (void)bus.room(spec.room, existing);
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) throw Error(Errc::not_found, "Bus " + spec.room + " not found.");
    throw;
  }
}

}  // namespace

WorkgroupResult run_workgroup(Bus& bus, const WorkgroupSpec& spec) {
  validate(bus, spec);
  RoomOptions existing;
  existing.create = false;
  Room room = bus.room(spec.room, existing);
  Shared shared;
  shared.results.resize(spec.members.size());
  shared.cancel = std::make_unique<std::atomic<bool>[]>(spec.members.size());
  for (std::size_t i = 0; i < spec.members.size(); ++i) shared.results[i].name = spec.members[i].name;

  WorkgroupResult out;
  std::vector<std::thread> threads;
  std::vector<std::size_t> started;
  for (std::size_t i = 0; i < spec.members.size(); ++i) {
    if (!spec.members[i].agent.provider) {
      out.start_failures.push_back(spec.members[i].name + ": no provider");
      break;
    }
    try {
      threads.emplace_back(run_member, room, std::cref(spec), i, std::ref(shared));
      started.push_back(i);
    } catch (const std::system_error& e) {
      out.start_failures.push_back(spec.members[i].name + ": " + e.what());
      break;
    }
  }
  auto cancel_running = [&] {
    std::vector<std::size_t> running;
    {
      std::lock_guard lock(shared.mutex);
      shared.settled = true;
      for (std::size_t i : started)
        if (shared.results[i].status == MemberStatus::running) running.push_back(i);
    }
    for (std::size_t i : running) shared.cancel[i].store(true);
  };

  if (!out.start_failures.empty()) {
    cancel_running();  // pi-orchestra: the members that did start are closed
  } else {
    const auto deadline = std::chrono::steady_clock::now() + spec.settle_timeout;
    std::unique_lock lock(shared.mutex);
    std::size_t seen = 0;
    for (;;) {
      for (; seen < shared.finished_order.size(); ++seen) {
        const std::size_t i = shared.finished_order[seen];
        std::vector<std::string> pending;
        for (const auto& r : shared.results)
          if (r.status == MemberStatus::running) pending.push_back(r.name);
        const MemberResult& r = shared.results[i];
        (void)room.publish("workgroup.member_finished", r.name,
                           json::ObjectWriter().str("workgroup", spec.name).str("member", r.name)
                               .str("status", to_string(r.status)).str("summary", r.summary)
                               .raw("pending", json::string_array(pending)).finish());
        if (spec.mode == WorkgroupMode::compete && r.status == MemberStatus::success && out.winner.empty())
          out.winner = r.name;
      }
      if (!out.winner.empty() || seen == spec.members.size()) break;
      if (spec.cancel != nullptr && spec.cancel->load()) {
        out.cancelled = true;
        break;
      }
      // With a cancel flag, wake every 20 ms to look at it.
      const auto until = spec.cancel == nullptr ? deadline : std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(20));
      if (shared.cv.wait_until(lock, until) == std::cv_status::timeout && std::chrono::steady_clock::now() >= deadline &&
          shared.finished_order.size() == seen) {
        out.timed_out = true;
        for (const auto& r : shared.results)
          if (r.status == MemberStatus::running) out.pending.push_back(r.name);
        break;
      }
    }
    lock.unlock();
    if (!out.winner.empty() || out.timed_out || out.cancelled) cancel_running();
  }
  // A cancelled member's call ends within 20 ms (a CommandProvider's process group is killed,
  // a BusAgentProvider stops waiting); a ScriptedProvider's call is waited for.
  for (auto& t : threads) t.join();

  out.members = shared.results;
  for (auto& m : out.members)
    if (m.status == MemberStatus::running) m.status = MemberStatus::cancelled;  // never started
  out.status = out.start_failures.empty() ? resolve(out.members) : MemberStatus::failed;
  (void)room.publish("workgroup.finished", spec.name,
                     json::ObjectWriter().str("workgroup", spec.name).str("status", to_string(out.status))
                         .str("winner", out.winner).boolean("timed_out", out.timed_out).boolean("cancelled", out.cancelled)
                         .raw("pending", json::string_array(out.pending)).raw("members", members_json(out.members)).finish());
  return out;
}

}  // namespace agentbus::orchestration
