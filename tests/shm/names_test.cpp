#include <agentbus/error.hpp>
#include <agentbus/names.hpp>

#include <gtest/gtest.h>

using namespace agentbus;

namespace {

std::string room_error(std::string_view name) {
  try {
    validate_room_name(name);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::bad_name);
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Names, AcceptsTheGrammar) {
  EXPECT_NO_THROW(validate_room_name("lobby"));
  EXPECT_NO_THROW(validate_room_name("agentbus/main"));
  EXPECT_NO_THROW(validate_room_name("a.b_c-d/e.f/G9"));
  EXPECT_NO_THROW(validate_room_name(std::string(128, 'x')));
  EXPECT_NO_THROW(validate_bus_name("default"));
}

TEST(Names, RefusesWithAReason) {
  EXPECT_NE(room_error("").find("empty"), std::string::npos);
  EXPECT_NE(room_error(std::string(129, 'x')).find("129 bytes"), std::string::npos);
  EXPECT_NE(room_error("a b").find("' '"), std::string::npos);
  EXPECT_NE(room_error("a//b").find("empty segment"), std::string::npos);
  EXPECT_NE(room_error("/a").find("empty segment"), std::string::npos);
  EXPECT_NE(room_error("a/").find("empty segment"), std::string::npos);
  EXPECT_NE(room_error("a/../b").find("'..'"), std::string::npos);
  EXPECT_NE(room_error("a\x1b[31m").find("0x1b"), std::string::npos);
  EXPECT_THROW(validate_bus_name("a/b"), Error);
  EXPECT_THROW(validate_bus_name(".."), Error);
  EXPECT_EQ(segment_object_name("x"), "agentbus.x");
}
