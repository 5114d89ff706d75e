// commands_leases.cpp — resource leases (agentbus/leases.hpp): lease acquire|renew|release|list,
// and guard, the fast pre-edit check for coding agents.
#include "common.hpp"
#include "output.hpp"
#include "session.hpp"

#include <agentbus/leases.hpp>

#include <filesystem>
#include <memory>

namespace agentbus::cli {
namespace {

struct LeaseArgs {
  std::vector<std::string> resources;
  std::string agent = "cli";
  std::string purpose;
  std::string ttl = "10m";
  std::uint64_t id = 0;
  bool json = false;
};

CLI::Validator lease_ttl_validator() { return duration_validator(std::chrono::milliseconds(1), kMaxLeaseTtl); }

std::string left_text(std::chrono::milliseconds d) {
  const std::int64_t s = (d.count() + 999) / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m";
}

std::string lease_json(const LeaseInfo& l) {
  std::string out = "{\"id\":" + std::to_string(l.id) + ",\"token\":" + std::to_string(l.id) +
                    ",\"owner\":" + json_string(l.owner) + ",\"resources\":[";
  for (std::size_t k = 0; k < l.resources.size(); ++k) out += (k ? "," : "") + json_string(l.resources[k]);
  return out + "],\"purpose\":" + json_string(l.purpose) + ",\"session_pid\":" + std::to_string(l.session_pid) +
         ",\"session_program\":" + json_string(process_program(l.session_pid)) + ",\"ttl_ms\":" + std::to_string(l.ttl.count()) + ",\"expires_in_ms\":" + std::to_string(l.expires_in.count()) +
         ",\"expires\":\"" + iso8601_utc(l.expires_at_ns) + "\"}\n";
}

std::string lease_line(const LeaseInfo& l) {
  std::string res;
  for (const std::string& r : l.resources) res += (res.empty() ? "" : " ") + sanitize_for_terminal(r);
  std::string line = std::to_string(l.id) + "  " + sanitize_for_terminal(l.owner) + "  " + res + "  (" +
                     left_text(l.expires_in) + " left, session " + session_text(l.session_pid) + ")";
  if (!l.purpose.empty()) line += "  " + sanitize_for_terminal(l.purpose);
  return line + "\n";
}

// The room's lease table when the bus, the room and the table all exist; nothing is created.
std::optional<Leases> existing_leases(const Globals& g) {
  std::optional<Room> room = open_existing_room(g);
  if (!room) return std::nullopt;
  try {
    return Leases(std::move(*room), LeasesOptions{.create = false});
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) return std::nullopt;
    throw;
  }
}

Leases leases_of(const Globals& g) { return Leases(open_room(g)); }

// Resources as typed in this directory, in the form the lease table compares (the rule is in
// agentbus/lease_paths.hpp): from any subdirectory of a repository, and with the absolute
// paths editors pass, `path:` names the same place.
std::vector<std::string> resolved(const std::vector<std::string>& resources) {
  const std::filesystem::path cwd = std::filesystem::current_path();
  std::vector<std::string> out;
  out.reserve(resources.size());
  for (const std::string& r : resources) out.push_back(resolve_lease_resource(r, cwd));  // bad_name: exit 2
  return out;
}

}  // namespace

void add_leases_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto a = std::make_shared<LeaseArgs>();
  const std::string group = "Leases";

  CLI::App* lease = app.add_subcommand("lease", "Resource leases: take files, paths, branches... for a while.");
  lease->group(group);
  lease->require_subcommand(1);
  lease->footer(
      "A resource is kind:name. path: names are resolved against the repository root (the\n"
      "nearest directory up from here with .git; else this directory): from src/ path:parser\n"
      "and path:$PWD/parser are both path:src/parser; a path outside the repository stays\n"
      "absolute. Paths conflict with their ancestors and descendants (path:src vs\n"
      "path:src/lexer.cpp); other kinds (file:, branch:, db:, ...) conflict only when equal.\n"
      "A lease ends when released, when its ttl lapses, or when its session process exits\n"
      "(--session-pid, default: the agent process above this command, past wrappers and\n"
      "`bash -c`/`$(...)` shells; `agentbus join --help` says more).\n\n"
      "Example:\n"
      "  id=$(agentbus lease acquire path:src/lexer.cpp branch:main --agent fixer --purpose 'fix #12')\n"
      "  agentbus lease renew \"$id\" --agent fixer --ttl 30m\n"
      "  agentbus lease release \"$id\" --agent fixer");

  auto with_agent = [&a](CLI::App* cmd) {
    cmd->add_option("--agent", a->agent, "Agent id (the lease's owner)")->envname("AGENTBUS_AGENT")->capture_default_str();
  };

  CLI::App* acquire = lease->add_subcommand("acquire", "Take all of the resources, or none; prints the lease id.");
  acquire->add_option("resource", a->resources, "kind:name, e.g. path:src/main.cpp branch:main")->required();
  with_agent(acquire);
  acquire->add_option("--purpose", a->purpose, "Why (shown to whoever is refused)");
  acquire->add_option("--ttl", a->ttl, "How long (at most 24h); renew to keep it longer")
      ->check(lease_ttl_validator())
      ->capture_default_str();
  acquire->add_flag("--json", a->json, "A JSON object instead of the bare id");
  acquire->footer(
      "The lease id is also its fencing token: it rises with every lease taken in the room.\n"
      "Exit 3 when another lease holds a conflicting resource; the line names the resource,\n"
      "its holder and when that lease expires. Exit 2 for a malformed resource (no kind, a\n"
      "glob character, or the repository root itself).\n\n"
      "Example:\n  agentbus lease acquire path:src path:docs/guide.md --agent refactorer --ttl 30m");
  commands.push_back({acquire, [&g, a] {
                        Leases leases = leases_of(g);
                        LeaseOptions o;
                        o.ttl = validated_ms(a->ttl);
                        o.session_pid = session_pid(g);
                        const LeaseAcquisition got = leases.acquire(a->agent, resolved(a->resources), a->purpose, o);
                        if (!got.ok()) throw Error(Errc::conflict, got.reason);  // exit 3
                        const LeaseInfo& l = got.lease;
                        write_out(a->json ? lease_json(l) : std::to_string(l.id) + "\n", true);
                        return 0;
                      }});

  CLI::App* renew = lease->add_subcommand("renew", "Extend a lease to --ttl from now.");
  renew->add_option("id", a->id, "Lease id")->required()->check(id_validator());
  with_agent(renew);
  renew->add_option("--ttl", a->ttl, "New length from now")->check(lease_ttl_validator())->capture_default_str();
  renew->add_flag("--json", a->json, "Print the lease as JSON");
  renew->footer("Exit 3 when the lease is someone else's, 4 when it lapsed or is gone.\n\n"
                "Example:\n  agentbus lease renew \"$id\" --agent fixer --ttl 30m");
  commands.push_back({renew, [&g, a] {
                        std::optional<Leases> leases = existing_leases(g);
                        if (!leases) throw Error(Errc::not_found, "no lease " + std::to_string(a->id) + " (no lease table)");
                        const LeaseRenewal r = leases->renew(a->id, a->agent, validated_ms(a->ttl));
                        if (r.status == RenewStatus::lapsed) throw Error(Errc::expired, r.reason);  // exit 4
                        if (r.status == RenewStatus::gone) throw Error(Errc::not_found, r.reason);  // exit 4
                        if (a->json) write_out(lease_json(r.lease), true);
                        return 0;
                      }});

  CLI::App* release = lease->add_subcommand("release", "End a lease.");
  release->add_option("id", a->id, "Lease id")->required()->check(id_validator());
  with_agent(release);
  release->footer("A lease that is already gone or lapsed is not an error (agentroom's rule).\n"
                  "Exit 3 when the lease is someone else's.\n\n"
                  "Example:\n  agentbus lease release \"$id\" --agent fixer");
  commands.push_back({release, [&g, a] {
                        std::optional<Leases> leases = existing_leases(g);
                        if (leases) (void)leases->release(a->id, a->agent);
                        return 0;
                      }});

  CLI::App* list = lease->add_subcommand("list", "Live leases, oldest first.");
  list->add_flag("--json", a->json, "One JSON object per line");
  list->footer("One line per lease: id, owner, resources, time left, purpose.\n\n"
               "Examples:\n  agentbus lease list\n  agentbus lease list --json | jq -r .owner");
  commands.push_back({list, [&g, a] {
                        std::optional<Leases> leases = existing_leases(g);
                        std::string out;
                        if (leases)
                          for (const LeaseInfo& l : leases->list()) out += a->json ? lease_json(l) : lease_line(l);
                        if (out.empty() && !a->json) out = "(no leases)\n";
                        write_out(out, true);
                        return 0;
                      }});

  CLI::App* guard = app.add_subcommand(
      "guard", "Exit 3 if someone other than --agent holds a lease on one of the resources, else 0.");
  guard->group(group);
  guard->add_option("resource", a->resources, "kind:name; path: names are resolved against the repository root")
      ->required();
  with_agent(guard);
  guard->footer(
      "A pre-edit hook for coding agents: fast, creates nothing, and exits 0 when there is no\n"
      "bus, room or lease table at all. Exit 3 prints one line on stderr naming the resource\n"
      "and its holder; exit 2 for a malformed resource. path: names are resolved as for\n"
      "`lease acquire`, so an editor's absolute path meets a lease taken at the repository root.\n\n"
      "Example:\n"
      "  agentbus guard path:src/lexer.cpp --agent fixer && $EDITOR src/lexer.cpp\n\n"
      "Claude Code PreToolUse hook (.claude/settings.json); Claude Code blocks the edit on exit 2\n"
      "and shows Claude the stderr line, so map 3 to 2:\n"
      "  {\"hooks\": {\"PreToolUse\": [{\"matcher\": \"Edit|MultiEdit|Write\", \"hooks\": [{\"type\": \"command\",\n"
      "    \"command\": \"FILE=$(jq -r .tool_input.file_path); agentbus guard \\\"path:$FILE\\\" --agent \\\"$AGENTBUS_AGENT\\\" || exit 2\"}]}]}}");
  commands.push_back({guard, [&g, a] {
                        const std::vector<std::string> resources = resolved(a->resources);
                        // A pre-edit hook must not block edits where nobody coordinates: no bus passes too.
                        std::optional<Leases> leases =
                            or_absent<std::optional<Leases>>([&] { return existing_leases(g); }, std::nullopt);
                        if (!leases) return 0;
                        for (const std::string& r : resources)
                          for (const LeaseHolder& h : leases->holders_of(r)) {
                            if (h.lease.owner == a->agent) continue;
                            throw Error(Errc::conflict,
                                        r + " is leased by " + h.lease.owner + " (lease " + std::to_string(h.lease.id) +
                                            (h.resource == r ? "" : " on " + h.resource) + ", expires in " +
                                            left_text(h.lease.expires_in) + ")" +
                                            (h.lease.purpose.empty() ? "" : ": " + h.lease.purpose));
                          }
                        return 0;
                      }});
}

}  // namespace agentbus::cli
