// coord::Region: the one way a coordination primitive (task board, inbox, consumer group,
// presence, scratchpad, leases) opens its region of a room. Every region header starts with
// RegionPrefix; the opener creates the region with the prefix written, then checks the span,
// the magic and the version before the primitive looks at anything else. The primitive checks
// only what is its own (capacities, offsets) through require(), which raises the same error.
#pragma once

#include "shm/segment.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace agentbus {
class Error;
}

namespace agentbus::coord {

// The first 12 bytes of every coord region header.
struct RegionPrefix {
  std::uint64_t magic;
  std::uint32_t version;
};

struct RegionKind {
  std::string_view noun;    // in messages: "task board", "consumer group 'g'"
  std::string_view suffix;  // appended to the room name to name the region: "#tasks"
  std::uint64_t magic;
  std::uint32_t version;
  std::uint64_t header_bytes;  // sizeof the region's header; the span must hold at least this
};

// "<noun> of room 'R' on bus 'B' is corrupt (<what>); <destroy hint>", as Errc::corrupt. Also
// for damage found later, in an entry.
[[nodiscard]] Error corrupt_region(std::string_view bus, std::string_view room, std::string_view noun,
                                   std::string_view what);

class Region {
 public:
  // The region of `room` for `kind`. When absent: created with `create_bytes` zero bytes,
  // the prefix written and `initialise` run before any other process can see it, if `create`;
  // else Errc::not_found "room 'R' on bus 'B' has no <noun>". Throws Errc::corrupt for a span
  // smaller than the header or a bad magic, Errc::incompatible for another version.
  static Region open(shm::Segment& seg, std::string_view room, const RegionKind& kind,
                     std::uint64_t create_bytes, bool create,
                     const std::function<void(std::span<std::byte>)>& initialise);

  // As open(), but nullopt instead of not_found when the region is absent and !create.
  static std::optional<Region> find(shm::Segment& seg, std::string_view room, const RegionKind& kind,
                                    std::uint64_t create_bytes, bool create,
                                    const std::function<void(std::span<std::byte>)>& initialise);

  [[nodiscard]] std::span<std::byte> bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::size_t size() const noexcept { return bytes_.size(); }
  template <class Header>
  [[nodiscard]] Header* header() const noexcept {
    return reinterpret_cast<Header*>(bytes_.data());
  }

  // The primitive's own shape checks: throws the corrupt-region error naming `what` unless ok.
  void require(bool ok, std::string_view what) const;
  [[noreturn]] void corrupt(std::string_view what) const;

 private:
  Region(std::span<std::byte> bytes, std::string bus, std::string room, std::string noun)
      : bytes_(bytes), bus_(std::move(bus)), room_(std::move(room)), noun_(std::move(noun)) {}

  std::span<std::byte> bytes_;
  std::string bus_, room_, noun_;
};

}  // namespace agentbus::coord
