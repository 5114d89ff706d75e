// The provider protocol's JSON inside other JSON. A request or reply nested in an envelope
// (AGENT_REQUEST, AGENT_REPLY, STEP_REPLY) is decoded from the already parsed element, instead
// of being re-serialised with simdjson::minify and parsed a second time; and a request is
// encoded straight into its envelope's buffer.
#pragma once

#include <agentbus/orchestration/provider.hpp>

#include <simdjson.h>

#include <optional>
#include <string>

namespace agentbus::orchestration {

// As reply_from_json (protocol.hpp) and request_from_json (bus_agent.hpp), with the same
// messages ("not a JSON object" when `value` is not one).
[[nodiscard]] std::optional<Reply> reply_from_element(simdjson::dom::element value, std::string& why);
[[nodiscard]] std::optional<ProviderRequest> request_from_element(simdjson::dom::element value, std::string& why);

// Appends request_to_json(request) to `out`.
void append_request_json(std::string& out, const ProviderRequest& request);

}  // namespace agentbus::orchestration
