// The word-at-a-time scan of append_json_string must escape exactly what the byte rule does,
// wherever in an 8-byte word the byte that needs escaping falls.
#include <agentbus/json_text.hpp>

#include <gtest/gtest.h>

#include <string>

using agentbus::util::json_string;

namespace {

// What one byte becomes inside the literal, for the bytes this test places.
std::string escaped(char c) {
  switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\x01': return "\\u0001";
    case '\x1f': return "\\u001f";
    case '\x7f': return "\\u007f";
    default: return std::string(1, c);
  }
}

}  // namespace

TEST(JsonText, EverySpecialByteAtEveryOffsetOfTheWord) {
  for (char special : {'"', '\\', '\n', '\x01', '\x1f', '\x7f', ' ', '~'}) {
    for (std::size_t len = 1; len <= 24; ++len) {
      for (std::size_t at = 0; at < len; ++at) {
        std::string text(len, 'a');
        text[at] = special;
        const std::string expect = "\"" + std::string(at, 'a') + escaped(special) + std::string(len - at - 1, 'a') + "\"";
        ASSERT_EQ(json_string(text), expect) << "byte " << int(special) << " at " << at << " of " << len;
      }
    }
  }
}

TEST(JsonText, MultibyteUtf8InsideLongPlainRunsIsKeptAndInvalidIsReplaced) {
  const std::string plain(13, 'x');
  EXPECT_EQ(json_string(plain + "\xC3\xA9" + plain), "\"" + plain + "\xC3\xA9" + plain + "\"");  // é
  EXPECT_EQ(json_string(plain + "\xE2\x80\xA8" + plain), "\"" + plain + "\\u2028" + plain + "\"");
  EXPECT_EQ(json_string(plain + "\xFF" + plain), "\"" + plain + "\xEF\xBF\xBD" + plain + "\"");
}
