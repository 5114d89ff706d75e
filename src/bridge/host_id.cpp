#include "bridge/host_id.hpp"

#include <agentbus/error.hpp>

namespace agentbus::bridge {

std::optional<std::string> host_id_problem(std::string_view host) {
  if (host.empty()) return "host id is empty";
  if (host.size() > kMaxHostIdBytes)
    return "host id is " + std::to_string(host.size()) + " bytes, max " + std::to_string(kMaxHostIdBytes);
  for (const char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-' || c == ':';
    if (!ok) {
      const auto byte = static_cast<unsigned char>(c);
      return "host id has byte 0x" + std::string{"0123456789abcdef"[byte >> 4], "0123456789abcdef"[byte & 15]} +
             "; allowed are [A-Za-z0-9._:-]";
    }
  }
  return std::nullopt;
}

void validate_host_id(std::string_view host) {
  if (auto problem = host_id_problem(host)) throw Error(Errc::bad_name, *problem);
}

}  // namespace agentbus::bridge
