// supervisor.cpp — Supervisor: auto-delegate, the delegate_workers tool, or per-worker tools.
#include <agentbus/error.hpp>
#include <agentbus/orchestration/strategies.hpp>

#include "orchestration/json_object.hpp"
#include "orchestration/strategy_support.hpp"

#include <exception>
#include <thread>

namespace agentbus::orchestration {

namespace {

// A worker that failed other than by running out of time: RoomKit posts it and re-raises.
struct WorkerError {
  std::string message;
};

constexpr std::string_view kDefaultRefine =
    "Extract the core task from the user's message above. Reply with the task only, in one or two sentences.";

std::string results_json(const std::vector<Supervisor::WorkerResult>& results) {
  const std::string items = json::array(results, [](const Supervisor::WorkerResult& r) {
    json::ObjectWriter w;
    w.str("worker", r.worker).str("output", r.output);
    if (r.failed) w.str("status", "failed").str("error", r.error);
    if (!r.validated) w.boolean("validated", false);
    if (r.revisions) w.num("revisions", std::uint64_t(r.revisions));
    return w.finish();
  });
  return json::ObjectWriter().str("status", "completed").raw("results", items).finish();
}

std::string task_of(const ToolCall& call, std::string& why) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  std::string task;
  if (!json::parse_object(parser, call.arguments, obj, why) || !json::get_string(obj, "task", task, true, why)) return {};
  return task;
}

}  // namespace

Supervisor::Supervisor(Agent supervisor, std::vector<Agent> workers, SupervisorOptions options)
    : supervisor_(std::move(supervisor)), workers_(std::move(workers)), options_(std::move(options)) {
  if (options_.strategy) options_.strategy = checked_worker_strategy(*options_.strategy);
  if (options_.auto_delegate && !options_.strategy)
    throw Error(Errc::invalid_argument, "auto_delegate=True requires strategy to be set");
  if (workers_.empty()) throw Error(Errc::invalid_argument, "Supervisor needs at least one worker");
  detail::check_agents(agents(), "Supervisor");
}

std::vector<Agent> Supervisor::agents() const {
  std::vector<Agent> all{supervisor_};
  all.insert(all.end(), workers_.begin(), workers_.end());
  return all;
}

Supervisor::WorkerResult Supervisor::run_one(Run& run, std::uint64_t step, const Agent& worker, const std::string& task) {
  ProviderRequest req;
  req.messages.push_back({"user", "", task});
  const CallResult r = run.call(step, worker, std::move(req), options_.task_timeout);
  WorkerResult w{worker.id, r.ok() ? r.reply.text : std::string(), false, {}, true, 0};
  if (r.status == CallStatus::timeout) {
    w.failed = true;  // its own budget ran out: FAILED, and the chain goes on
    w.error = r.error;
  } else if (!r.ok()) {
    throw WorkerError{"worker '" + worker.id + "' failed: " + r.error};
  } else if (detail::trim(w.output).empty()) {
    w.failed = true;  // RoomKit's runner: COMPLETED only with a non-empty output
    w.error = "worker '" + worker.id + "' gave no output";
  }
  return w;
}

std::vector<Supervisor::WorkerResult> Supervisor::run_workers(Run& run, const std::string& task,
                                                              const std::vector<const Agent*>& workers) {
  std::vector<WorkerResult> results(workers.size());
  if (options_.strategy == std::optional<std::string>("parallel") && workers.size() > 1) {
    const std::uint64_t first = run.reserve_steps(workers.size());
    std::vector<std::thread> threads;
    std::vector<std::exception_ptr> errors(workers.size());
    for (std::size_t i = 0; i < workers.size(); ++i)
      threads.emplace_back([&, i] {
        try {
          results[i] = run_one(run, first + i, *workers[i], task);
        } catch (...) {
          errors[i] = std::current_exception();
        }
      });
    for (auto& t : threads) t.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
    return results;
  }
  for (std::size_t i = 0; i < workers.size(); ++i) {
    std::string prompt = task;
    for (std::size_t j = 0; j < i; ++j)
      if (!results[j].failed) prompt += "\n\n[Output from " + results[j].worker + "]:\n" + results[j].output;
    results[i] = run_one(run, run.next_step(), *workers[i], prompt);
    if (!options_.supervised || results[i].failed) continue;
    // Supervised: the supervisor validates the step and may send it back with feedback.
    for (;;) {
      const std::uint64_t vstep = run.next_step();
      ProviderRequest req;
      req.messages = {{"user", "", "Check the output of " + workers[i]->id + " for the task: " + task},
                      {"assistant", workers[i]->id, results[i].output}};
      req.tools = {detail::verdict_tool()};
      const CallResult r = run.call(vstep, supervisor_, std::move(req));
      if (!r.ok()) throw WorkerError{"supervisor '" + supervisor_.id + "' failed reviewing " + workers[i]->id + ": " + r.error};
      const Verdict v = parse_verdict(r.reply);
      run.record("VERDICT", vstep, supervisor_.id,
                 json::members_of(json::ObjectWriter()
                                        .str("reviewer", supervisor_.id)
                                        .str("worker", workers[i]->id)
                                        .boolean("approved", v.approved)
                                        .str("feedback", v.feedback)
                                        .finish()));
      if (v.approved) break;
      if (results[i].revisions >= options_.max_revisions) {
        results[i].validated = false;  // delivered, marked unvalidated, instead of looping
        break;
      }
      const std::uint32_t revisions = results[i].revisions + 1;
      results[i] = run_one(run, run.next_step(), *workers[i], prompt + "\n\n[Supervisor feedback]: " + v.feedback);
      results[i].revisions = revisions;
      if (results[i].failed) break;
    }
  }
  return results;
}

RunResult Supervisor::execute(Run& run) {
  detail::state_once(run, 0, "init", ConversationState::fresh("supervisor", supervisor_.id));
  std::vector<const Agent*> all;
  for (const auto& w : workers_) all.push_back(&w);
  try {
    if (options_.auto_delegate) {
      std::string task = run.input();
      if (options_.refine_task) {
        ProviderRequest req;
        req.messages = {{"user", "", run.input()},
                        {"system", "", options_.refine_instruction.empty() ? std::string(kDefaultRefine) : options_.refine_instruction}};
        const std::uint64_t step = run.next_step();
        const CallResult r = run.call(step, supervisor_, std::move(req));
        if (!r.ok()) return detail::failed("step " + std::to_string(step) + ": " + r.error);
        if (!detail::trim(r.reply.text).empty()) task = detail::trim(r.reply.text);
      }
      const auto results = run_workers(run, task, all);
      const std::string json = results_json(results);
      ProviderRequest req;
      req.messages = {{"user", "", run.input()}, {"system", "", "Your workers' results: " + json + "\nPresent them to the user."}};
      const std::uint64_t step = run.next_step();
      const CallResult r = run.call(step, supervisor_, std::move(req));
      if (!r.ok()) return detail::failed("step " + std::to_string(step) + ": " + r.error);
      RunResult out = detail::completed(r.reply.text);
      out.detail = json;
      return out;
    }
    // Tool modes: the supervisor decides when to delegate.
    std::vector<ToolSpec> tools;
    const std::string task_schema = R"({"type":"object","properties":{"task":{"type":"string"}},"required":["task"]})";
    if (options_.strategy) tools.push_back({"delegate_workers", "Run the workers (" + *options_.strategy + ") on a task", task_schema});
    else
      for (const auto& w : workers_) tools.push_back({"delegate_to_" + w.id, "Delegate a task to " + w.id + (w.role.empty() ? "" : " (" + w.role + ")"), task_schema});
    std::vector<Message> transcript{{"user", "", run.input()}};
    std::vector<WorkerResult> everything;
    for (;;) {
      const std::uint64_t step = run.next_step();
      ProviderRequest req;
      req.messages = transcript;
      req.tools = tools;
      const CallResult r = run.call(step, supervisor_, std::move(req));
      if (!r.ok()) return detail::failed("step " + std::to_string(step) + ": " + r.error);
      transcript.push_back({"assistant", supervisor_.id, r.reply.text});
      bool delegated = false;
      for (const auto& call : r.reply.tool_calls) {
        std::vector<const Agent*> chosen;
        if (call.name == "delegate_workers" && options_.strategy) chosen = all;
        else if (!options_.strategy && call.name.rfind("delegate_to_", 0) == 0) {
          for (const auto& w : workers_)
            if (call.name == "delegate_to_" + w.id) chosen.push_back(&w);
        }
        if (chosen.empty()) continue;
        delegated = true;
        std::string why;
        const std::string task = task_of(call, why);
        if (task.empty()) {
          transcript.push_back({"system", "", "Result of " + call.name + ": {\"error\":" + util::json_string(why.empty() ? "empty task" : why) + "}"});
          continue;
        }
        auto results = run_workers(run, task, chosen);
        transcript.push_back({"system", "", "Result of " + call.name + ": " + results_json(results)});
        everything.insert(everything.end(), results.begin(), results.end());
      }
      if (!delegated) {
        RunResult out = detail::completed(r.reply.text);
        out.detail = results_json(everything);
        return out;
      }
    }
  } catch (const WorkerError& e) {
    return detail::failed(e.message);
  }
}

}  // namespace agentbus::orchestration
