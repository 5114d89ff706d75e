// agentbus/lease_paths.hpp — where a `path:` lease resource points: paths as users and editors
// give them (relative to wherever the command runs, or absolute) turned into the canonical
// form leases compare, so `path:src/parser` taken at the repository root and
// `path:$PWD/x.cpp` checked from `src/parser` meet.
//
// The rule:
//  * The repository root is the nearest directory, from `cwd` upwards, that holds `.git`
//    (a directory, or the file a git worktree or submodule has). Outside any repository it is
//    `cwd` itself.
//  * A relative path is taken relative to `cwd`; `.`/`..` segments and repeated slashes are
//    normalised lexically (the file need not exist).
//  * A path inside the root becomes relative to the root (`src/parser/x.cpp`). One outside it
//    stays absolute (`/etc/hosts`), and only conflicts with other absolute paths. An absolute
//    path that is outside the root only lexically (through a symlink such as a logical $PWD)
//    is compared by its real location.
//  * The root itself is not a resource (lease its directories instead): Error{bad_name}.
//  * Other kinds (`branch:`, `file:`, ...) pass through unchanged.
//
// These functions read the file system (stat of `.git` entries, symlinks) and never write.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace agentbus {

// The repository root for a directory, by the rule above.
[[nodiscard]] std::filesystem::path repository_root(const std::filesystem::path& cwd);

// `resource` in canonical form for a command run in `cwd`; throws Error{bad_name} for a
// malformed resource (see validate_lease_resource in agentbus/leases.hpp).
[[nodiscard]] std::string resolve_lease_resource(std::string_view resource, const std::filesystem::path& cwd);

}  // namespace agentbus
