// agentbus/orchestration/provider.hpp — agents and the providers that speak for them.
//
// An Agent is {id, role, description, provider}. A Provider turns a conversation (the messages
// of a run so far, the agent's role, the tools it may call) into a Reply: text plus tool calls
// (`handoff`, `delegate_to_<id>` / `delegate_workers`, `finish`, `verdict`). Built in:
//  * ScriptedProvider (here): replies from a list or a function, for tests and examples;
//  * CommandProvider (command_provider.hpp): any program, JSON on stdin and stdout.
//
// A provider reports failure in its CallResult (status failed / timeout, with a message naming
// the agent and what went wrong); it throws only for misuse. Every provider here may be called
// from several threads at once (parallel fan-out calls one agent's provider per branch).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::orchestration {

// The provider protocol's version (docs/orchestration.md); requests carry it, replies must.
inline constexpr int kProviderProtocolVersion = 1;

struct Message {
  std::string role;     // "user" (the run's input, feedback), "assistant" (an agent), "system"
  std::string agent;    // the agent that said it, for "assistant"; empty otherwise
  std::string content;
};

struct ToolSpec {
  std::string name;
  std::string description;
  std::string parameters = "{}";  // a JSON Schema object, minified
};

struct ToolCall {
  std::string name;
  std::string arguments = "{}";   // a JSON object, minified
};

struct Usage {
  std::uint64_t input_tokens = 0;
  std::uint64_t output_tokens = 0;
};

struct Reply {
  std::string text;
  std::vector<ToolCall> tool_calls;
  Usage usage;

  [[nodiscard]] static Reply say(std::string text) { return Reply{std::move(text), {}, {}}; }
  // The first call of that name, or nullptr.
  [[nodiscard]] const ToolCall* find_tool(std::string_view name) const;
};

struct AgentInfo {
  std::string id;
  std::string role;
  std::string description;
};

struct ProviderRequest {
  std::string run_id;
  std::uint64_t step = 0;
  AgentInfo agent;
  std::vector<Message> messages;
  std::vector<ToolSpec> tools;
  // Set by a caller that may give up on this one call (a worker whose task was cancelled): once
  // it reads true, a provider that can be interrupted ends the call as cancelled_calls() would,
  // without touching its other calls (CommandProvider kills the child, BusAgentProvider stops
  // waiting; both within 20 ms). Not part of the protocol's JSON.
  const std::atomic<bool>* cancel = nullptr;
};

enum class CallStatus { ok, failed, timeout };

struct CallResult {
  CallStatus status = CallStatus::ok;
  Reply reply;          // status ok
  std::string error;    // otherwise: what went wrong, naming the agent (and command)
  std::string stderr_text;  // what a command wrote on stderr (the last bytes kept), any status
  [[nodiscard]] bool ok() const noexcept { return status == CallStatus::ok; }

  [[nodiscard]] static CallResult success(Reply r) { return {CallStatus::ok, std::move(r), {}, {}}; }
  [[nodiscard]] static CallResult failure(std::string why, CallStatus s = CallStatus::failed) {
    return {s, {}, std::move(why), {}};
  }
};

class Provider {
 public:
  virtual ~Provider() = default;
  // One call; `timeout` bounds it (a provider that cannot be interrupted says so in its docs).
  virtual CallResult call(const ProviderRequest& request, std::chrono::milliseconds timeout) = 0;
  // How to name this provider in messages and run listings (e.g. the command line).
  [[nodiscard]] virtual std::string describe() const = 0;
  // Ends every call of this provider in flight now (they FAIL: "... was cancelled"), e.g. the
  // losers of a compete workgroup. A provider that cannot be interrupted ignores it (default).
  virtual void cancel_calls() {}
};

struct Agent {
  std::string id;
  std::string role;
  std::string description;
  std::shared_ptr<Provider> provider;
  // This agent's per-call timeout in a run, in place of the run's (RunBudget::call_timeout);
  // 0: the run's.
  std::chrono::milliseconds call_timeout{0};

  [[nodiscard]] AgentInfo info() const { return {id, role, description}; }
};

// Replies from a list, in order; once the list is used up the last reply repeats. Or from a
// function of the request. Counts its calls (tests check that resumed runs call no agent twice).
class ScriptedProvider : public Provider {
 public:
  using Function = std::function<CallResult(const ProviderRequest&)>;
  explicit ScriptedProvider(std::vector<Reply> replies);
  explicit ScriptedProvider(Function function);

  CallResult call(const ProviderRequest& request, std::chrono::milliseconds timeout) override;
  [[nodiscard]] std::string describe() const override { return "scripted"; }
  [[nodiscard]] std::uint64_t calls() const noexcept { return calls_.load(); }
  // The requests received so far, in call order.
  [[nodiscard]] std::vector<ProviderRequest> requests() const;

 private:
  std::vector<Reply> replies_;
  Function function_;
  std::atomic<std::uint64_t> calls_{0};
  mutable std::mutex mutex_;
  std::vector<ProviderRequest> requests_;
};

// An agent with a scripted provider, for tests and examples.
[[nodiscard]] Agent scripted_agent(std::string id, std::vector<Reply> replies, std::string role = {});
[[nodiscard]] Agent scripted_agent(std::string id, ScriptedProvider::Function function, std::string role = {});

}  // namespace agentbus::orchestration
