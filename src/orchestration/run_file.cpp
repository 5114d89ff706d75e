// run_file.cpp — a run declared in JSON: agents (command providers), strategy, budget.
#include <agentbus/error.hpp>
#include <agentbus/orchestration/bus_agent.hpp>
#include <agentbus/orchestration/command_provider.hpp>
#include <agentbus/orchestration/run_file.hpp>
#include <agentbus/orchestration/workflow_strategies.hpp>

#include "orchestration/json_tree.hpp"

#include <cmath>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

namespace agentbus::orchestration {

namespace {

using json::Node;

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const Node& at, const std::string& path, const std::string& what) const {
    throw Error(Errc::invalid_argument, source_ + ":" + std::to_string(at.line) + ": " + path + ": " + what);
  }

  void only(const Node& obj, const std::string& path, std::initializer_list<std::string_view> keys) const {
    for (const auto& [k, v] : obj.members) {
      bool known = false;
      for (auto key : keys) known = known || key == k;
      if (!known) {
        std::string list;
        for (auto key : keys) list += (list.empty() ? "" : ", ") + std::string(key);
        fail(v, join(path, k), "unknown field (expected one of: " + list + ")");
      }
    }
  }

  const Node& object(const Node& n, const std::string& path) const {
    if (n.kind != Node::Kind::object) fail(n, path, "must be an object");
    return n;
  }

  const Node* field(const Node& obj, std::string_view key) const { return obj.find(key); }

  const Node& required(const Node& obj, std::string_view key, const std::string& path) const {
    const Node* n = obj.find(key);
    if (!n) fail(obj, join(path, key), "missing (required)");
    return *n;
  }

  std::string string(const Node& n, const std::string& path, bool non_empty = true) const {
    if (n.kind != Node::Kind::string) fail(n, path, "must be a string");
    if (non_empty && n.string.empty()) fail(n, path, "must not be empty");
    return n.string;
  }

  std::optional<std::string> opt_string(const Node& obj, std::string_view key, const std::string& path) const {
    const Node* n = obj.find(key);
    if (!n) return std::nullopt;
    return string(*n, join(path, key));
  }

  std::uint64_t integer(const Node& n, const std::string& path, std::uint64_t min, std::uint64_t max) const {
    if (n.kind != Node::Kind::number || std::floor(n.number) != n.number || n.number < 0)
      fail(n, path, "must be a non-negative integer");
    if (n.number < double(min) || n.number > double(max))
      fail(n, path, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return static_cast<std::uint64_t>(n.number);
  }

  bool boolean(const Node& n, const std::string& path) const {
    if (n.kind != Node::Kind::boolean) fail(n, path, "must be true or false");
    return n.boolean_value;
  }

  std::vector<std::string> ids(const Node& n, const std::string& path) const {
    if (n.kind != Node::Kind::array) fail(n, path, "must be an array of agent ids");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n.items.size(); ++i) out.push_back(string(n.items[i], path + "[" + std::to_string(i) + "]"));
    return out;
  }

  static std::string join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }

 private:
  std::string source_;
};

constexpr std::uint64_t kDayMs = 24ull * 3600 * 1000;

Agent read_agent(const Reader& r, const Node& n, const std::string& path, std::string_view base_dir, const Bus* bus) {
  r.object(n, path);
  r.only(n, path, {"id", "role", "description", "command", "max_stdout_bytes", "env", "on_bus", "timeout_ms"});
  Agent a;
  a.id = r.string(r.required(n, "id", path), path + ".id");
  if (const Node* role = n.find("role")) a.role = r.string(*role, path + ".role", false);
  if (const Node* d = n.find("description")) a.description = r.string(*d, path + ".description", false);
  if (const Node* t = n.find("timeout_ms")) a.call_timeout = std::chrono::milliseconds(r.integer(*t, path + ".timeout_ms", 1, kDayMs));
  if (const Node* ob = n.find("on_bus"); ob && r.boolean(*ob, path + ".on_bus")) {
    if (n.find("command")) r.fail(*ob, path + ".on_bus", "an agent served on the bus has no \"command\" here (give it to `agentbus agent`)");
    if (!bus) r.fail(*ob, path + ".on_bus", "needs a bus to reach the agent's processes");
    try {
      a.provider = std::make_shared<BusAgentProvider>(*bus, a.id);
    } catch (const Error& e) {
      r.fail(n, path + ".id", e.what());
    }
    return a;
  }
  CommandOptions c;
  c.command = r.string(r.required(n, "command", path), path + ".command");
  c.working_directory = std::string(base_dir);
  if (const Node* m = n.find("max_stdout_bytes")) c.max_stdout_bytes = r.integer(*m, path + ".max_stdout_bytes", 1, 64ull << 20);
  if (const Node* e = n.find("env")) {
    r.object(*e, path + ".env");
    for (const auto& [k, v] : e->members) c.environment.push_back(k + "=" + r.string(v, path + ".env." + k, false));
  }
  auto provider = std::make_shared<CommandProvider>(std::move(c));
  a.provider = std::move(provider);
  return a;
}

std::vector<Agent> pick(const Reader& r, const std::vector<Agent>& agents, const std::vector<std::string>& ids, const Node& at,
                        const std::string& path) {
  std::vector<Agent> out;
  for (const auto& id : ids) {
    bool found = false;
    for (const auto& a : agents)
      if (a.id == id) {
        out.push_back(a);
        found = true;
      }
    if (!found) r.fail(at, path, "no agent '" + id + "' in \"agents\"");
  }
  return out;
}

WorkgroupMode read_mode(const Reader& r, const Node& obj, const std::string& path, WorkgroupMode fallback) {
  const Node* m = obj.find("mode");
  if (!m) return fallback;
  const std::string mode = r.string(*m, path + ".mode");
  if (mode == "compete") return WorkgroupMode::compete;
  if (mode == "synthesize") return WorkgroupMode::synthesize;
  r.fail(*m, path + ".mode", "unknown mode '" + mode + "' (compete, synthesize)");
}

// "members": agent ids, or {"agent", "name"?, "assignment"?} objects; a member's name
// defaults to its agent's id.
std::vector<WorkgroupMember> read_members(const Reader& r, const Node& obj, const std::string& owner, const std::string& path,
                                          const std::vector<Agent>& agents) {
  const Node& n = r.required(obj, "members", path);
  const std::string at = path + ".members";
  if (n.kind != Node::Kind::array) r.fail(n, at, "must be an array of members (agent ids or {\"agent\", \"name\", \"assignment\"})");
  if (n.items.empty()) r.fail(n, at, owner + " requires at least one member.");
  std::vector<WorkgroupMember> out;
  std::set<std::string> names;
  for (std::size_t i = 0; i < n.items.size(); ++i) {
    const Node& item = n.items[i];
    const std::string p = at + "[" + std::to_string(i) + "]";
    WorkgroupMember m;
    if (item.kind == Node::Kind::string) {
      m.agent = pick(r, agents, {r.string(item, p)}, item, p).front();
      m.name = m.agent.id;
    } else if (item.kind == Node::Kind::object) {
      r.only(item, p, {"agent", "name", "assignment"});
      const Node& id = r.required(item, "agent", p);
      m.agent = pick(r, agents, {r.string(id, p + ".agent")}, id, p + ".agent").front();
      m.name = m.agent.id;
      if (const Node* name = item.find("name")) {
        m.name = r.string(*name, p + ".name", false);
        if (m.name.empty()) r.fail(*name, p + ".name", "Member name must not be empty.");
      }
      if (const Node* a = item.find("assignment")) m.assignment = r.string(*a, p + ".assignment", false);
    } else {
      r.fail(item, p, "must be an agent id or an object {\"agent\", \"name\", \"assignment\"}");
    }
    if (!names.insert(m.name).second) r.fail(item, p, "Duplicate member name: " + m.name + ".");
    out.push_back(std::move(m));
  }
  return out;
}

GroupRunOptions read_group_options(const Reader& r, const Node& n, const std::string& path) {
  GroupRunOptions o;
  if (const Node* name = n.find("name")) o.name = r.string(*name, path + ".name");
  if (const Node* goal = n.find("goal")) o.goal = r.string(*goal, path + ".goal", false);
  if (const Node* t = n.find("settle_timeout_ms")) o.settle_timeout = std::chrono::milliseconds(r.integer(*t, path + ".settle_timeout_ms", 1, kDayMs));
  return o;
}

std::unique_ptr<Strategy> read_workflow(const Reader& r, const Node& n, const std::vector<Agent>& agents) {
  const std::string path = "strategy";
  r.only(n, path, {"type", "name", "goal", "settle_timeout_ms", "stages"});
  const Node& list = r.required(n, "stages", path);
  if (list.kind != Node::Kind::array) r.fail(list, "strategy.stages", "must be an array of stages");
  if (list.items.empty()) r.fail(list, "strategy.stages", "workflow requires at least one stage.");
  std::vector<WorkflowStage> stages;
  std::set<std::string> names;
  for (std::size_t i = 0; i < list.items.size(); ++i) {
    const Node& s = list.items[i];
    const std::string p = "strategy.stages[" + std::to_string(i) + "]";
    r.object(s, p);
    r.only(s, p, {"name", "goal", "mode", "members", "leader"});
    WorkflowStage stage;
    const Node& name = r.required(s, "name", p);
    stage.name = r.string(name, p + ".name", false);
    if (stage.name.empty()) r.fail(name, p + ".name", "Stage name must not be empty.");
    if (!names.insert(stage.name).second) r.fail(name, p + ".name", "Duplicate stage name: " + stage.name + ".");
    if (const Node* g = s.find("goal")) stage.goal = r.string(*g, p + ".goal", false);
    stage.mode = read_mode(r, s, p, WorkgroupMode::synthesize);
    stage.members = read_members(r, s, "Stage " + stage.name, p, agents);
    if (const Node* l = s.find("leader")) stage.leader = pick(r, agents, {r.string(*l, p + ".leader")}, *l, p + ".leader").front();
    stages.push_back(std::move(stage));
  }
  return std::make_unique<WorkflowStrategy>(std::move(stages), read_group_options(r, n, path));
}

std::unique_ptr<Strategy> read_workgroup(const Reader& r, const Node& n, const std::vector<Agent>& agents) {
  const std::string path = "strategy";
  r.only(n, path, {"type", "name", "goal", "settle_timeout_ms", "mode", "members"});
  const WorkgroupMode mode = read_mode(r, n, path, WorkgroupMode::compete);
  return std::make_unique<WorkgroupStrategy>(read_members(r, n, "workgroup", path, agents), mode, read_group_options(r, n, path));
}

std::unique_ptr<Strategy> read_strategy(const Reader& r, const Node& n, const std::vector<Agent>& agents) {
  const std::string path = "strategy";
  r.object(n, path);
  const std::string type = r.string(r.required(n, "type", path), "strategy.type");
  auto agent_ids = [&](std::string_view key) -> std::vector<Agent> {
    const Node* list = n.find(key);
    if (!list) return agents;
    return pick(r, agents, r.ids(*list, path + "." + std::string(key)), *list, path + "." + std::string(key));
  };
  auto one = [&](std::string_view key) -> Agent {
    const Node& id = r.required(n, key, path);
    return pick(r, agents, {r.string(id, path + "." + std::string(key))}, id, path + "." + std::string(key)).front();
  };
  try {
    if (type == "pipeline") {
      r.only(n, path, {"type", "agents", "supervisor_id"});
      std::optional<Agent> supervisor;
      if (n.find("supervisor_id")) supervisor = one("supervisor_id");
      std::vector<Agent> stages = agent_ids("agents");
      if (supervisor && !n.find("agents"))  // by default every agent but the supervisor is a stage
        std::erase_if(stages, [&](const Agent& a) { return a.id == supervisor->id; });
      return std::make_unique<Pipeline>(std::move(stages), supervisor);
    }
    if (type == "swarm") {
      r.only(n, path, {"type", "agents", "entry"});
      return std::make_unique<Swarm>(agent_ids("agents"), r.opt_string(n, "entry", path));
    }
    if (type == "supervisor") {
      r.only(n, path, {"type", "supervisor", "workers", "strategy", "auto_delegate", "refine_task", "refine_instruction",
                       "task_timeout_ms", "max_revisions", "supervised"});
      SupervisorOptions o;
      o.strategy = r.opt_string(n, "strategy", path);
      if (const Node* b = n.find("auto_delegate")) o.auto_delegate = r.boolean(*b, "strategy.auto_delegate");
      if (const Node* b = n.find("refine_task")) o.refine_task = r.boolean(*b, "strategy.refine_task");
      if (const Node* b = n.find("supervised")) o.supervised = r.boolean(*b, "strategy.supervised");
      o.refine_instruction = r.opt_string(n, "refine_instruction", path).value_or("");
      if (const Node* t = n.find("task_timeout_ms")) o.task_timeout = std::chrono::milliseconds(r.integer(*t, "strategy.task_timeout_ms", 1, kDayMs));
      if (const Node* m = n.find("max_revisions")) o.max_revisions = static_cast<std::uint32_t>(r.integer(*m, "strategy.max_revisions", 0, 100));
      return std::make_unique<Supervisor>(one("supervisor"), pick(r, agents, r.ids(r.required(n, "workers", path), "strategy.workers"),
                                                                  *n.find("workers"), "strategy.workers"),
                                          o);
    }
    if (type == "workflow") return read_workflow(r, n, agents);
    if (type == "workgroup") return read_workgroup(r, n, agents);
    if (type == "loop") {
      r.only(n, path, {"type", "agent", "reviewers", "reviewer", "max_iterations", "strategy"});
      std::vector<Agent> reviewers;
      if (const Node* list = n.find("reviewers")) reviewers = pick(r, agents, r.ids(*list, "strategy.reviewers"), *list, "strategy.reviewers");
      std::optional<Agent> reviewer;
      if (n.find("reviewer")) reviewer = one("reviewer");
      std::uint32_t max_iterations = 3;
      if (const Node* m = n.find("max_iterations")) max_iterations = static_cast<std::uint32_t>(r.integer(*m, "strategy.max_iterations", 1, 1000));
      return std::make_unique<Loop>(one("agent"), reviewers, reviewer, max_iterations, r.opt_string(n, "strategy", path));
    }
  } catch (const Error& e) {
    if (std::string_view(e.what()).find(": strategy") != std::string_view::npos) throw;  // ours, located already
    r.fail(n, path, e.what());  // a strategy's constructor error, at the strategy object
  }
  r.fail(*n.find("type"), "strategy.type", "unknown strategy '" + type + "' (pipeline, swarm, supervisor, loop, workflow, workgroup)");
}

}  // namespace

RunSpec parse_run_spec(std::string_view text, std::string_view source, std::string_view base_dir, const Bus* bus) {
  Node root;
  std::string why;
  int line = 0;
  if (!json::parse_tree(text, root, why, line))
    throw Error(Errc::invalid_argument, std::string(source) + ":" + std::to_string(line) + ": not valid JSON: " + why);
  const Reader r{std::string(source)};
  if (root.kind != Node::Kind::object) r.fail(root, "(top level)", "must be an object");
  r.only(root, "", {"input", "run_id", "agents", "strategy", "budget", "base_dir", "ring_bytes"});
  RunSpec spec;
  std::string dir(base_dir);
  if (const Node* b = root.find("base_dir")) dir = r.string(*b, "base_dir");
  if (const Node* in = root.find("input")) spec.input = r.string(*in, "input", false);
  if (const Node* id = root.find("run_id")) {
    spec.run_id = r.string(*id, "run_id");
    try {
      validate_run_id(spec.run_id);
    } catch (const Error& e) {
      r.fail(*id, "run_id", e.what());
    }
  }
  if (const Node* rb = root.find("ring_bytes")) {
    spec.ring_bytes = r.integer(*rb, "ring_bytes", 64 << 10, 1ull << 30);
    if ((spec.ring_bytes & (spec.ring_bytes - 1)) != 0) r.fail(*rb, "ring_bytes", "must be a power of two");
  }
  const Node& agents = r.required(root, "agents", "");
  if (agents.kind != Node::Kind::array || agents.items.empty()) r.fail(agents, "agents", "must be a non-empty array of agents");
  std::set<std::string> ids;
  for (std::size_t i = 0; i < agents.items.size(); ++i) {
    const std::string path = "agents[" + std::to_string(i) + "]";
    Agent a = read_agent(r, agents.items[i], path, dir, bus);
    if (!ids.insert(a.id).second) r.fail(agents.items[i], path + ".id", "agent id '" + a.id + "' appears twice");
    spec.agents.push_back(std::move(a));
  }
  if (const Node* b = root.find("budget")) {
    r.object(*b, "budget");
    r.only(*b, "budget", {"max_steps", "call_timeout_ms", "wall_clock_ms", "max_tokens"});
    if (const Node* v = b->find("max_steps")) spec.budget.max_steps = r.integer(*v, "budget.max_steps", 1, 1'000'000);
    if (const Node* v = b->find("call_timeout_ms")) spec.budget.call_timeout = std::chrono::milliseconds(r.integer(*v, "budget.call_timeout_ms", 1, kDayMs));
    if (const Node* v = b->find("max_tokens")) spec.budget.max_tokens = r.integer(*v, "budget.max_tokens", 0, 1ull << 50);
    if (const Node* v = b->find("wall_clock_ms")) spec.budget.wall_clock = std::chrono::milliseconds(r.integer(*v, "budget.wall_clock_ms", 0, 7 * kDayMs));
  }
  spec.strategy = read_strategy(r, r.required(root, "strategy", ""), spec.agents);
  // What RUN_STARTED keeps: the file as parsed, with the directory commands run in.
  Node stored = root;
  bool has_dir = false;
  for (auto& [k, v] : stored.members)
    if (k == "base_dir") has_dir = true;
  if (!has_dir && !dir.empty()) {
    Node d;
    d.kind = Node::Kind::string;
    d.string = dir;
    stored.members.emplace_back("base_dir", std::move(d));
  }
  spec.json = json::to_json(stored);
  return spec;
}

RunSpec load_run_file(const std::string& path, const Bus* bus) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Errc::not_found, "cannot read run file '" + path + "'");
  std::stringstream buf;
  buf << in.rdbuf();
  std::string dir = ".";
  if (auto slash = path.find_last_of('/'); slash != std::string::npos) dir = slash == 0 ? "/" : path.substr(0, slash);
  char resolved[4096];
  if (::realpath(dir.c_str(), resolved)) dir = resolved;
  return parse_run_spec(buf.str(), path, dir, bus);
}

RunSpec spec_of_run(const Run& run, const Bus* bus) {
  return parse_run_spec(run.spec(), "run " + run.id() + " (its RUN_STARTED spec)", {}, bus);
}

}  // namespace agentbus::orchestration
