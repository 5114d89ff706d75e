// The provider protocol's JSON and the scripted provider.
#include <agentbus/error.hpp>
#include <agentbus/orchestration/protocol.hpp>
#include <agentbus/orchestration/provider.hpp>

#include <gtest/gtest.h>
#include <simdjson.h>

using namespace agentbus::orchestration;

TEST(orch_protocol, request_is_one_json_object_with_version_and_agent) {
  ProviderRequest req{"run-1", 3, {"writer", "Writer", "writes \"things\""},
                      {{"user", "", "line1\nline2"}}, {{"finish", "ends the run", "{\"type\":\"object\"}"}}};
  const std::string json = request_to_json(req);
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(json);
  EXPECT_EQ(std::string_view(doc["protocol"]), "agentbus.provider");
  EXPECT_EQ(uint64_t(doc["version"]), 1u);
  EXPECT_EQ(std::string_view(doc["run"]), "run-1");
  EXPECT_EQ(uint64_t(doc["step"]), 3u);
  EXPECT_EQ(std::string_view(doc["agent"]["description"]), "writes \"things\"");
  EXPECT_EQ(std::string_view(doc["messages"].at(0)["content"]), "line1\nline2");
  EXPECT_EQ(std::string_view(doc["tools"].at(0)["parameters"]["type"]), "object");
}

// The bytes are part of the protocol (a command agent may compare or hash them): pinned.
TEST(orch_protocol, request_json_is_exactly_this) {
  ProviderRequest req{"run-1", 3, {"writer", "Writer", "writes \"things\""},
                      {{"user", "", "line1\nline2"}, {"assistant", "a\\b", "x"}},
                      {{"finish", "ends the run", "{\"type\":\"object\"}"}, {"t2", "", "{}"}}};
  EXPECT_EQ(request_to_json(req),
            R"({"protocol":"agentbus.provider","version":1,"run":"run-1","step":3,"agent":{"id":"writer","role":"Writer",)"
            R"("description":"writes \"things\""},"messages":[{"role":"user","agent":"","content":"line1\nline2"},)"
            R"({"role":"assistant","agent":"a\\b","content":"x"}],"tools":[{"name":"finish","description":"ends the run",)"
            R"("parameters":{"type":"object"}},{"name":"t2","description":"","parameters":{}}]})");
  EXPECT_EQ(request_to_json(ProviderRequest{}),
            R"({"protocol":"agentbus.provider","version":1,"run":"","step":0,"agent":{"id":"","role":"","description":""},)"
            R"("messages":[],"tools":[]})");
}

TEST(orch_protocol, reply_round_trips) {
  Reply r{"hello", {{"handoff", R"({"target":"b","reason":"r","summary":"s"})"}}, {12, 7}};
  std::string why;
  auto back = reply_from_json(reply_to_json(r), why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->text, "hello");
  ASSERT_EQ(back->tool_calls.size(), 1u);
  EXPECT_EQ(back->tool_calls[0].name, "handoff");
  EXPECT_EQ(back->tool_calls[0].arguments, R"({"target":"b","reason":"r","summary":"s"})");
  EXPECT_EQ(back->usage.input_tokens, 12u);
  EXPECT_EQ(back->usage.output_tokens, 7u);
}

TEST(orch_protocol, bad_replies_say_what_is_wrong) {
  struct Case { const char* json; const char* why; };
  const Case cases[] = {
      {"not json", "not valid JSON"},
      {"[1]", "not a JSON object"},
      {R"({"text":"x"})", "missing \"version\""},
      {R"({"version":2,"text":"x"})", "protocol version 2 is not supported (this agentbus speaks version 1)"},
      {R"({"version":1})", "missing \"text\""},
      {R"({"version":1,"text":5})", "\"text\" must be a string"},
      {R"({"version":1,"text":"x","tool_calls":{}})", "\"tool_calls\" must be an array"},
      {R"({"version":1,"text":"x","tool_calls":[{"arguments":{}}]})", "tool_calls[0]: missing \"name\""},
      {R"({"version":1,"text":"x","tool_calls":[{"name":"f","arguments":[1]}]})", "tool_calls[0]: \"arguments\" must be an object"},
      {R"({"version":1,"text":"x","usage":{"input_tokens":-1}})", "usage: \"input_tokens\" must be a non-negative integer"},
  };
  for (const auto& c : cases) {
    std::string why;
    EXPECT_FALSE(reply_from_json(c.json, why)) << c.json;
    EXPECT_NE(why.find(c.why), std::string::npos) << c.json << " -> " << why;
  }
}

TEST(orch_scripted, replies_in_order_then_repeats_the_last_and_counts_calls) {
  ScriptedProvider p({Reply::say("one"), Reply::say("two")});
  ProviderRequest req;
  EXPECT_EQ(p.call(req, {}).reply.text, "one");
  EXPECT_EQ(p.call(req, {}).reply.text, "two");
  EXPECT_EQ(p.call(req, {}).reply.text, "two");
  EXPECT_EQ(p.calls(), 3u);
  EXPECT_THROW(ScriptedProvider(std::vector<Reply>{}), agentbus::Error);
}

TEST(orch_scripted, function_sees_the_request) {
  ScriptedProvider p([](const ProviderRequest& r) { return CallResult::success(Reply::say(r.agent.id + ":" + std::to_string(r.step))); });
  ProviderRequest req;
  req.agent.id = "x";
  req.step = 9;
  EXPECT_EQ(p.call(req, {}).reply.text, "x:9");
  ASSERT_EQ(p.requests().size(), 1u);
  EXPECT_EQ(p.requests()[0].step, 9u);
}
