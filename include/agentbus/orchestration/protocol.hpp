// agentbus/orchestration/protocol.hpp — the provider protocol's JSON (docs/orchestration.md):
// one request object on a command's stdin, one reply object on its stdout.
//
// Reply parsing trusts nothing: it is simdjson-validated, every field is type-checked, and a
// reply of another protocol version is refused with a message saying which versions we speak.
// Pure functions, safe from any thread.
#pragma once

#include <agentbus/orchestration/provider.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace agentbus::orchestration {

// The request as one JSON object (no newline).
[[nodiscard]] std::string request_to_json(const ProviderRequest& request);

// A reply's JSON: {"version":1,"text":...,"tool_calls":[...],"usage":{...}}.
[[nodiscard]] std::string reply_to_json(const Reply& reply);

// Decodes a reply; nullopt with `why` ("not valid JSON: ...", "\"text\" must be a string", ...).
// "version" must be 1; "text" (string) is required; "tool_calls" (array of {name, arguments
// object}) and "usage" ({input_tokens, output_tokens}, non-negative integers) may be absent.
[[nodiscard]] std::optional<Reply> reply_from_json(std::string_view json, std::string& why);

}  // namespace agentbus::orchestration
