// session-parent: a long-lived process that is not a shell, the way an agent harness (Claude
// Code's node process, a Python agent) is. It runs each argument as one command (words split
// at tabs, run with execvp, stdin /dev/null, stdout and stderr shared with it), prints
// "exit <code>" after each, then "ready", and then waits to be killed.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

int run(const std::string& command) {
  std::vector<std::string> words;
  for (std::size_t at = 0; at <= command.size();) {
    const std::size_t end = std::min(command.find('\t', at), command.size());
    words.push_back(command.substr(at, end - at));
    at = end + 1;
  }
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, STDIN_FILENO);
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

int main(int argc, char** argv) {
  for (int k = 1; k < argc; ++k) {
    const int code = run(argv[k]);
    std::printf("exit %d\n", code);
    std::fflush(stdout);
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) ::pause();
}
