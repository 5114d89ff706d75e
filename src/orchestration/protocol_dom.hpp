// The provider protocol decoded from an already parsed element: a request or reply nested in
// an envelope (AGENT_REQUEST, AGENT_REPLY, STEP_REPLY) is read in place, instead of being
// re-serialised with simdjson::minify and parsed a second time.
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

}  // namespace agentbus::orchestration
