// util::valid_utf8(): the strict check presence (and anything else) uses instead of its own.
#include <agentbus/utf8.hpp>

#include <gtest/gtest.h>

#include <string_view>

namespace agentbus::util {
namespace {

using namespace std::string_view_literals;

TEST(Utf8, WellFormedTextIsValid) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("caf\xC3\xA9 \xE2\x86\x92 \xF0\x9F\x98\x80"));  // 2, 3 and 4 bytes
  EXPECT_TRUE(valid_utf8("\xF4\x8F\xBF\xBF"));                            // U+10FFFF
  EXPECT_TRUE(valid_utf8("nul\0inside"sv));
}

TEST(Utf8, StrictRejections) {
  EXPECT_FALSE(valid_utf8("\xC0\x9B"));          // overlong ESC
  EXPECT_FALSE(valid_utf8("\xE0\x80\xAF"));      // overlong '/'
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(valid_utf8("\x80"));              // lone continuation byte
  EXPECT_FALSE(valid_utf8("ok\xE2\x86"));        // truncated at the end
  EXPECT_FALSE(valid_utf8("\xE2\x86x"));         // continuation byte missing
  EXPECT_FALSE(valid_utf8("\xFF"));
}

}  // namespace
}  // namespace agentbus::util
