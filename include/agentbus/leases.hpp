// agentbus/leases.hpp — resource leases (agentroom's `lease`): an agent takes a set of
// `kind:name` resources, all of them or none, for a while, so that other agents keep off.
//
// Resources:
//  * `kind:name`; kind is [a-z0-9_-]+ (e.g. path, file, branch, db); name is 1..512 bytes of
//    printable text without whitespace. A set is sorted and de-duplicated (its canonical form).
//  * `path:` names are clean paths: relative to the repository root (`path:src/a.cpp`), or
//    absolute for a place outside it (`path:/etc/hosts`); no empty segment (no "//", no
//    trailing '/'), no "." or ".." segment, no glob characters (* ? [ ]). Anything else is
//    Error{bad_name}. Two paths conflict when they are equal or one is an ancestor of the
//    other (`path:src` vs `path:src/lexer.cpp`; not `path:src` vs `path:srcx`); a relative and
//    an absolute path never do. resolve_lease_resource (agentbus/lease_paths.hpp) makes this
//    form from a path as typed in any directory of the repository.
//  * Other kinds conflict only when equal.
//
// Guarantees:
//  * acquire() takes all of the set or none of it, atomically with respect to every thread and
//    process on the bus: of two acquirers of conflicting sets, at most one succeeds, and when
//    they race, one of them does (no livelock); nobody ever waits on a lock (a conflict fails
//    fast; see src/coord/lease_acquire.cpp for the protocol and its argument).
//  * A lease lasts until it is released, its ttl lapses, or its session process dies (pid and
//    start time): then its resources are free at once.
//  * Every lease has a fencing token that rises with every acquisition in the room; the lease id
//    is that token.
//  * acquire, renew and release publish LEASE_ACQUIRED / LEASE_RENEWED / LEASE_RELEASED into
//    the room (agent = owner, payload = JSON {"lease","resources","purpose","ttl_ms"}).
//  * No lock anywhere: a process killed inside any call blocks no one; its half-done change is
//    rolled back by the next caller that meets it once that process is confirmed dead.
//
// Thread safety: a Leases object may be shared by threads; all calls are safe concurrently.
#pragma once

#include <agentbus/counter.hpp>
#include <agentbus/room.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus {

inline constexpr std::chrono::milliseconds kDefaultLeaseTtl = std::chrono::minutes(10);
inline constexpr std::chrono::milliseconds kMaxLeaseTtl = std::chrono::hours(24);
inline constexpr std::size_t kMaxLeaseResources = 32;       // resources in one lease
inline constexpr std::size_t kMaxLeaseResourceBytes = 512;  // one `kind:name`
inline constexpr std::size_t kMaxLeaseResourcesBytes = 2048;  // a lease's resources, one per line
inline constexpr std::size_t kMaxLeaseOwnerBytes = 128;
inline constexpr std::size_t kMaxLeasePurposeBytes = 256;

struct LeasesOptions {
  std::uint32_t capacity = 256;  // leases held at once (1..65536)
  bool create = true;            // false: Error{not_found} if the room has no lease table
};

struct LeaseOptions {
  std::chrono::milliseconds ttl{kDefaultLeaseTtl};  // 1 ms .. 24 h
  int session_pid = 0;  // process whose death releases the lease; 0: the calling process
};

struct LeaseInfo {
  std::uint64_t id = 0;                // also the fencing token
  std::string owner;
  std::vector<std::string> resources;  // canonical: sorted, de-duplicated
  std::string purpose;
  int session_pid = 0;
  std::chrono::milliseconds ttl{0};         // as last acquired or renewed
  std::chrono::milliseconds expires_in{0};  // time left (rounded up; 0 = lapsed)
  std::int64_t expires_at_ns = 0;           // wall clock (CLOCK_REALTIME) of the expiry
  std::int64_t acquired_ts_ns = 0;          // wall clock of the acquisition
};

// A lease that conflicts with a resource: which of its resources, and the lease.
struct LeaseHolder {
  std::string resource;  // the holder's resource that conflicts (equal, ancestor or descendant)
  LeaseInfo lease;
};

// A lost race is a result, not an exception (as TaskBoard::claim's ClaimStatus): acquire()
// returns held when another live lease holds a conflicting resource.
enum class LeaseStatus {
  acquired,  // ours: `lease`
  held,      // refused: `holder` has a conflicting resource (its lease may still be in the making)
};

struct LeaseAcquisition {
  LeaseStatus status = LeaseStatus::acquired;
  LeaseInfo lease;      // when acquired
  std::string resource;  // when held: our resource that conflicts
  LeaseHolder holder;    // when held: their conflicting resource and their lease
  std::string reason;    // when held: one sentence naming the resource, the holder and its expiry
  [[nodiscard]] bool ok() const noexcept { return status == LeaseStatus::acquired; }
};

enum class RenewStatus {
  renewed,  // `lease` runs `ttl` from now
  lapsed,   // its ttl ran out or its session died before the renewal took effect
  gone,     // released, or lapsed and its entry reused
};

struct LeaseRenewal {
  RenewStatus status = RenewStatus::renewed;
  LeaseInfo lease;     // when renewed
  std::string reason;  // otherwise: one sentence saying what happened to the lease
  [[nodiscard]] bool ok() const noexcept { return status == RenewStatus::renewed; }
};

struct LeasesCounters {
  std::uint64_t acquired = 0;
  std::uint64_t conflicts = 0;                // acquisitions refused
  std::uint64_t expired_reclaimed = 0;        // entries of lapsed leases reused
  std::uint64_t dead_sessions_reclaimed = 0;  // entries of dead sessions' leases reused
  std::uint64_t transitions_rolled_back = 0;  // half-done calls of dead processes undone
};
[[nodiscard]] std::vector<Counter> counter_list(const LeasesCounters& c);

// `text` as a canonical resource; throws Error{bad_name} naming the rule it breaks.
void validate_lease_resource(std::string_view resource);
// True when the two (valid) resources conflict.
[[nodiscard]] bool lease_resources_conflict(std::string_view a, std::string_view b);

class Leases {
 public:
  // The lease table of `room`, created on first use with `options` (later openers get the
  // capacity the creator chose). Error{corrupt} / Error{incompatible} for a bad table.
  explicit Leases(Room room, const LeasesOptions& options = {});
  ~Leases();
  Leases(Leases&&) noexcept;
  Leases& operator=(Leases&&) noexcept;

  // Takes all of `resources` for `owner`, or none: LeaseStatus::held (not an exception) when
  // another live lease holds a conflicting resource. Throws Error{bad_name} for a malformed
  // resource; Error{invalid_argument} for an empty set, owner or a bad ttl; Error{too_large}
  // for too many or too long resources; Error{no_space} when the table is full.
  [[nodiscard]] LeaseAcquisition acquire(std::string_view owner, const std::vector<std::string>& resources,
                                  std::string_view purpose = {}, const LeaseOptions& options = {});
  // Extends lease `id` to `ttl` from now; RenewStatus::lapsed when it lapsed (or its session
  // died), RenewStatus::gone when there is no such lease (released, or its entry reused).
  // Throws Error{conflict} naming the real owner when `owner` does not hold it.
  [[nodiscard]] LeaseRenewal renew(std::uint64_t id, std::string_view owner, std::chrono::milliseconds ttl = kDefaultLeaseTtl);
  // Ends lease `id`. Error{conflict} naming the real owner when `owner` does not hold it.
  // Returns false (not an error, as in agentroom) when the lease is already gone or lapsed.
  bool release(std::uint64_t id, std::string_view owner);

  // Live leases (ttl running, session alive), oldest first.
  [[nodiscard]] std::vector<LeaseInfo> list() const;
  // The live lease with id `id`, if any.
  [[nodiscard]] std::optional<LeaseInfo> find(std::uint64_t id) const;
  // Live leases with a resource conflicting with `resource` (which is validated), oldest first.
  [[nodiscard]] std::vector<LeaseHolder> holders_of(std::string_view resource) const;
  // The oldest of those, if any.
  [[nodiscard]] std::optional<LeaseHolder> holder_of(std::string_view resource) const;
  [[nodiscard]] std::uint32_t capacity() const noexcept;
  [[nodiscard]] LeasesCounters counters() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentbus
