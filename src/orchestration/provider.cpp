// provider.cpp — Reply helpers and the scripted provider.
#include <agentbus/error.hpp>
#include <agentbus/orchestration/provider.hpp>

namespace agentbus::orchestration {

const ToolCall* Reply::find_tool(std::string_view name) const {
  for (const auto& call : tool_calls)
    if (call.name == name) return &call;
  return nullptr;
}

ScriptedProvider::ScriptedProvider(std::vector<Reply> replies) : replies_(std::move(replies)) {
  if (replies_.empty()) throw Error(Errc::invalid_argument, "a scripted provider needs at least one reply");
}

ScriptedProvider::ScriptedProvider(Function function) : function_(std::move(function)) {
  if (!function_) throw Error(Errc::invalid_argument, "a scripted provider needs a function");
}

CallResult ScriptedProvider::call(const ProviderRequest& request, std::chrono::milliseconds) {
  std::uint64_t n = 0;
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(request);
    n = calls_.fetch_add(1);
  }
  if (function_) return function_(request);
  return CallResult::success(replies_[std::min<std::size_t>(n, replies_.size() - 1)]);
}

std::vector<ProviderRequest> ScriptedProvider::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

Agent scripted_agent(std::string id, std::vector<Reply> replies, std::string role) {
  return Agent{std::move(id), std::move(role), {}, std::make_shared<ScriptedProvider>(std::move(replies))};
}

Agent scripted_agent(std::string id, ScriptedProvider::Function function, std::string role) {
  return Agent{std::move(id), std::move(role), {}, std::make_shared<ScriptedProvider>(std::move(function))};
}

}  // namespace agentbus::orchestration
