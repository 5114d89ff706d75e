// Orchestration: an Agent whose provider is a Python callable, run in this process, and the
// strategies that exist (Pipeline, Swarm, Supervisor, Loop) driven as durable runs.
//
// The provider is called with one dict (run_id, step, agent {id, role, description},
// messages [{role, agent, content}], tools [{name, description, parameters}]) and returns the
// reply: a str, or a dict {text, tool_calls: [{name, arguments}], usage: {input_tokens,
// output_tokens}}. The strategy runs with the GIL released; each provider call takes it. A
// callable that raises FAILS that step (the run's error names the agent and the Python error),
// the way a command provider that exits non-zero does. Its time budget (call_timeout) cannot
// interrupt Python code: a provider must return in time itself.
#include "binding.hpp"

#include <agentbus/bus.hpp>
#include <agentbus/error.hpp>
#include <agentbus/orchestration/provider.hpp>
#include <agentbus/orchestration/run.hpp>
#include <agentbus/orchestration/strategies.hpp>

#include <pybind11/stl.h>

namespace agentbus::python {

namespace orch = agentbus::orchestration;

namespace {

py::dict request_dict(const orch::ProviderRequest& r) {
  py::dict d;
  d["run_id"] = r.run_id;
  d["step"] = r.step;
  py::dict agent;
  agent["id"] = r.agent.id;
  agent["role"] = r.agent.role;
  agent["description"] = r.agent.description;
  d["agent"] = agent;
  py::list messages;
  for (const orch::Message& msg : r.messages) {
    py::dict md;
    md["role"] = msg.role;
    md["agent"] = msg.agent;
    md["content"] = to_str(msg.content);
    messages.append(md);
  }
  d["messages"] = messages;
  py::list tools;
  for (const orch::ToolSpec& t : r.tools) {
    py::dict td;
    td["name"] = t.name;
    td["description"] = t.description;
    td["parameters"] = py::module_::import("json").attr("loads")(t.parameters);
    tools.append(td);
  }
  d["tools"] = tools;
  return d;
}

std::string json_text(py::handle v) {
  if (PyUnicode_Check(v.ptr())) return py::str(v);
  return py::str(py::module_::import("json").attr("dumps")(v, py::arg("separators") = py::make_tuple(",", ":")));
}

orch::Reply reply_from(py::handle r) {
  if (PyUnicode_Check(r.ptr())) return orch::Reply::say(py::str(r));
  if (!PyDict_Check(r.ptr()))
    throw py::type_error("a provider returns a str or a dict {text, tool_calls, usage}, not " +
                         std::string(Py_TYPE(r.ptr())->tp_name));
  py::dict d = py::reinterpret_borrow<py::dict>(r);
  orch::Reply reply;
  if (d.contains("text")) reply.text = py::str(d["text"]);
  if (d.contains("tool_calls")) {
    for (py::handle call : d["tool_calls"]) {
      py::dict c = py::reinterpret_borrow<py::dict>(call);
      orch::ToolCall tc;
      tc.name = py::str(c["name"]);
      if (c.contains("arguments")) tc.arguments = json_text(c["arguments"]);
      reply.tool_calls.push_back(std::move(tc));
    }
  }
  if (d.contains("usage")) {
    py::dict u = py::reinterpret_borrow<py::dict>(d["usage"]);
    if (u.contains("input_tokens")) reply.usage.input_tokens = u["input_tokens"].cast<std::uint64_t>();
    if (u.contains("output_tokens")) reply.usage.output_tokens = u["output_tokens"].cast<std::uint64_t>();
  }
  return reply;
}

class PythonProvider : public orch::Provider {
 public:
  explicit PythonProvider(py::object callable)
      : describe_(py::str(py::repr(callable))), callable_(std::move(callable)) {}

  orch::CallResult call(const orch::ProviderRequest& request, std::chrono::milliseconds) override {
    py::gil_scoped_acquire locked;
    try {
      return orch::CallResult::success(reply_from(callable_.get()(request_dict(request))));
    } catch (py::error_already_set& e) {
      return orch::CallResult::failure("agent " + request.agent.id + ": the Python provider raised " + python::describe(e));
    } catch (const std::exception& e) {
      return orch::CallResult::failure("agent " + request.agent.id + ": the Python provider's reply: " + e.what());
    }
  }
  [[nodiscard]] std::string describe() const override { return "python " + describe_; }

 private:
  std::string describe_;
  GilSafeObject callable_;
};

struct PyRunResult {
  orch::RunResult result;
  std::string run_id;
};

PyRunResult run(Bus& bus, orch::Strategy& strategy, const std::string& input, py::handle run_id,
                std::uint64_t max_steps, double call_timeout, std::uint64_t max_tokens) {
  orch::RunOptions o;
  if (!run_id.is_none()) o.run_id = py::str(run_id);
  o.budget.max_steps = max_steps;
  o.budget.call_timeout = seconds_to_ms(call_timeout, "call_timeout");
  o.budget.max_tokens = max_tokens;
  PyRunResult out;
  py::gil_scoped_release unlocked;
  out.result = orch::drive(bus, strategy, input, o, "{}", &out.run_id);
  return out;
}

PyRunResult resume(Bus& bus, orch::Strategy& strategy, const std::string& run_id) {
  PyRunResult out;
  out.run_id = run_id;
  py::gil_scoped_release unlocked;
  out.result = orch::drive_resume(bus, strategy, run_id);
  return out;
}

}  // namespace

void bind_orchestration(py::module_& m) {
  py::class_<orch::Agent>(m, "Agent", "An agent {id, role, description} whose provider is a Python callable.")
      .def(py::init([](std::string id, std::string role, py::object provider, std::string description) {
             if (!PyCallable_Check(provider.ptr())) throw py::type_error("provider must be callable");
             return orch::Agent{std::move(id), std::move(role), std::move(description),
                                std::make_shared<PythonProvider>(std::move(provider))};
           }),
           py::arg("id"), py::arg("role") = "", py::kw_only(), py::arg("provider"), py::arg("description") = "")
      .def_readonly("id", &orch::Agent::id)
      .def_readonly("role", &orch::Agent::role)
      .def_readonly("description", &orch::Agent::description)
      .def("__repr__", [](const orch::Agent& a) { return "Agent('" + a.id + "')"; });

  py::class_<orch::Strategy>(m, "Strategy", "A deterministic driver of agents (Pipeline, Swarm, Supervisor, Loop).")
      .def_property_readonly("name", [](const orch::Strategy& s) { return std::string(s.name()); });
  py::class_<orch::Pipeline, orch::Strategy>(m, "Pipeline")
      .def(py::init<std::vector<orch::Agent>, std::optional<orch::Agent>>(), py::arg("agents"),
           py::arg("supervisor") = py::none());
  py::class_<orch::Swarm, orch::Strategy>(m, "Swarm")
      .def(py::init<std::vector<orch::Agent>, std::optional<std::string>>(), py::arg("agents"),
           py::arg("entry") = py::none());
  py::class_<orch::Supervisor, orch::Strategy>(m, "Supervisor")
      .def(py::init([](orch::Agent supervisor, std::vector<orch::Agent> workers, std::optional<std::string> strategy,
                       bool auto_delegate, bool refine_task, double task_timeout, std::uint32_t max_revisions,
                       bool supervised) {
             orch::SupervisorOptions o;
             if (strategy) o.strategy = orch::checked_worker_strategy(*strategy);
             o.auto_delegate = auto_delegate;
             o.refine_task = refine_task;
             o.task_timeout = seconds_to_ms(task_timeout, "task_timeout");
             o.max_revisions = max_revisions;
             o.supervised = supervised;
             return std::make_unique<orch::Supervisor>(std::move(supervisor), std::move(workers), o);
           }),
           py::arg("supervisor"), py::arg("workers"), py::kw_only(), py::arg("strategy") = py::none(),
           py::arg("auto_delegate") = false, py::arg("refine_task") = true, py::arg("task_timeout") = 120.0,
           py::arg("max_revisions") = 3, py::arg("supervised") = false);
  py::class_<orch::Loop, orch::Strategy>(m, "Loop")
      .def(py::init<orch::Agent, std::vector<orch::Agent>, std::optional<orch::Agent>, std::uint32_t,
                    std::optional<std::string>>(),
           py::arg("agent"), py::arg("reviewers") = std::vector<orch::Agent>{}, py::kw_only(),
           py::arg("reviewer") = py::none(), py::arg("max_iterations") = 3, py::arg("strategy") = py::none());

  py::class_<PyRunResult>(m, "RunResult")
      .def_readonly("run_id", &PyRunResult::run_id)
      .def_property_readonly("state", [](const PyRunResult& r) { return std::string(orch::to_string(r.result.state)); })
      .def_property_readonly("output", [](const PyRunResult& r) { return r.result.output; })
      .def_property_readonly("error", [](const PyRunResult& r) { return r.result.error; })
      .def_property_readonly("approved", [](const PyRunResult& r) { return r.result.approved; })
      .def_property_readonly("iterations", [](const PyRunResult& r) { return r.result.iterations; })
      .def_property_readonly("stopped", [](const PyRunResult& r) { return r.result.stopped; })
      .def_property_readonly("detail",
                             [](const PyRunResult& r) { return py::module_::import("json").attr("loads")(r.result.detail); })
      .def("__repr__", [](const PyRunResult& r) {
        return "RunResult(run_id='" + r.run_id + "', state='" + std::string(orch::to_string(r.result.state)) + "')";
      });

  m.def("run", &run, py::arg("bus"), py::arg("strategy"), py::arg("input"), py::kw_only(),
        py::arg("run_id") = py::none(), py::arg("max_steps") = 200, py::arg("call_timeout") = 120.0,
        py::arg("max_tokens") = 0,
        "Starts a durable run of the strategy on input and drives it to the end (the GIL is released; "
        "Python providers take it per call). The run's journal is the room runs/<run_id>.");
  m.def("resume", &resume, py::arg("bus"), py::arg("strategy"), py::arg("run_id"),
        "Resumes a run whose driver died, with the strategy it was started with: finished steps are "
        "replayed from the journal, not called again. NotFound, or Conflict when it finished or its "
        "driver lives.");
}

}  // namespace agentbus::python
