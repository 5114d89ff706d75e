#include <agentbus/error.hpp>
#include <agentbus/event.hpp>
#include <agentbus/names.hpp>

#include <optional>

namespace agentbus {
namespace {

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

std::string printable(char c) {
  if (c >= 0x20 && c < 0x7f) return std::string("'") + c + "'";
  static const char* hex = "0123456789abcdef";
  const auto u = static_cast<unsigned char>(c);
  return std::string("byte 0x") + hex[u >> 4] + hex[u & 15];
}

void validate(std::string_view what, std::string_view name, bool allow_slash) {
  const std::string quoted = std::string(what) + " name '" + std::string(name) + "'";
  const char* grammar = allow_slash
                            ? " (allowed: segments of [A-Za-z0-9._-] joined by '/', at most 128 bytes)"
                            : " (allowed: [A-Za-z0-9._-], at most 128 bytes)";
  if (name.empty()) throw Error(Errc::bad_name, std::string(what) + " name is empty" + grammar);
  if (name.size() > kMaxNameBytes)
    throw Error(Errc::bad_name, std::string(what) + " name is " + std::to_string(name.size()) +
                                    " bytes" + grammar);
  std::size_t seg_start = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '/') {
      if (i < name.size() && !allow_slash)
        throw Error(Errc::bad_name, quoted + " contains '/'" + grammar);
      std::string_view seg = name.substr(seg_start, i - seg_start);
      if (seg.empty()) throw Error(Errc::bad_name, quoted + " has an empty segment" + grammar);
      if (seg == "." || seg == "..")
        throw Error(Errc::bad_name, quoted + " has a '" + std::string(seg) + "' segment" + grammar);
      seg_start = i + 1;
    } else if (!name_char(name[i])) {
      throw Error(Errc::bad_name, quoted + " contains " + printable(name[i]) + grammar);
    }
  }
}

}  // namespace

void validate_room_name(std::string_view name) { validate("room", name, true); }
void validate_bus_name(std::string_view name) { validate("bus", name, false); }

std::optional<std::string> host_id_problem(std::string_view host) {
  constexpr const char* grammar = " (allowed: 1..64 bytes of [A-Za-z0-9._:-])";
  if (host.empty()) return std::string("host id is empty") + grammar;
  if (host.size() > kMaxHostIdBytes) return "host id is " + std::to_string(host.size()) + " bytes" + grammar;
  for (const char c : host)
    if (!name_char(c) && c != ':') return "host id contains " + printable(c) + grammar;  // not quoted: may be remote input
  return std::nullopt;
}

void validate_host_id(std::string_view host) {
  if (std::optional<std::string> problem = host_id_problem(host)) throw Error(Errc::bad_name, *problem);
}

std::string segment_object_name(std::string_view bus) { return "agentbus." + std::string(bus); }

}  // namespace agentbus
