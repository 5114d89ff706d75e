// loop.cpp — Loop: produce, review, repeat until every reviewer approves (a structured
// verdict) or max_iterations.
#include <agentbus/error.hpp>
#include <agentbus/orchestration/strategies.hpp>

#include "orchestration/json_object.hpp"
#include "orchestration/strategy_support.hpp"

#include <exception>
#include <thread>

namespace agentbus::orchestration {

Loop::Loop(Agent agent, std::vector<Agent> reviewers, std::optional<Agent> reviewer, std::uint32_t max_iterations,
           std::optional<std::string> strategy)
    : producer_(std::move(agent)), max_iterations_(max_iterations) {
  if (!reviewers.empty() && reviewer) throw Error(Errc::invalid_argument, "Provide either 'reviewers' or 'reviewer', not both");
  if (reviewer) reviewers_ = {std::move(*reviewer)};
  else if (!reviewers.empty()) reviewers_ = std::move(reviewers);
  else throw Error(Errc::invalid_argument, "At least one reviewer is required");
  if (strategy) parallel_ = checked_worker_strategy(*strategy) == "parallel";
  if (max_iterations_ == 0) throw Error(Errc::invalid_argument, "max_iterations must be at least 1");
  std::vector<Agent> all = reviewers_;
  all.push_back(producer_);
  detail::check_agents(all, "Loop");
}

std::vector<Agent> Loop::agents() const {
  std::vector<Agent> all{producer_};
  all.insert(all.end(), reviewers_.begin(), reviewers_.end());
  return all;
}

namespace {

struct Review {
  Verdict verdict;
  std::string reviewer;
};

Review review(Run& run, std::uint64_t step, const Agent& reviewer, const std::string& task, const std::string& output,
              const std::vector<Review>& earlier, std::uint32_t iteration) {
  ProviderRequest req;
  req.messages.push_back({"user", "", "Review this output for the task: " + task});
  req.messages.push_back({"assistant", "producer", output});
  for (const auto& e : earlier) req.messages.push_back({"user", "", "[Feedback from " + e.reviewer + "]: " + e.verdict.feedback});
  req.tools = {detail::verdict_tool()};
  const CallResult r = run.call(step, reviewer, std::move(req));
  Review rv{r.ok() ? parse_verdict(r.reply) : Verdict{false, "reviewer " + reviewer.id + " failed: " + r.error}, reviewer.id};
  run.record("VERDICT", step, reviewer.id,
             json::members_of(json::ObjectWriter()
                                    .str("reviewer", reviewer.id)
                                    .num("iteration", std::uint64_t(iteration))
                                    .boolean("approved", rv.verdict.approved)
                                    .str("feedback", rv.verdict.feedback)
                                    .finish()));
  return rv;
}

}  // namespace

RunResult Loop::execute(Run& run) {
  ConversationState state = ConversationState::fresh(producer_.id, producer_.id)
                                .with_context("_loop_iteration", "0")
                                .with_context("_loop_approved", "false")
                                .with_context("_loop_max_iterations", std::to_string(max_iterations_));
  state = detail::state_once(run, 0, "init", state);
  std::vector<Message> transcript{{"user", "", run.input()}};
  RunResult result;
  result.stopped = "max_iterations";
  for (std::uint32_t it = 1; it <= max_iterations_; ++it) {
    const std::uint64_t step = run.next_step();
    ProviderRequest req;
    req.messages = transcript;
    const CallResult produced = run.call(step, producer_, std::move(req));
    if (!produced.ok()) {
      result.stopped = "producer_failed";
      if (result.output.empty()) {
        RunResult f = detail::failed("The producer's task failed: " + produced.error);
        f.stopped = "producer_failed";
        f.iterations = it - 1;
        return f;
      }
      result.error = "The producer's task failed: " + produced.error;
      break;
    }
    if (detail::trim(produced.reply.text).empty()) {
      result.stopped = "empty_output";  // RoomKit: not approved on empty output
      break;
    }
    result.output = produced.reply.text;
    result.iterations = it;
    transcript.push_back({"assistant", producer_.id, produced.reply.text});

    std::vector<Review> reviews(reviewers_.size());
    if (parallel_ && reviewers_.size() > 1) {
      const std::uint64_t first = run.reserve_steps(reviewers_.size());
      std::vector<std::thread> threads;
      std::vector<std::exception_ptr> errors(reviewers_.size());
      for (std::size_t i = 0; i < reviewers_.size(); ++i)
        threads.emplace_back([&, i] {
          try {
            reviews[i] = review(run, first + i, reviewers_[i], run.input(), result.output, {}, it);
          } catch (...) {
            errors[i] = std::current_exception();
          }
        });
      for (auto& t : threads) t.join();
      for (auto& e : errors)
        if (e) std::rethrow_exception(e);
    } else {
      std::vector<Review> earlier;
      for (std::size_t i = 0; i < reviewers_.size(); ++i) {
        reviews[i] = review(run, run.next_step(), reviewers_[i], run.input(), result.output, earlier, it);
        earlier.push_back(reviews[i]);
      }
    }
    bool all = true;
    std::string feedback = "Reviewer feedback (iteration " + std::to_string(it) + "):";
    for (const auto& r : reviews) {
      all = all && r.verdict.approved;
      feedback += "\n[" + r.reviewer + "]: " + r.verdict.feedback;
    }
    state = detail::state_once(run, step, "iteration", state.with_context("_loop_iteration", std::to_string(it))
                                                            .with_context("_loop_approved", all ? "true" : "false"));
    if (all) {
      result.approved = true;
      result.stopped = "approved";
      break;
    }
    transcript.push_back({"user", "", feedback});
  }
  result.detail = json::ObjectWriter()
                      .boolean("approved", result.approved)
                      .num("iteration", std::uint64_t(result.iterations))
                      .str("stopped", result.stopped)
                      .finish();
  return result;
}

}  // namespace agentbus::orchestration
