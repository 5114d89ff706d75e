// bridge/host_id.hpp — the grammar of a host id, the name a bridge gives its bus in Redis.
//
// A host id appears inside Redis keys (`…:bridge:<host>:out`) and in every entry it ships
// (`origin_host`), and a remote entry's host id is untrusted input: so it is short, and made of
// [A-Za-z0-9._:-] only (no space, nothing to escape). The grammar is the bus's own (the origin
// work of issue 11 adds validate_host_id to names.hpp); a ':' in it keeps keys unambiguous,
// since room names have none and the host sits between the fixed `:bridge:` and `:out`.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace agentbus::bridge {

inline constexpr std::size_t kMaxHostIdBytes = 64;

// What is wrong with `host`, or nothing when it is a valid host id.
[[nodiscard]] std::optional<std::string> host_id_problem(std::string_view host);

// Throws Error{Errc::bad_name} with host_id_problem()'s message.
void validate_host_id(std::string_view host);

}  // namespace agentbus::bridge
