// session.hpp — which process is "the agent" that a CLI call acts for.
//
// Claims, presence entries and leases end when their session process exits, so the session
// must be a process that lives as long as the agent, not the wrapper or throwaway shell that
// happens to be the CLI's parent. The rule (README "Sessions", docs/coordination.md):
//
//   Start at the CLI's parent and walk up while the process is transient:
//    * a wrapper, by its command name (/proc/PID/comm): one of kWrapperPrograms;
//    * a non-interactive shell running a command string (`sh -c`, `bash -lc`, ...: a shell
//      whose options include -c and not -i);
//    * a subshell: a shell whose parent is a shell with the same executable and the same
//      command line (what `$(...)`, `( ... ) &` and pipelines fork).
//   Stop at the first process that is none of these (an interactive shell, an interpreter
//   running a script, Claude Code's node process, a Python agent, ...), at pid 1 (never
//   walked past), or before a process whose /proc entry cannot be read (the last readable one
//   is the session). At most kMaxSessionDepth steps.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::cli {

// Programs that run a command and wait for it. Most exec-style ones (env, nice, nohup, ...)
// replace themselves with the command and never show up as a parent, but some builds fork
// (sudo, time, timeout, flock, xargs, watch always do), so all are listed. `watch` reruns a
// command for someone else: the agent is whoever started it.
inline constexpr std::array<std::string_view, 19> kWrapperPrograms = {
    "timeout", "xargs", "env",  "nice",    "ionice", "time",  "sudo",   "doas",   "nohup",   "stdbuf",
    "setsid",  "chrt",  "taskset", "flock", "watch", "strace", "ltrace", "unbuffer", "parallel"};

// Shells whose `-c` children and subshells are transient.
inline constexpr std::array<std::string_view, 7> kShellPrograms = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash"};

inline constexpr int kMaxSessionDepth = 64;

// What the rule needs to know about one process, as read from /proc/PID/{stat,comm,cmdline,exe}.
struct ProcessFacts {
  int pid = 0;
  int ppid = 0;
  std::string comm;               // the kernel's command name (at most 15 bytes)
  std::vector<std::string> argv;  // /proc/PID/cmdline split at NULs
  std::string exe;                // readlink of /proc/PID/exe; empty when not readable
};

// Facts about a live process, or nullopt when its /proc entry cannot be read.
[[nodiscard]] std::optional<ProcessFacts> read_process_facts(int pid);

// A shell started with -c and without -i: it exists only to run its command string.
[[nodiscard]] bool is_command_shell(const ProcessFacts& p);
// `p` is transient given its parent (nullopt: the parent cannot be read).
[[nodiscard]] bool is_transient(const ProcessFacts& p, const std::optional<ProcessFacts>& parent);

struct Session {
  int pid = 0;
  std::string program;  // its comm, e.g. "claude" or "bash"; empty when not readable
};

// Applies the rule above from `start` (normally getppid()).
[[nodiscard]] Session resolve_session(int start);

// The command name of a live process, for display; empty when it is gone or unreadable.
[[nodiscard]] std::string process_program(int pid);

// "4242 claude", or just "4242" when the program is unknown.
[[nodiscard]] std::string session_text(int pid);

// `text` quoted for a POSIX shell: 'it'\''s'.
[[nodiscard]] std::string shell_quote(std::string_view text);

// The lines that make later commands of a shell act as `agent` in session `pid`:
// "export AGENTBUS_AGENT='fixer-1a2b3c4d'\nexport AGENTBUS_SESSION_PID=4242\n" (no AGENTBUS_AGENT
// line when `agent` is empty). For `eval "$(agentbus join x --export)"` and $CLAUDE_ENV_FILE.
[[nodiscard]] std::string session_exports(std::string_view agent, int pid);

}  // namespace agentbus::cli
