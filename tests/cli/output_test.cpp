// output_test.cpp — the CLI's pure rendering functions: terminal sanitiser, JSON encoding,
// timestamps and event/info layout. No bus involved.
#include "output.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace {

using agentbus::cli::Newlines;
using agentbus::cli::sanitize_for_terminal;

std::string clean(std::string_view s) { return sanitize_for_terminal(s, Newlines::to_space); }

TEST(cli_sanitize, strips_csi_sequences_whole) {
  EXPECT_EQ(clean("\x1b[31mred\x1b[0m plain"), "red plain");
  EXPECT_EQ(clean("a\x1b[2J\x1b[1;1Hb"), "ab");
  EXPECT_EQ(clean("x\x1b[?25ly"), "x" "y");  // private-mode parameters
}

TEST(cli_sanitize, strips_osc_with_bel_or_st_terminator) {
  EXPECT_EQ(clean("\x1b]0;pwned title\x07" "after"), "after");
  EXPECT_EQ(clean("\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\"), "link");
}

TEST(cli_sanitize, unterminated_string_sequence_swallows_the_rest) {
  EXPECT_EQ(clean("ok\x1b]0;never ends"), "ok");
  EXPECT_EQ(clean("ok\x1bPdcs body"), "ok");
}

TEST(cli_sanitize, strips_short_escape_forms_and_lone_esc) {
  EXPECT_EQ(clean("a\x1b" "cb"), "ab");      // ESC c: full terminal reset
  EXPECT_EQ(clean("a\x1b(Bb"), "ab");        // nF: designate character set
  EXPECT_EQ(clean("end\x1b"), "end");
  EXPECT_EQ(clean("a\x1b\x01z"), "az");
}

TEST(cli_sanitize, strips_control_characters) {
  EXPECT_EQ(clean("over\rwrite"), "overwrite");
  EXPECT_EQ(clean(std::string("nul\0byte", 8)), "nulbyte");
  EXPECT_EQ(clean("bell\x07 bs\x08 del\x7f"), "bell bs del");
  EXPECT_EQ(clean("tab\there"), "tab here");
}

TEST(cli_sanitize, newlines_kept_or_flattened) {
  EXPECT_EQ(sanitize_for_terminal("a\nb", Newlines::keep), "a\nb");
  EXPECT_EQ(sanitize_for_terminal("a\nb", Newlines::to_space), "a b");
}

TEST(cli_sanitize, strips_c1_controls_and_8bit_csi) {
  EXPECT_EQ(clean("a\xc2\x85z"), "az");                   // U+0085 NEL
  EXPECT_EQ(clean("a\xc2\x9b" "31mred"), "ared");         // U+009B CSI with its parameters
  EXPECT_EQ(clean("a\xc2\x9d" "0;t\xc2\x9cz"), "az");     // U+009D OSC ... U+009C ST
}

TEST(cli_sanitize, invalid_utf8_becomes_replacement_character) {
  EXPECT_EQ(clean("a\xff" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(clean("\x9b" "31m"), "\xEF\xBF\xBD" "31m");  // raw 8-bit CSI byte is inert now
  // Overlong encoding of ESC: must not survive as something a terminal decodes to ESC.
  const std::string out = clean("\xc0\x9b[31m");
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_EQ(out.find("\xc0"), std::string::npos);
}

TEST(cli_sanitize, keeps_printable_unicode_and_drops_bidi_overrides) {
  EXPECT_EQ(clean("h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80"), "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80");
  EXPECT_EQ(clean("abc\xe2\x80\xae" "cba"), "abccba");  // U+202E RIGHT-TO-LEFT OVERRIDE
}

bool valid_json(const std::string& text) {
  simdjson::dom::parser parser;
  return !parser.parse(text).error();
}

TEST(cli_json, string_escapes_controls_and_invalid_utf8) {
  using agentbus::cli::json_string;
  EXPECT_EQ(json_string("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_string("\n\t\x01\x1b"), R"("\n\t\u0001\u001b")");
  EXPECT_EQ(json_string("\x7f\xc2\x9b"), R"("\u007f\u009b")");
  EXPECT_EQ(json_string("bad\xff"), "\"bad\xEF\xBF\xBD\"");  // raw U+FFFD: re-escaping is idempotent
  EXPECT_EQ(json_string("\xe2\x9c\x93"), "\"\xe2\x9c\x93\"");
  for (const char* s : {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x9c"})
    EXPECT_TRUE(valid_json(json_string(s))) << json_string(s);
}

TEST(cli_json, payload_is_the_value_when_valid_json_else_a_string) {
  using agentbus::cli::payload_json;
  EXPECT_EQ(payload_json("{ \"a\" : [1, 2],\n \"b\": null }"), R"({"a":[1,2],"b":null})");
  EXPECT_EQ(payload_json("42"), "42");
  EXPECT_EQ(payload_json("\"hi\""), "\"hi\"");
  EXPECT_EQ(payload_json("1.50e3"), "1.50e3");  // numbers are kept byte for byte
  EXPECT_EQ(payload_json("not json"), "\"not json\"");
  EXPECT_EQ(payload_json("{\"a\":1} trailing"), R"("{\"a\":1} trailing")");
  EXPECT_EQ(payload_json(""), "\"\"");
  EXPECT_EQ(payload_json("[\"\xff\"]"), "\"[\\\"\xEF\xBF\xBD\\\"]\"");  // invalid UTF-8 is not JSON
}

TEST(cli_time, iso8601_utc_has_nanoseconds_and_z) {
  using agentbus::cli::iso8601_utc;
  EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(iso8601_utc(1'795'428'930'123'456'789), "2026-11-23T10:15:30.123456789Z");
  EXPECT_EQ(iso8601_utc(-1), "1969-12-31T23:59:59.999999999Z");
}

TEST(cli_format, human_bytes) {
  using agentbus::cli::human_bytes;
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(1023), "1023 B");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(256ull << 20), "256.0 MiB");
}

TEST(cli_format, event_text_is_sanitised_and_indented) {
  agentbus::EventView e;
  e.id = 4096;
  e.ts_ns = 1'795'428'930'000'000'000;
  e.type = "status\x1b[31m";
  e.agent = "alice\r";
  e.to = "bob\x07";
  e.reply_to = 128;
  e.payload = "line one\n\x1b]0;x\x07line two\n";
  const std::string text = agentbus::cli::event_text(e);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(text.find('\x07'), std::string::npos);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  const std::string clock = agentbus::cli::clock_local(e.ts_ns);
  EXPECT_EQ(text, "4096       " + clock + " status           alice\n"
                  "  To: bob\n"
                  "  ReplyTo: 128\n"
                  "  line one\n"
                  "  line two\n");
}

TEST(cli_format, event_json_is_one_valid_line) {
  agentbus::EventView e;
  e.id = 7;
  e.ts_ns = 1'795'428'930'123'456'789;
  e.type = "t\"q";
  e.agent = "a\x1b";
  e.payload = "{\"k\": \"v\"}";
  const std::string json = agentbus::cli::event_json(e, "repo/main");
  ASSERT_EQ(json.back(), '\n');
  EXPECT_EQ(json.find('\n'), json.size() - 1);
  EXPECT_EQ(json, R"({"id":7,"ts":"2026-11-23T10:15:30.123456789Z","room":"repo/main","type":"t\"q",)"
                  R"("agent":"a\u001b","to":null,"reply_to":null,"origin":{"host":"","id":0},)"
                  R"("payload":{"k":"v"}})"
                  "\n");
}

TEST(cli_format, imported_event_shows_its_origin) {
  agentbus::EventView e;
  e.id = 9;
  e.ts_ns = 1'795'428'930'123'456'789;
  e.type = "t";
  e.agent = "alice";
  e.imported = true;
  e.origin = {"hostA:bus", 4096, {1700000000000, 3}};
  e.reply_to_origin = agentbus::OriginRef{"hostB", 64, {}};
  const std::string json = agentbus::cli::event_json(e, "r");
  EXPECT_NE(json.find(R"("origin":{"host":"hostA:bus","id":4096},"stream_id":"1700000000000-3",)"
                      R"("reply_to_origin":{"host":"hostB","id":64},)"),
            std::string::npos)
      << json;
  EXPECT_TRUE(valid_json(json));
  EXPECT_NE(agentbus::cli::event_text(e).find(" alice@hostA:bus\n"), std::string::npos);
  e.imported = false;
  EXPECT_EQ(agentbus::cli::event_json(e, "r").find("stream_id"), std::string::npos);
  EXPECT_NE(agentbus::cli::event_text(e).find(" alice\n"), std::string::npos);
}

TEST(cli_format, info_text_aligns_reader_columns) {
  agentbus::BusInfo info;
  info.name = "b";
  info.object_name = "agentbus.b";
  info.segment_bytes = 1 << 20;
  agentbus::RoomInfo room;
  room.name = "r/main";
  room.readers.push_back({"tailer", false, 12, true, 100, 5});
  room.readers.push_back({"bridge-long-name", true, 0, false, 9, 2048});
  info.rooms.push_back(room);
  const std::string text = agentbus::cli::info_text(info);
  EXPECT_NE(text.find("room r/main\n"), std::string::npos) << text;
  const std::size_t header = text.find("READER");
  const std::size_t row = text.find("bridge-long-name");
  ASSERT_NE(header, std::string::npos);
  ASSERT_NE(row, std::string::npos);
  // "KIND" and "durable" start in the same column.
  const std::size_t header_line = text.rfind('\n', header) + 1;
  const std::size_t row_line = text.rfind('\n', row) + 1;
  EXPECT_EQ(text.find("KIND", header) - header_line, text.find("durable", row) - row_line) << text;
  EXPECT_TRUE(valid_json(agentbus::cli::info_json(info)));
}

}  // namespace
