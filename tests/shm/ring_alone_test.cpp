// The ring on its own, in process-local memory: this binary links only the util and shm layers
// (tests/CMakeLists.txt), so it also proves those layers need nothing from above.
#include "shm/layout.hpp"
#include "shm/ring.hpp"

#include <agentbus/error.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace agentbus::shm {
namespace {

constexpr std::uint64_t kCapacity = 64 * 1024;

// Zeroed, as a fresh segment is, then initialised as Bus does for a new room.
struct RingMemory {
  RingMemory() { Ring::initialise(control, kCapacity); }
  RingControl control{};
  alignas(kCacheLine) std::byte data[kCapacity]{};
};

struct LocalRing {
  std::unique_ptr<RingMemory> memory = std::make_unique<RingMemory>();
  Ring ring{&memory->control, memory->data, kCapacity, kCapacity / 4, {}};
};

TEST(RingAlone, PublishedRecordDecodesToItsFields) {
  LocalRing r;
  const PublishResult first = r.ring.publish({"note", "alice", "bob", std::nullopt, "hello"});
  ASSERT_TRUE(first.ok());
  const PublishResult second = r.ring.publish({"reply", "bob", "", first.id, "hi"});
  ASSERT_TRUE(second.ok());
  EXPECT_GT(second.id, first.id);
  EXPECT_EQ(r.ring.tail(), second.id + r.ring.record_bytes({"reply", "bob", "", first.id, "hi"}));

  const PeekResult p = r.ring.peek(second.id);
  ASSERT_EQ(p.kind, Peek::committed);
  EventView v;
  ASSERT_TRUE(r.ring.decode(r.ring.at(second.id), p.len, second.id, v));
  EXPECT_EQ(v.type, "reply");
  EXPECT_EQ(v.agent, "bob");
  EXPECT_EQ(v.to, "");
  EXPECT_EQ(v.reply_to, first.id);
  EXPECT_EQ(v.payload, "hi");
  EXPECT_EQ(r.ring.check_control(), "");
}

TEST(RingAlone, RecordPastMaxRecordIsRefused) {
  LocalRing r;
  const std::string payload(kCapacity / 4, 'x');
  EXPECT_THROW((void)r.ring.record_bytes({"big", "alice", "", std::nullopt, payload}), Error);
  EXPECT_EQ(r.ring.peek(r.ring.tail()).kind, Peek::empty);
}

}  // namespace
}  // namespace agentbus::shm
