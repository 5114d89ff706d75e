// bridge/decimal.hpp — a decimal number read from untrusted text (a URL, a Redis entry).
#pragma once

#include <charconv>
#include <optional>
#include <string_view>

namespace agentbus::bridge {

// Digits only (no sign, no space, no "0x"), the whole text, fitting in T; else nothing.
template <class T>
[[nodiscard]] std::optional<T> parse_decimal(std::string_view text) noexcept {
  if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace agentbus::bridge
