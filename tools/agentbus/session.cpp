#include "session.hpp"

#include "output.hpp"

#include <agentbus/process.hpp>

#include <algorithm>
#include <cstdio>
#include <fcntl.h>
#include <unistd.h>

namespace agentbus::cli {
namespace {

// The whole of a small /proc file; nullopt when it cannot be opened or read.
std::optional<std::string> read_proc_file(int pid, const char* name) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > (1u << 20)) break;  // a command line this long is not one we compare
  }
  ::close(fd);
  return text;
}

bool is_one_of(std::string_view name, const auto& names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool is_shell(const ProcessFacts& p) { return is_one_of(p.comm, kShellPrograms); }

bool same_program(const ProcessFacts& a, const ProcessFacts& b) {
  if (!a.exe.empty() && !b.exe.empty()) return a.exe == b.exe;
  return a.comm == b.comm;  // exe unreadable (another user's process): the name must do
}

}  // namespace

std::optional<ProcessFacts> read_process_facts(int pid) {
  if (pid <= 0) return std::nullopt;
  const std::optional<ProcessStat> stat = read_process_stat(pid);
  const std::optional<std::string> cmdline = read_proc_file(pid, "cmdline");
  if (!stat || !cmdline) return std::nullopt;
  if (stat->state == 'Z' || stat->state == 'X') return std::nullopt;  // exited: it cannot be a session
  ProcessFacts p;
  p.pid = pid;
  p.comm = stat->comm;
  p.ppid = stat->ppid;
  for (std::size_t at = 0; at < cmdline->size();) {
    const std::size_t end = std::min(cmdline->find('\0', at), cmdline->size());
    p.argv.push_back(cmdline->substr(at, end - at));
    at = end + 1;
  }
  char exe[4096];
  const std::string link = "/proc/" + std::to_string(pid) + "/exe";
  const ssize_t n = ::readlink(link.c_str(), exe, sizeof exe);
  if (n > 0 && static_cast<std::size_t>(n) < sizeof exe) p.exe.assign(exe, static_cast<std::size_t>(n));
  return p;
}

bool is_command_shell(const ProcessFacts& p) {
  if (!is_shell(p)) return false;
  bool command = false;
  bool interactive = false;
  // Options come before the first operand, and -c may be followed by more (`bash -c -l CMD`).
  for (std::size_t k = 1; k < p.argv.size(); ++k) {
    const std::string& arg = p.argv[k];
    if (arg.size() < 2 || (arg[0] != '-' && arg[0] != '+') || arg == "--") break;
    if (arg.rfind("--", 0) == 0) {
      if (arg == "--rcfile" || arg == "--init-file") ++k;  // bash's long options with a value
      continue;
    }
    for (std::size_t c = 1; c < arg.size(); ++c) {
      if (arg[c] == 'c') command = true;
      if (arg[c] == 'i') interactive = true;
      if (arg[c] == 'o' || arg[c] == 'O') {
        ++k;  // -o pipefail: the option name is the next argument
        break;
      }
    }
  }
  return command && !interactive;
}

bool is_transient(const ProcessFacts& p, const std::optional<ProcessFacts>& parent) {
  if (is_one_of(p.comm, kWrapperPrograms) || is_command_shell(p)) return true;
  // A subshell is a fork of its shell: same program, same command line.
  return parent && is_shell(p) && is_shell(*parent) && same_program(p, *parent) && p.argv == parent->argv;
}

Session resolve_session(int start) {
  std::optional<ProcessFacts> current = read_process_facts(start);
  if (!current) return {start, ""};
  for (int depth = 0; depth < kMaxSessionDepth && current->pid != 1; ++depth) {
    std::optional<ProcessFacts> parent = read_process_facts(current->ppid);
    if (!is_transient(*current, parent) || !parent) break;
    current = std::move(parent);
  }
  return {current->pid, current->comm};
}

std::string process_program(int pid) {
  const std::optional<ProcessFacts> p = pid > 0 ? read_process_facts(pid) : std::nullopt;
  return p ? p->comm : std::string();
}

std::string session_text(int pid) {
  const std::string program = process_program(pid);
  return std::to_string(pid) + (program.empty() ? "" : " " + sanitize_for_terminal(program));
}

std::string shell_quote(std::string_view text) {
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string session_exports(std::string_view agent, int pid) {
  std::string out;
  if (!agent.empty()) out += "export AGENTBUS_AGENT=" + shell_quote(agent) + "\n";
  return out + "export AGENTBUS_SESSION_PID=" + std::to_string(pid) + "\n";
}

}  // namespace agentbus::cli
