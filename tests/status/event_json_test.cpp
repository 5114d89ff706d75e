// Event lines (agentbus/event_json.hpp): what tail --json prints and the archiver writes, read
// back by import as untrusted input.
#include <agentbus/event_json.hpp>

#include <gtest/gtest.h>

namespace {

using namespace agentbus;
using Kind = ParsedEventLine::Kind;

Event archived(std::string payload) {
  Event e;
  e.id = 4096;
  e.ts_ns = 1'795'428'930'123'456'789;
  e.type = "chat";
  e.agent = "alice";
  e.to = "bob";
  e.payload = std::move(payload);
  e.origin = {"host-a", 4096, {1795428930123, 7}};
  e.imported = true;
  e.reply_to_origin = Origin{"host-b", 512, {}};
  return e;
}

TEST(status_event_json, ExactPayloadsReadBackByteForByte) {
  for (const std::string& payload : {std::string("plain text"), std::string("{\"a\":[1,2]}"),
                                    std::string("{ \"a\" : 1 }"), std::string("\"quoted\""), std::string(""),
                                    std::string("42"), std::string("line\nbreak\ttab")}) {
    const std::string line = event_json(archived(payload).view(), "r", PayloadForm::exact);
    const ParsedEventLine p = parse_event_line(line);
    ASSERT_EQ(p.kind, Kind::event) << line << p.why;
    EXPECT_EQ(p.event.payload, payload) << line;
  }
}

TEST(status_event_json, AnArchivedLineKeepsEveryFieldAnImportNeeds) {
  const ParsedEventLine p = parse_event_line(event_json(archived("{\"x\":1}").view(), "api/main", PayloadForm::exact));
  ASSERT_EQ(p.kind, Kind::event) << p.why;
  EXPECT_EQ(p.event.room, "api/main");
  EXPECT_EQ(p.event.type, "chat");
  EXPECT_EQ(p.event.agent, "alice");
  EXPECT_EQ(p.event.to, "bob");
  EXPECT_EQ(p.event.origin.host, "host-a");
  EXPECT_EQ(p.event.origin.id, 4096u);
  EXPECT_EQ(p.event.origin.stream, (StreamId{1795428930123, 7}));
  ASSERT_TRUE(p.event.reply_to_origin.has_value());
  EXPECT_EQ(p.event.reply_to_origin->host, "host-b");
  EXPECT_EQ(p.event.reply_to_origin->id, 512u);
}

TEST(status_event_json, ReadablePayloadsAreMinifiedJson) {
  const std::string line = event_json(archived("{ \"a\" : 1 }").view(), "r");
  EXPECT_NE(line.find(",\"payload\":{\"a\":1}}"), std::string::npos) << line;
  EXPECT_EQ(line.back(), '\n');
}

TEST(status_event_json, LinesWithoutStreamIdAndOriginAreNotEventLines) {
  EXPECT_EQ(parse_event_line(R"({"ts":"2026-01-01T00:00:00Z","agent_id":"a","action":"x","status":"ok"})").kind,
            Kind::not_event);
  EXPECT_EQ(parse_event_line(R"({"stream_id":"1-1","raw":{"type":"x"}})").kind, Kind::not_event);
  EXPECT_EQ(parse_event_line("not json").kind, Kind::not_event);
  EXPECT_EQ(parse_event_line("[1,2]").kind, Kind::not_event);
}

TEST(status_event_json, MalformedEventLinesSayWhy) {
  const auto why = [](const std::string& line) {
    const ParsedEventLine p = parse_event_line(line);
    EXPECT_EQ(p.kind, Kind::malformed) << line;
    return p.why;
  };
  const std::string good_origin = R"("origin":{"host":"h","id":1})";
  EXPECT_NE(why(R"({"stream_id":"x-1",)" + good_origin + R"(,"type":"t","agent":"a","payload":1})").find("stream_id"),
            std::string::npos);
  EXPECT_NE(why(R"({"stream_id":"0-0",)" + good_origin + R"(,"type":"t","agent":"a","payload":1})").find("stream_id"),
            std::string::npos);
  EXPECT_NE(why(R"({"stream_id":"1-1","origin":{"host":"bad host!","id":1},"type":"t","agent":"a","payload":1})")
                .find("origin"),
            std::string::npos);
  EXPECT_NE(why(R"({"stream_id":"1-1","origin":{"host":"h","id":-1},"type":"t","agent":"a","payload":1})")
                .find("origin"),
            std::string::npos);
  EXPECT_NE(why(R"({"stream_id":"1-1",)" + good_origin + R"(,"agent":"a","payload":1})").find("type"),
            std::string::npos);
  EXPECT_NE(why(R"({"stream_id":"1-1",)" + good_origin + R"(,"type":7,"agent":"a","payload":1})").find("type"),
            std::string::npos);
  EXPECT_NE(why(R"({"stream_id":"1-1",)" + good_origin + R"(,"type":"t","agent":"a"})").find("payload"),
            std::string::npos);
  EXPECT_NE(why(R"({"stream_id":"1-1",)" + good_origin +
                R"(,"type":"t","agent":"a","payload":1,"reply_to_origin":"h"})")
                .find("reply_to_origin"),
            std::string::npos);
}

}  // namespace
