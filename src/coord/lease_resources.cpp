// The lease resource grammar: `kind:name`, clean `path:` names, and which resources conflict
// (agentbus/leases.hpp, "Resources"); a lease's canonical set (coord/lease_resources.hpp).
#include "coord/lease_resources.hpp"

#include <agentbus/error.hpp>
#include <agentbus/leases.hpp>

#include <algorithm>

namespace agentbus {

namespace {

std::string_view kind_of(std::string_view r) { return r.substr(0, r.find(':')); }
std::string_view name_of(std::string_view r) { return r.substr(r.find(':') + 1); }

}  // namespace

void validate_lease_resource(std::string_view r) {
  const std::string quoted = "resource '" + std::string(r.substr(0, 600)) + "'";
  if (r.empty()) throw Error(Errc::bad_name, "a resource is empty; the form is kind:name, e.g. path:src/main.cpp");
  if (r.size() > kMaxLeaseResourceBytes)
    throw Error(Errc::bad_name, quoted + " is longer than " + std::to_string(kMaxLeaseResourceBytes) + " bytes");
  const std::size_t colon = r.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == r.size())
    throw Error(Errc::bad_name, quoted + " is not of the form kind:name (e.g. path:src/main.cpp, branch:main)");
  for (const char c : r.substr(0, colon))
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      throw Error(Errc::bad_name, quoted + ": the kind may hold only a-z, 0-9, '_' and '-'");
  for (const char c : r)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      throw Error(Errc::bad_name, quoted + " holds whitespace or a control character");
  if (kind_of(r) != "path") return;
  // Relative paths are relative to the repository root; an absolute one is a place outside it
  // (agentbus/lease_paths.hpp makes both from what a user types).
  std::string_view path = name_of(r);
  if (path.front() == '/') path.remove_prefix(1);
  if (path.find_first_of("*?[]") != std::string_view::npos)
    throw Error(Errc::bad_name, quoted + " holds a glob character; lease the directory instead");
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = path.find('/', start);
    const std::string_view seg = path.substr(start, slash == std::string_view::npos ? path.npos : slash - start);
    if (seg.empty())
      throw Error(Errc::bad_name, quoted + " has an empty path segment (\"//\" or a trailing '/')");
    if (seg == "." || seg == "..")
      throw Error(Errc::bad_name, quoted + " has a '" + std::string(seg) + "' segment; use a clean path");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
}

bool lease_resources_conflict(std::string_view a, std::string_view b) {
  if (a == b) return true;
  if (kind_of(a) != "path" || kind_of(b) != "path") return false;
  const std::string_view x = name_of(a), y = name_of(b);
  const std::string_view shorter = x.size() < y.size() ? x : y, longer = x.size() < y.size() ? y : x;
  return longer.size() > shorter.size() && longer.substr(0, shorter.size()) == shorter &&
         longer[shorter.size()] == '/';
}

namespace coord::leases {

std::vector<std::string> canonical_resources(const std::vector<std::string>& resources) {
  if (resources.empty()) throw Error(Errc::invalid_argument, "a lease needs at least one resource");
  for (const std::string& r : resources) validate_lease_resource(r);
  std::vector<std::string> canon = resources;
  std::sort(canon.begin(), canon.end());
  canon.erase(std::unique(canon.begin(), canon.end()), canon.end());
  if (canon.size() > kMaxLeaseResources)
    throw Error(Errc::too_large, "a lease holds at most " + std::to_string(kMaxLeaseResources) + " resources");
  return canon;
}

std::string resource_lines(const std::vector<std::string>& canonical) {
  std::string blob;
  for (const std::string& r : canonical) blob += (blob.empty() ? "" : "\n") + r;
  if (blob.size() > kMaxLeaseResourcesBytes)
    throw Error(Errc::too_large, "the resources of a lease take at most " + std::to_string(kMaxLeaseResourcesBytes) +
                                     " bytes");
  return blob;
}

std::vector<std::string> split_lines(std::string_view blob) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < blob.size()) {
    const std::size_t nl = std::min(blob.find('\n', start), blob.size());
    out.emplace_back(blob.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

std::optional<ResourceConflict> first_conflict(const std::vector<std::string>& ours,
                                               const std::vector<std::string>& theirs) {
  for (const std::string& a : ours)
    for (const std::string& b : theirs)
      if (lease_resources_conflict(a, b)) return ResourceConflict{&a, &b};
  return std::nullopt;
}

}  // namespace coord::leases
}  // namespace agentbus
