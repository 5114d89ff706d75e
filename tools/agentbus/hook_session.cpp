// hook_session.cpp — see hook_session.hpp.
#include "hook_session.hpp"

#include "hook_guard.hpp"
#include "session.hpp"

#include <agentbus/process.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace agentbus::cli {

std::set<int> session_ancestors(int session) {
  std::set<int> pids{session};
  int pid = static_cast<int>(::getppid());
  for (int depth = 0; depth < 32 && pid > 1 && pids.insert(pid).second; ++depth) {
    const std::optional<ProcessStat> stat = read_process_stat(pid);
    if (!stat) break;
    pid = stat->ppid;
  }
  return pids;
}

void export_to_claude_env(const Globals& g, std::string_view agent) {
  const char* path = std::getenv("CLAUDE_ENV_FILE");
  if (path == nullptr || *path == '\0') return;
  try {
    std::string present;
    if (std::FILE* f = std::fopen(path, "re")) {
      char buf[4096];
      for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0 && present.size() < (1u << 20);)
        present.append(buf, n);
      std::fclose(f);
    }
    std::set<std::string_view> lines;
    for (std::size_t at = 0; at < present.size();) {
      const std::size_t end = std::min(present.find('\n', at), present.size());
      lines.insert(std::string_view(present).substr(at, end - at));
      at = end + 1;
    }
    const std::string wanted = session_exports(agent, session_pid(g));
    std::string missing;
    for (std::size_t at = 0; at < wanted.size();) {
      const std::size_t end = wanted.find('\n', at);
      const std::string_view line = std::string_view(wanted).substr(at, end - at);
      if (lines.count(line) == 0) (missing += line) += '\n';
      at = end + 1;
    }
    if (missing.empty()) return;
    if (!present.empty() && present.back() != '\n') missing.insert(0, "\n");
    std::FILE* f = std::fopen(path, "ae");
    if (f == nullptr) {
      hook_debug(std::string("cannot open $CLAUDE_ENV_FILE ") + path + ": " + std::strerror(errno));
      return;
    }
    const bool ok = std::fwrite(missing.data(), 1, missing.size(), f) == missing.size();
    if (std::fclose(f) != 0 || !ok) hook_debug(std::string("cannot write $CLAUDE_ENV_FILE ") + path);
  } catch (const std::exception& e) {
    hook_debug(std::string("no exports to $CLAUDE_ENV_FILE: ") + e.what());
  }
}

}  // namespace agentbus::cli
