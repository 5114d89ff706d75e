// The run file: what it declares, and errors that name the line and the field.
#include <agentbus/error.hpp>
#include <agentbus/orchestration/run_file.hpp>

#include <gtest/gtest.h>

using namespace agentbus;
using namespace agentbus::orchestration;

namespace {

std::string error_of(const std::string& text) {
  try {
    (void)parse_run_spec(text, "team.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

const char* kAgents = R"("agents":[{"id":"a","command":"true"},{"id":"b","command":"true"}])";

}  // namespace

TEST(orch_run_file, declares_agents_strategy_and_budget) {
  const std::string text = std::string(R"({"input":"hi","run_id":"x1",)") + kAgents +
                           R"(,"strategy":{"type":"loop","agent":"a","reviewer":"b","max_iterations":4},"budget":{"max_steps":9,"call_timeout_ms":1500}})";
  RunSpec spec = parse_run_spec(text, "team.json", "/tmp");
  EXPECT_EQ(spec.input, "hi");
  EXPECT_EQ(spec.run_id, "x1");
  EXPECT_EQ(spec.budget.max_steps, 9u);
  EXPECT_EQ(spec.budget.call_timeout.count(), 1500);
  ASSERT_EQ(spec.agents.size(), 2u);
  EXPECT_EQ(spec.agents[1].provider->describe(), "true");
  EXPECT_EQ(spec.strategy->name(), "loop");
  EXPECT_NE(spec.json.find(R"("base_dir":"/tmp")"), std::string::npos) << spec.json;
  // The stored spec parses back to the same run (what --resume does).
  RunSpec again = parse_run_spec(spec.json, "stored");
  EXPECT_EQ(again.strategy->name(), "loop");
}

TEST(orch_run_file, errors_name_line_and_field) {
  EXPECT_EQ(error_of("{\n  \"input\": \"x\",\n  \"agents\": [\n    {\"id\": \"a\", \"command\": 7}\n  ],\n  \"strategy\": {\"type\": \"pipeline\"}\n}"),
            "team.json:4: agents[0].command: must be a string");
  EXPECT_EQ(error_of("{\n\"agents\": [{\"id\":\"a\",\"command\":\"x\"}],\n\"strategy\": {\"type\": \"ring\"}}"),
            "team.json:3: strategy.type: unknown strategy 'ring' (pipeline, swarm, supervisor, loop)");
  EXPECT_EQ(error_of(std::string("{") + kAgents + R"(,"strategy":{"type":"pipeline","agnets":["a"]}})"),
            "team.json:1: strategy.agnets: unknown field (expected one of: type, agents, supervisor_id)");
  EXPECT_EQ(error_of(std::string("{") + kAgents + R"(,"strategy":{"type":"loop","agent":"a","reviewers":["zz"]}})"),
            "team.json:1: strategy.reviewers: no agent 'zz' in \"agents\"");
  EXPECT_EQ(error_of(std::string("{") + kAgents + R"(,"strategy":{"type":"loop","agent":"a"}})"),
            "team.json:1: strategy: At least one reviewer is required");
  EXPECT_EQ(error_of(std::string("{") + kAgents + R"(,"strategy":{"type":"supervisor","supervisor":"a","workers":["b"],"auto_delegate":true}})"),
            "team.json:1: strategy: auto_delegate=True requires strategy to be set");
  EXPECT_EQ(error_of(R"({"strategy":{"type":"pipeline"}})"), "team.json:1: agents: missing (required)");
  EXPECT_EQ(error_of(std::string("{") + kAgents + R"(,"strategy":{"type":"pipeline"},"budget":{"max_steps":0}})"),
            "team.json:1: budget.max_steps: must be between 1 and 1000000");
  EXPECT_EQ(error_of("{\n\"input\": \"x\",\n\"agents\": [\n").substr(0, 29), "team.json:4: not valid JSON: ");
  EXPECT_NE(error_of("{\"input\": \"x\"} trailing").find("team.json:1: not valid JSON"), std::string::npos);
  EXPECT_EQ(error_of(std::string("{") + kAgents + R"(,"run_id":"a b","strategy":{"type":"pipeline"}})"),
            "team.json:1: run_id: run id 'a b' may contain only [A-Za-z0-9._-]");
}
