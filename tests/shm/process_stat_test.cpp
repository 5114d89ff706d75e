// read_process_stat(): the one /proc/<pid>/stat parser, which the library's liveness checks
// and the CLI's session rule and hook share. A real child process with a hostile command name,
// killed with SIGKILL, shows each state the callers tell apart.
#include "shm/process.hpp"

#include <agentbus/process.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace agentbus {
namespace {

TEST(ProcessStat, DescribesThisProcess) {
  const std::optional<ProcessStat> self = read_process_stat(static_cast<int>(::getpid()));
  ASSERT_TRUE(self.has_value());
  EXPECT_EQ(self->comm, "shm_layer_tests");
  EXPECT_EQ(self->state, 'R');
  EXPECT_EQ(self->ppid, static_cast<int>(::getppid()));
  EXPECT_EQ(self->start_time, shm::self_process().start_time);
  EXPECT_TRUE(process_running(static_cast<int>(::getpid())));
}

TEST(ProcessStat, NoProcessIsNoStat) {
  EXPECT_FALSE(read_process_stat(0).has_value());
  EXPECT_FALSE(read_process_stat(-1).has_value());
  EXPECT_FALSE(process_running(0));
  EXPECT_FALSE(process_running(-1));
}

TEST(ProcessStat, CommandNameWithParenthesesAndSpacesThenZombieThenGone) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::prctl(PR_SET_NAME, "x) S 1 (y", 0, 0, 0);  // looks like the fields that follow comm
    (void)!::write(ready[1], "r", 1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  pollfd p{ready[0], POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10'000), 1) << "the child did not start";
  ::close(ready[0]);

  const std::optional<ProcessStat> alive = read_process_stat(child);
  ASSERT_TRUE(alive.has_value());
  EXPECT_EQ(alive->comm, "x) S 1 (y");
  EXPECT_EQ(alive->ppid, static_cast<int>(::getpid()));
  EXPECT_NE(alive->state, 'Z');
  EXPECT_EQ(alive->start_time, shm::process_start_time(static_cast<std::uint32_t>(child)));
  EXPECT_TRUE(process_running(child));

  ASSERT_EQ(::kill(child, SIGKILL), 0);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);  // a zombie now
  const std::optional<ProcessStat> zombie = read_process_stat(child);
  ASSERT_TRUE(zombie.has_value());
  EXPECT_EQ(zombie->state, 'Z');
  EXPECT_FALSE(process_running(child));

  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  EXPECT_FALSE(read_process_stat(child).has_value());
  EXPECT_FALSE(process_running(child));
}

}  // namespace
}  // namespace agentbus
