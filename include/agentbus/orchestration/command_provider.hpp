// agentbus/orchestration/command_provider.hpp — a provider that runs a program per call.
//
// Each call starts the command (`/bin/sh -c COMMAND`, in its own process group), writes one
// JSON request (protocol.hpp) to its stdin and closes it, and reads one JSON reply from its
// stdout. So any program in any language can be an agent: a Python script, an LLM CLI, `jq`.
//
// Guarantees:
//  * The call never outlives its timeout by more than the time to kill: past it, the whole
//    process group gets SIGKILL and the call FAILs (CallStatus::timeout) with the reason.
//  * stdout is bounded: a reply longer than max_stdout_bytes is refused and the child killed.
//  * stderr is drained (so a chatty child never blocks) and its last max_stderr_bytes are kept
//    in CallResult::stderr_text, whatever the outcome.
//  * A non-zero exit, a death by signal, or malformed JSON FAILs with a message naming the agent
//    and the command, e.g. "agent 'writer': command 'python3 w.py' exited with status 3".
// Thread safety: call() may run concurrently from several threads (one child each).
#pragma once

#include <agentbus/orchestration/provider.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstddef>
#include <string>
#include <vector>

namespace agentbus::orchestration {

struct CommandOptions {
  std::string command;                            // run as /bin/sh -c COMMAND
  std::size_t max_stdout_bytes = 1 << 20;         // a longer reply is refused
  std::size_t max_stderr_bytes = 8 << 10;         // the tail kept for the status entry
  std::vector<std::string> environment{};         // extra "NAME=value" entries
  std::string working_directory{};                // empty: inherit
};

class CommandProvider : public Provider {
 public:
  // Throws Error{invalid_argument} for an empty command.
  explicit CommandProvider(CommandOptions options);
  explicit CommandProvider(std::string command);

  CallResult call(const ProviderRequest& request, std::chrono::milliseconds timeout) override;
  [[nodiscard]] std::string describe() const override { return options_.command; }
  // Kills the process group of every call in flight (checked every 20 ms by each call, as is
  // ProviderRequest::cancel for one call).
  void cancel_calls() override { cancel_generation_.fetch_add(1); }

 private:
  CommandOptions options_;
  std::atomic<std::uint64_t> cancel_generation_{0};
};

}  // namespace agentbus::orchestration
