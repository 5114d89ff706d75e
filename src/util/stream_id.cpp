#include <agentbus/event.hpp>

#include <charconv>

namespace agentbus {

std::string StreamId::to_string() const { return std::to_string(ms) + '-' + std::to_string(seq); }

std::optional<StreamId> StreamId::parse(std::string_view text) {
  // Each part must be consumed whole: from_chars stops at the first non-digit, and "1-2x"
  // must be refused rather than read as its prefix.
  const std::size_t dash = text.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == text.size()) return std::nullopt;
  StreamId id;
  auto whole = [](std::string_view part, std::uint64_t& out) {
    if (part.empty() || part.front() < '0' || part.front() > '9') return false;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), out);
    return ec == std::errc{} && end == part.data() + part.size();
  };
  if (!whole(text.substr(0, dash), id.ms) || !whole(text.substr(dash + 1), id.seq)) return std::nullopt;
  return id;
}

}  // namespace agentbus
