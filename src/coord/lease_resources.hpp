// Lease resources (internal): the parts of the resource grammar (agentbus/leases.hpp,
// "Resources") that the lease table needs beyond validate_lease_resource and
// lease_resources_conflict: a lease's canonical set, and the one-per-line form its entry stores.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::coord::leases {

// `resources` validated, sorted and de-duplicated. Throws Error{invalid_argument} for an empty
// set, Error{bad_name} for a malformed resource, Error{too_large} for too many.
std::vector<std::string> canonical_resources(const std::vector<std::string>& resources);
// A canonical set one per line, as an entry holds it; Error{too_large} when it does not fit.
std::string resource_lines(const std::vector<std::string>& canonical);
std::vector<std::string> split_lines(std::string_view blob);

// The first of our resources that conflicts with one of theirs, and that one of theirs.
struct ResourceConflict {
  const std::string* ours;
  const std::string* theirs;
};
std::optional<ResourceConflict> first_conflict(const std::vector<std::string>& ours,
                                               const std::vector<std::string>& theirs);

}  // namespace agentbus::coord::leases
