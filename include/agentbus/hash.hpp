// agentbus/hash.hpp — FNV-1a 64, the one string hash of agentbus: it places named entries (rooms,
// scratch keys, inbox recipients) in shared-memory tables, so it is part of the layout
// (changing it moves every entry and bumps kLayoutVersion), and the CLI names hook cursors by it.
#pragma once

#include <cstdint>
#include <string_view>

namespace agentbus {

inline constexpr std::uint64_t kFnvOffsetBasis = 14695981039346656037ull;
inline constexpr std::uint64_t kFnvPrime = 1099511628211ull;

[[nodiscard]] constexpr std::uint64_t fnv1a(std::string_view s) noexcept {
  std::uint64_t h = kFnvOffsetBasis;
  for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * kFnvPrime;
  return h;
}

// splitmix64's finaliser: spreads every input bit over the whole word. For values with
// little entropy in their low bits (positions, pids) that pick a bucket or name a session.
[[nodiscard]] constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The published test vectors: a wrong basis or prime fails to compile.
static_assert(fnv1a("") == 0xcbf29ce484222325ull);
static_assert(fnv1a("a") == 0xaf63dc4c8601ec8cull);

}  // namespace agentbus
