// Resolution of `path:` lease resources against the repository root (agentbus/lease_paths.hpp).
#include <agentbus/error.hpp>
#include <agentbus/lease_paths.hpp>
#include <agentbus/leases.hpp>

#include <optional>
#include <system_error>

namespace agentbus {
namespace fs = std::filesystem;

namespace {

// `path` relative to `root` when it lies inside it (lexically); empty otherwise.
std::optional<fs::path> inside(const fs::path& path, const fs::path& root) {
  const fs::path rel = path.lexically_relative(root);
  if (rel.empty() || *rel.begin() == "..") return std::nullopt;
  return rel;
}

// lexically_normal keeps a trailing separator ("a/b/" -> "a/b/"); leases name no such thing.
std::string without_trailing_slash(std::string text) {
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return text;
}

}  // namespace

fs::path repository_root(const fs::path& cwd) {
  const fs::path start = cwd.lexically_normal();
  for (fs::path dir = start;; dir = dir.parent_path()) {
    std::error_code ec;
    if (fs::exists(dir / ".git", ec)) return dir;  // a directory, or a worktree's file
    if (dir == dir.parent_path() || dir.empty()) return start;
  }
}

std::string resolve_lease_resource(std::string_view resource, const fs::path& cwd) {
  constexpr std::string_view kPath = "path:";
  if (resource.substr(0, kPath.size()) != kPath || resource.size() == kPath.size()) {
    validate_lease_resource(resource);
    return std::string(resource);
  }
  const std::string given(resource.substr(kPath.size()));
  const fs::path root = repository_root(cwd);
  const fs::path absolute = (fs::path(given).is_absolute() ? fs::path(given) : cwd / given).lexically_normal();

  std::optional<fs::path> rel = inside(absolute, root);
  if (!rel) {
    // A logical path through a symlink ($PWD under a linked home, say) may still be inside.
    std::error_code ec;
    const fs::path real = fs::weakly_canonical(absolute, ec);
    if (!ec) rel = inside(real, root);
  }
  std::string name = without_trailing_slash(rel ? rel->string() : absolute.string());
  if (name == ".")
    throw Error(Errc::bad_name, "resource 'path:" + given.substr(0, 600) +
                                    "' is the repository root itself; lease the directories or files in it");
  std::string canonical = "path:" + name;
  validate_lease_resource(canonical);
  return canonical;
}

}  // namespace agentbus
