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
            "team.json:3: strategy.type: unknown strategy 'ring' (pipeline, swarm, supervisor, loop, workflow, workgroup)");
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

TEST(orch_run_file, declares_a_workflow_a_workgroup_and_per_agent_timeouts) {
  const std::string agents = R"("agents":[{"id":"a","command":"true","timeout_ms":250},{"id":"b","command":"true"},{"id":"lead","command":"true"}])";
  RunSpec wf = parse_run_spec("{" + agents + R"(,"strategy":{"type":"workflow","name":"ship","settle_timeout_ms":5000,"stages":[
      {"name":"research","mode":"compete","members":["a","b"],"leader":"lead"},
      {"name":"write","goal":"draft it","members":[{"agent":"a","name":"writer","assignment":"be brief"}]}]}})",
                              "team.json");
  EXPECT_EQ(wf.strategy->name(), "workflow");
  EXPECT_EQ(wf.strategy->agents().size(), 4u);  // a, b, lead; then a again as "writer"
  EXPECT_EQ(wf.agents[0].call_timeout.count(), 250);
  EXPECT_EQ(wf.agents[1].call_timeout.count(), 0);  // the run's
  EXPECT_EQ(parse_run_spec(wf.json, "stored").strategy->name(), "workflow");
  RunSpec wg = parse_run_spec("{" + agents + R"(,"strategy":{"type":"workgroup","mode":"synthesize","members":["a","b"]}})", "team.json");
  EXPECT_EQ(wg.strategy->name(), "workgroup");
}

TEST(orch_run_file, workflow_and_workgroup_errors_name_line_and_field) {
  const std::string head = std::string("{") + kAgents + R"(,"strategy":)";
  EXPECT_EQ(error_of(head + R"({"type":"workflow","stages":[]}})"), "team.json:1: strategy.stages: workflow requires at least one stage.");
  EXPECT_EQ(error_of(head + R"({"type":"workflow","stages":[{"name":"","members":["a"]}]}})"),
            "team.json:1: strategy.stages[0].name: Stage name must not be empty.");
  EXPECT_EQ(error_of(head + "{\"type\":\"workflow\",\"stages\":[{\"name\":\"s\",\"members\":[\"a\"]},\n{\"name\":\"s\",\"members\":[\"b\"]}]}}"),
            "team.json:2: strategy.stages[1].name: Duplicate stage name: s.");
  EXPECT_EQ(error_of(head + R"({"type":"workflow","stages":[{"name":"s","members":[]}]}})"),
            "team.json:1: strategy.stages[0].members: Stage s requires at least one member.");
  EXPECT_EQ(error_of(head + R"({"type":"workflow","stages":[{"name":"s","members":["a","zz"]}]}})"),
            "team.json:1: strategy.stages[0].members[1]: no agent 'zz' in \"agents\"");
  EXPECT_EQ(error_of(head + R"({"type":"workflow","stages":[{"name":"s","members":["a"],"leader":"zz"}]}})"),
            "team.json:1: strategy.stages[0].leader: no agent 'zz' in \"agents\"");
  EXPECT_EQ(error_of(head + R"({"type":"workflow","stages":[{"name":"s","mode":"vote","members":["a"]}]}})"),
            "team.json:1: strategy.stages[0].mode: unknown mode 'vote' (compete, synthesize)");
  EXPECT_EQ(error_of(head + R"({"type":"workflow","stages":[{"name":"s","members":["a"],"lead":"b"}]}})"),
            "team.json:1: strategy.stages[0].lead: unknown field (expected one of: name, goal, mode, members, leader)");
  EXPECT_EQ(error_of(head + R"({"type":"workgroup","members":["a","a"]}})"),
            "team.json:1: strategy.members[1]: Duplicate member name: a.");
  EXPECT_EQ(error_of(head + R"({"type":"workgroup","members":[{"agent":"a","name":""}]}})"),
            "team.json:1: strategy.members[0].name: Member name must not be empty.");
  EXPECT_EQ(error_of(head + R"({"type":"workgroup"}})"), "team.json:1: strategy.members: missing (required)");
  EXPECT_EQ(error_of(head + R"({"type":"workgroup","members":[7]}})"),
            "team.json:1: strategy.members[0]: must be an agent id or an object {\"agent\", \"name\", \"assignment\"}");
  EXPECT_EQ(error_of(head + R"({"type":"workgroup","members":["a"],"settle_timeout_ms":0}})"),
            "team.json:1: strategy.settle_timeout_ms: must be between 1 and 86400000");
  EXPECT_EQ(error_of(std::string("{") + kAgents + R"(,"strategy":{"type":"pipeline","supervisor_id":"zz"}})"),
            "team.json:1: strategy.supervisor_id: no agent 'zz' in \"agents\"");
  EXPECT_EQ(error_of(R"({"agents":[{"id":"a","command":"true","timeout_ms":"5s"}],"strategy":{"type":"pipeline"}})"),
            "team.json:1: agents[0].timeout_ms: must be a non-negative integer");
}
