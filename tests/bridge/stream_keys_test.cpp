// The Redis keys of a room: agentroom's for repo/branch, ours otherwise.
#include "bridge/stream_keys.hpp"

#include <agentbus/error.hpp>

#include <gtest/gtest.h>

namespace agentbus::bridge {
namespace {

TEST(StreamKeys, RepoBranchRoomIsAgentroomsStream) {
  EXPECT_EQ(stream_key("agentbus/main"), "repo:agentbus:main:events");
  EXPECT_EQ(stream_key("agentbus/feature/x-1"), "repo:agentbus:feature/x-1:events");  // first '/' splits
}

TEST(StreamKeys, PlainRoomIsOurs) { EXPECT_EQ(stream_key("general"), "agentbus:room:general:events"); }

TEST(StreamKeys, CheckpointSitsBesideTheStream) {
  EXPECT_EQ(checkpoint_key("agentbus/feature/x", "host-a"), "repo:agentbus:feature/x:bridge:host-a:out");
  EXPECT_EQ(checkpoint_key("general", "b.local"), "agentbus:room:general:bridge:b.local:out");
  EXPECT_EQ(checkpoint_key("general", "hostA:main"), "agentbus:room:general:bridge:hostA:main:out");
}

TEST(StreamKeys, BadRoomOrHostIsRefused) {
  EXPECT_THROW((void)stream_key(""), Error);
  EXPECT_THROW((void)stream_key("a//b"), Error);
  EXPECT_THROW((void)stream_key("a:b"), Error);
  EXPECT_THROW((void)checkpoint_key("general", ""), Error);
  EXPECT_THROW((void)checkpoint_key("general", "a/b"), Error);
  EXPECT_THROW((void)checkpoint_key("general", std::string(65, 'h')), Error);
  try {
    (void)checkpoint_key("general", "a b");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::bad_name);
    EXPECT_NE(std::string(e.what()).find("contains ' '"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace agentbus::bridge
