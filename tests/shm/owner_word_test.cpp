// The owner word's encoding: fields round-trip, stay inside their masks, and identify a
// process by pid and start time.
#include "shm/owner_word.hpp"
#include "shm/process.hpp"

#include <agentbus/error.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

using namespace agentbus;
using namespace agentbus::shm;

namespace {

enum class P : std::uint64_t { a = 0, b = 1, c = 5, top = 7 };
using W = OwnerWord<P>;
namespace ob = owner_bits;

constexpr std::uint32_t kMaxPid = (1u << 22) - 1;
constexpr std::uint64_t kMaxGeneration = (1u << 20) - 1;

// Checked by the compiler too: the packing is usable in constant expressions.
static_assert(W::phase(W::make(P::top, kMaxGeneration, {kMaxPid, ~0ull})) == P::top);
static_assert(W::generation(W::make(P::a, kMaxGeneration + 1)) == 0);
static_assert(W::make(P::a, 0) == 0, "free, generation 0, no holder is the zero word");

std::uint32_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return static_cast<std::uint32_t>(child);
}

}  // namespace

TEST(OwnerWord, FieldsRoundTripAtTheirLimits) {
  for (P p : {P::a, P::b, P::c, P::top})
    for (std::uint64_t gen : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{12345}, kMaxGeneration})
      for (std::uint32_t pid : {0u, 1u, 4194000u, kMaxPid}) {
        const ProcessId who{pid, 0x7ffffull};
        const std::uint64_t w = W::make(p, gen, who);
        EXPECT_EQ(W::phase(w), p);
        EXPECT_EQ(W::generation(w), gen);
        EXPECT_EQ(W::pid(w), pid);
        EXPECT_EQ(ob::start_bits(w), 0x7ffffu);
        EXPECT_TRUE(W::held_by(w, who));
      }
}

TEST(OwnerWord, FieldsDoNotBleedIntoEachOther) {
  // All ones in one field, zero elsewhere: exactly that field's bits are set.
  EXPECT_EQ(W::make(P::top, 0), 0x7ull << 61);
  EXPECT_EQ(W::make(P::a, kMaxGeneration), kMaxGeneration << 41);
  EXPECT_EQ(W::make(P::a, 0, {kMaxPid, 0}), std::uint64_t{kMaxPid} << 19);
  EXPECT_EQ(W::make(P::a, 0, {0, (1ull << 19) - 1}), (1ull << 19) - 1);
  // Overflowing values are cut to their field: a generation wraps to 0, a start time keeps
  // its low 19 bits, and neither touches its neighbour.
  const std::uint64_t w = W::make(P::b, kMaxGeneration + 3, {77, (0xabcdeull << 19) | 0x12345});
  EXPECT_EQ(W::phase(w), P::b);
  EXPECT_EQ(W::generation(w), 2u);
  EXPECT_EQ(W::pid(w), 77u);
  EXPECT_EQ(ob::start_bits(w), 0x12345u);
}

TEST(OwnerWord, APidThatDoesNotFitIsRefused) {
  EXPECT_NO_THROW((void)W::make(P::b, 0, {kMaxPid, 1}));
  try {
    (void)W::make(P::b, 0, {kMaxPid + 1, 1});
    ADD_FAILURE() << "a 23-bit pid was packed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
  }
  EXPECT_FALSE(W::held_by(W::make(P::b, 0, {1, 1}), {kMaxPid + 2, 1}));
}

TEST(OwnerWord, KeepHolderChangesPhaseAndGenerationOnly) {
  const ProcessId who{4242, 999};
  const std::uint64_t w = W::make(P::b, 7, who);
  const std::uint64_t moved = W::keep_holder(w, P::c, 8);
  EXPECT_EQ(W::phase(moved), P::c);
  EXPECT_EQ(W::generation(moved), 8u);
  EXPECT_TRUE(W::held_by(moved, who));
}

TEST(OwnerWord, MatchesAProcessByPidAndStartTime) {
  const ProcessId me = self_process();
  ASSERT_NE(me.start_time, 0u);
  const std::uint64_t mine = W::make(P::b, 1, me);
  EXPECT_TRUE(W::held_by(mine, me));
  EXPECT_FALSE(W::held_by(mine, {me.pid, me.start_time + 1}));  // the pid, reused later
  EXPECT_FALSE(W::held_by(mine, {me.pid + 1, me.start_time}));
  EXPECT_TRUE(W::holder_alive(mine));
  EXPECT_TRUE(W::holder_alive_cached(mine));
}

TEST(OwnerWord, ARecycledPidOrAnExitedProcessIsNotTheHolder) {
  const ProcessId me = self_process();
  // Our pid with another start time: a process that had our pid before us.
  const std::uint64_t earlier = W::make(P::b, 1, {me.pid, (me.start_time & ob::kStartMask) ^ 0x40});
  EXPECT_FALSE(W::holder_alive(earlier));
  EXPECT_FALSE(W::holder_alive_cached(earlier));
  const std::uint64_t gone = W::make(P::b, 1, {dead_pid(), 1234});
  EXPECT_FALSE(W::holder_alive(gone));
  EXPECT_FALSE(W::holder_alive(W::make(P::b, 1)));  // no holder recorded
  // No start time recorded: the pid alone decides.
  EXPECT_TRUE(W::holder_alive(W::make(P::b, 1, {me.pid, 0})));
}
